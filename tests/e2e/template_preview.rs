//! `stream-manager template preview FILE.wasm --watch`: the template authors' page and its
//! API on a local port. A copy of a test guest is served; the file is then replaced by
//! another build (the picture follows within seconds), by a corrupt file (the error is
//! reported, the last good build still renders) and by a good build again.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::guests::test_guest_path;
use crate::harness::*;

/// The preview of `file` (with `--watch`) and its URL, read from the first line of stdout.
fn start_preview(file: &Path, dir: &TempDir) -> (Proc, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stream-manager"));
    cmd.args(["template", "preview", "--port", "0", "--watch"])
        .arg(file)
        .stdout(Stdio::piped());
    let mut proc = Proc::spawn("template preview", &mut cmd, &dir.join("preview.log"), true);
    let stdout = proc.child_mut().stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no URL on stdout; log:\n{}", proc.log_tail(20)));
    let url = line
        .trim()
        .strip_prefix("template preview: ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .trim_end_matches('/')
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    (proc, url)
}

/// Copies `from` over `to` the way a build does: written in place, not renamed.
fn replace(to: &Path, from: &Path) {
    std::fs::write(to, std::fs::read(from).unwrap()).unwrap();
}

async fn template(http: &reqwest::Client, url: &str) -> Value {
    let reply = http
        .get(format!("{url}/api/template"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    reply.json().await.unwrap()
}

/// `POST /api/render` with `body`: the status, the headers and the body.
async fn render(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let reply = http
        .post(format!("{url}/api/render"))
        .json(body)
        .send()
        .await
        .unwrap();
    let (status, headers) = (reply.status().as_u16(), reply.headers().clone());
    (status, headers, reply.bytes().await.unwrap().to_vec())
}

/// The colour at the centre of a PNG, and its size.
fn centre(png: &[u8]) -> ([u8; 3], (u32, u32)) {
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .expect("a PNG")
        .to_rgb8();
    let (w, h) = image.dimensions();
    (image.get_pixel(w / 2, h / 2).0, (w, h))
}

/// The colour of `frame` with the default params (asserting a 200 PNG).
async fn colour_at(http: &reqwest::Client, url: &str, frame: u32) -> [u8; 3] {
    let (status, headers, body) = render(http, url, &json!({"frame": frame})).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "image/png");
    centre(&body).0
}

fn error_code(body: &[u8]) -> (String, String) {
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)));
    (
        v["error"]["code"].as_str().unwrap_or_default().to_string(),
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

const RED: [u8; 3] = [255, 0, 0];
const BLUE: [u8; 3] = [0, 0, 255];

#[tokio::test]
async fn template_preview_serves_the_page_renders_and_follows_the_file() {
    let dir = TempDir::new("preview");
    let file = dir.join("colour.wasm");
    replace(&file, &test_guest_path("colour_a"));
    let (_proc, url) = start_preview(&file, &dir);
    let http = reqwest::Client::new();

    // The page: the console's files, under the console's policy.
    let page = http.get(format!("{url}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    for directive in ["default-src 'none'", "script-src 'self'", "img-src 'self'"] {
        assert!(csp.contains(directive), "{directive:?} not in {csp:?}");
    }
    let html = page.text().await.unwrap();
    assert!(html.contains("template-preview.js"), "{html}");
    for path in ["template-preview.js", "schema-form.js", "style.css"] {
        let reply = http.get(format!("{url}/{path}")).send().await.unwrap();
        assert_eq!(reply.status(), 200, "/{path}");
    }
    let script = http
        .get(format!("{url}/template-preview.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        script.contains("./schema-form.js"),
        "the form generator is not reused"
    );

    // What is on show.
    let t = template(&http, &url).await;
    assert_eq!(t["info"]["name"], "colour", "{t}");
    assert_eq!(t["info"]["version"], "1.0.0", "{t}");
    assert_eq!(t["info"]["defaultSize"], json!([320, 180]), "{t}");
    assert_eq!(t["version"], 1, "{t}");
    assert_eq!(t["fps"], 30, "{t}");
    assert_eq!(t["watch"], true, "{t}");
    assert!(t["error"].is_null(), "{t}");
    assert!(t["info"]["paramsSchema"]["properties"]["showRenders"].is_object());

    // A frame: a PNG of the default size in the template's colour, its cost in headers.
    let (status, headers, body) = render(&http, &url, &json!({"params": {}, "frame": 3})).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(centre(&body), (RED, (320, 180)));
    assert_eq!(headers["x-preview-frame"], "3");
    assert_eq!(headers["x-preview-version"], "1");
    assert_eq!(headers["x-frames-drawn"], "4", "frames 0 to 3 are drawn");
    for name in ["x-guest-ms", "x-raster-ms", "x-budget-ms", "x-render-ms"] {
        let ms: f64 = headers[name].to_str().unwrap().parse().unwrap();
        assert!(ms >= 0.0 && ms.is_finite(), "{name}: {ms}");
    }
    let budget: f64 = headers["x-budget-ms"].to_str().unwrap().parse().unwrap();
    assert!(
        budget > 1.0,
        "the budget of one template at 30 fps: {budget}"
    );
    // The next frame continues the run; an earlier one starts it again.
    let (_, headers, _) = render(&http, &url, &json!({"params": {}, "frame": 4})).await;
    assert_eq!(headers["x-frames-drawn"], "1");
    let (_, headers, _) = render(&http, &url, &json!({"params": {}, "frame": 1})).await;
    assert_eq!(headers["x-frames-drawn"], "2");

    // Refused requests, in the main API's error shape.
    let (status, _, body) = render(&http, &url, &json!({"params": {"showRenders": "yes"}})).await;
    assert_eq!(status, 422);
    let (code, message) = error_code(&body);
    assert_eq!(code, "invalid_params", "{message}");
    assert!(message.starts_with("params: /showRenders: "), "{message}");
    let (status, _, body) = render(&http, &url, &json!({"frame": 0, "what": 1})).await;
    assert_eq!(
        (status, error_code(&body).0.as_str()),
        (422, "unknown_field")
    );
    let (status, _, body) = render(&http, &url, &json!({"frame": 36_000})).await;
    assert_eq!(
        (status, error_code(&body).0.as_str()),
        (422, "out_of_range")
    );
    let post = || http.post(format!("{url}/api/render"));
    for (request, status, what) in [
        (
            post()
                .header("content-type", "application/json")
                .body(vec![b' '; 100 * 1024]),
            413,
            "a body over 64 KiB",
        ),
        (
            post().body("{}"),
            415,
            "a body that does not say it is JSON",
        ),
        (
            post()
                .header("origin", "http://evil.example")
                .json(&json!({})),
            403,
            "a request from another site's page",
        ),
    ] {
        assert_eq!(request.send().await.unwrap().status(), status, "{what}");
    }

    // A new build over the file: a long poll answers with it, the picture follows.
    let revision = t["revision"].as_u64().unwrap();
    let poll = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move {
            let reply = http
                .get(format!("{url}/api/template?after={revision}"))
                .send()
                .await
                .unwrap();
            reply.json::<Value>().await.unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !poll.is_finished(),
        "the long poll answered with nothing new"
    );
    replace(&file, &test_guest_path("colour_b"));
    let news = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("the long poll answers once the file is reloaded")
        .unwrap();
    assert_eq!(news["version"], 2, "{news}");
    assert_eq!(news["info"]["version"], "2.0.0", "{news}");
    assert_eq!(colour_at(&http, &url, 4).await, BLUE);

    // A corrupt file: reported, and the last good build still renders.
    std::fs::write(&file, b"\0asm\x0d\0\x01\0 not a component").unwrap();
    let t = wait_until("the corrupt file to be reported", secs(10.0), async || {
        let t = template(&http, &url).await;
        if t["error"].is_string() {
            Ok(t)
        } else {
            Err(t.to_string())
        }
    })
    .await;
    assert_eq!(t["version"], 2, "{t}");
    assert_eq!(t["info"]["version"], "2.0.0", "{t}");
    assert!(t["error"].as_str().unwrap().contains("colour.wasm"), "{t}");
    assert_eq!(colour_at(&http, &url, 5).await, BLUE);

    // A good build again: the error is gone, its picture is on show.
    replace(&file, &test_guest_path("colour_a"));
    wait_until("colour-a again", secs(10.0), async || {
        let t = template(&http, &url).await;
        let colour = colour_at(&http, &url, 0).await;
        if t["error"].is_null() && t["version"] == 3 && colour == RED {
            Ok(())
        } else {
            Err(format!("{t}, {colour:?}"))
        }
    })
    .await;
}

#[test]
fn template_preview_without_watch_refuses_a_file_that_does_not_load() {
    let dir = TempDir::new("preview-bad");
    let file = dir.join("broken.wasm");
    std::fs::write(&file, b"not wasm at all").unwrap();
    let out = Command::new("timeout")
        .args(["60", env!("CARGO_BIN_EXE_stream-manager")])
        .args(["template", "preview", "--port", "0"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.wasm"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing was served");
}
