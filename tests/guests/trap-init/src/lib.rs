//! `trap-init`: a scene template whose `describe` panics, so loading it traps before the
//! host learns anything about it.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    world: "scene-template",
});

#[allow(dead_code)]
#[path = "../../common.rs"]
mod common;

use exports::stream_manager::plugin::template::{FrameInfo, Guest, Info, RenderOutput};

struct TrapInit;

impl Guest for TrapInit {
    fn describe() -> Info {
        panic!("trap at init")
    }

    fn configure(params: String) -> Result<(), String> {
        common::parse_object(&params).map(drop)
    }

    fn render(frame: FrameInfo) -> RenderOutput {
        common::fill_layer(frame.width, frame.height, common::RED)
    }

    fn snapshot() -> Option<String> {
        None
    }

    fn restore(_state: String) -> Result<(), String> {
        Ok(())
    }
}

export!(TrapInit);
