//! `colour-b`: version 2.0.0 of the template "colour", filling the layer solid blue
//! (#0000ff). Its render counter crosses a hot swap through `snapshot`/`restore`; with
//! `{"showRenders":true}` the rectangle is only as wide as that counter.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    world: "scene-template",
});

#[allow(dead_code)]
#[path = "../../common.rs"]
mod common;

use std::cell::Cell;

use exports::stream_manager::plugin::template::{FrameInfo, Guest, Info, RenderOutput};
use stream_manager::plugin::types::Size;

thread_local! {
    static SHOW_RENDERS: Cell<bool> = const { Cell::new(false) };
}

struct Colour;

impl Guest for Colour {
    fn describe() -> Info {
        Info {
            name: "colour".to_string(),
            version: "2.0.0".to_string(),
            description: "Test guest: fills the layer blue (#0000ff)".to_string(),
            params_schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"showRenders":{"type":"boolean"}},"additionalProperties":true}"#.to_string(),
            default_params: "{}".to_string(),
            default_size: Size { width: 320, height: 180 },
        }
    }

    fn configure(params: String) -> Result<(), String> {
        let params = common::parse_object(&params)?;
        SHOW_RENDERS.with(|s| s.set(common::show_renders(&params)));
        Ok(())
    }

    fn render(frame: FrameInfo) -> RenderOutput {
        let renders = common::count_render();
        if SHOW_RENDERS.with(Cell::get) {
            common::fill_width(renders as f32, frame.width, frame.height, common::BLUE)
        } else {
            common::fill_layer(frame.width, frame.height, common::BLUE)
        }
    }

    fn snapshot() -> Option<String> {
        common::snapshot()
    }

    fn restore(state: String) -> Result<(), String> {
        common::restore(&state)
    }
}

export!(Colour);
