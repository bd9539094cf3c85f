//! `external-ref`: a well-behaved scene template (it fills the layer green) whose params
//! schema points at an external document:
//! `{"type":"object","properties":{"x":{"$ref":"https://example.com/schemas/x.json"}}}`.
//! The host must not fetch it: the upload is refused with a message naming the reference
//! (or, if a host chooses to accept it, it must still make no network request).

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    world: "scene-template",
});

#[allow(dead_code)]
#[path = "../../common.rs"]
mod common;

use exports::stream_manager::plugin::template::{FrameInfo, Guest, Info, RenderOutput};
use stream_manager::plugin::types::Size;

/// The schema with the external `$ref`, exactly.
const SCHEMA: &str =
    r#"{"type":"object","properties":{"x":{"$ref":"https://example.com/schemas/x.json"}}}"#;

struct ExternalRef;

impl Guest for ExternalRef {
    fn describe() -> Info {
        Info {
            name: "external-ref".to_string(),
            version: "0.1.0".to_string(),
            description: "Test guest whose params schema has an external $ref".to_string(),
            params_schema: SCHEMA.to_string(),
            default_params: "{}".to_string(),
            default_size: Size {
                width: 320,
                height: 180,
            },
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

export!(ExternalRef);
