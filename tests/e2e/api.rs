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

/// `stream-manager token new --role <role> --name <name>`: the token and the config lines it
/// prints.
fn new_token(role: &str, name: &str) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stream-manager"))
        .args(["token", "new", "--role", role, "--name", name])
        .output()
        .expect("run token new");
    assert!(out.status.success(), "token new failed: {out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let token = text
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 43 && !l.contains(' '))
        .unwrap_or_else(|| panic!("no token in:\n{text}"))
        .to_string();
    let entry = text[text.find("[[auth.tokens]]").expect("a config entry")..].to_string();
    assert!(
        !entry.contains(&token),
        "the config entry holds the token itself"
    );
    (token, entry)
}

/// A server with `--api-token` (admin) and a viewer and an operator token from the config
/// file, as `token new` printed them.
async fn server_with_roles() -> (Server, [(&'static str, String); 3]) {
    let (viewer, viewer_entry) = new_token("viewer", "wall screen");
    let (operator, operator_entry) = new_token("operator", "desk");
    let admin = "admin-t0ken-of-the-legacy-flag".to_string();
    let server = Server::builder()
        .file_line(&viewer_entry)
        .file_line(&operator_entry)
        .token(&admin)
        .start()
        .await;
    (
        server,
        [("viewer", viewer), ("operator", operator), ("admin", admin)],
    )
}

/// The role an operation of the served document needs (`None`: open).
fn documented_role(op: &Value) -> Option<String> {
    let security = op["security"]
        .as_array()
        .expect("every operation has security");
    if security
        .iter()
        .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
    {
        return None;
    }
    Some(
        security[0]["bearer"][0]
            .as_str()
            .expect("a role per secured operation")
            .to_string(),
    )
}

#[tokio::test]
async fn every_route_answers_each_role_as_the_document_says() {
    let (server, tokens) = server_with_roles().await;
    let http = server.client();
    // A destination with a stream key, which must not surface anywhere below.
    let key = "live-key-7f3a9c";
    server
        .patch_config(json!({"destinations": [{"id": "d", "url": format!("rtmp://127.0.0.1:9/app/{key}"), "enabled": false}]}))
        .await;
    let (_, doc) = server.get("/api/openapi.json").await;
    assert!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"]
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("bearer")),
        "{}",
        doc["components"]
    );
    let rank = |r: &str| ["viewer", "operator", "admin"].iter().position(|x| *x == r);
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let need = documented_role(op);
            let uri = path.replace("{id}", "no-such-id").replace("{n}", "0");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let callers = [None]
                .into_iter()
                .chain(tokens.iter().map(|(r, t)| Some((*r, t.as_str()))));
            for caller in callers {
                let mut req = http.request(method.clone(), server.url(&uri));
                if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
                    req = req.json(&json!({}));
                }
                if let Some((_, t)) = caller {
                    req = req.bearer_auth(t);
                }
                let reply = server.send(req).await;
                let what = format!("{method} {path} as {:?}", caller.map(|c| c.0));
                match (&need, caller) {
                    (Some(_), None) => assert_api_error(&reply, 401, "unauthorized", &what),
                    (Some(need), Some((role, _))) if rank(role) < rank(need) => {
                        assert_api_error(&reply, 403, "forbidden", &what);
                        let message = reply.1["error"]["message"].as_str().unwrap();
                        assert!(message.contains(need.as_str()), "{what}: {message}");
                    }
                    _ => assert!(
                        ![401, 403, 429].contains(&reply.0),
                        "{what} was refused: {reply:?}"
                    ),
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 4 * 57, "only {checked} calls made");

    // Who am I, per token.
    for (role, token) in &tokens {
        let reply = server
            .send(http.get(server.url("/api/me")).bearer_auth(token))
            .await;
        assert_eq!(
            (reply.0, reply.1["role"].as_str()),
            (200, Some(*role)),
            "{reply:?}"
        );
    }
    let reply = server
        .send(http.get(server.url("/api/me")).bearer_auth(&tokens[0].1))
        .await;
    assert_eq!(reply.1["name"], "wall screen");
    // The scheme's name in any case (RFC 7235).
    let reply = server
        .send(
            http.get(server.url("/api/me"))
                .header("authorization", format!("bEARER {}", tokens[1].1)),
        )
        .await;
    assert_eq!(reply.1["role"], "operator", "{reply:?}");

    // The WebSocket needs a viewer.
    let refused = Ws::connect(&server.ws_url(), None).await.err();
    assert_eq!(refused.map(|r| r.0), Some(Some(401)));
    let refused = Ws::connect(&server.ws_url(), Some("not-a-token"))
        .await
        .err();
    assert_eq!(refused.map(|r| r.0), Some(Some(401)));
    let mut ws = Ws::connect(&server.ws_url(), Some(&tokens[0].1))
        .await
        .expect("a viewer opens the feed");
    assert_eq!(ws.next(secs(5.0)).await["type"], "stateUpdate");

    // Health without a token shows states only; with one, the details.
    let open = server.send(http.get(server.url("/api/health"))).await;
    let dest = &open.1["components"]["destinations"];
    assert!(
        open.1["components"]["store"].get("detail").is_none(),
        "{open:?}"
    );
    assert!(
        dest.as_object()
            .unwrap()
            .values()
            .all(|d| d.get("url").is_none()),
        "{open:?}"
    );
    let full = server.get("/api/health").await;
    assert!(
        full.1["components"]["store"]["detail"].is_string(),
        "{full:?}"
    );

    // No token and no stream key in anything the server wrote.
    let log = std::fs::read_to_string(server.dir().join("server.log")).unwrap();
    for secret in tokens.iter().map(|(_, t)| t.as_str()).chain([key]) {
        assert!(
            !log.contains(secret),
            "the log holds a secret ({secret}):\n{log}"
        );
    }
}

#[tokio::test]
async fn wrong_tokens_are_limited_per_address() {
    let server = Server::builder().token("the-right-t0ken").start().await;
    let http = server.client();
    let attempt = |token: &str| {
        server.send(
            http.get(server.url("/api/stream/state"))
                .bearer_auth(token.to_string()),
        )
    };
    for i in 0..10 {
        let reply = attempt(&format!("guess-{i}")).await;
        assert_api_error(&reply, 401, "unauthorized", &format!("guess {i}"));
    }
    // From now on, any token from this address waits, the right one too.
    for token in ["guess-10", "the-right-t0ken"] {
        let resp = http
            .get(server.url("/api/stream/state"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let retry: u64 = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .expect("Retry-After in seconds");
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        let reply = reply_of(resp).await;
        assert_api_error(&reply, 429, "too_many_requests", token);
    }
    // What needs no token still answers.
    let health = server.send(http.get(server.url("/api/health"))).await;
    assert_eq!(health.0, 200);
    // The burst is logged once, without any of the tokens.
    let log = std::fs::read_to_string(server.dir().join("server.log")).unwrap();
    assert_eq!(
        log.matches("too many failed authentications").count(),
        1,
        "{log}"
    );
    assert!(
        !log.contains("guess-") && !log.contains("the-right-t0ken"),
        "{log}"
    );
    // No colour escapes in a log that goes to a file.
    assert!(!log.contains('\u{1b}'), "colour escapes in the file log");
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
