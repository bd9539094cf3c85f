//! What the scene, named-scene and asset tests share: JSON requests that must answer a given
//! status or be refused with a documented error; changes made while live, checked to apply
//! at a frame not rendered before they were sent; the scene JSON they send; and a live server
//! with an empty scene and a player.

use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::*;

// ---------------------------------------------------------------------------------------
// Requests

/// A request with a raw body sent as JSON (or none); returns whatever it answered.
pub async fn send_raw(server: &Server, method: Method, path: &str, body: Option<&str>) -> Reply {
    let mut req = server.request(method, path);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    server.send(req).await
}

/// A request with a JSON body (or none); returns whatever it answered.
pub async fn send_json(server: &Server, method: Method, path: &str, body: Option<&Value>) -> Reply {
    let body = body.map(Value::to_string);
    send_raw(server, method, path, body.as_deref()).await
}

/// `POST /api/templates` with test guest `name`, on a connection of its own.
pub async fn post_guest(server: &Server, name: &str) -> Reply {
    crate::assets::post_alone(
        server,
        "/api/templates",
        Some("application/wasm"),
        &crate::guests::test_guest(name),
    )
    .await
}

/// A request with a JSON body (or none) that must answer `status`; returns the body.
pub async fn call(
    server: &Server,
    method: Method,
    path: &str,
    body: Option<&Value>,
    status: u16,
) -> Value {
    let (got, reply) = send_json(server, method.clone(), path, body).await;
    assert_eq!(
        got,
        status,
        "{method} {path} {} answered {got}: {reply}",
        body.map(Value::to_string).unwrap_or_default()
    );
    reply
}

/// A request with a raw JSON body (or none) that must be refused with `status` and `code`.
pub async fn refused_raw(
    server: &Server,
    method: Method,
    path: &str,
    body: Option<&str>,
    status: u16,
    code: &str,
) {
    let reply = send_raw(server, method.clone(), path, body).await;
    let shown: String = body.unwrap_or_default().chars().take(100).collect();
    assert_api_error(&reply, status, code, &format!("{method} {path} {shown}"));
}

/// A request with a JSON body (or none) that must be refused with `status` and `code`.
pub async fn refused(
    server: &Server,
    method: Method,
    path: &str,
    body: Option<&Value>,
    status: u16,
    code: &str,
) {
    let body = body.map(Value::to_string);
    refused_raw(server, method, path, body.as_deref(), status, code).await;
}

// ---------------------------------------------------------------------------------------
// Changes while live

/// `appliedAtFrame` of a mutation's answer: `None` for `null`; panics if it is missing or
/// not a frame number.
pub fn applied_at(body: &Value) -> Option<u64> {
    match body.get("appliedAtFrame") {
        Some(Value::Null) => None,
        Some(v) if v.is_u64() => v.as_u64(),
        _ => panic!("appliedAtFrame missing or not a frame number (or null): {body}"),
    }
}

/// A mutation while live that must answer `status`: checks `appliedAtFrame` is a frame not
/// rendered before the request was sent; returns the answer, the instant it arrived and
/// that frame.
pub async fn live_request(
    server: &Server,
    method: Method,
    path: &str,
    body: Option<&Value>,
    status: u16,
) -> (Value, Instant, u64) {
    let before = u(&server.state().await, "frameCount");
    let reply = call(server, method.clone(), path, body, status).await;
    let answered = Instant::now();
    let applied = applied_at(&reply)
        .unwrap_or_else(|| panic!("{method} {path} while live: appliedAtFrame is null: {reply}"));
    assert!(
        applied >= before,
        "{method} {path}: appliedAtFrame {applied} was rendered before the request \
         (frameCount was {before} when it was sent)"
    );
    (reply, answered, applied)
}

/// A [`live_request`] that also waits until its `appliedAtFrame` has been rendered; returns
/// the answer and the instant it arrived.
pub async fn live_change(
    server: &Server,
    method: Method,
    path: &str,
    body: Option<&Value>,
    status: u16,
) -> (Value, Instant) {
    let (reply, answered, applied) = live_request(server, method, path, body, status).await;
    wait_until(
        &format!("frameCount to pass appliedAtFrame {applied}"),
        secs(5.0),
        async || {
            let s = server.state().await;
            if u(&s, "frameCount") > applied {
                Ok(())
            } else {
                Err(s.to_string())
            }
        },
    )
    .await;
    (reply, answered)
}

// ---------------------------------------------------------------------------------------
// Scene JSON

/// A shape layer with a solid fill.
pub fn shape(id: &str, kind: &str, (x, y, w, h): (i32, i32, i32, i32), fill: &str) -> Value {
    json!({
        "id": id, "kind": "shape",
        "position": {"x": x, "y": y, "width": w, "height": h},
        "shape": {"type": kind, "fill": fill}
    })
}

pub fn rect(id: &str, xywh: (i32, i32, i32, i32), fill: &str) -> Value {
    shape(id, "rect", xywh, fill)
}

/// A template layer filling the canvas box `(x, y, w, h)`.
pub fn template_layer(
    id: &str,
    template: &str,
    (x, y, w, h): (i32, i32, i32, i32),
    params: Value,
) -> Value {
    json!({
        "id": id, "kind": "template",
        "position": {"x": x, "y": y, "width": w, "height": h},
        "template": {"id": template, "params": params}
    })
}

/// A layer with its `zIndex` set.
pub fn z(mut layer: Value, z_index: i32) -> Value {
    layer["position"]["zIndex"] = json!(z_index);
    layer
}

/// A stream-sized scene (canvas pixels are stream pixels) on `background`, with `layers`.
pub fn stream_scene(background: &str, layers: Value) -> Value {
    json!({"canvas": {"width": W, "height": H, "background": background}, "layers": layers})
}

/// The id the server generated for `created` (a layer or a named scene posted without
/// one); checks the name defaults to it.
pub fn generated_id(created: &Value) -> String {
    let id = created["id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| panic!("no id generated: {created}"))
        .to_string();
    assert_eq!(
        created["name"],
        id.as_str(),
        "the name defaults to the id: {created}"
    );
    id
}

/// The ids of a scene's layers.
pub fn layer_ids(scene: &Value) -> Vec<String> {
    scene["layers"]
        .as_array()
        .unwrap_or_else(|| panic!("scene without a layers array: {scene}"))
        .iter()
        .map(|l| l["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Numbers at `keys` of `v` (NaN where missing), so 6 and 6.0 compare equal.
pub fn nums(v: &Value, keys: &[&str]) -> Vec<f64> {
    keys.iter()
        .map(|k| v[*k].as_f64().unwrap_or(f64::NAN))
        .collect()
}

// ---------------------------------------------------------------------------------------
// A live server

/// Empties the active scene (a new server starts with the built-in default scene) and
/// makes its canvas transparent, i.e. black on air.
pub async fn clear_scene(server: &Server) {
    let empty = json!({"canvas": {"background": "#00000000"}, "layers": []});
    call(server, Method::PATCH, "/api/scene", Some(&empty), 200).await;
}

/// A live server from `builder` (the small stream unless replaced), with an empty scene and
/// a player already past its first GOP (see [`Player::on_air`]).
pub async fn live_server(builder: ServerBuilder) -> (Server, Player) {
    let server = builder.start().await;
    clear_scene(&server).await;
    server.start_stream().await;
    let player = Player::on_air(&server).await;
    (server, player)
}

/// `builder` with the bundled templates and asset loaders installed at start
/// (`--templates-dir`, as scripts/serve.sh does).
pub fn with_bundled(builder: ServerBuilder) -> ServerBuilder {
    builder.args([
        "--templates-dir".to_string(),
        crate::guests::templates_dir().display().to_string(),
    ])
}
