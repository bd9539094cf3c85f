//! The media plane: FFmpeg encoding, the media hub that fans encoded packets out, FLV, the
//! embedded RTMP server, pushed destinations, the JPEG preview of the program, and the live
//! inputs (RTSP, RTMP publishers, media files) that video layers show, and the recordings of
//! the program.
//!
//! Owns: everything that touches FFmpeg or an RTMP socket, on its own threads and tasks.
//! Must not depend on the plugin runtime (wasmtime), the HTTP API (axum), the scene model
//! or the server's state store: what it reports goes out through its own types
//! ([`frames::PipelineStats`], [`destination::DestinationStatus`]) and callbacks.

pub mod audio;
pub mod config;
pub mod destination;
pub mod encoder;
pub mod flv;
pub mod frames;
pub mod hub;
pub mod input;
pub mod preview;
pub mod recorder;
pub mod recording;
pub mod relay;
pub mod rtmp_server;
pub mod threads;
pub mod video_encoder;
