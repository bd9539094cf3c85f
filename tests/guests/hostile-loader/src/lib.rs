//! `hostile-loader`: an asset loader (world `asset-loader`) that misbehaves on demand. The
//! upload's options choose how: `{"mode": "..."}`; see `tests/guests/README.md`. Nothing
//! here may cost the host more than the upload it fails.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    world: "asset-loader",
});

use exports::stream_manager::plugin::loader::{
    AnimationFrame, Decoded, Guest, Image, LoaderInfo, Vector,
};
use stream_manager::plugin::types::{DrawCommand, Fill, Rect, RectCommand, Rgba};

struct HostileLoader;

fn solid(width: u32, height: u32, rgba: [u8; 4]) -> Image {
    Image {
        width,
        height,
        rgba: rgba.repeat((width * height) as usize),
    }
}

/// `count` pictures of `width`×`height` whose pixels all point at one buffer.
fn aliased(width: u32, height: u32, count: usize) -> Vec<AnimationFrame> {
    let mut buffer = vec![7u8; (width * height * 4) as usize];
    let (ptr, len, cap) = (buffer.as_mut_ptr(), buffer.len(), buffer.capacity());
    std::mem::forget(buffer);
    (0..count)
        .map(|_| AnimationFrame {
            image: Image {
                width,
                height,
                // SAFETY: not safe, on purpose: every frame owns the same buffer.
                rgba: unsafe { Vec::from_raw_parts(ptr, len, cap) },
            },
            duration_ms: 40,
        })
        .collect()
}

impl Guest for HostileLoader {
    fn describe() -> LoaderInfo {
        LoaderInfo {
            name: "hostile-loader".to_string(),
            version: "1.0.0".to_string(),
            media_types: vec!["application/x-hostile".to_string()],
        }
    }

    fn decode(bytes: Vec<u8>, options: String) -> Result<Decoded, String> {
        let options: serde_json::Value = serde_json::from_str(&options).unwrap_or_default();
        // The mode comes from the options, or from an upload whose bytes are `mode:<name>`.
        let from_bytes = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|b| b.trim().strip_prefix("mode:"))
            .map(str::to_string);
        let mode = options
            .get("mode")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .or(from_bytes)
            .unwrap_or_else(|| "ok".to_string());
        match mode.as_str() {
            // Two frames, red then green, 100 and 200 ms; the bytes' length as the width.
            "ok" => Ok(Decoded::Animation(vec![
                AnimationFrame {
                    image: solid(bytes.len().max(1) as u32, 2, [255, 0, 0, 255]),
                    duration_ms: 100,
                },
                AnimationFrame {
                    image: solid(bytes.len().max(1) as u32, 2, [0, 255, 0, 255]),
                    duration_ms: 200,
                },
            ])),
            "still" => Ok(Decoded::Still(solid(3, 2, [0, 0, 255, 255]))),
            // Eight 64×64 frames whose every byte is `(frame × 31 + index × 7) % 251`: the
            // answer wit-bindgen's post-return frees must reach the host whole.
            "pattern" => Ok(Decoded::Animation(
                (0..8usize)
                    .map(|frame| {
                        let rgba = (0..64 * 64 * 4)
                            .map(|i| ((frame * 31 + i * 7) % 251) as u8)
                            .collect();
                        // Kept between frames, so that each frame freed goes to the
                        // allocator's free lists (which write into it) rather than merging.
                        std::mem::forget(vec![0u8; 64]);
                        AnimationFrame {
                            image: Image {
                                width: 64,
                                height: 64,
                                rgba,
                            },
                            duration_ms: 50,
                        }
                    })
                    .collect(),
            )),
            // 64×36: red 200 ms, green 400 ms, blue 600 ms, white 800 ms (2 s a run).
            "timed" => Ok(Decoded::Animation(
                [
                    [255, 0, 0, 255],
                    [0, 255, 0, 255],
                    [0, 0, 255, 255],
                    [255; 4],
                ]
                .into_iter()
                .zip([200, 400, 600, 800])
                .map(|(rgba, duration_ms)| AnimationFrame {
                    image: solid(64, 36, rgba),
                    duration_ms,
                })
                .collect(),
            )),
            // A 100×50 drawing: a red left half and a blue right half.
            "vector" => Ok(Decoded::Drawing(Vector {
                width: 100.0,
                height: 50.0,
                commands: [(0.0, [255, 0, 0, 255]), (50.0, [0, 0, 255, 255])]
                    .into_iter()
                    .map(|(x, [r, g, b, a])| {
                        DrawCommand::Rect(RectCommand {
                            bounds: Rect {
                                x,
                                y: 0.0,
                                width: 50.0,
                                height: 50.0,
                            },
                            radius: 0.0,
                            fill: Fill::Solid(Rgba { r, g, b, a }),
                        })
                    })
                    .collect(),
            })),
            "refuse" => Err("not a hostile file".to_string()),
            "loop" => loop {
                std::hint::black_box(&bytes);
            },
            // Grows its memory in 16 MiB steps without touching it, so it meets the
            // memory cap at once rather than the time budget on a busy machine.
            "hog" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(Vec::with_capacity(16 << 20));
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => panic!("hostile loader panics"),
            // Declares 100 000 × 100 000 pixels and hands over 4 bytes.
            "declared" => Ok(Decoded::Still(Image {
                width: 100_000,
                height: 100_000,
                rgba: vec![0; 4],
            })),
            // A million 1×1 frames, all the same 4 bytes.
            "frames" => Ok(Decoded::Animation(aliased(1, 1, 1_000_000))),
            // 1000 frames of 2048×2048 (16 MiB each, 16 GiB in all) over one buffer.
            "alias" => Ok(Decoded::Animation(aliased(2048, 2048, 1000))),
            // A wrong byte count for the size it declares.
            "short" => Ok(Decoded::Still(Image {
                width: 4,
                height: 4,
                rgba: vec![0; 60],
            })),
            other => Err(format!("unknown mode {other}")),
        }
    }
}

export!(HostileLoader);
