//! Live inputs on video layers: media files uploaded, probed and played in real time at the
//! layer's place, looping without a seam; the input API's validation, masking and
//! refusals; inputs restored from Redis after a crash.

use std::path::{Path, PathBuf};
use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::assets::post_alone;
use crate::common::{call, clear_scene, refused};
use crate::harness::*;
use crate::pixels::{Rgb, black, pixel};

/// Y of grey frame `i` of the counting clip (limited range).
fn clip_luma(i: usize) -> u8 {
    (40 + 20 * i) as u8
}

/// The RGB level a player decodes for Y `y` (limited range, BT.601/709 agree on grey).
fn rgb_level(y: u8) -> f64 {
    (f64::from(y) - 16.0) * 255.0 / 219.0
}

/// Which frame of the counting clip a sampled grey is (`None`: something else).
fn clip_frame(p: Rgb) -> Option<usize> {
    let spread = p.iter().max().unwrap() - p.iter().min().unwrap();
    if spread > 24 {
        return None;
    }
    let mean = p.iter().map(|&c| f64::from(c)).sum::<f64>() / 3.0;
    (0..10).find(|&i| (mean - rgb_level(clip_luma(i))).abs() < 9.0)
}

/// Makes a clip with ffmpeg: `filter` as a lavfi source, H.264 in MP4.
fn make_clip(dir: &Path, name: &str, filter: &str, seconds: f64) -> PathBuf {
    let path = dir.join(name);
    let t = seconds.to_string();
    lavfi(
        &path,
        filter,
        &[
            "-t",
            &t,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "10",
            "-bf",
            "0",
        ],
    );
    path
}

/// A 160×90 clip of 10 frames at 10 fps, frame `i` a flat grey of Y = 40 + 20·i.
fn counting_clip(dir: &Path) -> PathBuf {
    make_clip(
        dir,
        "count.mp4",
        "nullsrc=s=160x90:r=10,geq=lum='40+20*mod(N,10)':cb=128:cr=128",
        1.0,
    )
}

/// Uploads a file to `/api/media`.
async fn upload(server: &Server, path: &Path, content_type: &str) -> Reply {
    let bytes = std::fs::read(path).expect("clip readable");
    post_alone(server, "/api/media?name=clip", Some(content_type), &bytes).await
}

fn video_layer(id: &str, input: &str, (x, y, w, h): (i32, i32, i32, i32)) -> Value {
    json!({"id": id, "kind": "video", "position": {"x": x, "y": y, "width": w, "height": h},
           "video": {"input": input}})
}

/// Waits until input `id` is in `state`.
async fn wait_state(server: &Server, id: &str, state: &str) -> Value {
    let path = format!("/api/inputs/{id}");
    wait_until(&format!("input {id} {state}"), secs(15.0), async || {
        let input = server.get_json(&path).await;
        if input["state"] == state {
            Ok(input)
        } else {
            Err(input.to_string())
        }
    })
    .await
}

#[tokio::test]
async fn a_media_file_plays_on_its_layer_in_real_time_and_loops_without_a_seam() {
    let dir = TempDir::new("clips");
    let clip = counting_clip(dir.path());
    let (server, player) = crate::common::live_server(Server::builder()).await;
    let mut ws = Ws::open(&server).await;

    let (status, media) = upload(&server, &clip, "video/mp4").await;
    assert_eq!(status, 201, "{media}");
    assert_eq!(
        (&media["width"], &media["height"], &media["videoCodec"]),
        (&json!(160), &json!(90), &json!("h264")),
        "{media}"
    );
    let media_id = media["id"].as_str().unwrap();
    assert_eq!(server.get_json("/api/media").await[0]["id"], media_id);

    let input = call(
        &server,
        Method::POST,
        "/api/inputs",
        Some(&json!({"id": "clip", "name": "Clip", "kind": "file", "url": media_id})),
        201,
    )
    .await;
    assert_eq!(input["kind"], "file");
    wait_state(&server, "clip", "playing").await;
    // The WS announced it: connecting, then playing.
    let mut states = Vec::new();
    while states.last().map(String::as_str) != Some("playing") {
        let update = ws.next_of_type("inputUpdate", secs(5.0)).await;
        assert_eq!(update["payload"]["id"], "clip");
        states.push(update["payload"]["state"].as_str().unwrap().to_string());
    }
    assert_eq!(states, ["connecting", "playing"]);

    // The bottom-right quarter of the canvas (output 160,90 – 320,180).
    call(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&video_layer("cam", "clip", (960, 540, 960, 540))),
        201,
    )
    .await;
    let t = Instant::now();
    let frames = player.wait_since(t, KEPT_FRAMES).await;
    // Skip the first second (the layer appearing), then read the clip's frame numbers.
    let seen: Vec<(Option<usize>, Rgb)> = frames[30..]
        .iter()
        .map(|f| {
            assert!(
                black(pixel(f, 80, 45)),
                "outside the layer: {:?}",
                pixel(f, 80, 45)
            );
            let p = pixel(f, 240, 135);
            (clip_frame(p), p)
        })
        .collect();
    for (i, (frame, p)) in seen.iter().enumerate() {
        assert!(
            frame.is_some(),
            "output frame {i}: {p:?} is no frame of the clip"
        );
    }
    // Runs of one clip frame: 10 fps on a 30 fps program shows each about 3 times; the clip
    // counts up by one, including across the seam from frame 9 back to 0.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (frame, _) in &seen {
        let f = frame.unwrap();
        match runs.last_mut() {
            Some((g, n)) if *g == f => *n += 1,
            _ => runs.push((f, 1)),
        }
    }
    let inner = &runs[1..runs.len() - 1];
    for pair in inner.windows(2) {
        assert_eq!(pair[1].0, (pair[0].0 + 1) % 10, "runs {runs:?}");
    }
    assert!(
        inner.iter().all(|(_, n)| (2..=4).contains(n)),
        "a frame held too long or too short (a seam?): {runs:?}"
    );
    assert!(
        inner.iter().filter(|(f, _)| *f == 0).count() >= 4,
        "{runs:?}"
    );

    // Real time: 10 s of decoding is 100 frames, ±1 %.
    let decoded = |v: &Value| v["stats"]["framesDecoded"].as_u64().unwrap();
    let t0 = Instant::now();
    let before = decoded(&server.get_json("/api/inputs/clip").await);
    tokio::time::sleep_until((t0 + secs(10.0)).into()).await;
    let after = decoded(&server.get_json("/api/inputs/clip").await);
    assert!(
        (99..=101).contains(&(after - before)),
        "{} frames in 10 s",
        after - before
    );
    let metrics = server.get("/metrics").await.1;
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("stream_input_state{input=\"clip\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("stream_input_reconnects_total{input=\"clip\"} 0"),
        "{text}"
    );
    let state = server.state().await;
    assert_eq!(state["droppedFrames"], 0, "{state}");
}

#[tokio::test]
async fn a_file_without_loop_ends_on_its_last_frame() {
    let dir = TempDir::new("clips");
    let clip = counting_clip(dir.path());
    let (server, player) = crate::common::live_server(Server::builder()).await;
    let (_, media) = upload(&server, &clip, "video/mp4").await;
    // Created disabled, shown, then enabled: the layer sees it from its first frame.
    let body = json!({"id": "once", "kind": "file", "url": media["id"], "loop": false,
                      "enabled": false});
    call(&server, Method::POST, "/api/inputs", Some(&body), 201).await;
    call(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&video_layer("v", "once", (0, 0, 1920, 1080))),
        201,
    )
    .await;
    tokio::time::sleep(secs(0.3)).await;
    let enable = json!({"enabled": true});
    call(
        &server,
        Method::PATCH,
        "/api/inputs/once",
        Some(&enable),
        200,
    )
    .await;
    let ended = wait_state(&server, "once", "ended").await;
    assert_eq!(ended["stats"]["framesDecoded"], 10, "{ended}");
    // The last frame stays on air, past the hold time.
    tokio::time::sleep(secs(1.5)).await;
    let frame = player.settled_after(Instant::now()).await;
    assert_eq!(clip_frame(pixel(&frame, 160, 90)), Some(9));
    // Health does not call an ended file a fault.
    assert_eq!(
        server.health().await["components"]["inputs"]["status"],
        "ok"
    );
}

#[tokio::test]
async fn inputs_and_media_refuse_what_they_cannot_use() {
    let server = Server::builder()
        .args(["--max-media-bytes", "200000"])
        .start()
        .await;
    clear_scene(&server).await;
    // Media: not a video, too big, wrong type.
    let garbage: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let reply = post_alone(&server, "/api/media", Some("video/mp4"), &garbage).await;
    assert_api_error(&reply, 422, "invalid_media", "garbage");
    let big = vec![0u8; 300_000];
    let reply = post_alone(&server, "/api/media", Some("video/mp4"), &big).await;
    assert_api_error(&reply, 413, "payload_too_large", "too big");
    let reply = post_alone(&server, "/api/media", Some("text/plain"), b"hello").await;
    assert_api_error(&reply, 415, "unsupported_media_type", "text");
    assert_eq!(server.get_json("/api/media").await, json!([]));
    // Nothing of the refused uploads is left on disk.
    let leftovers: Vec<_> = std::fs::read_dir(server_media_dir(&server))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Inputs: each field checked and named.
    let cases = [
        (
            json!({"kind": "rtsp", "url": "http://cam/x"}),
            "invalid_url",
        ),
        (json!({"kind": "rtsp"}), "invalid_url"),
        (
            json!({"kind": "rtsp", "url": "rtsp://cam/x", "loop": true}),
            "out_of_range",
        ),
        (
            json!({"kind": "file", "url": "../../etc/passwd"}),
            "invalid_url",
        ),
        (
            json!({"kind": "file", "url": "nothing-here"}),
            "invalid_url",
        ),
        (
            json!({"kind": "rtmp", "url": "rtmp://x/y/z"}),
            "invalid_url",
        ),
        (json!({"kind": "webcam"}), "out_of_range"),
        (
            json!({"kind": "rtsp", "url": "rtsp://c/x", "audio": {"gainDb": 40}}),
            "out_of_range",
        ),
        (
            json!({"kind": "rtsp", "url": "rtsp://c/x", "bogus": 1}),
            "unknown_field",
        ),
        (
            json!({"id": "a b", "kind": "rtsp", "url": "rtsp://c/x"}),
            "out_of_range",
        ),
    ];
    for (body, code) in cases {
        refused(&server, Method::POST, "/api/inputs", Some(&body), 422, code).await;
    }
    refused(
        &server,
        Method::GET,
        "/api/inputs/nope",
        None,
        404,
        "not_found",
    )
    .await;

    // Credentials never come back; a stream key is shown once.
    let cam = json!({"id": "cam", "kind": "rtsp", "url": "rtsp://admin:hunter2@127.0.0.1:9/live"});
    let created = call(&server, Method::POST, "/api/inputs", Some(&cam), 201).await;
    assert_eq!(created["url"], "rtsp://****:****@127.0.0.1:9/live");
    let pushed = call(
        &server,
        Method::POST,
        "/api/inputs",
        Some(&json!({"id": "guest", "kind": "rtmp"})),
        201,
    )
    .await;
    let key = pushed["streamKey"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 24);
    let listed = server.get_json("/api/inputs").await.to_string();
    assert!(
        !listed.contains("hunter2") && !listed.contains(&key),
        "{listed}"
    );
    assert!(listed.contains("\"streamKey\":\"****\""), "{listed}");
    // A masked URL sent back keeps the stored credentials; kind and id cannot change.
    let patched = call(
        &server,
        Method::PATCH,
        "/api/inputs/cam",
        Some(&json!({"url": "rtsp://****:****@127.0.0.1:9/live", "name": "Camera"})),
        200,
    )
    .await;
    assert_eq!(patched["name"], "Camera");
    refused(
        &server,
        Method::PATCH,
        "/api/inputs/cam",
        Some(&json!({"kind": "file"})),
        422,
        "out_of_range",
    )
    .await;
    refused(
        &server,
        Method::POST,
        "/api/inputs",
        Some(&cam),
        409,
        "conflict",
    )
    .await;

    // In use: a layer shows it, so it cannot go.
    call(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&video_layer("v", "cam", (0, 0, 100, 100))),
        201,
    )
    .await;
    refused(
        &server,
        Method::DELETE,
        "/api/inputs/cam",
        None,
        409,
        "conflict",
    )
    .await;
    refused(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&video_layer("w", "nope", (0, 0, 100, 100))),
        422,
        "unknown_input",
    )
    .await;
    call(&server, Method::DELETE, "/api/scene/layers/v", None, 200).await;
    call(&server, Method::DELETE, "/api/inputs/cam", None, 200).await;
    let log = std::fs::read_to_string(server_log(&server)).unwrap_or_default();
    assert!(
        !log.contains("hunter2") && !log.contains(&key),
        "a secret in the log"
    );
}

/// The media folder the harness gives a server.
fn server_media_dir(server: &Server) -> PathBuf {
    server.dir().join("media")
}

fn server_log(server: &Server) -> PathBuf {
    server.dir().join("server.log")
}

#[tokio::test]
async fn inputs_come_back_after_a_crash_and_play_by_themselves() {
    let redis = Redis::start().await;
    let media = TempDir::new("media");
    let dir = TempDir::new("clips");
    let clip = counting_clip(dir.path());
    let mut server = Server::builder()
        .redis(&redis, "e2e-in:")
        .args(["--media-dir", media.path().to_str().unwrap()])
        .start()
        .await;
    clear_scene(&server).await;
    let (_, uploaded) = upload(&server, &clip, "video/mp4").await;
    let body = json!({"id": "clip", "kind": "file", "url": uploaded["id"]});
    call(&server, Method::POST, "/api/inputs", Some(&body), 201).await;
    call(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&video_layer("v", "clip", (0, 0, 1920, 1080))),
        201,
    )
    .await;
    server.start_stream().await;
    wait_state(&server, "clip", "playing").await;
    server.restart().await;
    // Back, live, playing the clip without being asked.
    let input = wait_state(&server, "clip", "playing").await;
    assert_eq!(input["url"], uploaded["id"]);
    assert_eq!(server.get_json("/api/media").await[0]["id"], uploaded["id"]);
    let player = Player::on_air(&server).await;
    let frame = player.settled_after(Instant::now()).await;
    assert!(
        clip_frame(pixel(&frame, 160, 90)).is_some(),
        "{:?}",
        pixel(&frame, 160, 90)
    );
}

/// `ffmpeg -re` publishing a flat `colour` test picture to `url` until dropped.
fn publisher(url: &str, colour: &str, dir: &TempDir, tag: &str) -> Proc {
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-nostdin", "-loglevel", "error", "-re", "-f", "lavfi"])
        .arg("-i")
        .arg(format!("color=c={colour}:s=320x180:r=30"))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args(["-g", "30", "-pix_fmt", "yuv420p", "-f", "flv"])
        .arg(url);
    Proc::spawn(tag, &mut cmd, &dir.join(&format!("{tag}.log")), false)
}

#[tokio::test]
async fn an_rtmp_publisher_goes_on_air_under_its_key_only() {
    let dir = TempDir::new("publishers");
    let (server, player) = crate::common::live_server(Server::builder()).await;
    let mut ws = Ws::open(&server).await;
    let created = call(
        &server,
        Method::POST,
        "/api/inputs",
        Some(&json!({"id": "guest", "name": "Guest", "kind": "rtmp"})),
        201,
    )
    .await;
    let key = created["streamKey"].as_str().unwrap().to_string();
    let guest = wait_state(&server, "guest", "idle").await;
    assert_eq!(guest["streamKey"], "****");
    call(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&video_layer("g", "guest", (0, 0, 960, 540))),
        201,
    )
    .await;

    // A wrong key is refused: the publisher gives up, nothing goes on air.
    let mut wrong = publisher(
        &server.rtmp_input_url("not-the-key-000000"),
        "red",
        &dir,
        "wrong",
    );
    let status = wrong.wait_exit(secs(10.0)).await;
    assert!(!status.success(), "a publisher with a wrong key was let in");
    assert_eq!(server.get_json("/api/inputs/guest").await["state"], "idle");

    let mut first = publisher(&server.rtmp_input_url(&key), "lime", &dir, "first");
    wait_state(&server, "guest", "playing").await;
    let frame = player.settled_after(Instant::now()).await;
    let p = pixel(&frame, 80, 45);
    assert!(
        crate::pixels::loose::green(p),
        "the publisher's picture: {p:?}"
    );
    assert!(black(pixel(&frame, 240, 135)), "outside the layer");

    // A second publisher on the live key is refused; the first stays on air.
    let mut second = publisher(&server.rtmp_input_url(&key), "blue", &dir, "second");
    let status = second.wait_exit(secs(10.0)).await;
    assert!(!status.success(), "a second publisher was let in");
    let frame = player.settled_after(Instant::now()).await;
    assert!(crate::pixels::loose::green(pixel(&frame, 80, 45)));

    // Gone: the input waits for it (the layer holds, then shows its slate); back: on air.
    first.kill();
    wait_state(&server, "guest", "reconnecting").await;
    let _back = publisher(&server.rtmp_input_url(&key), "blue", &dir, "back");
    let back = wait_state(&server, "guest", "playing").await;
    assert_eq!(back["stats"]["reconnects"], 1, "{back}");
    let frame = player.settled_after(Instant::now()).await;
    assert!(
        crate::pixels::loose::blue(pixel(&frame, 80, 45)),
        "{:?}",
        pixel(&frame, 80, 45)
    );
    let mut states = Vec::new();
    while let Some(m) = ws.try_next(secs(0.5)).await {
        if m["type"] == "inputUpdate" {
            states.push(m["payload"]["state"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(
        states,
        [
            "connecting",
            "idle",
            "connecting",
            "playing",
            "reconnecting",
            "connecting",
            "playing"
        ],
    );
    let state = server.state().await;
    assert_eq!(state["droppedFrames"], 0, "{state}");
    let log = std::fs::read_to_string(server_log(&server)).unwrap_or_default();
    assert!(!log.contains(&key), "the stream key is in the log");
}
