//! Named scenes: the default scene of a new server; create, read, replace, delete and
//! activate with their errors; `/api/scene` editing whichever scene is active; the scenes
//! kept in Redis; and transitions on air, seen by a decoder: a fade shows frames mixing
//! both scenes, a slide pushes the old scene out to the left as the new one enters from the
//! right.
//!
//! Transition checks decode every frame of the RTMP output around the change and look for
//! frames meeting a condition rather than at exact frame times, and compare colours with
//! tolerances (YUV 4:2:0 and H.264).

use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;
use crate::harness::*;
use crate::pixels::loose::{blue, green, red, white};
use crate::pixels::{Rgb, assert_picture, pixel};

// ---------------------------------------------------------------------------------------
// Requests

/// `(id, active, layers)` of each line of `GET /api/scenes`.
async fn listing(server: &Server) -> Vec<(String, bool, u64)> {
    let list = server.get_json("/api/scenes").await;
    list.as_array()
        .unwrap_or_else(|| panic!("GET /api/scenes is not a list: {list}"))
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap_or_default().to_string(),
                s["active"]
                    .as_bool()
                    .unwrap_or_else(|| panic!("no active flag: {s}")),
                s["layers"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no layer count: {s}")),
            )
        })
        .collect()
}

/// `POST /api/scenes` of `body` that must answer 201; returns the created scene.
async fn create(server: &Server, body: &Value) -> Value {
    call(server, Method::POST, "/api/scenes", Some(body), 201).await
}

/// The path and body that activate scene `id` with `transition` (none: an empty body).
fn activation(id: &str, transition: Option<&Value>) -> (String, Option<Value>) {
    let body = transition.map(|t| json!({"transition": t}));
    (format!("/api/scenes/{id}/activate"), body)
}

/// Activates scene `id` with `transition` (none: an empty body); returns the answer.
async fn activate(server: &Server, id: &str, transition: Option<&Value>) -> Value {
    let (path, body) = activation(id, transition);
    call(server, Method::POST, &path, body.as_ref(), 200).await
}

/// Activates `id` with `transition` (none: an empty body) while live; checks the answer and
/// that its `appliedAtFrame` is not a frame rendered before the request; returns the answer
/// and when it arrived.
async fn activate_live(server: &Server, id: &str, transition: Option<Value>) -> (Value, Instant) {
    let (path, body) = activation(id, transition.as_ref());
    let (reply, answered, _) = live_request(server, Method::POST, &path, body.as_ref(), 200).await;
    assert_eq!(reply["id"], id, "activation answered {reply}");
    if let Some(t) = &transition {
        assert_eq!(&reply["transition"], t, "activation answered {reply}");
    } else {
        assert_eq!(
            reply["transition"]["kind"], "cut",
            "an empty body is a cut: {reply}"
        );
    }
    (reply, answered)
}

// ---------------------------------------------------------------------------------------
// Pixels

/// Points spread over the whole frame.
const SPREAD: [(u32, u32); 5] = [(20, 20), (300, 20), (160, 90), (20, 160), (300, 160)];

fn all_points(frame: &[u8], test: fn(Rgb) -> bool) -> Result<(), String> {
    let seen: Vec<Rgb> = SPREAD.iter().map(|&(x, y)| pixel(frame, x, y)).collect();
    if seen.iter().all(|&p| test(p)) {
        Ok(())
    } else {
        Err(format!("colours at {SPREAD:?}: {seen:?}"))
    }
}

/// Columns of row `y` (every 2nd pixel) that pass `test`: count and mean x.
fn columns(frame: &[u8], y: u32, test: fn(Rgb) -> bool) -> (usize, f64) {
    let xs: Vec<u32> = (2..W - 2)
        .step_by(2)
        .filter(|&x| test(pixel(frame, x, y)))
        .collect();
    let mean = if xs.is_empty() {
        f64::NAN
    } else {
        xs.iter().map(|&x| f64::from(x)).sum::<f64>() / xs.len() as f64
    };
    (xs.len(), mean)
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn a_new_server_has_one_active_default_scene() {
    let server = Server::start().await;
    let list = server.get_json("/api/scenes").await;
    let lines = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"));
    assert_eq!(lines.len(), 1, "a new server's scenes: {list}");
    assert_eq!(
        (
            &lines[0]["id"],
            &lines[0]["active"],
            lines[0]["layers"].as_u64()
        ),
        (&json!("default"), &json!(true), Some(5)),
        "a new server's scenes: {list}"
    );
    assert!(
        lines[0]["name"].as_str().is_some_and(|n| !n.is_empty()),
        "the default scene has a name: {list}"
    );
    let named = server.get_json("/api/scenes/default").await;
    assert_eq!(named["id"], "default", "{named}");
    assert_eq!(
        layer_ids(&named["scene"]),
        ["background", "glow", "title", "bar", "clock"],
        "the default scene's layers: {named}"
    );
    let kinds: Vec<&Value> = named["scene"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["kind"])
        .collect();
    assert_eq!(
        kinds,
        [
            &json!("shape"),
            &json!("shape"),
            &json!("text"),
            &json!("shape"),
            &json!("text")
        ],
        "built from primitives: {named}"
    );
    assert_eq!(
        server.get_json("/api/scene").await,
        named["scene"],
        "/api/scene is the active scene"
    );

    server.start_stream().await;
    let frames = wait_until("frames of the default scene", secs(20.0), async || {
        try_decode_frames(&server.rtmp_play_url(), 3, W, H).await
    })
    .await;
    assert_picture(&frames[2], "the default scene on air");
}

#[tokio::test]
async fn named_scenes_follow_the_contract() {
    let server = Server::start().await;
    let default_scene = server.get_json("/api/scene").await;
    let mut ws = Ws::open(&server).await;

    // Create.
    let promo_scene = stream_scene("#102030", json!([rect("box", (10, 20, 30, 40), "#ff0000")]));
    let body = json!({"id": "promo", "name": "Promo", "scene": promo_scene});
    let promo = create(&server, &body).await;
    assert_eq!(
        (&promo["id"], &promo["name"]),
        (&json!("promo"), &json!("Promo")),
        "{promo}"
    );
    assert_eq!(promo["scene"]["canvas"], promo_scene["canvas"], "{promo}");
    let layer = &promo["scene"]["layers"][0];
    assert_eq!(
        (&layer["id"], &layer["visible"], &layer["shape"]["fill"]),
        (&json!("box"), &json!(true), &json!("#ff0000")),
        "layer with defaults filled in: {promo}"
    );
    assert_eq!(
        ["rotation", "opacity", "zIndex"].map(|k| layer["position"][k].as_f64()),
        [Some(0.0), Some(1.0), Some(0.0)],
        "position defaults: {promo}"
    );
    let blank = create(&server, &json!({})).await;
    let blank_id = generated_id(&blank);
    assert_eq!(blank["scene"]["layers"], json!([]), "{blank}");
    assert!(
        blank["scene"]["canvas"]["width"].is_u64(),
        "a default canvas: {blank}"
    );
    let named_only = create(&server, &json!({"name": "Only a name"})).await;
    let named_only_id = named_only["id"].as_str().unwrap_or_default().to_string();
    assert!(
        !named_only_id.is_empty() && named_only_id != blank_id,
        "a second generated id: {named_only}"
    );
    assert_eq!(named_only["name"], "Only a name");

    // Refused creations change nothing.
    let scenes = "/api/scenes";
    let refusals: Vec<(String, u16, &str)> = vec![
        (json!({"id": "promo"}).to_string(), 409, "conflict"),
        (json!({"id": "default", "scene": promo_scene}).to_string(), 409, "conflict"),
        (json!({"id": "bad id!"}).to_string(), 422, "out_of_range"),
        (json!({"id": "wide", "scene": {"canvas": {"width": 99999, "height": 180, "background": "#000000"}}}).to_string(), 422, "out_of_range"),
        (json!({"id": "opaque", "scene": stream_scene("#000000", json!([{"id": "o", "kind": "shape",
            "position": {"x": 0, "y": 0, "width": 10, "height": 10, "opacity": 2},
            "shape": {"type": "rect", "fill": "#ff0000"}}]))}).to_string(), 422, "out_of_range"),
        (json!({"id": "pic", "scene": stream_scene("#000000", json!([{"id": "i", "kind": "image",
            "position": {"x": 0, "y": 0, "width": 10, "height": 10}, "image": {"asset": "asset-404"}}]))}).to_string(), 422, "unknown_asset"),
        (json!({"id": "bg", "scene": stream_scene("asset-404", json!([]))}).to_string(), 422, "unknown_asset"),
        (json!({"id": "x", "colour": "red"}).to_string(), 422, "unknown_field"),
        (r#"{"id": "x""#.to_string(), 400, "malformed_json"),
    ];
    for (body, status, code) in &refusals {
        refused_raw(&server, Method::POST, scenes, Some(body), *status, code).await;
    }
    let listed = listing(&server).await;
    assert_eq!(
        listed,
        [
            ("default".to_string(), true, 5),
            ("promo".to_string(), false, 1),
            (blank_id.clone(), false, 0),
            (named_only_id.clone(), false, 0),
        ],
        "GET /api/scenes"
    );

    // Read.
    assert_eq!(
        server.get_json("/api/scenes/promo").await,
        promo,
        "GET answers what POST did"
    );
    let reply = server.get("/api/scenes/ghost").await;
    assert_api_error(&reply, 404, "not_found", "GET of an unknown scene");

    // Replace.
    let promo_v2 = stream_scene(
        "#203040",
        json!([
            rect("box", (50, 60, 30, 40), "#00ff00"),
            rect("box2", (0, 0, 5, 5), "#0000ff")
        ]),
    );
    let put = call(
        &server,
        Method::PUT,
        "/api/scenes/promo",
        Some(&json!({"name": "Promo 2", "scene": promo_v2})),
        200,
    )
    .await;
    assert_eq!(
        (&put["id"], &put["name"]),
        (&json!("promo"), &json!("Promo 2")),
        "{put}"
    );
    assert_eq!(
        put["appliedAtFrame"],
        Value::Null,
        "not on air, not live: {put}"
    );
    assert_eq!(layer_ids(&put["scene"]), ["box", "box2"], "{put}");
    let put = call(
        &server,
        Method::PUT,
        "/api/scenes/promo",
        Some(&json!({"scene": promo_v2})),
        200,
    )
    .await;
    assert_eq!(
        put["name"], "Promo 2",
        "a PUT without a name keeps it: {put}"
    );
    let stored = server.get_json("/api/scenes/promo").await;
    assert_eq!(
        (&stored["name"], layer_ids(&stored["scene"])),
        (
            &json!("Promo 2"),
            vec!["box".to_string(), "box2".to_string()]
        )
    );
    let mut bad = promo_v2.clone();
    bad["layers"][0]["position"]["width"] = json!(0);
    let unknown = json!({"scene": promo_v2, "active": true});
    let (ghost, promo_path) = ("/api/scenes/ghost", "/api/scenes/promo");
    for (path, body, status, code) in [
        (ghost, json!({"scene": promo_v2}), 404, "not_found"),
        (promo_path, json!({"scene": bad}), 422, "out_of_range"),
        (promo_path, unknown, 422, "unknown_field"),
    ] {
        refused(&server, Method::PUT, path, Some(&body), status, code).await;
    }
    assert_eq!(
        server.get_json("/api/scenes/promo").await,
        stored,
        "a refused PUT changed the scene"
    );
    assert_eq!(
        server.get_json("/api/scene").await,
        default_scene,
        "a PUT of another scene changed the one on air"
    );

    // Activate (not live: no frame).
    let reply = activate(&server, "promo", None).await;
    assert_eq!(
        (
            &reply["id"],
            &reply["transition"]["kind"],
            &reply["appliedAtFrame"]
        ),
        (&json!("promo"), &json!("cut"), &Value::Null),
        "activation with an empty body: {reply}"
    );
    ws.wait_for(
        "a sceneUpdate with the promo scene",
        secs(5.0),
        |_| {},
        |m| m["type"] == "sceneUpdate" && m["payload"]["canvas"]["background"] == "#203040",
    )
    .await;
    let on_air = server.get_json("/api/scene").await;
    assert_eq!(on_air, stored["scene"], "/api/scene after activating promo");
    assert_eq!(
        listing(&server)
            .await
            .iter()
            .map(|(id, a, _)| (id.as_str(), *a))
            .collect::<Vec<_>>(),
        [
            ("default", false),
            ("promo", true),
            (blank_id.as_str(), false),
            (named_only_id.as_str(), false)
        ],
        "the active flags"
    );

    // /api/scene edits the active scene only.
    call(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&rect("added", (1, 1, 2, 2), "#ffffff")),
        201,
    )
    .await;
    call(
        &server,
        Method::PATCH,
        "/api/scene/canvas",
        Some(&json!({"background": "#abcdef"})),
        200,
    )
    .await;
    let promo_now = server.get_json("/api/scenes/promo").await;
    assert_eq!(
        layer_ids(&promo_now["scene"]),
        ["box", "box2", "added"],
        "{promo_now}"
    );
    assert_eq!(
        promo_now["scene"]["canvas"]["background"], "#abcdef",
        "{promo_now}"
    );
    assert_eq!(
        server.get_json("/api/scenes/default").await["scene"],
        default_scene,
        "editing /api/scene changed a scene that is not active"
    );
    refused(
        &server,
        Method::DELETE,
        "/api/scenes/promo",
        None,
        409,
        "conflict",
    )
    .await;

    // Transitions and their limits.
    let fade = json!({"kind": "fade", "durationMs": 300});
    let reply = activate(&server, "default", Some(&fade)).await;
    assert_eq!(
        (&reply["transition"], &reply["appliedAtFrame"]),
        (&fade, &Value::Null),
        "{reply}"
    );
    assert_eq!(
        server.get_json("/api/scene").await,
        default_scene,
        "the default scene back on air, unchanged"
    );
    for kind in ["cut", "slide", "fade"] {
        let t = json!({"kind": kind, "durationMs": 10000});
        let reply = activate(&server, "promo", Some(&t)).await;
        assert_eq!(reply["transition"], t, "{reply}");
    }
    let reply = activate(&server, "default", Some(&json!({"kind": "slide"}))).await;
    assert_eq!(
        reply["transition"]["kind"], "slide",
        "a transition without durationMs: {reply}"
    );
    let promo_activate = "/api/scenes/promo/activate";
    let too_long = r#"{"transition": {"kind": "fade", "durationMs": 10001}}"#;
    let extra = r#"{"transition": {"kind": "fade"}, "extra": 1}"#;
    for (body, status, code) in [
        (too_long, 422, "out_of_range"),
        (extra, 422, "unknown_field"),
        (r#"{"transition": "#, 400, "malformed_json"),
    ] {
        refused_raw(
            &server,
            Method::POST,
            promo_activate,
            Some(body),
            status,
            code,
        )
        .await;
    }
    let reply = send_json(
        &server,
        Method::POST,
        promo_activate,
        Some(&json!({"transition": {"kind": "wipe", "durationMs": 100}})),
    )
    .await;
    assert_eq!(reply.0, 422, "an unknown transition kind: {}", reply.1);
    refused(
        &server,
        Method::POST,
        "/api/scenes/ghost/activate",
        None,
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        server.get_json("/api/scene").await,
        default_scene,
        "refused activations changed the scene on air"
    );

    // Delete.
    call(&server, Method::DELETE, "/api/scenes/promo", None, 204).await;
    let reply = server.get("/api/scenes/promo").await;
    assert_api_error(&reply, 404, "not_found", "GET of a deleted scene");
    for (method, path, status, code) in [
        (Method::DELETE, "/api/scenes/promo", 404, "not_found"),
        (Method::DELETE, "/api/scenes/default", 409, "conflict"),
        (Method::POST, "/api/scenes/promo/activate", 404, "not_found"),
    ] {
        refused(&server, method, path, None, status, code).await;
    }
    assert_eq!(
        listing(&server)
            .await
            .iter()
            .map(|(id, a, _)| (id.clone(), *a))
            .collect::<Vec<_>>(),
        [
            ("default".to_string(), true),
            (blank_id, false),
            (named_only_id, false)
        ],
        "scenes after the deletion"
    );
}

#[tokio::test]
async fn named_scenes_and_the_active_one_survive_a_restart_with_redis() {
    let redis = Redis::start().await;
    let mut server = Server::builder().redis(&redis, "e2e-scenes:").start().await;
    let promo = json!({"id": "promo", "name": "Promo", "scene": stream_scene("#ff0000", json!([rect("box", (100, 50, 120, 80), "#0000ff")]))});
    create(&server, &promo).await;
    create(&server, &json!({"id": "spare"})).await;
    activate(&server, "promo", None).await;
    let list = server.get_json("/api/scenes").await;
    let on_air = server.get_json("/api/scene").await;
    wait_until("the scenes stored in Redis", secs(8.0), async || {
        let stored = redis.get("e2e-scenes:scenes").unwrap_or_default();
        if stored.contains("\"spare\"") && stored.contains("#0000ff") {
            Ok(())
        } else {
            Err(format!("e2e-scenes:scenes = {stored:.300}"))
        }
    })
    .await;

    server.restart().await;
    assert_eq!(
        server.get_json("/api/scenes").await,
        list,
        "the scene list after a restart"
    );
    assert_eq!(
        server.get_json("/api/scene").await,
        on_air,
        "the active scene after a restart"
    );
    server.start_stream().await;
    let frames = wait_until("frames of the restored scene", secs(20.0), async || {
        try_decode_frames(&server.rtmp_play_url(), 3, W, H).await
    })
    .await;
    let frame = frames.last().unwrap();
    let (centre, corner) = (pixel(frame, 160, 90), pixel(frame, 30, 30));
    assert!(
        blue(centre) && red(corner),
        "the restored active scene on air: centre {centre:?} (want blue), corner {corner:?} (want red)"
    );
}

#[tokio::test]
async fn fade_mixes_the_two_scenes_on_air() {
    let server = Server::start().await;
    server.start_stream().await;
    for (id, bg) in [("red", "#ff0000"), ("blue", "#0000ff")] {
        let body = json!({"id": id, "scene": stream_scene(bg, json!([]))});
        create(&server, &body).await;
    }
    let (_, t) = activate_live(&server, "red", None).await;
    let player = Player::on_air(&server).await;
    let frame = player.settled_after(t).await;
    all_points(&frame, red).unwrap_or_else(|e| panic!("the red scene on air: {e}"));

    let fade = json!({"kind": "fade", "durationMs": 2000});
    let (_, t) = activate_live(&server, "blue", Some(fade)).await;
    // 2 s of fade (60 frames) and 1.5 s more.
    let frames = player.wait_since(t, 105).await;
    let centres: Vec<Rgb> = frames.iter().map(|f| pixel(f, 160, 90)).collect();
    let mixed = centres
        .iter()
        .filter(|p| (60..=200).contains(&p[0]) && (60..=200).contains(&p[2]) && p[1] < 60)
        .count();
    let halfway = centres
        .iter()
        .any(|p| p[0] > 80 && p[2] > 80 && p[0].abs_diff(p[2]) < 50 && p[1] < 60);
    assert!(
        mixed >= 10 && halfway,
        "a 2 s fade should show frames mixing red and blue ({mixed} mixed, halfway seen: \
         {halfway}); centre colours: {centres:?}"
    );
    let between = centres.iter().filter(|&&p| !red(p) && !blue(p)).count();
    assert!(
        (12..=50).contains(&between),
        "{between} frames neither red nor blue: a 2000 ms fade at {FPS} fps has about 25 \
         (progress 0.3 to 0.7); centre colours: {centres:?}"
    );
    let reds: Vec<u8> = centres.iter().map(|p| p[0]).collect();
    assert!(
        reds.windows(2).all(|w| w[1] <= w[0].saturating_add(20)),
        "red should only fade out: {reds:?}"
    );
    for (i, f) in frames.iter().enumerate() {
        let uniform: Vec<Rgb> = SPREAD.iter().map(|&(x, y)| pixel(f, x, y)).collect();
        let spread = (0..3)
            .map(|c| {
                let vals = uniform.iter().map(|p| p[c]);
                vals.clone().max().unwrap() - vals.min().unwrap()
            })
            .max()
            .unwrap();
        assert!(
            spread < 40,
            "frame {i} after the fade began is not uniform: {uniform:?}"
        );
    }
    let first_blue = centres
        .iter()
        .position(|&p| blue(p))
        .unwrap_or_else(|| panic!("the fade never ended in blue: {centres:?}"));
    assert!(
        centres[first_blue..].iter().all(|&p| blue(p)),
        "after turning blue the picture changed again: {centres:?}"
    );
    all_points(frames.last().unwrap(), blue).unwrap_or_else(|e| panic!("after the fade: {e}"));
    assert_eq!(
        server.get_json("/api/scene").await["canvas"]["background"],
        "#0000ff",
        "/api/scene after the fade"
    );

    // The scene on air replaced by PUT shows at once.
    let body = json!({"scene": stream_scene("#00ff00", json!([]))});
    let (_, t, _) = live_request(&server, Method::PUT, "/api/scenes/blue", Some(&body), 200).await;
    let frame = player.settled_after(t).await;
    all_points(&frame, green).unwrap_or_else(|e| panic!("the active scene after PUT: {e}"));
}

#[tokio::test]
async fn slide_pushes_the_old_scene_out_to_the_left() {
    let server = Server::start().await;
    server.start_stream().await;
    // Each scene has a 40 px bar in the middle, so movement shows (not just a wipe).
    let old = json!({"id": "old", "scene": stream_scene("#0000ff", json!([rect("bar", (140, 0, 40, 180), "#ffffff")]))});
    let new = json!({"id": "new", "scene": stream_scene("#ff0000", json!([rect("bar", (140, 0, 40, 180), "#00ff00")]))});
    create(&server, &old).await;
    create(&server, &new).await;
    let (_, t) = activate_live(&server, "old", None).await;
    let player = Player::on_air(&server).await;
    let frame = player.settled_after(t).await;
    let (bar, _) = columns(&frame, 90, white);
    assert!(
        blue(pixel(&frame, 40, 90)) && blue(pixel(&frame, 280, 90)) && bar >= 15,
        "the old scene on air: {:?} {:?}, {bar} white columns",
        pixel(&frame, 40, 90),
        pixel(&frame, 280, 90)
    );

    let slide = json!({"kind": "slide", "durationMs": 2000});
    let (_, t) = activate_live(&server, "new", Some(slide)).await;
    let frames = player.wait_since(t, 105).await;
    let mut log = Vec::new();
    let (mut split, mut reversed, mut old_left, mut new_right) = (0, 0, 0, 0);
    let mut new_share = Vec::new();
    for f in &frames {
        let (l, r) = (pixel(f, 40, 90), pixel(f, 280, 90));
        let (old_bar, old_x) = columns(f, 90, white);
        let (new_bar, new_x) = columns(f, 90, green);
        let (new_bg, _) = columns(f, 90, red);
        log.push(format!(
            "left {l:?} right {r:?} white bar {old_bar}@{old_x:.0} green bar {new_bar}@{new_x:.0}"
        ));
        if blue(l) && red(r) {
            split += 1;
        }
        if red(l) && blue(r) {
            reversed += 1;
        }
        if old_bar >= 10 && (20.0..=120.0).contains(&old_x) {
            old_left += 1;
        }
        if new_bar >= 10 && (200.0..=300.0).contains(&new_x) {
            new_right += 1;
        }
        new_share.push(new_bar + new_bg);
    }
    let log = log.join("\n");
    assert!(
        split >= 5,
        "{split} frames show the old scene left and the new right:\n{log}"
    );
    assert_eq!(
        reversed, 0,
        "frames showed the new scene on the left and the old on the right:\n{log}"
    );
    assert!(
        old_left >= 3,
        "the old scene's bar should move left (seen {old_left} times):\n{log}"
    );
    assert!(
        new_right >= 3,
        "the new scene's bar should enter from the right (seen {new_right} times):\n{log}"
    );
    assert!(
        new_share.windows(2).all(|w| w[1] + 4 >= w[0]),
        "the new scene's share of the row should only grow: {new_share:?}\n{log}"
    );
    let last = frames.last().unwrap();
    let (l, c, r) = (
        pixel(last, 40, 90),
        pixel(last, 160, 90),
        pixel(last, 280, 90),
    );
    assert!(
        red(l) && green(c) && red(r),
        "after the slide the new scene is in place: {l:?} {c:?} {r:?}"
    );
}

/// A transition plays once, when its scene is activated. A pipeline started later (a live
/// config change that restarts it, a stop and start) shows the active scene at once; it
/// must not fade it in again from black.
#[tokio::test]
async fn a_finished_transition_is_not_replayed_by_a_new_pipeline() {
    let server = Server::start().await;
    server.start_stream().await;
    let body = json!({"id": "blue", "scene": stream_scene("#0000ff", json!([]))});
    create(&server, &body).await;
    let fade = json!({"kind": "fade", "durationMs": 3000});
    let (_, t) = activate_live(&server, "blue", Some(fade)).await;
    let player = Player::on_air(&server).await;
    let frames = player.wait_since(t, 4 * FPS as usize).await;
    all_points(frames.last().unwrap(), blue).unwrap_or_else(|e| panic!("after the fade: {e}"));

    // A bitrate change restarts the pipeline while live.
    server.patch_config(json!({"videoBitrateKbps": 500})).await;
    let t = Instant::now();
    let frames = player.wait_since(t, 2 * FPS as usize).await;
    let centres: Vec<Rgb> = frames.iter().map(|f| pixel(f, 160, 90)).collect();
    assert!(
        centres.iter().all(|&p| blue(p)),
        "after a bitrate change the scene should stay blue, not fade in again: {centres:?}"
    );

    // A stop and a start.
    server.control("stop").await;
    server.start_stream().await;
    let frames = wait_until("frames after a restart", secs(20.0), async || {
        try_decode_frames(&server.rtmp_play_url(), 10, W, H).await
    })
    .await;
    let centres: Vec<Rgb> = frames.iter().map(|f| pixel(f, 160, 90)).collect();
    assert!(
        centres.iter().all(|&p| blue(p)),
        "the first frames after a stop and a start should show the scene: {centres:?}"
    );
}
