//! stream-manager: a live-graphics streaming server. It renders a scene at a fixed frame
//! rate, encodes H.264 + AAC with FFmpeg, and streams over RTMP (an embedded server that
//! players pull from, and pushes to destinations), driven live through REST and WebSocket.
//!
//! This crate wires the host's parts together and owns what is the server's alone:
//! [`state`] (config, state, persistence and the event bus), [`control`] (the stream state
//! machine), [`pipeline`] (the render clock feeding the encoder), [`api`] (REST +
//! WebSocket), [`auth`] (tokens and roles), [`scene_manager`] (the one place scene edits go
//! through), [`assets`] (uploads), [`config`] (settings and the CLI), [`render`] (offline
//! rendering and template checks), [`loader_cli`] (`loader check|decode`), [`preview`] (`template preview`, the template authors'
//! page), and the
//! `stream-manager` binary. It depends on every other host crate (`sm-compose`,
//! `sm-scene`, `sm-plugin-host`, `sm-media`, `sm-render`); none of them depends on it.
//! What belongs to one of them goes there, not here: this crate must not grow its own
//! drawing, media or sandbox code, and the others learn of the server only through the
//! traits and callbacks they define (`TemplateStore`, `FaultSink`, `AssetLookup`).

pub mod api;
pub mod assets;
pub mod audio;
pub mod auth;
pub mod config;
pub mod control;
pub mod inputs;
pub mod loader_cli;
pub mod media;
pub mod metrics;
pub mod pipeline;
pub mod preview;
pub mod recordings;
pub mod render;
pub mod scaffold;
pub mod scene_manager;
pub mod server;
pub mod state;
pub mod thumbnail;
