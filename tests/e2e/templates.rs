//! Templates on the running server: upload and refusal of bad components, template layers
//! on air (decoded from the RTMP output), params checked by schema and by the template,
//! hostile templates that must not disturb the stream, hot swap, rollback (by the operator
//! and automatic) and persistence.

use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;
use crate::guests::test_guest;
use crate::harness::*;
use crate::pixels::*;

/// `POST /api/templates` (or `PUT /api/templates/{id}`) with a component body.
async fn send_component(
    server: &Server,
    method: Method,
    path: &str,
    ct: &str,
    body: Vec<u8>,
) -> Reply {
    let req = server
        .request(method, path)
        .header("content-type", ct)
        .body(body);
    server.send(req).await
}

/// Uploads test guest `name`; returns the template.
async fn upload(server: &Server, name: &str) -> Value {
    let reply = send_component(
        server,
        Method::POST,
        "/api/templates",
        "application/wasm",
        test_guest(name),
    )
    .await;
    assert_eq!(reply.0, 201, "upload of {name}: {}", reply.1);
    reply.1.clone()
}

/// Waits until template `id`'s current version is `version`.
async fn wait_version(server: &Server, id: &str, version: u64, what: &str) {
    wait_until(what, secs(10.0), async || {
        let t = server.get_json(&format!("/api/templates/{id}")).await;
        if t["version"] == version {
            Ok(())
        } else {
            Err(t.to_string())
        }
    })
    .await;
}

/// A live server whose canvas is the output size, with an empty scene.
async fn live() -> (Server, Player) {
    live_with(Server::builder()).await
}

/// [`live`] from `builder`.
pub(crate) async fn live_with(builder: ServerBuilder) -> (Server, Player) {
    let (server, player) = live_server(builder).await;
    let canvas = json!({"width": W, "height": H, "background": "#000000"});
    call(
        &server,
        Method::PATCH,
        "/api/scene/canvas",
        Some(&canvas),
        200,
    )
    .await;
    (server, player)
}

/// Adds `layer` while live; the settled picture must show `looks`.
async fn add_on_air(
    server: &Server,
    player: &Player,
    layer: &Value,
    looks: &[(u32, u32, Look)],
    context: &str,
) {
    let (_, t) = live_change(server, Method::POST, "/api/scene/layers", Some(layer), 201).await;
    assert_looks(&player.settled_after(t).await, looks, context);
}

/// Uploads `colour_a` and puts a layer of it on air with `params`; checks it shows red.
async fn colour_on_air(server: &Server, player: &Player, params: Value) {
    upload(server, "colour_a").await;
    let layer = template_layer("c", "colour", (40, 40, 240, 100), params);
    add_on_air(server, player, &layer, &[(160, 90, RED)], "version 1").await;
}

#[tokio::test]
async fn uploads_are_checked_and_bad_components_refused() {
    let server = Server::builder()
        .args(["--max-template-bytes", "1000000"])
        .start()
        .await;
    let t = upload(&server, "hostile").await;
    assert_eq!(
        (&t["id"], &t["version"]),
        (&json!("hostile"), &json!(1)),
        "{t}"
    );
    assert_eq!(t["info"]["name"], "hostile");
    assert_eq!(t["info"]["defaultSize"], json!([320, 180]));
    assert!(t["info"]["paramsSchema"].is_object(), "{t}");
    let list = server.get_json("/api/templates").await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == "hostile"),
        "{list}"
    );
    assert_eq!(
        server.get_json("/api/templates/hostile").await["id"],
        "hostile"
    );
    assert_eq!(server.get("/api/templates/nope").await.0, 404);

    let hostile = test_guest("hostile");
    let cases: Vec<(&str, Vec<u8>, u16, &str, &str)> = vec![
        (
            "image/png",
            hostile.clone(),
            415,
            "unsupported_media_type",
            "application/wasm",
        ),
        (
            "application/wasm",
            vec![7; 1_000_001],
            413,
            "payload_too_large",
            "limit",
        ),
        (
            "application/wasm",
            b"not wasm at all".to_vec(),
            422,
            "invalid_component",
            "magic",
        ),
        (
            "application/wasm",
            b"\0asm\x01\0\0\0".to_vec(),
            422,
            "invalid_component",
            "core",
        ),
        (
            "application/wasm",
            hostile[..hostile.len() / 3].to_vec(),
            422,
            "invalid_component",
            "invalid",
        ),
        (
            "application/wasm",
            test_guest("loader_stub"),
            422,
            "wrong_world",
            "asset loader",
        ),
        (
            "application/wasm",
            test_guest("trap_init"),
            422,
            "template_failed",
            "describe",
        ),
        (
            "application/wasm",
            test_guest("slow_default"),
            422,
            "template_failed",
            "budget",
        ),
        (
            "application/wasm",
            Vec::new(),
            422,
            "invalid_component",
            "empty",
        ),
    ];
    for (ct, body, status, code, words) in cases {
        // Each on a connection of its own: a body refused unread closes the connection.
        let reply = crate::assets::post_alone(&server, "/api/templates", Some(ct), &body).await;
        assert_api_error(&reply, status, code, &format!("upload ({ct}, {words})"));
        let message = reply.1.clone()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        assert!(message.contains(words), "{words:?} not in {message:?}");
    }
    assert_eq!(
        server
            .get_json("/api/templates")
            .await
            .as_array()
            .unwrap()
            .len(),
        1,
        "refused components leave nothing behind"
    );
}

#[tokio::test]
async fn a_template_layer_goes_on_air_and_follows_its_params() {
    let (server, player) = live().await;
    upload(&server, "hostile").await;
    let layer = template_layer(
        "lt",
        "hostile",
        (40, 40, 120, 80),
        json!({"mode": "ok", "color": "#ff0000"}),
    );
    let (_, t) = live_change(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&layer),
        201,
    )
    .await;
    let frame = player.settled_after(t).await;
    assert_looks(
        &frame,
        &[(100, 80, RED), (20, 20, BLACK), (200, 150, BLACK)],
        "red template layer",
    );

    let patch =
        json!({"template": {"id": "hostile", "params": {"mode": "ok", "color": "#0000ff"}}});
    let (_, t) = live_change(
        &server,
        Method::PATCH,
        "/api/scene/layers/lt",
        Some(&patch),
        200,
    )
    .await;
    let frame = player.settled_after(t).await;
    assert_looks(
        &frame,
        &[(100, 80, BLUE)],
        "params update reaches the template",
    );

    // Params refused by the schema, by the template itself, and an unknown template.
    for (params, id, code, words) in [
        (json!({"mode": 3}), "hostile", "invalid_params", "mode"),
        (
            json!({"mode": "ok", "reject": true, "reason": "score must be positive"}),
            "hostile",
            "invalid_params",
            "score must be positive",
        ),
        (
            json!({}),
            "no-such-template",
            "unknown_template",
            "no-such-template",
        ),
    ] {
        let patch = json!({"template": {"id": id, "params": params}});
        let reply = send_json(&server, Method::PATCH, "/api/scene/layers/lt", Some(&patch)).await;
        assert_api_error(&reply, 422, code, &format!("{params}"));
        assert!(
            reply.1.to_string().contains(words),
            "{words:?} not in {}",
            reply.1
        );
    }
    let frame = player.settled_after(Instant::now()).await;
    assert_looks(&frame, &[(100, 80, BLUE)], "refused params changed nothing");
    let reply = server.request(Method::DELETE, "/api/templates/hostile");
    assert_api_error(
        &server.send(reply).await,
        409,
        "conflict",
        "delete while in use",
    );
    call(&server, Method::DELETE, "/api/scene/layers/lt", None, 200).await;
    let reply = server
        .send(server.request(Method::DELETE, "/api/templates/hostile"))
        .await;
    assert_eq!(reply.0, 204, "{}", reply.1);
}

#[tokio::test]
async fn hostile_templates_cost_their_layer_not_the_stream() {
    let (server, player) = live().await;
    upload(&server, "hostile").await;
    let mut ws = Ws::open(&server).await;
    // A well-behaved layer beside the hostile ones must stay on air throughout.
    let good = template_layer("good", "hostile", (0, 0, 60, 60), json!({"mode": "ok"}));
    let (_, t) = live_change(&server, Method::POST, "/api/scene/layers", Some(&good), 201).await;
    player.settled_after(t).await;
    let before = server.state().await;
    let t0 = Instant::now();
    for (i, mode) in ["loop", "hog", "panic", "stack", "nan", "million"]
        .iter()
        .enumerate()
    {
        let layer = template_layer(
            &format!("bad-{mode}"),
            "hostile",
            (80 + 30 * i as i32, 100, 20, 20),
            json!({"mode": mode}),
        );
        call(
            &server,
            Method::POST,
            "/api/scene/layers",
            Some(&layer),
            201,
        )
        .await;
    }
    // Each hostile layer is quarantined after its faults, reported on WS in order.
    let mut quarantined = Vec::new();
    while quarantined.len() < 6 {
        let m = ws
            .wait_for(
                "template_quarantined",
                secs(20.0),
                |_| {},
                |m| m["type"] == "error" && m["payload"]["code"] == "template_quarantined",
            )
            .await;
        quarantined.push(m["payload"]["message"].as_str().unwrap().to_string());
    }
    let health = server.health().await;
    let templates = &health["components"]["templates"];
    assert_eq!(templates["status"], "degraded", "{health}");
    assert_eq!(
        templates["quarantined"].as_object().unwrap().len(),
        6,
        "{health}"
    );
    assert!(templates["faults"].as_u64().unwrap() >= 6 * 5, "{health}");
    let metrics = server
        .get("/metrics")
        .await
        .1
        .as_str()
        .unwrap_or_default()
        .to_string();
    // (The hog runs out of time before it fills 64 MiB: the memory limit itself is shown by
    // the sandbox tests.)
    // (The stack mode's out-of-bounds access is told apart as a stack overflow.)
    for kind in ["budget", "panic", "stackOverflow", "invalidOutput"] {
        assert!(
            metrics.contains(&format!("kind=\"{kind}\"")),
            "no {kind} faults in the metrics:\n{metrics}"
        );
    }
    // The stream went on at full rate: drops bounded by the budgets spent (5 faulty frames
    // per layer, a quarter frame each at most), and frames kept arriving.
    let after = server.state().await;
    let dropped = u(&after, "droppedFrames") - u(&before, "droppedFrames");
    assert!(
        dropped <= 15,
        "{dropped} frames dropped while templates faulted"
    );
    assert!(player.max_gap_since(t0) < secs(1.0), "the output stalled");
    let frame = player.settled_after(Instant::now()).await;
    assert_looks(&frame, &[(30, 30, GREEN)], "the good layer stays on air");
    assert!(u(&after, "frameCount") > u(&before, "frameCount"));
}

#[tokio::test]
async fn hot_swap_then_rollback_without_a_dropped_frame() {
    let (server, player) = live().await;
    colour_on_air(&server, &player, json!({"showRenders": false})).await;

    let before = u(&server.state().await, "droppedFrames");
    let reply = send_component(
        &server,
        Method::PUT,
        "/api/templates/colour",
        "application/wasm",
        test_guest("colour_b"),
    )
    .await;
    assert_eq!(reply.0, 200, "{}", reply.1);
    let swapped = reply.1.clone();
    assert_eq!(swapped["version"], 2, "{swapped}");
    assert_eq!(
        swapped["versions"].as_array().unwrap().len(),
        2,
        "{swapped}"
    );
    let applied = applied_at(&swapped).expect("appliedAtFrame while live");
    let t = Instant::now();
    assert_looks(
        &player.settled_after(t).await,
        &[(160, 90, BLUE)],
        "version 2 on air",
    );
    // The new version is on air by the frame the answer names (it was ready then).
    let state = server.state().await;
    assert!(u(&state, "frameCount") > applied);
    assert_eq!(
        u(&state, "droppedFrames"),
        before,
        "frames dropped across the swap"
    );

    let reply = send_json(
        &server,
        Method::POST,
        "/api/templates/colour/rollback",
        None,
    )
    .await;
    assert_eq!(reply.0, 200, "{}", reply.1);
    assert_eq!(reply.1.clone()["version"], 1);
    assert_looks(
        &player.settled_after(Instant::now()).await,
        &[(160, 90, RED)],
        "rolled back",
    );
    let reply = send_json(
        &server,
        Method::POST,
        "/api/templates/colour/rollback",
        None,
    )
    .await;
    assert_api_error(&reply, 409, "conflict", "nothing before version 1");
}

#[tokio::test]
async fn a_version_that_faults_at_its_swap_is_refused_and_rolled_back() {
    let (server, player) = live().await;
    // colour ignores the params the hostile version will act on: its first frame panics.
    colour_on_air(&server, &player, json!({"mode": "panic"})).await;
    let mut ws = Ws::open(&server).await;
    let reply = send_component(
        &server,
        Method::PUT,
        "/api/templates/colour",
        "application/wasm",
        test_guest("hostile"),
    )
    .await;
    assert_api_error(
        &reply,
        422,
        "template_failed",
        "swap to a panicking version",
    );
    let message = reply.1["error"]["message"].as_str().unwrap().to_string();
    for words in [
        "version 2 faulted on layer c at its swap (panic: ",
        "; rolled back to version 1",
    ] {
        assert!(message.contains(words), "{words:?} not in {message:?}");
    }
    // Already done when the answer comes: version 1 is current and on air.
    let t = server.get_json("/api/templates/colour").await;
    assert_eq!(t["version"], 1, "{t}");
    assert_looks(
        &player.settled_after(Instant::now()).await,
        &[(160, 90, RED)],
        "the old version is back",
    );
    // Operators still hear of it as of any automatic rollback.
    ws.wait_for(
        "template_rolled_back",
        secs(10.0),
        |_| {},
        |m| m["type"] == "error" && m["payload"]["code"] == "template_rolled_back",
    )
    .await;
}

#[tokio::test]
async fn a_version_that_faults_after_its_swap_is_rolled_back() {
    let (server, player) = live().await;
    // colour ignores the params the hostile version will act on. Its first second on air
    // is fine (the swap is answered 200), then it faults within its probation.
    colour_on_air(
        &server,
        &player,
        json!({"mode": "fault-after", "frames": 30}),
    )
    .await;
    let mut ws = Ws::open(&server).await;
    let reply = send_component(
        &server,
        Method::PUT,
        "/api/templates/colour",
        "application/wasm",
        test_guest("hostile"),
    )
    .await;
    assert_eq!(reply.0, 200, "{}", reply.1);
    let m = ws
        .wait_for(
            "template_rolled_back",
            secs(10.0),
            |_| {},
            |m| m["type"] == "error" && m["payload"]["code"] == "template_rolled_back",
        )
        .await;
    assert!(
        m["payload"]["message"].as_str().unwrap().contains("colour"),
        "{m}"
    );
    wait_version(&server, "colour", 1, "version 1 current again").await;
    assert_looks(
        &player.settled_after(Instant::now()).await,
        &[(160, 90, RED)],
        "the old version is back",
    );
}

#[tokio::test]
async fn templates_and_their_layers_survive_a_restart_with_redis() {
    let redis = Redis::start().await;
    let cache = TempDir::new("template-cache");
    let args = |b: ServerBuilder| {
        b.args(["--redis-url".to_string(), redis.url()]).args([
            "--cache-dir".to_string(),
            cache.path().display().to_string(),
        ])
    };
    let server = args(Server::builder()).start().await;
    upload(&server, "colour_a").await;
    let reply = send_component(
        &server,
        Method::PUT,
        "/api/templates/colour",
        "application/wasm",
        test_guest("colour_b"),
    )
    .await;
    assert_eq!(reply.0, 200, "{}", reply.1);
    clear_scene(&server).await;
    let layer = template_layer("c", "colour", (0, 0, 1920, 1080), json!({}));
    call(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&layer),
        201,
    )
    .await;
    drop(server);

    let server = args(Server::builder()).start().await;
    let t = server.get_json("/api/templates/colour").await;
    assert_eq!(
        (&t["version"], t["versions"].as_array().map(Vec::len)),
        (&json!(2), Some(2)),
        "{t}"
    );
    server.start_stream().await;
    let player = Player::on_air(&server).await;
    assert_looks(
        &player.settled_after(Instant::now()).await,
        &[(160, 90, BLUE)],
        "restored version 2 on air",
    );
}

#[tokio::test]
async fn bundled_templates_load_at_start_and_their_schemas_refuse_bad_params() {
    let server = crate::common::with_bundled(Server::builder()).start().await;
    let list = server.get_json("/api/templates").await;
    let mut ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        ["clock", "lower-third", "scoreboard", "slate", "ticker"],
        "{}",
        server.log_tail(40)
    );
    clear_scene(&server).await;
    let bad: [(&str, Value); 5] = [
        ("lower-third", json!({"visible": "yes"})),
        ("clock", json!({"mode": "sundial"})),
        ("scoreboard", json!({"home": {"score": "three"}})),
        ("ticker", json!({"speed": "fast"})),
        ("slate", json!({"message": "x", "colour": "#fff"})),
    ];
    for (id, params) in bad {
        // Each template's defaults are accepted as they are…
        let layer = template_layer(id, id, (0, 0, 640, 120), Value::Null);
        call(
            &server,
            Method::POST,
            "/api/scene/layers",
            Some(&layer),
            201,
        )
        .await;
        // …and params its schema refuses are a 422 naming the problem.
        let patch = json!({"template": {"id": id, "params": params}});
        let reply = send_json(
            &server,
            Method::PATCH,
            &format!("/api/scene/layers/{id}"),
            Some(&patch),
        )
        .await;
        assert_api_error(&reply, 422, "invalid_params", &format!("{id} {params}"));
    }
}

#[tokio::test]
async fn template_check_and_render_work_offline() {
    let dir = crate::guests::templates_dir();
    let bin = env!("CARGO_BIN_EXE_stream-manager");
    let out = std::process::Command::new(bin)
        .args(["template", "check", "--frames", "60"])
        .arg(dir.join("ticker.wasm"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("\"name\": \"ticker\""), "{text}");
    for part in [
        "guest:",
        "raster:",
        "budget:",
        "peak grew",
        "no frame faulted",
    ] {
        assert!(text.contains(part), "no {part:?} in {text}");
    }

    let tmp = TempDir::new("template-render");
    let mp4 = tmp.join("ticker.mp4");
    let out = std::process::Command::new(bin)
        .args([
            "template", "render", "--frames", "15", "--size", "640x64", "--params",
        ])
        .arg(r#"{"text":"hello","speed":200}"#)
        .arg(dir.join("ticker.wasm"))
        .arg("--out")
        .arg(&mp4)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let probe = ffprobe_json(&mp4.display().to_string()).await.unwrap();
    let video = streams(&probe, "video");
    assert_eq!(
        (&video[0]["width"], &video[0]["height"]),
        (&json!(640), &json!(64))
    );
    assert_eq!(video[0]["nb_frames"], "15", "{probe}");

    let out = std::process::Command::new(bin)
        .args([
            "template",
            "render",
            "--params",
            r#"{"speed":"fast"}"#,
            "--out",
        ])
        .arg(tmp.join("x"))
        .arg(dir.join("ticker.wasm"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--params"));
    let out = std::process::Command::new(bin)
        .args(["template", "check"])
        .arg(crate::guests::test_guest_path("slow_default"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("budget"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn template_check_and_render_tell_the_truth_about_costly_and_faulty_frames() {
    let bin = env!("CARGO_BIN_EXE_stream-manager");
    let hostile = crate::guests::test_guest_path("hostile");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(args)
            .arg(&hostile)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    // Over its budget: the host's raster estimate, or (on a busy machine, the guest takes
    // 5 to 7 ms to build 10 000 gradients) the call itself.
    let over_budget = |text: &str| text.contains("rasterBudget: ") || text.contains(": budget: ");
    // What the host would pay to draw these is checked through the real compositor:
    // 10 000 gradients and 2000 large text runs fail the check, naming the fault.
    for params in [
        r#"{"mode":"gradient-flood","count":10000}"#,
        r#"{"mode":"many-layers-text"}"#,
    ] {
        let (ok, text) = run(&["template", "check", "--frames", "3", "--params", params]);
        assert!(!ok, "{params} passed the check:\n{text}");
        assert!(
            over_budget(&text) && text.contains("3 of 3 frames faulted"),
            "{params}:\n{text}"
        );
    }
    // Glyphs at 30 000 px per em are filled as outlines clipped to the layer: cheap, and no
    // huge glyph mask (it took 1.9 GB for one frame once).
    let (ok, text) = run(&[
        "template",
        "check",
        "--frames",
        "20",
        "--params",
        r#"{"mode":"glyph-bomb","animate":true}"#,
    ]);
    assert!(ok && text.contains("20 drawn"), "{text}");
    let grew: f64 = text
        .split("peak grew ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no memory figure in {text}"));
    assert!(grew < 64.0, "the glyph bomb grew the host by {grew} MiB");
    let (ok, text) = run(&["template", "check", "--frames", "3"]);
    assert!(ok, "{text}");

    // A render stops at the first faulty frame with the panic's message and location and
    // writes no picture for it (never a black frame).
    let tmp = TempDir::new("template-render-fault");
    let out = tmp.join("frames");
    let (ok, text) = run(&[
        "template",
        "render",
        "--frames",
        "6",
        "--params",
        r#"{"mode":"panic-every","every":3}"#,
        "--out",
        &out.display().to_string(),
    ]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("frame 2")
            && text.contains("hostile panic on call 3")
            && text.contains(".rs:"),
        "{text}"
    );
    let mut written: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    assert_eq!(written, ["frame-00000.png", "frame-00001.png"]);
    let mp4 = tmp.join("flood.mp4");
    let (ok, text) = run(&[
        "template",
        "render",
        "--params",
        r#"{"mode":"gradient-flood","count":10000}"#,
        "--out",
        &mp4.display().to_string(),
    ]);
    assert!(!ok && over_budget(&text), "{text}");
    assert!(!mp4.exists(), "a video of a faulty frame was left behind");
}

#[tokio::test]
async fn watched_template_files_are_hot_swapped() {
    let dir = TempDir::new("watched-templates");
    std::fs::write(dir.join("colour.wasm"), test_guest("colour_a")).unwrap();
    let builder = Server::builder().args([
        "--templates-dir".to_string(),
        dir.path().display().to_string(),
        "--watch-templates".to_string(),
    ]);
    let (server, player) = live_with(builder).await;
    let layer = template_layer("c", "colour", (40, 40, 240, 100), json!({}));
    add_on_air(
        &server,
        &player,
        &layer,
        &[(160, 90, RED)],
        "the file's version",
    )
    .await;
    // A new file is written beside and renamed over, as editors and builds do.
    std::fs::write(dir.join("colour.tmp"), test_guest("colour_b")).unwrap();
    std::fs::rename(dir.join("colour.tmp"), dir.join("colour.wasm")).unwrap();
    wait_version(&server, "colour", 2, "version 2 from the changed file").await;
    assert_looks(
        &player.settled_after(Instant::now()).await,
        &[(160, 90, BLUE)],
        "swapped on air",
    );
}

#[tokio::test]
async fn templates_draw_uploaded_images_and_an_unknown_one_is_a_fault() {
    let (server, player) = live().await;
    upload(&server, "hostile").await;
    let dir = TempDir::new("template-image");
    let png = crate::assets::solid(&dir, "magenta.png", "0xff00ff", (32, 32), &[]);
    let req = server
        .request(Method::POST, "/api/assets")
        .header("content-type", "image/png")
        .body(png);
    let (status, asset) = server.send(req).await;
    assert_eq!(status, 201, "{asset}");
    let id = asset["id"].as_str().unwrap();
    let layer = template_layer(
        "img",
        "hostile",
        (40, 40, 120, 80),
        json!({"mode": "image", "asset": id}),
    );
    add_on_air(
        &server,
        &player,
        &layer,
        &[(100, 80, loose::MAGENTA)],
        "the uploaded image drawn by the template",
    )
    .await;

    let mut ws = Ws::open(&server).await;
    let patch =
        json!({"template": {"id": "hostile", "params": {"mode": "image", "asset": "nope"}}});
    call(
        &server,
        Method::PATCH,
        "/api/scene/layers/img",
        Some(&patch),
        200,
    )
    .await;
    let m = ws
        .wait_for(
            "template_fault",
            secs(10.0),
            |_| {},
            |m| m["type"] == "error" && m["payload"]["code"] == "template_fault",
        )
        .await;
    assert!(
        m["payload"]["message"]
            .as_str()
            .unwrap()
            .contains("no uploaded image"),
        "{m}"
    );
    assert_looks(
        &player.settled_after(Instant::now()).await,
        &[(100, 80, loose::MAGENTA)],
        "the last good picture stays",
    );
}
