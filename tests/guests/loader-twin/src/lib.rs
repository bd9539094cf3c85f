//! `loader-twin`: an asset loader named `loader-twin` that claims the hostile loader's media
//! type (`application/x-hostile`) and `image/x-twin`: a second loader for one type, which
//! the server refuses unless it replaces the first.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    world: "asset-loader",
});

use exports::stream_manager::plugin::loader::{Decoded, Guest, Image, LoaderInfo};

struct LoaderTwin;

impl Guest for LoaderTwin {
    fn describe() -> LoaderInfo {
        LoaderInfo {
            name: "loader-twin".to_string(),
            version: "2.0.0".to_string(),
            media_types: vec![
                "application/x-hostile".to_string(),
                "image/x-twin".to_string(),
            ],
        }
    }

    /// Always a 2×2 opaque black picture, whatever the bytes.
    fn decode(_bytes: Vec<u8>, _options: String) -> Result<Decoded, String> {
        Ok(Decoded::Still(Image {
            width: 2,
            height: 2,
            rgba: [0, 0, 0, 255].repeat(4),
        }))
    }
}

export!(LoaderTwin);
