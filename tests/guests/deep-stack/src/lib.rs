//! `deep-stack`: a scene template that describes itself fine but whose `render`, with any
//! params (the defaults `{}` included), recurses without bound keeping a 4 KiB array alive
//! in every frame, like `hostile`'s `stack` mode. The test render at upload time overflows
//! the stack: a trap, so the upload is refused with a message saying so, and the host does
//! not crash.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    world: "scene-template",
});

#[allow(dead_code)]
#[path = "../../common.rs"]
mod common;

use exports::stream_manager::plugin::template::{FrameInfo, Guest, Info, RenderOutput};
use stream_manager::plugin::types::Size;

struct DeepStack;

impl Guest for DeepStack {
    fn describe() -> Info {
        Info {
            name: "deep-stack".to_string(),
            version: "0.1.0".to_string(),
            description: "Test guest whose render overflows the stack".to_string(),
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
        let depth = common::dive(0);
        // Unreachable in practice; keeps the result observable.
        common::fill_width(depth as f32, frame.width, frame.height, common::RED)
    }

    fn snapshot() -> Option<String> {
        common::snapshot()
    }

    fn restore(state: String) -> Result<(), String> {
        common::restore(&state)
    }
}

export!(DeepStack);
