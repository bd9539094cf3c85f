//! `loader-stub`: a component of the `asset-loader` world (it exports `loader`, not
//! `template`). Uploading it as a scene template must be refused with 422.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    world: "asset-loader",
});

use exports::stream_manager::plugin::loader::{Decoded, Guest, Image, LoaderInfo};

struct LoaderStub;

impl Guest for LoaderStub {
    fn describe() -> LoaderInfo {
        LoaderInfo {
            name: "loader-stub".to_string(),
            version: "0.1.0".to_string(),
            media_types: vec!["application/x-stream-manager-stub".to_string()],
        }
    }

    /// Always one opaque white pixel, whatever the bytes.
    fn decode(_bytes: Vec<u8>, _options: String) -> Result<Decoded, String> {
        Ok(Decoded::Still(Image {
            width: 1,
            height: 1,
            rgba: vec![255; 4],
        }))
    }
}

export!(LoaderStub);
