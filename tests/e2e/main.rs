//! End-to-end tests: the real `stream-manager` binary against real peers (FFmpeg players and
//! receivers, nginx-rtmp, Redis). One test binary with a module per topic; `harness` holds
//! the process guards and helpers they share, `pixels` the looks at decoded frames, and
//! `common` what the scene, named-scene and asset tests share.
//!
//! Needs on the PATH: `ffmpeg`, `ffprobe`, `redis-server`, `nginx` with the RTMP module
//! (`libnginx-mod-rtmp`) and `timeout`. Run with `cargo nextest run -p stream-manager --test
//! e2e` or `cargo test -p stream-manager --test e2e`.

mod api;
mod assets;
mod audio;
mod authoring;
mod common;
mod console;
mod destinations;
mod golden;
mod guests;
mod harness;
mod hostile;
mod inputs;
mod loaders;
mod ograf;
mod pixels;
mod recordings;
mod redis_store;
mod render;
mod sandbox;
mod scene;
mod scenes;
mod standby;
mod stream;
mod template_preview;
mod templates;
mod uploads;
mod versions;
mod ws;
