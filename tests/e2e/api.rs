//! The REST API and the process as an operator meets them: input validation, stream-key
//! masking, authentication, metrics, configuration sources, refusing unsafe or invalid
//! settings, and graceful shutdown.

use serde_json::{Value, json};

use crate::harness::*;

/// One invalid `PATCH /api/stream/config`: content type, body, expected status and code,
/// and a word the error message must contain.
struct BadPatch {
    content_type: &'static str,
    body: String,
    status: u16,
    code: &'static str,
    names: &'static str,
}

fn bad(body: Value, code: &'static str, names: &'static str) -> BadPatch {
    BadPatch {
        content_type: "application/json",
        body: body.to_string(),
        status: 422,
        code,
        names,
    }
}

fn bad_inputs() -> Vec<BadPatch> {
    let dest = |id: &str, url: &str| json!({"destinations": [{"id": id, "url": url}]});
    vec![
        BadPatch {
            content_type: "application/json",
            body: r#"{"width": 640"#.into(),
            status: 400,
            code: "malformed_json",
            names: "",
        },
        BadPatch {
            content_type: "text/plain",
            body: r#"{"width": 640}"#.into(),
            status: 415,
            code: "unsupported_media_type",
            names: "",
        },
        BadPatch {
            content_type: "application/json",
            body: json!({"preset": "x".repeat(100 * 1024)}).to_string(),
            status: 413,
            code: "payload_too_large",
            names: "",
        },
        bad(json!([{"width": 640}]), "invalid_type", ""),
        bad(json!({"widht": 640}), "unknown_field", "widht"),
        bad(
            json!({"preview": {"colour": "red"}}),
            "unknown_field",
            "colour",
        ),
        bad(json!({"width": "640"}), "invalid_type", "width"),
        bad(json!({"audio": 5}), "invalid_type", "audio"),
        bad(
            json!({"destinations": {"id": "a"}}),
            "invalid_type",
            "destinations",
        ),
        bad(json!({"width": 641}), "out_of_range", "width"),
        bad(json!({"width": 8}), "out_of_range", "width"),
        bad(json!({"width": 7682}), "out_of_range", "width"),
        bad(json!({"height": 14}), "out_of_range", "height"),
        bad(json!({"height": 4322}), "out_of_range", "height"),
        bad(json!({"targetFPS": 0}), "out_of_range", "targetFPS"),
        bad(json!({"targetFPS": 121}), "out_of_range", "targetFPS"),
        bad(
            json!({"videoBitrateKbps": 99}),
            "out_of_range",
            "videoBitrateKbps",
        ),
        bad(
            json!({"videoBitrateKbps": 100_001}),
            "out_of_range",
            "videoBitrateKbps",
        ),
        bad(json!({"encoder": "h265_magic"}), "out_of_range", "encoder"),
        bad(json!({"preset": "warpspeed"}), "out_of_range", "preset"),
        bad(
            json!({"keyframeIntervalSec": 0.1}),
            "out_of_range",
            "keyframeIntervalSec",
        ),
        bad(
            json!({"keyframeIntervalSec": 21}),
            "out_of_range",
            "keyframeIntervalSec",
        ),
        bad(dest("a", "http://127.0.0.1/live/key"), "invalid_url", "url"),
        bad(
            dest("a", "srt://127.0.0.1:9000/live/key"),
            "invalid_url",
            "url",
        ),
        bad(dest("a", "rtmp://127.0.0.1/live"), "invalid_url", "url"),
        bad(dest("a", "not a url"), "invalid_url", "url"),
        bad(dest("", "rtmp://127.0.0.1/live/key"), "out_of_range", "id"),
        bad(
            json!({"destinations": [
                {"id": "twin", "url": "rtmp://127.0.0.1/live/a"},
                {"id": "twin", "url": "rtmp://127.0.0.1/live/b"}
            ]}),
            "out_of_range",
            "id",
        ),
    ]
}

#[tokio::test]
async fn bad_config_patches_are_refused_without_disturbing_the_stream() {
    let server = Server::start().await;
    server.start_stream().await;
    let before = server.wait_frames(30).await;
    let config_before = server.config().await;

    let mut failures = Vec::new();
    for case in bad_inputs() {
        let req = server
            .request(reqwest::Method::PATCH, "/api/stream/config")
            .header("content-type", case.content_type)
            .body(case.body.clone());
        let reply = server.send(req).await;
        let shown: String = case.body.chars().take(80).collect();
        let message = reply.1["error"]["message"].as_str().unwrap_or_default();
        let outcome = check_api_error(&reply, case.status, case.code).and_then(|()| match message
            .contains(case.names)
        {
            true => Ok(()),
            false => Err(format!("message does not name {:?}: {message}", case.names)),
        });
        if let Err(e) = outcome {
            failures.push(format!("PATCH {shown} ({}): {e}", case.content_type));
        }
    }

    assert_eq!(
        server.config().await,
        config_before,
        "a refused PATCH changed the config"
    );
    let f0 = u(&before, "frameCount");
    let after = server.assert_still_live(&before).await;
    let rendered = u(&after, "frameCount") - f0;
    let dropped = u(&after, "droppedFrames") - u(&before, "droppedFrames");
    assert!(
        dropped <= (rendered / 10).max(15),
        "{dropped} frames dropped while {rendered} were rendered during the bad requests"
    );
    assert!(
        failures.is_empty(),
        "wrong answers:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn stream_keys_are_masked_on_read() {
    let server = Server::start().await;
    let dests = json!([
        {"id": "main", "url": "rtmp://127.0.0.1:1940/live/supersecret"},
        {"id": "backup", "url": "rtmps://example.invalid/app/anothersecret", "enabled": false}
    ]);
    let patched = server.patch_config(json!({"destinations": dests})).await;
    let read = server.config().await;
    assert_eq!(patched, read, "PATCH and GET disagree");
    assert_eq!(read["destinations"][0]["id"], "main", "{read}");
    assert_eq!(
        read["destinations"][0]["url"], "rtmp://127.0.0.1:1940/live/****",
        "{read}"
    );
    assert_eq!(
        read["destinations"][1]["url"], "rtmps://example.invalid/app/****",
        "{read}"
    );
    assert_eq!(read["destinations"][1]["enabled"], false, "{read}");
    for path in [
        "/api/stream/config",
        "/api/stream/state",
        "/metrics",
        "/api/health",
    ] {
        let (_, body) = server.get(path).await;
        let text = body.to_string();
        assert!(
            !text.contains("supersecret") && !text.contains("anothersecret"),
            "GET {path} leaks a stream key: {text}"
        );
    }
}

#[tokio::test]
async fn api_token_guards_every_route_but_health() {
    let server = Server::builder().token("s3cr3t-t0ken").start().await;
    let http = server.client();
    let routes = [
        (reqwest::Method::GET, "/api/stream/state"),
        (reqwest::Method::GET, "/api/stream/config"),
        (reqwest::Method::PATCH, "/api/stream/config"),
        (reqwest::Method::POST, "/api/stream/start"),
        (reqwest::Method::GET, "/metrics"),
        (reqwest::Method::GET, "/api/openapi.json"),
    ];
    for (method, path) in &routes {
        for token in [None, Some("wrong-token")] {
            let mut req = http.request(method.clone(), server.url(path));
            if *method == reqwest::Method::PATCH {
                req = req.json(&json!({"videoBitrateKbps": 500}));
            }
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let reply = server.send(req).await;
            assert_api_error(
                &reply,
                401,
                "unauthorized",
                &format!("{method} {path} with {token:?}"),
            );
        }
    }
    let health = server.send(http.get(server.url("/api/health"))).await;
    assert_eq!(health.0, 200, "health needs no token: {health:?}");

    // The refused calls changed nothing; with the token everything answers.
    let state = server.state().await;
    assert_eq!(
        state["isLive"], false,
        "an unauthorized start started the stream: {state}"
    );
    assert_eq!(
        server.config().await["videoBitrateKbps"],
        400,
        "an unauthorized PATCH applied"
    );
    let (status, body) = server.get("/metrics").await;
    assert_eq!(status, 200, "{body}");
}

/// The sum of a Prometheus metric's samples in a text exposition.
fn metric(text: &str, name: &str) -> Option<f64> {
    let samples: Vec<f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!samples.is_empty()).then(|| samples.iter().sum())
}

#[tokio::test]
async fn health_and_metrics_report_the_running_stream() {
    let server = Server::start().await;
    let health = server.health().await;
    assert_eq!(health["status"], "ok", "{health}");
    assert!(health["components"].is_object(), "{health}");

    server.start_stream().await;
    let scrape = async || {
        let resp = server
            .request(reqwest::Method::GET, "/metrics")
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(resp.status(), 200);
        let kind = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("").to_string());
        assert!(
            kind.as_deref().unwrap_or("").starts_with("text/plain"),
            "content type {kind:?}"
        );
        let text = resp.text().await.expect("metrics text");
        metric(&text, "stream_frames_total")
            .unwrap_or_else(|| panic!("no stream_frames_total sample in:\n{text}"))
    };
    let first = scrape().await;
    wait_until("stream_frames_total to rise", secs(5.0), async || {
        let now = scrape().await;
        if now >= first + 15.0 {
            Ok(())
        } else {
            Err(format!("{first} -> {now}"))
        }
    })
    .await;
}

#[tokio::test]
async fn config_file_is_overridden_by_env_and_env_by_flags() {
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    let file_line = format!("http-port = {file_port}");
    let in_file = |answering| {
        Server::builder()
            .file_line(&file_line)
            .http_port_elsewhere(answering)
    };

    let server = in_file(flag_port)
        .env("STREAM_MANAGER_HTTP_PORT", &env_port.to_string())
        .args(["--http-port", &flag_port.to_string()])
        .start()
        .await;
    assert!(
        !is_listening(file_port) && !is_listening(env_port),
        "flag did not win"
    );
    drop(server);

    let server = in_file(env_port)
        .env("STREAM_MANAGER_HTTP_PORT", &env_port.to_string())
        .start()
        .await;
    assert!(!is_listening(file_port), "env did not override the file");
    drop(server);

    let server = in_file(file_port).start().await;
    assert_eq!(server.health().await["status"], "ok");
}

#[tokio::test]
async fn invalid_settings_stop_the_start_naming_the_culprit() {
    let cases = [
        (
            Server::builder()
                .http_port_elsewhere(0)
                .file_line("http-port = 70000"),
            "http-port",
        ),
        (Server::builder().file_line("colour = \"blue\""), "colour"),
        (
            Server::builder().stream(Some(with(small_stream(), json!({"width": 321})))),
            "width",
        ),
        (
            Server::builder()
                .http_port_elsewhere(0)
                .env("STREAM_MANAGER_HTTP_PORT", "eighty"),
            "STREAM_MANAGER_HTTP_PORT",
        ),
        (
            Server::builder()
                .http_port_elsewhere(0)
                .args(["--http-port", "eighty"]),
            "http-port",
        ),
    ];
    for (builder, culprit) in cases {
        let (status, output) = builder.expect_exit().await;
        assert!(
            !status.success(),
            "started despite a bad {culprit}; output:\n{output}"
        );
        assert!(
            output.contains(culprit),
            "exit message does not name {culprit}:\n{output}"
        );
    }
}

#[tokio::test]
async fn non_loopback_bind_needs_a_token_or_insecure() {
    let (status, output) = Server::builder()
        .args(["--bind", "0.0.0.0"])
        .expect_exit()
        .await;
    assert!(
        !status.success(),
        "served 0.0.0.0 without a token; output:\n{output}"
    );
    assert!(
        output.contains("--insecure"),
        "refusal does not mention --insecure:\n{output}"
    );

    let insecure = Server::builder()
        .args(["--bind", "0.0.0.0", "--insecure"])
        .start()
        .await;
    assert_eq!(insecure.health().await["status"], "ok");
    drop(insecure);
    let guarded = Server::builder()
        .args(["--bind", "0.0.0.0"])
        .token("guarded-token")
        .start()
        .await;
    assert_eq!(guarded.state().await["isLive"], false);
}

#[tokio::test]
async fn sigterm_while_live_exits_zero() {
    let mut server = Server::start().await;
    server.start_stream().await;
    let player = Player::spawn(&server.rtmp_play_url(), W, H);
    player.wait_frames(10, secs(15.0)).await;
    server.proc.signal("TERM");
    let status = server.proc.wait_exit(secs(15.0)).await;
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status}");
}

#[tokio::test]
async fn sigint_exits_zero() {
    let mut server = Server::start().await;
    server.proc.signal("INT");
    let status = server.proc.wait_exit(secs(15.0)).await;
    assert_eq!(status.code(), Some(0), "exit after SIGINT: {status}");
}

/// The committed copy of the OpenAPI document (`docs/openapi.json`).
fn openapi_snapshot() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[tokio::test]
async fn the_openapi_document_is_the_committed_one() {
    // Every route, schema and status the server documents is in `docs/openapi.json`, so a
    // change to the public contract shows in review. After a deliberate change:
    // `UPDATE_OPENAPI=1 cargo nextest run -E 'test(openapi_document)'`.
    let server = Server::start().await;
    let served = server.get_json("/api/openapi.json").await;
    let text = serde_json::to_string_pretty(&served).unwrap() + "\n";
    let path = openapi_snapshot();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != text {
        let line = committed
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .map_or(committed.lines().count().min(text.lines().count()), |i| i);
        panic!(
            "the served OpenAPI document differs from {} from line {}: served {:?}, \
             committed {:?} (UPDATE_OPENAPI=1 rewrites it after a deliberate change)",
            path.display(),
            line + 1,
            text.lines().nth(line),
            committed.lines().nth(line)
        );
    }
}
