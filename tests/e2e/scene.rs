//! The scene as a viewer sees it: layers drawn on air where their positions say, moved,
//! stacked by zIndex, hidden, several changed in one frame; text; refused input that leaves
//! the stream alone; the scene kept in Redis across a crash and broadcast on the WebSocket.
//!
//! Pixel checks sample the decoded H.264 output, so colours are compared with tolerances
//! (YUV 4:2:0 and compression) and sampled well inside or well outside a shape's edges.

use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;
use crate::harness::*;
use crate::pixels::*;

// ---------------------------------------------------------------------------------------
// Helpers

/// Sets the canvas to the stream size (so canvas pixels are stream pixels) with `background`.
async fn stream_sized_canvas(server: &Server, background: &str) -> Value {
    let patch = json!({"width": W, "height": H, "background": background});
    let canvas = call(
        server,
        Method::PATCH,
        "/api/scene/canvas",
        Some(&patch),
        200,
    )
    .await;
    assert_eq!(
        (nums(&canvas, &["width", "height"]), &canvas["background"]),
        (vec![f64::from(W), f64::from(H)], &json!(background)),
        "PATCH canvas answered {canvas}"
    );
    canvas
}

/// Pixels in the box [x0, x1) × [y0, y1) that pass `test`, and their mean x.
fn count_in(
    frame: &[u8],
    (x0, y0, x1, y1): (u32, u32, u32, u32),
    test: fn(Rgb) -> bool,
) -> (usize, f64) {
    let (mut n, mut xs) = (0usize, 0u64);
    for y in y0..y1.min(H) {
        for x in x0..x1.min(W) {
            let i = ((y * W + x) * 3) as usize;
            if test([frame[i], frame[i + 1], frame[i + 2]]) {
                n += 1;
                xs += u64::from(x);
            }
        }
    }
    let mean_x = if n == 0 {
        f64::NAN
    } else {
        xs as f64 / n as f64
    };
    (n, mean_x)
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn red_rect_goes_on_air_and_moves_with_its_position() {
    let server = Server::start().await;
    let canvas = server.get_json("/api/scene/canvas").await;
    assert_eq!(
        (nums(&canvas, &["width", "height"]), &canvas["background"]),
        (vec![1920.0, 1080.0], &json!("#0b1d3a")),
        "default canvas: {canvas}"
    );
    let scene = server.get_json("/api/scene").await;
    assert_eq!(
        layer_ids(&scene),
        ["background", "glow", "title", "bar", "clock"],
        "a new server's scene is the built-in default: {scene}"
    );
    clear_scene(&server).await;

    // Not live: changes apply at once and name no frame.
    let patch = json!({"width": W, "height": H});
    let reply = call(
        &server,
        Method::PATCH,
        "/api/scene/canvas",
        Some(&patch),
        200,
    )
    .await;
    assert_eq!(
        applied_at(&reply),
        None,
        "appliedAtFrame while not live: {reply}"
    );
    assert_eq!(
        (nums(&reply, &["width", "height"]), &reply["background"]),
        (vec![f64::from(W), f64::from(H)], &json!("#00000000")),
        "canvas after PATCH (merged): {reply}"
    );

    server.start_stream().await;
    let player = Player::on_air(&server).await;
    let red_rect = rect("box", (20, 20, 80, 60), "#ff0000");
    let (layer, t) = live_change(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&red_rect),
        201,
    )
    .await;
    assert_eq!(layer["id"], "box", "POST answered {layer}");
    let frame = player.settled_after(t).await;
    assert_looks(
        &frame,
        &[
            (60, 50, RED),
            (30, 30, RED),
            (90, 72, RED),
            (60, 12, NOT_RED),
            (12, 50, NOT_RED),
            (108, 50, NOT_RED),
            (60, 88, NOT_RED),
            (240, 130, NOT_RED),
        ],
        "red rect at (20,20) 80x60 over the demo",
    );

    let moved = json!({"x": 200, "y": 100, "width": 80, "height": 60, "rotation": 0, "opacity": 1, "zIndex": 0});
    let (position, t) = live_change(
        &server,
        Method::PUT,
        "/api/scene/layers/box/position",
        Some(&moved),
        200,
    )
    .await;
    assert_eq!(
        nums(&position, &["x", "y"]),
        [200.0, 100.0],
        "PUT position answered {position}"
    );
    let frame = player.settled_after(t).await;
    assert_looks(
        &frame,
        &[
            (60, 50, NOT_RED),
            (30, 30, NOT_RED),
            (240, 130, RED),
            (210, 110, RED),
            (270, 152, RED),
        ],
        "rect moved to (200,100)",
    );
    let stored = server.get_json("/api/scene/layers/box/position").await;
    assert_eq!(
        nums(&stored, &["x", "y"]),
        [200.0, 100.0],
        "GET position: {stored}"
    );
}

#[tokio::test]
async fn default_canvas_is_scaled_to_the_output_size() {
    let (server, player) = live_server(Server::builder()).await;
    // 1920x1080 canvas on a 320x180 stream: (480,270) 960x540 lands at (80,45) 160x90.
    let big = rect("scaled", (480, 270, 960, 540), "#ff0000");
    let (_, t) = live_change(&server, Method::POST, "/api/scene/layers", Some(&big), 201).await;
    let frame = player.settled_after(t).await;
    assert_looks(
        &frame,
        &[
            (160, 90, RED),
            (90, 55, RED),
            (230, 125, RED),
            (70, 90, NOT_RED),
            (250, 90, NOT_RED),
            (160, 35, NOT_RED),
            (160, 145, NOT_RED),
            (20, 20, NOT_RED),
        ],
        "a 1920x1080-canvas rect scaled by 1/6",
    );
}

#[tokio::test]
async fn scene_patch_shows_layers_together_stacked_by_z_index() {
    let (server, player) = live_server(Server::builder()).await;
    stream_sized_canvas(&server, "#000000").await;

    // Two layers in one PATCH: no frame shows one without the other.
    let both = json!({"layers": [
        rect("blue", (20, 40, 100, 80), "#0000ff"),
        shape("green", "ellipse", (180, 40, 100, 80), "#00ff00"),
    ]});
    let before = Instant::now();
    let (scene, t) = live_change(&server, Method::PATCH, "/api/scene", Some(&both), 200).await;
    assert_eq!(
        layer_ids(&scene),
        ["blue", "green"],
        "PATCH /api/scene answered {scene}"
    );
    let frame = player.settled_after(t).await;
    assert_looks(
        &frame,
        &[
            (70, 80, BLUE),
            (230, 80, GREEN),
            // Inside the ellipse's box, outside the ellipse.
            (185, 45, BLACK),
            (275, 115, BLACK),
            (150, 80, BLACK),
            (160, 160, BLACK),
        ],
        "blue rect and green ellipse from one PATCH",
    );
    let mut halves = Vec::new();
    for (i, f) in player.kept_since(before).iter().enumerate() {
        let (b, g) = (pixel(f, 70, 80), pixel(f, 230, 80));
        if (blue(b) && black(g)) || (black(b) && green(g)) {
            halves.push(format!(
                "frame {i} after the request: blue {b:?}, green {g:?}"
            ));
        }
    }
    assert!(
        halves.is_empty(),
        "frames showed only one of the two layers of one PATCH:\n{}",
        halves.join("\n")
    );

    // Overlapping rects: the higher zIndex is on top, whatever the list order.
    let stack = json!({"layers": [
        z(rect("top", (100, 60, 120, 80), "#0000ff"), 2),
        z(rect("under", (40, 40, 120, 80), "#ff0000"), 1),
    ]});
    let (_, t) = live_change(&server, Method::PATCH, "/api/scene", Some(&stack), 200).await;
    let frame = player.settled_after(t).await;
    // Red only (60,50), overlap (130,90), blue only (200,130).
    assert_looks(
        &frame,
        &[
            (60, 50, RED),
            (130, 90, BLUE),
            (200, 130, BLUE),
            (250, 30, BLACK),
        ],
        "blue zIndex 2 over red zIndex 1",
    );
    let reply = server.get("/api/scene/layers/green").await;
    assert_api_error(
        &reply,
        404,
        "not_found",
        "green after PATCH /api/scene replaced the layers",
    );

    let raise = json!({"position": {"zIndex": 5}});
    let (layer, t) = live_change(
        &server,
        Method::PATCH,
        "/api/scene/layers/under",
        Some(&raise),
        200,
    )
    .await;
    assert_eq!(
        nums(&layer["position"], &["zIndex", "x", "width"]),
        [5.0, 40.0, 120.0],
        "merge patch of the position: {layer}"
    );
    let frame = player.settled_after(t).await;
    assert_looks(
        &frame,
        &[(60, 50, RED), (130, 90, RED), (200, 130, BLUE)],
        "red raised to zIndex 5",
    );

    // Hidden layers show nothing; half opacity shows half the colour.
    let hide = json!({"visible": false});
    let (_, t) = live_change(
        &server,
        Method::PATCH,
        "/api/scene/layers/under",
        Some(&hide),
        200,
    )
    .await;
    let frame = player.settled_after(t).await;
    assert_looks(
        &frame,
        &[(60, 50, BLACK), (130, 90, BLUE)],
        "red with visible false",
    );

    let transparent = json!({"visible": true, "position": {"opacity": 0}});
    let (_, t) = live_change(
        &server,
        Method::PATCH,
        "/api/scene/layers/under",
        Some(&transparent),
        200,
    )
    .await;
    let frame = player.settled_after(t).await;
    assert_looks(
        &frame,
        &[(60, 50, BLACK), (130, 90, BLUE)],
        "red with opacity 0",
    );

    let half = json!({"position": {"opacity": 0.5}});
    let (_, t) = live_change(
        &server,
        Method::PATCH,
        "/api/scene/layers/under",
        Some(&half),
        200,
    )
    .await;
    let frame = player.settled_after(t).await;
    assert_looks(
        &frame,
        &[(60, 50, HALF_RED)],
        "red with opacity 0.5 over black",
    );

    let (_, t) = live_change(
        &server,
        Method::DELETE,
        "/api/scene/layers/under",
        None,
        200,
    )
    .await;
    let frame = player.settled_after(t).await;
    assert_looks(&frame, &[(60, 50, BLACK), (130, 90, BLUE)], "red deleted");
}

#[tokio::test]
async fn gradient_fill_shades_across_the_shape() {
    let (server, player) = live_server(Server::builder()).await;
    stream_sized_canvas(&server, "#000000").await;
    let layer = json!({
        "id": "grad", "kind": "shape",
        "position": {"x": 100, "y": 30, "width": 120, "height": 120},
        "shape": {"type": "rect", "fill": {"type": "linear", "angle": 90, "stops": [
            {"offset": 0, "color": "#ff0000"}, {"offset": 1, "color": "#0000ff"}
        ]}}
    });
    let (_, t) = live_change(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&layer),
        201,
    )
    .await;
    let frame = player.settled_after(t).await;
    let (l, r, top, bottom) = (
        pixel(&frame, 110, 90),
        pixel(&frame, 210, 90),
        pixel(&frame, 160, 40),
        pixel(&frame, 160, 140),
    );
    let centre = pixel(&frame, 160, 90);
    let shift = l[0].abs_diff(r[0]) as u32 + top[0].abs_diff(bottom[0]) as u32;
    assert!(
        centre[1] < 70 && u32::from(centre[0]) + u32::from(centre[2]) > 180 && shift > 80,
        "a red-to-blue gradient does not show: centre {centre:?}, left {l:?}, right {r:?}, \
         top {top:?}, bottom {bottom:?}"
    );
    assert_looks(
        &frame,
        &[(60, 90, BLACK), (260, 90, BLACK)],
        "outside the gradient rect",
    );
}

#[tokio::test]
async fn text_layer_draws_glyphs_where_placed() {
    let (server, player) = live_server(Server::builder()).await;
    stream_sized_canvas(&server, "#000000").await;
    let text = json!({
        "id": "title", "kind": "text",
        "position": {"x": 10, "y": 30, "width": 300, "height": 60},
        "text": {"content": "Hello", "size": 40, "color": "#ffffff", "align": "start"}
    });
    let (layer, t) =
        live_change(&server, Method::POST, "/api/scene/layers", Some(&text), 201).await;
    assert_eq!(layer["text"]["content"], "Hello", "POST answered {layer}");
    let frame = player.settled_after(t).await;
    let text_box = (10, 26, 310, 94);
    let (lit, mean_x) = count_in(&frame, text_box, bright);
    let (stray, _) = count_in(&frame, (10, 110, 310, 175), bright);
    assert!(
        lit > 150 && stray < 20,
        "text box has {lit} bright pixels (want > 150), an empty box {stray} (want < 20)"
    );
    assert!(
        mean_x < 130.0,
        "align start: the glyphs' mean x is {mean_x:.0} in a box 10..310"
    );

    let end = json!({"text": {"align": "end"}});
    let (layer, t) = live_change(
        &server,
        Method::PATCH,
        "/api/scene/layers/title",
        Some(&end),
        200,
    )
    .await;
    assert_eq!(
        (&layer["text"]["align"], &layer["text"]["content"]),
        (&json!("end"), &json!("Hello")),
        "merge patch of the text: {layer}"
    );
    let frame = player.settled_after(t).await;
    let (lit, mean_x) = count_in(&frame, text_box, bright);
    assert!(
        lit > 150 && mean_x > 190.0,
        "align end: {lit} bright pixels with mean x {mean_x:.0} in a box 10..310"
    );

    let recolour = json!({"text": {"color": "#ff0000"}});
    let (_, t) = live_change(
        &server,
        Method::PATCH,
        "/api/scene/layers/title",
        Some(&recolour),
        200,
    )
    .await;
    let frame = player.settled_after(t).await;
    let (reds, _) = count_in(&frame, text_box, red);
    let (lit, _) = count_in(&frame, text_box, bright);
    assert!(
        reds > 100 && lit < 20,
        "red text: {reds} red and {lit} white pixels in its box"
    );
}

#[tokio::test]
async fn layer_crud_follows_the_contract() {
    let server = Server::start().await;
    clear_scene(&server).await;
    let minimal = json!({
        "kind": "shape", "position": {"x": 1, "y": 2, "width": 30, "height": 40},
        "shape": {"type": "roundedRect", "fill": "#12345678", "cornerRadius": 6}
    });
    let created = call(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&minimal),
        201,
    )
    .await;
    assert_eq!(
        applied_at(&created),
        None,
        "appliedAtFrame while not live: {created}"
    );
    let id = generated_id(&created);
    assert_eq!(created["visible"], true, "{created}");
    let keys = ["x", "y", "width", "height", "rotation", "opacity", "zIndex"];
    assert_eq!(
        nums(&created["position"], &keys),
        [1.0, 2.0, 30.0, 40.0, 0.0, 1.0, 0.0],
        "position as given, with rotation 0, opacity 1, zIndex 0 by default: {created}"
    );
    assert_eq!(created["shape"]["fill"], "#12345678", "{created}");

    let path = format!("/api/scene/layers/{id}");
    let got = server.get_json(&path).await;
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["position"], created["position"], "GET {path}: {got}");

    let renamed = call(
        &server,
        Method::PATCH,
        &path,
        Some(&json!({"name": "Box", "shape": {"fill": "#ffffff"}})),
        200,
    )
    .await;
    assert_eq!(
        (
            &renamed["name"],
            &renamed["shape"]["fill"],
            &renamed["shape"]["type"]
        ),
        (&json!("Box"), &json!("#ffffff"), &json!("roundedRect")),
        "merge patch: {renamed}"
    );
    assert_eq!(
        nums(&renamed["shape"], &["cornerRadius"]),
        [6.0],
        "merge patch kept the corner radius: {renamed}"
    );
    assert_eq!(
        renamed["position"], created["position"],
        "merge patch kept the position"
    );
    assert_eq!(applied_at(&renamed), None, "{renamed}");

    let position = json!({"x": 5, "y": 6, "width": 7, "height": 8, "rotation": 45, "opacity": 0.25, "zIndex": 3});
    let put = call(
        &server,
        Method::PUT,
        &format!("{path}/position"),
        Some(&position),
        200,
    )
    .await;
    assert_eq!(applied_at(&put), None, "{put}");
    let read = server.get_json(&format!("{path}/position")).await;
    assert_eq!(
        nums(&read, &keys),
        nums(&position, &keys),
        "GET position after PUT: {read}"
    );
    assert_eq!(
        nums(&put, &keys),
        nums(&position, &keys),
        "PUT position answered {put}"
    );

    let dup = json!({"id": id, "kind": "shape", "position": {"x": 0, "y": 0, "width": 1, "height": 1}, "shape": {"type": "rect", "fill": "#000000"}});
    let reply = send_json(&server, Method::POST, "/api/scene/layers", Some(&dup)).await;
    assert_api_error(&reply, 409, "conflict", "POST of an existing id");

    let scene = server.get_json("/api/scene").await;
    assert_eq!(layer_ids(&scene), std::slice::from_ref(&id), "{scene}");
    let deleted = call(&server, Method::DELETE, &path, None, 200).await;
    assert_eq!(applied_at(&deleted), None, "{deleted}");
    let reply = server.get(&path).await;
    assert_api_error(&reply, 404, "not_found", "GET of a deleted layer");
    let scene = server.get_json("/api/scene").await;
    assert_eq!(scene["layers"], json!([]), "{scene}");
    // The largest sizes are accepted: 16384 for a layer; the canvas goes up to the largest
    // frame (7680x4320), and one pixel more is out of range.
    let huge = rect("huge", (0, 0, 16384, 16384), "#102030");
    call(&server, Method::POST, "/api/scene/layers", Some(&huge), 201).await;
    let largest = json!({"width": 7680, "height": 4320});
    let reply = send_json(&server, Method::PATCH, "/api/scene/canvas", Some(&largest)).await;
    assert_eq!(reply.0, 200, "a 7680x4320 canvas was refused: {}", reply.1);
    let over = json!({"width": 7682});
    let reply = send_json(&server, Method::PATCH, "/api/scene/canvas", Some(&over)).await;
    assert_api_error(&reply, 422, "out_of_range", "a canvas wider than 7680");
}

/// One refused request: method, path, raw JSON body, status, acceptable codes, and a word
/// the message must contain.
struct Bad {
    method: Method,
    path: &'static str,
    body: String,
    status: u16,
    codes: &'static [&'static str],
    names: &'static str,
}

const COLOUR: &[&str] = &["out_of_range", "invalid_value"];

fn bad(
    method: Method,
    path: &'static str,
    body: Value,
    codes: &'static [&'static str],
    names: &'static str,
) -> Bad {
    Bad {
        method,
        path,
        body: body.to_string(),
        status: 422,
        codes,
        names,
    }
}

fn bad_scene_inputs() -> Vec<Bad> {
    let layers = "/api/scene/layers";
    let keep = "/api/scene/layers/keep";
    let keep_pos = "/api/scene/layers/keep/position";
    let canvas = "/api/scene/canvas";
    let pos = |w: f64, h: f64, opacity: f64| json!({"x": 0, "y": 0, "width": w, "height": h, "opacity": opacity});
    let layer_at = |position: Value| json!({"id": "new", "kind": "shape", "position": position, "shape": {"type": "rect", "fill": "#ff0000"}});
    let fill = |fill: &str| json!({"id": "new", "kind": "shape", "position": pos(10.0, 10.0, 1.0), "shape": {"type": "rect", "fill": fill}});
    let missing = |m: Method, path: &'static str, body: Value| Bad {
        method: m,
        path,
        body: body.to_string(),
        status: 404,
        codes: &["not_found"],
        names: "",
    };
    let malformed = |m: Method, path: &'static str, body: &str| Bad {
        method: m,
        path,
        body: body.into(),
        status: 400,
        codes: &["malformed_json"],
        names: "",
    };
    vec![
        missing(Method::GET, "/api/scene/layers/ghost", Value::Null),
        missing(
            Method::PATCH,
            "/api/scene/layers/ghost",
            json!({"visible": false}),
        ),
        missing(Method::DELETE, "/api/scene/layers/ghost", Value::Null),
        missing(Method::GET, "/api/scene/layers/ghost/position", Value::Null),
        missing(
            Method::PUT,
            "/api/scene/layers/ghost/position",
            pos(10.0, 10.0, 1.0),
        ),
        bad(
            Method::POST,
            layers,
            json!({"id": "new", "kind": "hologram", "position": pos(10.0, 10.0, 1.0)}),
            &["unknown_kind"],
            "hologram",
        ),
        bad(
            Method::POST,
            layers,
            layer_at(pos(0.0, 10.0, 1.0)),
            &["out_of_range"],
            "width",
        ),
        bad(
            Method::POST,
            layers,
            layer_at(pos(-10.0, 10.0, 1.0)),
            &["out_of_range"],
            "width",
        ),
        bad(
            Method::POST,
            layers,
            layer_at(pos(16385.0, 10.0, 1.0)),
            &["out_of_range"],
            "width",
        ),
        bad(
            Method::POST,
            layers,
            layer_at(pos(1e300, 10.0, 1.0)),
            &["out_of_range"],
            "width",
        ),
        bad(
            Method::POST,
            layers,
            layer_at(pos(10.0, 0.0, 1.0)),
            &["out_of_range"],
            "height",
        ),
        bad(
            Method::POST,
            layers,
            layer_at(pos(10.0, 20000.0, 1.0)),
            &["out_of_range"],
            "height",
        ),
        bad(
            Method::POST,
            layers,
            layer_at(pos(10.0, 10.0, 1.5)),
            &["out_of_range"],
            "opacity",
        ),
        bad(
            Method::POST,
            layers,
            layer_at(pos(10.0, 10.0, -0.1)),
            &["out_of_range"],
            "opacity",
        ),
        bad(Method::POST, layers, fill("red"), COLOUR, ""),
        bad(Method::POST, layers, fill("#ff00"), COLOUR, ""),
        bad(Method::POST, layers, fill("#12345g"), COLOUR, ""),
        bad(Method::POST, layers, fill("#1234567"), COLOUR, ""),
        bad(
            Method::POST,
            layers,
            json!({"id": "new", "kind": "text", "position": pos(10.0, 10.0, 1.0),
                   "text": {"content": "x", "size": 20, "color": "white", "align": "start"}}),
            COLOUR,
            "",
        ),
        bad(
            Method::PATCH,
            canvas,
            json!({"width": 0}),
            &["out_of_range"],
            "width",
        ),
        bad(
            Method::PATCH,
            canvas,
            json!({"width": 16385}),
            &["out_of_range"],
            "width",
        ),
        bad(
            Method::PATCH,
            canvas,
            json!({"height": -1}),
            &["out_of_range"],
            "height",
        ),
        bad(
            Method::PATCH,
            canvas,
            json!({"background": "transparent"}),
            &["unknown_asset"],
            "transparent",
        ),
        bad(
            Method::PUT,
            keep_pos,
            pos(0.0, 10.0, 1.0),
            &["out_of_range"],
            "width",
        ),
        bad(
            Method::PUT,
            keep_pos,
            pos(10.0, 10.0, 2.0),
            &["out_of_range"],
            "opacity",
        ),
        bad(
            Method::PATCH,
            keep,
            json!({"position": {"opacity": -1}}),
            &["out_of_range"],
            "opacity",
        ),
        bad(
            Method::PATCH,
            keep,
            json!({"shape": {"fill": "#ff"}}),
            COLOUR,
            "",
        ),
        bad(
            Method::PATCH,
            "/api/scene",
            json!({"canvas": {"width": 99999}}),
            &["out_of_range"],
            "width",
        ),
        bad(
            Method::POST,
            layers,
            with(layer_at(pos(10.0, 10.0, 1.0)), json!({"colour": "red"})),
            &["unknown_field"],
            "colour",
        ),
        bad(
            Method::POST,
            layers,
            json!({"id": "new", "kind": "shape", "position": pos(10.0, 10.0, 1.0),
                   "shape": {"type": "rect", "fill": "#ff0000", "shade": 3}}),
            &["unknown_field"],
            "shade",
        ),
        bad(
            Method::PATCH,
            canvas,
            json!({"depth": 3}),
            &["unknown_field"],
            "depth",
        ),
        bad(
            Method::PUT,
            keep_pos,
            with(pos(10.0, 10.0, 1.0), json!({"depth": 1})),
            &["unknown_field"],
            "depth",
        ),
        bad(
            Method::PATCH,
            "/api/scene",
            json!({"layer": []}),
            &["unknown_field"],
            "layer",
        ),
        bad(
            Method::POST,
            layers,
            layer_at(json!({"x": "20", "y": 0, "width": 10, "height": 10})),
            &["invalid_type"],
            "x",
        ),
        bad(
            Method::POST,
            layers,
            with(layer_at(pos(10.0, 10.0, 1.0)), json!({"visible": "yes"})),
            &["invalid_type"],
            "visible",
        ),
        bad(Method::POST, layers, json!([]), &["invalid_type"], ""),
        bad(
            Method::PATCH,
            "/api/scene",
            json!({"layers": {}}),
            &["invalid_type"],
            "layers",
        ),
        bad(
            Method::PATCH,
            canvas,
            json!({"width": "320"}),
            &["invalid_type"],
            "width",
        ),
        malformed(Method::POST, layers, r#"{"id": "new""#),
        malformed(Method::PATCH, "/api/scene", "{"),
        malformed(Method::PUT, keep_pos, r#"{"x": }"#),
        malformed(Method::PATCH, canvas, "nope"),
        Bad {
            method: Method::POST,
            path: layers,
            body: with(layer_at(pos(10.0, 10.0, 1.0)), json!({"id": "keep"})).to_string(),
            status: 409,
            codes: &["conflict"],
            names: "",
        },
        bad(
            Method::POST,
            layers,
            json!({"id": "new", "kind": "image", "position": pos(10.0, 10.0, 1.0),
                   "image": {"asset": "no-such-asset"}}),
            &["unknown_asset"],
            "",
        ),
        bad(
            Method::PATCH,
            "/api/scene",
            json!({"layers": (0..257).map(|i| rect(&format!("l{i}"), (i % 300, 0, 2, 2), "#00ff00")).collect::<Vec<_>>()}),
            &["out_of_range"],
            "",
        ),
    ]
}

#[tokio::test]
async fn bad_scene_input_is_refused_and_the_stream_keeps_running() {
    let (server, player) = live_server(Server::builder()).await;
    stream_sized_canvas(&server, "#000000").await;
    let keep = rect("keep", (20, 20, 80, 60), "#ff0000");
    live_change(&server, Method::POST, "/api/scene/layers", Some(&keep), 201).await;
    let before = server.state().await;
    let scene_before = server.get_json("/api/scene").await;

    let mut failures = Vec::new();
    for case in bad_scene_inputs() {
        let body = (case.body != "null").then_some(case.body.as_str());
        let reply = send_raw(&server, case.method.clone(), case.path, body).await;
        let shown: String = case.body.chars().take(90).collect();
        let message = reply.1["error"]["message"].as_str().unwrap_or_default();
        let outcome = case
            .codes
            .iter()
            .map(|code| check_api_error(&reply, case.status, code))
            .find(Result::is_ok)
            .unwrap_or_else(|| check_api_error(&reply, case.status, case.codes[0]))
            .and_then(|()| {
                if message.contains(case.names) {
                    Ok(())
                } else {
                    Err(format!("message does not name {:?}: {message}", case.names))
                }
            });
        if let Err(e) = outcome {
            failures.push(format!("{} {} {shown}: {e}", case.method, case.path));
        }
    }
    let refused = Instant::now();

    assert_eq!(
        server.get_json("/api/scene").await,
        scene_before,
        "a refused request changed the scene"
    );
    server.assert_still_live(&before).await;
    let frame = player.settled_after(refused).await;
    assert_looks(
        &frame,
        &[(60, 50, RED), (200, 120, BLACK)],
        "the scene after the refused requests",
    );

    // 256 layers is the limit: a full scene goes on air (a green strip of 256 thin rects),
    // one more layer is refused.
    let full: Vec<Value> = (0..256)
        .map(|i| rect(&format!("l{i}"), (i, 150, 2, 16), "#00ff00"))
        .collect();
    let (scene, t) = live_change(
        &server,
        Method::PATCH,
        "/api/scene",
        Some(&json!({"layers": full})),
        200,
    )
    .await;
    assert_eq!(
        layer_ids(&scene).len(),
        256,
        "256 layers refused or trimmed"
    );
    let frame = player.settled_after(t).await;
    assert_looks(
        &frame,
        &[
            (10, 158, GREEN),
            (128, 158, GREEN),
            (250, 158, GREEN),
            (60, 50, BLACK),
        ],
        "a scene of 256 layers",
    );
    let reply = send_json(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&rect("one-more", (0, 0, 2, 2), "#ff0000")),
    )
    .await;
    if let Err(e) = check_api_error(&reply, 422, "out_of_range") {
        failures.push(format!("POST of a 257th layer: {e}"));
    }
    assert_eq!(
        server.state().await["isLive"],
        true,
        "the stream went down with 256 layers"
    );
    assert!(
        failures.is_empty(),
        "wrong answers:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn scene_survives_a_restart_with_redis() {
    let redis = Redis::start().await;
    let mut server = Server::builder().redis(&redis, "e2e-scene:").start().await;
    clear_scene(&server).await;
    stream_sized_canvas(&server, "#000000").await;
    call(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&rect("kept", (120, 60, 80, 60), "#ff0000")),
        201,
    )
    .await;
    let scene = server.get_json("/api/scene").await;
    wait_until("the scene stored in Redis", secs(8.0), async || {
        let stored = redis.get_json("e2e-scene:scenes").unwrap_or_default();
        let active = &stored["scenes"][0];
        if stored["active"] == "default"
            && active["id"] == "default"
            && layer_ids(&active["scene"]) == ["kept"]
        {
            Ok(())
        } else {
            Err(format!("e2e-scene:scenes = {stored}"))
        }
    })
    .await;
    assert_eq!(
        redis.get("scenes"),
        None,
        "scenes stored without the prefix"
    );

    server.restart().await;
    let restored = server.get_json("/api/scene").await;
    assert_eq!(restored, scene, "the scene after a restart");

    server.start_stream().await;
    let frames = wait_until("frames of the restored scene", secs(15.0), async || {
        try_decode_frames(&server.rtmp_play_url(), 3, W, H).await
    })
    .await;
    assert_looks(
        &frames[0],
        &[(160, 90, RED), (60, 50, BLACK)],
        "the restored scene on air",
    );
}

#[tokio::test]
async fn scene_changes_are_broadcast_on_the_websocket() {
    let server = Server::start().await;
    clear_scene(&server).await;
    let mut ws = Ws::open(&server).await;
    let has = |m: &Value, id: &str| {
        m["type"] == "sceneUpdate"
            && m["payload"]["layers"]
                .as_array()
                .is_some_and(|ls| ls.iter().any(|l| l["id"] == id))
    };
    call(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&rect("ws-box", (10, 10, 50, 50), "#ff0000")),
        201,
    )
    .await;
    let update = ws
        .wait_for(
            "a sceneUpdate with layer ws-box",
            secs(5.0),
            |_| {},
            |m| has(m, "ws-box"),
        )
        .await;
    let layer = update["payload"]["layers"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["id"] == "ws-box"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(layer["shape"]["fill"], "#ff0000", "{update}");
    assert!(
        update["payload"]["canvas"]["width"].is_number(),
        "sceneUpdate without the canvas: {update}"
    );

    call(
        &server,
        Method::PATCH,
        "/api/scene/canvas",
        Some(&json!({"width": 640, "height": 360})),
        200,
    )
    .await;
    ws.wait_for(
        "a sceneUpdate with canvas width 640",
        secs(5.0),
        |_| {},
        |m| m["type"] == "sceneUpdate" && m["payload"]["canvas"]["width"].as_f64() == Some(640.0),
    )
    .await;

    call(
        &server,
        Method::DELETE,
        "/api/scene/layers/ws-box",
        None,
        200,
    )
    .await;
    ws.wait_for(
        "a sceneUpdate without layer ws-box",
        secs(5.0),
        |_| {},
        |m| m["type"] == "sceneUpdate" && !has(m, "ws-box"),
    )
    .await;
}

/// The middle x of the red pixels on row `y`, if any.
fn red_center(frame: &[u8], y: u32) -> Option<f64> {
    let xs: Vec<u32> = (0..W).filter(|&x| red(pixel(frame, x, y))).collect();
    (!xs.is_empty()).then(|| f64::from(xs[0] + xs[xs.len() - 1]) / 2.0)
}

#[tokio::test]
async fn animated_patch_moves_a_layer_through_intermediate_positions() {
    let (server, player) = live_server(Server::builder()).await;
    stream_sized_canvas(&server, "#000000ff").await;
    let layer = rect("mover", (10, 60, 40, 40), "#ff0000");
    live_change(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&layer),
        201,
    )
    .await;
    let patch = json!({
        "position": {"x": 270, "y": 60, "width": 40, "height": 40},
        "animate": {"durationMs": 1500, "easing": "linear"}
    });
    let (reply, t) = live_change(
        &server,
        Method::PATCH,
        "/api/scene/layers/mover",
        Some(&patch),
        200,
    )
    .await;
    assert_eq!(
        nums(&reply["position"], &["x"]),
        vec![270.0],
        "the answer holds the target: {reply}"
    );
    assert!(
        reply.get("animate").is_none(),
        "animate is not part of the layer: {reply}"
    );
    tokio::time::sleep(secs(2.5)).await;
    let centers: Vec<f64> = player
        .kept_since(t)
        .iter()
        .filter_map(|f| red_center(f, 80))
        .collect();
    let between = centers
        .iter()
        .filter(|c| (60.0..260.0).contains(*c))
        .count();
    assert!(
        between >= 10,
        "the layer should pass through intermediate places; centres seen: {centers:?}"
    );
    assert!(
        centers.windows(2).all(|w| w[1] >= w[0] - 2.0),
        "the movement goes one way: {centers:?}"
    );
    let last = *centers.last().expect("the layer on air");
    assert!(
        (last - 290.0).abs() < 3.0,
        "it ends at the target; centres: {centers:?}"
    );

    let too_long = json!({"position": {"x": 0}, "animate": {"durationMs": 60001}});
    let bounce = json!({"animate": {"durationMs": 100, "easing": "bounce"}});
    for (bad, what) in [
        (too_long, "an animation over a minute"),
        (bounce, "an unknown easing"),
    ] {
        let mover = "/api/scene/layers/mover";
        let reply = send_json(&server, Method::PATCH, mover, Some(&bad)).await;
        assert_api_error(&reply, 422, "out_of_range", what);
    }
}
