//! `slow-default`: a scene template that describes itself fine but whose default params
//! (`{"spin":true}`) make `render` loop forever, so a test render at upload time overruns
//! its budget. With `{"spin":false}` it fills the layer green.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    world: "scene-template",
});

#[allow(dead_code)]
#[path = "../../common.rs"]
mod common;

use std::cell::Cell;
use std::hint::black_box;

use exports::stream_manager::plugin::template::{FrameInfo, Guest, Info, RenderOutput};
use stream_manager::plugin::types::Size;

thread_local! {
    static SPIN: Cell<bool> = const { Cell::new(true) };
}

struct SlowDefault;

impl Guest for SlowDefault {
    fn describe() -> Info {
        Info {
            name: "slow-default".to_string(),
            version: "0.1.0".to_string(),
            description: "Test guest whose default params make render never return".to_string(),
            params_schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"spin":{"type":"boolean"}},"additionalProperties":true}"#.to_string(),
            default_params: r#"{"spin":true}"#.to_string(),
            default_size: Size { width: 320, height: 180 },
        }
    }

    fn configure(params: String) -> Result<(), String> {
        let params = common::parse_object(&params)?;
        let spin = params
            .get("spin")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(true);
        SPIN.with(|s| s.set(spin));
        Ok(())
    }

    fn render(frame: FrameInfo) -> RenderOutput {
        common::count_render();
        if SPIN.with(Cell::get) {
            let mut n: u64 = 0;
            loop {
                n = black_box(n.wrapping_add(1));
            }
        }
        common::fill_layer(frame.width, frame.height, common::GREEN)
    }

    fn snapshot() -> Option<String> {
        common::snapshot()
    }

    fn restore(state: String) -> Result<(), String> {
        common::restore(&state)
    }
}

export!(SlowDefault);
