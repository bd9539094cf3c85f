//! stream-manager: a live-graphics streaming server. It renders a scene at a fixed frame
//! rate, encodes H.264 + AAC with FFmpeg, and streams over RTMP (an embedded server that
//! players pull from, and pushes to destinations), driven live through REST and WebSocket.
//!
//! Module map (see `DESIGN.md`): [`state`] owns config, state, persistence and the event
//! bus; [`control`] is the stream state machine; [`pipeline`] renders on a clock;
//! [`output`] encodes and delivers; [`api`] is REST + WebSocket; [`compose`] draws;
//! [`scene`] holds the scenes and composes them per frame; [`assets`] holds uploads.

pub mod api;
pub mod assets;
pub mod compose;
pub mod config;
pub mod control;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod plugin;
pub mod render;
pub mod scaffold;
pub mod scene;
pub mod server;
pub mod state;
