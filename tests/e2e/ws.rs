//! The WebSocket feed: the current state first, then every change in order, metrics about
//! once a second, and the same token as the REST API.

use std::time::Instant;

use serde_json::{Value, json};

use crate::harness::*;
use crate::pixels::assert_picture;

fn is_state(m: &Value) -> bool {
    m["type"] == "stateUpdate"
}

/// Asserts a skipped `stateUpdate` still shows the state before the change awaited.
fn still(live: bool, paused: bool) -> impl FnMut(&Value) {
    move |m| {
        if is_state(m) {
            let p = &m["payload"];
            assert_eq!(
                (&p["isLive"], &p["isPaused"]),
                (&json!(live), &json!(paused)),
                "stateUpdate out of order: {m}"
            );
        }
    }
}

#[tokio::test]
async fn state_updates_follow_every_change_in_order() {
    let server = Server::start().await;
    let mut ws = Ws::open(&server).await;
    let first = ws.next(secs(5.0)).await;
    assert!(
        is_state(&first),
        "first message is not a stateUpdate: {first}"
    );
    let p = &first["payload"];
    assert_eq!(
        (&p["isLive"], &p["isPaused"]),
        (&json!(false), &json!(false)),
        "{first}"
    );
    for field in [
        "fps",
        "targetFPS",
        "frameCount",
        "droppedFrames",
        "averageRenderTime",
    ] {
        assert!(
            p[field].is_number(),
            "{field} missing or not a number: {first}"
        );
    }
    assert!(p.get("error").is_some(), "error field missing: {first}");
    assert_eq!(p["targetFPS"], server.state().await["targetFPS"]);

    server.patch_config(json!({"targetFPS": 25})).await;
    ws.wait_for(
        "stateUpdate with targetFPS 25",
        secs(5.0),
        still(false, false),
        |m| is_state(m) && m["payload"]["targetFPS"] == 25,
    )
    .await;

    server.control("start").await;
    ws.wait_for(
        "stateUpdate with isLive",
        secs(5.0),
        still(false, false),
        |m| is_state(m) && m["payload"]["isLive"] == true,
    )
    .await;

    // A client connecting now is told the stream is live straight away.
    let mut late = Ws::open(&server).await;
    let first = late.next(secs(5.0)).await;
    assert!(
        is_state(&first) && first["payload"]["isLive"] == true,
        "{first}"
    );

    server.control("pause").await;
    ws.wait_for(
        "stateUpdate with isPaused",
        secs(5.0),
        still(true, false),
        |m| is_state(m) && m["payload"]["isPaused"] == true,
    )
    .await;
    server.control("resume").await;
    ws.wait_for(
        "stateUpdate after resume",
        secs(5.0),
        still(true, true),
        |m| is_state(m) && m["payload"]["isPaused"] == false,
    )
    .await;
    server.control("stop").await;
    let stopped = ws
        .wait_for(
            "stateUpdate after stop",
            secs(10.0),
            still(true, false),
            |m| is_state(m) && m["payload"]["isLive"] == false,
        )
        .await;
    assert_eq!(stopped["payload"]["isPaused"], false, "{stopped}");
}

const METRICS: [&str; 7] = [
    "fps",
    "bitrate",
    "droppedFrames",
    "encoderLatency",
    "bufferHealth",
    "cpuUsage",
    "memoryUsage",
];

fn assert_metrics(m: &Value) {
    for field in METRICS {
        assert!(
            m["payload"][field].is_number(),
            "{field} missing or not a number: {m}"
        );
    }
}

#[tokio::test]
async fn metrics_arrive_about_once_a_second_while_live() {
    let server = Server::start().await;
    server.start_stream().await;
    let mut ws = Ws::open(&server).await;
    let first = ws.next_of_type("metricsUpdate", secs(3.0)).await;
    assert_metrics(&first);

    let moving = ws
        .wait_for(
            "metricsUpdate with fps > 0",
            secs(5.0),
            |_| {},
            |m| m["type"] == "metricsUpdate" && m["payload"]["fps"].as_f64() > Some(0.0),
        )
        .await;
    assert_metrics(&moving);
    assert!(
        f(&moving["payload"], "memoryUsage") > 0.0,
        "no memory usage: {moving}"
    );

    let start = Instant::now();
    let mut count = 0;
    while start.elapsed() < secs(4.0) {
        let left = secs(4.0).saturating_sub(start.elapsed());
        match ws.try_next(left).await {
            Some(m) if m["type"] == "metricsUpdate" => {
                assert_metrics(&m);
                count += 1;
            }
            _ => {}
        }
    }
    assert!(
        (2..=8).contains(&count),
        "{count} metricsUpdate messages in 4 s"
    );
}

#[tokio::test]
async fn websocket_requires_the_token() {
    let token = "ws-t0ken";
    let server = Server::builder().token(token).start().await;
    let url = server.ws_url();
    for (what, url, bearer) in [
        ("no token", url.clone(), None),
        ("wrong query token", format!("{url}?token=nope"), None),
        ("wrong bearer token", url.clone(), Some("nope")),
    ] {
        match Ws::connect(&url, bearer).await {
            Ok(_) => panic!("WebSocket accepted with {what}"),
            Err((status, detail)) => {
                assert_eq!(status, Some(401), "WebSocket with {what}: {detail}")
            }
        }
    }
    for (url, bearer) in [
        (format!("{url}?token={token}"), None),
        (url.clone(), Some(token)),
    ] {
        let mut ws = Ws::connect(&url, bearer)
            .await
            .unwrap_or_else(|e| panic!("WebSocket with the token refused: {e:?}"));
        let first = ws.next(secs(5.0)).await;
        assert!(
            is_state(&first),
            "first message is not a stateUpdate: {first}"
        );
    }

    // A browser offers the token as a subprotocol (base64url of its bytes, no padding).
    for (what, offered) in [
        ("a wrong token", "bearer.bm9wZQ"),
        ("a token that is not base64url", "bearer.%%%"),
    ] {
        match Ws::connect_offering(&url, &["stream-manager", offered]).await {
            Ok(_) => panic!("WebSocket accepted with {what} as a subprotocol"),
            Err((status, detail)) => assert_eq!(status, Some(401), "{what}: {detail}"),
        }
    }
    // "ws-t0ken" in base64url is d3MtdDBrZW4.
    let (mut ws, chosen) = Ws::connect_offering(&url, &["stream-manager", "bearer.d3MtdDBrZW4"])
        .await
        .unwrap_or_else(|e| panic!("WebSocket with the token as a subprotocol refused: {e:?}"));
    assert_eq!(chosen.as_deref(), Some("stream-manager"));
    let first = ws.next(secs(5.0)).await;
    assert!(
        is_state(&first),
        "first message is not a stateUpdate: {first}"
    );
}

/// The value of a Prometheus sample in `/metrics`.
async fn prometheus_value(server: &Server, name: &str) -> f64 {
    let (status, body) = server.get("/metrics").await;
    assert_eq!(status, 200, "{body}");
    let text = body.as_str().expect("text exposition").to_string();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
}

#[tokio::test]
async fn preview_frames_arrive_only_while_watched() {
    use base64::Engine as _;
    let preview = json!({"enabled": true, "fps": 5, "width": 160, "quality": 70});
    let server = Server::builder()
        .stream(Some(with(small_stream(), json!({"preview": preview}))))
        .start()
        .await;
    server.start_stream().await;
    server.wait_frames(45).await;
    assert_eq!(
        prometheus_value(&server, "stream_preview_frames_total").await,
        0.0,
        "previews were made with nobody watching"
    );

    let mut ws = Ws::open(&server).await;
    let first = ws.next_of_type("previewFrame", secs(5.0)).await;
    let p = &first["payload"];
    assert_eq!(
        (p["width"].as_u64(), p["height"].as_u64()),
        (Some(160), Some(90)),
        "{p}"
    );
    assert_eq!(p["format"], "jpeg");
    assert!(
        p["frameNumber"].as_u64().is_some() && p["timestamp"].as_u64().is_some(),
        "{p}"
    );
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(p["data"].as_str().expect("base64 data"))
        .expect("valid base64");
    let dir = TempDir::new("preview");
    let file = dir.join("preview.jpg");
    std::fs::write(&file, &jpeg).expect("write preview");
    let frames = decode_frames(file.to_str().expect("utf-8 path"), 1, 160, 90).await;
    assert_picture(&frames[0], "preview frame");

    // About the configured rate (5 per second), never a backlog.
    let t = Instant::now();
    let mut count = 0;
    while t.elapsed() < secs(2.0) {
        if let Some(m) = ws.try_next(secs(0.5)).await
            && m["type"] == "previewFrame"
        {
            count += 1;
        }
    }
    assert!(
        (5..=14).contains(&count),
        "{count} preview frames in 2 s at 5 fps"
    );
}

#[tokio::test]
async fn clients_are_capped_and_cannot_send_large_messages() {
    let server = Server::builder()
        .args(["--max-ws-clients", "2"])
        .start()
        .await;
    let mut first = Ws::open(&server).await;
    let _second = Ws::open(&server).await;
    let refused = Ws::connect(&server.ws_url(), None).await.err();
    assert_eq!(
        refused.as_ref().map(|r| r.0),
        Some(Some(503)),
        "{refused:?}"
    );
    assert!(
        refused.unwrap().1.contains("too_many_clients"),
        "the refusal names its cause"
    );
    // A 64 KiB message (the feed needs none) closes its sender with 1009.
    assert_eq!(first.next(secs(5.0)).await["type"], "stateUpdate");
    let code = first
        .send_until_closed("x".repeat(64 << 10), secs(5.0))
        .await;
    assert_eq!(code, Some(1009));
    // Its seat is free again.
    let mut third = wait_until("a seat to free up", secs(5.0), async || {
        Ws::connect(&server.ws_url(), None)
            .await
            .map_err(|e| format!("{e:?}"))
    })
    .await;
    assert_eq!(third.next(secs(5.0)).await["type"], "stateUpdate");
}
