//! `big-memory`: a well-behaved scene template (it fills the layer green) whose core module
//! declares 65 535 pages (4 GiB − 64 KiB) of initial linear memory (see `build.rs`), far
//! over the host's memory cap. Instantiating it must fail cleanly, before any memory is
//! committed: the upload is refused with a message about memory, not a host OOM.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    world: "scene-template",
});

#[allow(dead_code)]
#[path = "../../common.rs"]
mod common;

use exports::stream_manager::plugin::template::{FrameInfo, Guest, Info, RenderOutput};
use stream_manager::plugin::types::Size;

struct BigMemory;

impl Guest for BigMemory {
    fn describe() -> Info {
        Info {
            name: "big-memory".to_string(),
            version: "0.1.0".to_string(),
            description: "Test guest whose module declares 4 GiB - 64 KiB of initial memory".to_string(),
            params_schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":true}"#.to_string(),
            default_params: "{}".to_string(),
            default_size: Size { width: 320, height: 180 },
        }
    }

    fn configure(params: String) -> Result<(), String> {
        common::parse_object(&params).map(drop)
    }

    fn render(frame: FrameInfo) -> RenderOutput {
        common::count_render();
        common::fill_layer(frame.width, frame.height, common::GREEN)
    }

    fn snapshot() -> Option<String> {
        common::snapshot()
    }

    fn restore(state: String) -> Result<(), String> {
        common::restore(&state)
    }
}

export!(BigMemory);
