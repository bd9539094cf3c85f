//! `stream-manager render`: a scene drawn offline into PNGs and an MP4 that a decoder reads.

use std::process::Command;

use serde_json::json;

use crate::harness::*;

fn scene() -> serde_json::Value {
    json!({
        "canvas": {"width": W, "height": H, "background": "#000000"},
        "layers": [{"id": "r", "kind": "shape",
                    "position": {"x": 20, "y": 20, "width": 100, "height": 60},
                    "shape": {"type": "rect", "fill": "#ff0000"}}]
    })
}

fn render(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stream-manager"))
        .arg("render")
        .args(args)
        .output()
        .expect("run stream-manager render")
}

fn is_red(frame: &[u8], x: u32, y: u32) -> bool {
    let i = ((y * W + x) * 3) as usize;
    frame[i] > 200 && frame[i + 1] < 60 && frame[i + 2] < 60
}

#[tokio::test]
async fn scene_renders_offline_to_png_and_mp4() {
    let dir = TempDir::new("render");
    let scene_file = dir.join("scene.json");
    std::fs::write(&scene_file, scene().to_string()).expect("write scene");
    let scene_arg = scene_file.to_str().expect("utf-8 path");

    let pngs = dir.join("frames");
    let out = render(&[
        "--scene",
        scene_arg,
        "--frames",
        "2",
        "--out",
        pngs.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["frame-00000.png", "frame-00001.png"] {
        let frame = decode_frames(pngs.join(name).to_str().unwrap(), 1, W, H).await;
        assert!(
            is_red(&frame[0], 70, 50) && !is_red(&frame[0], 200, 150),
            "{name}"
        );
    }

    let mp4 = dir.join("out.mp4");
    let out = render(&[
        "--scene",
        scene_arg,
        "--frames",
        "15",
        "--fps",
        "25",
        "--out",
        mp4.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let probe = ffprobe_json(mp4.to_str().unwrap())
        .await
        .expect("probe the MP4");
    let video = streams(&probe, "video");
    assert_eq!(video.len(), 1, "{probe}");
    assert_eq!(video[0]["codec_name"], "h264", "{probe}");
    assert_eq!(
        (video[0]["width"].as_u64(), video[0]["height"].as_u64()),
        (Some(u64::from(W)), Some(u64::from(H)))
    );
    let frames = decode_frames(mp4.to_str().unwrap(), 15, W, H).await;
    assert!(
        is_red(&frames[14], 70, 50),
        "the last frame shows the scene"
    );
}

#[tokio::test]
async fn bad_scenes_are_refused_naming_the_input() {
    let dir = TempDir::new("render-bad");
    let out = dir.join("x");
    let missing = render(&[
        "--scene",
        dir.join("none.json").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--scene"));

    let bad = dir.join("bad.json");
    let mut s = scene();
    s["layers"][0]["position"]["opacity"] = json!(3);
    std::fs::write(&bad, s.to_string()).unwrap();
    let refused = render(&[
        "--scene",
        bad.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("opacity"), "{err}");
    assert!(!out.exists(), "nothing written for a refused scene");
}

#[tokio::test]
async fn a_template_layer_larger_than_the_frame_is_drawn_where_it_shows() {
    // A template layer of 9 frames' area, hanging off the top-left (too big to cache): its
    // picture is drawn straight into the frame, moved to the layer's place.
    let dir = TempDir::new("render-big-template");
    let templates = dir.join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::copy(
        crate::guests::test_guest_path("hostile"),
        templates.join("hostile.wasm"),
    )
    .unwrap();
    let (w, h) = (3 * W as i32, 3 * H as i32);
    let scene = json!({
        "canvas": {"width": W, "height": H, "background": "#000000"},
        "layers": [{"id": "big", "kind": "template",
                    "position": {"x": 40 - w, "y": 30 - h, "width": w, "height": h},
                    "template": {"id": "hostile", "params": {"mode": "ok"}}}]
    });
    let scene_file = dir.join("scene.json");
    std::fs::write(&scene_file, scene.to_string()).unwrap();
    let pngs = dir.join("frames");
    let out = render(&[
        "--scene",
        scene_file.to_str().unwrap(),
        "--templates",
        templates.to_str().unwrap(),
        "--frames",
        "2",
        "--out",
        pngs.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frame = decode_frames(pngs.join("frame-00001.png").to_str().unwrap(), 1, W, H).await;
    let green = |x: u32, y: u32| {
        let i = ((y * W + x) * 3) as usize;
        frame[0][i] < 60 && frame[0][i + 1] > 200 && frame[0][i + 2] < 60
    };
    assert!(green(5, 5) && green(35, 25), "the layer's corner is on air");
    assert!(
        !green(45, 35) && !green(W - 5, H - 5),
        "nothing beyond the layer"
    );
}
