//! The reference scene of `benches/reference/scene.json` at 1080p, alone or with three
//! bundled templates on top; shared by the `compose` and `cost` benches
//! (`#[path = "reference/scene.rs"] mod reference;`, next to a `guests` module).
//!
//! Assets come from `REFERENCE_ASSETS` (default `target/reference-assets`, made by
//! `benches/reference/make_assets.py` when missing).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use sm_render::OnAir;
use sm_scene::Scene;
use stream_manager::render::offline_on_air;

use crate::guests;

pub const W: u32 = 1920;
pub const H: u32 = 1080;

/// The three templates of [`reference_with_templates`]: file stem, template id, layer box
/// (x, y, width, height).
pub const TEMPLATES: [(&str, &str, [u32; 4]); 3] = [
    ("lower_third", "lower-third", [320, 700, 1280, 200]),
    ("clock", "clock", [1400, 40, 480, 160]),
    ("ticker", "ticker", [0, 1016, 1920, 64]),
];

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn reference() -> OnAir {
    let dir = std::env::var_os("REFERENCE_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/reference-assets"));
    if !dir.join("background.jpg").exists() {
        let status = Command::new("python3")
            .arg(root().join("benches/reference/make_assets.py"))
            .arg(&dir)
            .status()
            .expect("python3 runs");
        assert!(status.success(), "make_assets.py failed");
    }
    let text = std::fs::read_to_string(root().join("benches/reference/scene.json"))
        .expect("reference scene");
    let scene: Scene = serde_json::from_str(&text).expect("reference scene parses");
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(offline_on_air(scene, Some(&dir), Default::default(), W, H))
        .expect("reference assets load")
}

/// The reference scene with three bundled templates on top: a lower third, a clock and a
/// scrolling ticker (which redraws every frame).
pub fn reference_with_templates() -> OnAir {
    let base = reference();
    let runtime = sm_plugin_host::Runtime::new(Default::default(), None).unwrap();
    let mut builds = std::collections::HashMap::new();
    for (file, id, _) in TEMPLATES {
        let bytes = std::fs::read(guests::templates_dir().join(format!("{file}.wasm"))).unwrap();
        let build = runtime.prepare(bytes.into(), 30).expect("bundled template");
        builds.insert(id.to_string(), build);
    }
    let mut scene = (*base.scene).clone();
    let layers: Vec<sm_scene::Layer> = TEMPLATES
        .iter()
        .enumerate()
        .map(|(i, (_, id, [x, y, width, height]))| {
            serde_json::from_value(serde_json::json!(
                {"id": format!("t-{id}"), "kind": "template", "template": {"id": id},
                 "position": {"x": x, "y": y, "width": width, "height": height,
                              "zIndex": 20 + i}}
            ))
            .unwrap()
        })
        .collect();
    // `REFERENCE_TEMPLATES=ticker,clock` keeps only those (a breakdown).
    let only = std::env::var("REFERENCE_TEMPLATES").ok();
    scene.layers.extend(layers.into_iter().filter(|l| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|t| l.id == format!("t-{t}")))
    }));
    OnAir {
        scene: Arc::new(scene),
        templates: sm_render::Templates {
            builds: Arc::new(builds),
            runtime: Some(runtime),
        },
        ..base
    }
}
