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
use crate::pixels::{BLUE, GREEN, Look, RED, Rgb, assert_looks, black, pixel};

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

/// Adds a layer to the scene on air.
async fn add_layer(server: &Server, layer: &Value) {
    call(server, Method::POST, "/api/scene/layers", Some(layer), 201).await;
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
    // Its thumbnail, though no layer shows it: converted at the thumbnail's size on request.
    let (size, [r, g, b, _]) = server
        .thumbnail("/api/inputs/clip/thumbnail", "image/jpeg")
        .await;
    assert_eq!(size, (320, 180));
    assert!(clip_frame([r, g, b]).is_some(), "{:?}", [r, g, b]);
    let (status, body) = server.get("/api/inputs/nothing/thumbnail").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("not_found")),
        "{body}"
    );

    // The bottom-right quarter of the canvas (output 160,90 – 320,180).
    add_layer(&server, &video_layer("cam", "clip", (960, 540, 960, 540))).await;
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
    add_layer(&server, &video_layer("v", "once", (0, 0, 1920, 1080))).await;
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
    // So does its thumbnail.
    let (size, [r, g, b, _]) = server
        .thumbnail("/api/inputs/once/thumbnail", "image/jpeg")
        .await;
    assert_eq!((size, clip_frame([r, g, b])), ((320, 180), Some(9)));
    // Health does not call an ended file a fault.
    assert_eq!(
        server.health().await["components"]["inputs"]["status"],
        "ok"
    );
}

#[tokio::test]
async fn inputs_and_media_refuse_what_they_cannot_use() {
    let server = Server::builder()
        .args(["--max-media-bytes", "200000", "--max-input-size", "160x90"])
        .start()
        .await;
    clear_scene(&server).await;
    // A picture over --max-input-size: refused, saying why.
    let dir = TempDir::new("media-big");
    let clip = make_clip(dir.path(), "big.mp4", "testsrc2=s=320x180:r=10", 1.0);
    let reply = upload(&server, &clip, "video/mp4").await;
    assert_api_error(&reply, 422, "invalid_media", "over the size limit");
    let message = reply.1["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("320×180") && message.contains("160×90"),
        "{message}"
    );
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
    add_layer(&server, &video_layer("v", "cam", (0, 0, 100, 100))).await;
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
    add_layer(&server, &video_layer("v", "clip", (0, 0, 1920, 1080))).await;
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
    // The answer says where to publish, on the host the request named; only it does.
    assert_eq!(created["publishUrl"], server.rtmp_input_url(&key));
    let guest = wait_state(&server, "guest", "idle").await;
    assert_eq!(guest["streamKey"], "****");
    assert!(guest.get("publishUrl").is_none(), "{guest}");
    add_layer(&server, &video_layer("g", "guest", (0, 0, 960, 540))).await;

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

/// Blue dominates a sampled colour (the camera's background).
fn bluish(p: Rgb) -> bool {
    p[2] > 150 && p[0] < 90 && p[1] < 90
}

/// Green dominates a sampled colour (the switched camera's background).
fn greenish(p: Rgb) -> bool {
    p[1] > 150 && p[0] < 90 && p[2] < 90
}

/// Asserts that at least 9 in 10 of `frames` show a colour `like` in the camera layer whose
/// top-left output pixel is `(x, y)` (sampled at two points, one of which the ball may cover).
fn assert_mostly(frames: &[Vec<u8>], (x, y): (u32, u32), like: fn(Rgb) -> bool, what: &str) {
    let showing = frames
        .iter()
        .filter(|f| like(pixel(f, x + 10, y + 10)) || like(pixel(f, x + 150, y + 80)))
        .count();
    assert!(
        showing * 10 >= frames.len() * 9,
        "{what} in {showing} of {} frames",
        frames.len()
    );
}

/// The camera's picture in the top-left quarter of the output: blue around a moving ball.
fn assert_camera_on_air(frames: &[Vec<u8>], context: &str) {
    let what = format!("{context}: the camera's blue");
    assert_mostly(frames, (0, 0), bluish, &what);
    for f in frames {
        assert!(
            black(pixel(f, 240, 135)),
            "{context}: outside the layer {:?}",
            pixel(f, 240, 135)
        );
    }
    // The ball moves: the first and last frames differ inside the layer, and only there.
    let (a, b) = (&frames[0], &frames[frames.len() - 1]);
    let moved = (0..90)
        .flat_map(|y| (0..160).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let (p, q) = (pixel(a, x, y), pixel(b, x, y));
            p.iter().zip(q).any(|(u, v)| u.abs_diff(v) > 60)
        })
        .count();
    assert!(
        moved > 20,
        "{context}: the picture does not move ({moved} pixels changed)"
    );
}

/// Input updates received on `ws` until it is quiet for half a second: their states.
async fn input_states(ws: &mut Ws, id: &str) -> Vec<String> {
    let mut states = Vec::new();
    while let Some(m) = ws.try_next(secs(0.5)).await {
        if m["type"] == "inputUpdate" && m["payload"]["id"] == id {
            states.push(m["payload"]["state"].as_str().unwrap().to_string());
        }
    }
    states
}

#[tokio::test]
async fn an_rtsp_camera_goes_on_air_and_rides_out_its_faults() {
    let mut camera = RtspCamera::start(&["--user", "op", "--password", "s3cret"]).await;
    let (server, player) = crate::common::live_server(Server::builder()).await;
    let mut ws = Ws::open(&server).await;
    let url = camera.url(Some("op:s3cret"), "/cam");
    let body = json!({"id": "cam", "name": "Camera 1", "kind": "rtsp", "url": url});
    let created = call(&server, Method::POST, "/api/inputs", Some(&body), 201).await;
    assert_eq!(created["url"], camera.url(Some("****:****"), "/cam"));
    add_layer(&server, &video_layer("c", "cam", (0, 0, 960, 540))).await;
    let playing = wait_state(&server, "cam", "playing").await;
    assert_eq!(
        (&playing["stats"]["width"], &playing["stats"]["height"]),
        (&json!(320), &json!(180))
    );
    let frames = player.wait_since(Instant::now(), 45).await;
    assert_camera_on_air(&frames, "first connection");
    assert_eq!(
        input_states(&mut ws, "cam").await,
        ["connecting", "playing"]
    );
    let before = server.state().await;

    // Killed: the layer holds its last picture, then the slate; the input reconnects.
    camera.kill();
    let t = Instant::now();
    wait_state(&server, "cam", "reconnecting").await;
    let held = player.wait_since(t, 15).await;
    assert!(
        bluish(pixel(&held[5], 10, 10)) || bluish(pixel(&held[5], 150, 80)),
        "the last picture is held"
    );
    tokio::time::sleep(secs(1.5)).await;
    let slate = player.settled_after(Instant::now()).await;
    let p = pixel(&slate, 10, 10);
    assert!(
        p.iter().all(|&c| (20..=50).contains(&c)),
        "the slate's grey: {p:?}"
    );
    // Back on the same port: on air again within 2 s of its return.
    camera.restart().await;
    let back = Instant::now();
    wait_state(&server, "cam", "playing").await;
    let took = back.elapsed();
    assert!(
        took <= secs(2.5),
        "back on air {took:?} after the camera returned"
    );
    // The restarted camera's first half second (its encoder starting again) is not judged.
    tokio::time::sleep(secs(0.5)).await;
    let frames = player.wait_since(Instant::now(), 30).await;
    assert_camera_on_air(&frames, "after the restart");

    // Frozen while its connection stays up: stalled within 2.5 s, playing once thawed.
    camera.signal("STOP");
    let frozen = Instant::now();
    wait_state(&server, "cam", "stalled").await;
    assert!(
        frozen.elapsed() <= secs(2.5),
        "stalled after {:?}",
        frozen.elapsed()
    );
    camera.signal("CONT");
    wait_state(&server, "cam", "playing").await;
    // In order: reconnecting, (connecting, reconnecting) per failed attempt, then back.
    let states = input_states(&mut ws, "cam").await;
    let mut rest: &[String] = &states;
    assert_eq!(
        rest.first().map(String::as_str),
        Some("reconnecting"),
        "{states:?}"
    );
    rest = &rest[1..];
    while rest.len() >= 2 && rest[0] == "connecting" && rest[1] == "reconnecting" {
        rest = &rest[2..];
    }
    assert_eq!(
        rest,
        ["connecting", "playing", "stalled", "playing"],
        "{states:?}"
    );

    // The program never faltered.
    let after = server.state().await;
    assert_eq!(after["droppedFrames"], before["droppedFrames"], "{after}");
    assert!(after["fps"].as_f64().unwrap() > 28.0, "{after}");
    let health = server.health().await;
    assert_eq!(
        health["components"]["inputs"]["states"]["cam"], "playing",
        "{health}"
    );
    let text = server.get("/metrics").await.1;
    assert!(
        text.as_str()
            .unwrap()
            .contains("stream_input_fps{input=\"cam\"}")
    );
    let log = std::fs::read_to_string(server_log(&server)).unwrap_or_default();
    assert!(!log.contains("s3cret"), "the password is in the log");
}

#[tokio::test]
async fn a_camera_that_refuses_is_failed_and_not_hammered() {
    let camera = RtspCamera::start(&["--user", "op", "--password", "right"]).await;
    let server = Server::start().await;
    let wrong = json!({"id": "wrong", "kind": "rtsp", "url": camera.url(Some("op:wrong"), "/cam")});
    call(&server, Method::POST, "/api/inputs", Some(&wrong), 201).await;
    let missing =
        json!({"id": "missing", "kind": "rtsp", "url": camera.url(Some("op:right"), "/nothing")});
    call(&server, Method::POST, "/api/inputs", Some(&missing), 201).await;
    let failed = wait_state(&server, "wrong", "failed").await;
    let message = failed["stats"]["lastError"].as_str().unwrap().to_string();
    assert!(message.contains("401"), "{message}");
    assert!(
        !message.contains("wrong@") && !failed.to_string().contains("op:wrong"),
        "{failed}"
    );
    let failed = wait_state(&server, "missing", "failed").await;
    assert!(
        failed["stats"]["lastError"]
            .as_str()
            .unwrap()
            .contains("404"),
        "{failed}"
    );
    // A camera that never sent a picture has no thumbnail.
    let (status, body) = server.get("/api/inputs/missing/thumbnail").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("no_picture")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("failed"),
        "{body}"
    );
    // Not tried again on its own for a while.
    tokio::time::sleep(secs(3.0)).await;
    for id in ["wrong", "missing"] {
        let input = server.get_json(&format!("/api/inputs/{id}")).await;
        assert_eq!(
            (&input["state"], &input["stats"]["reconnects"]),
            (&json!("failed"), &json!(0)),
            "{input}"
        );
    }
    // Fixed by a change: tried at once, and plays.
    let fix = json!({"url": camera.url(Some("op:right"), "/cam")});
    call(&server, Method::PATCH, "/api/inputs/wrong", Some(&fix), 200).await;
    wait_state(&server, "wrong", "playing").await;
    let ((w, h), _) = server
        .thumbnail("/api/inputs/wrong/thumbnail", "image/jpeg")
        .await;
    assert!((1..=320).contains(&w) && (1..=180).contains(&h), "{w}x{h}");
    // An unreachable host and a port where nothing answers RTSP: retried, never failed.
    let closed = json!({"id": "closed", "kind": "rtsp", "url": format!("rtsp://127.0.0.1:{}/x", free_port())});
    call(&server, Method::POST, "/api/inputs", Some(&closed), 201).await;
    let retrying = wait_state(&server, "closed", "reconnecting").await;
    assert!(retrying["stats"]["lastError"].is_string(), "{retrying}");
}

/// Attackers posing as cameras, next to a real one, all on air at once: each costs its own
/// input only. The program keeps its rate with nothing dropped and the real camera plays on.
#[tokio::test]
async fn hostile_cameras_cost_only_their_own_input() {
    let camera = RtspCamera::start(&[]).await;
    let modes = ["garbage", "bigsps", "keyframes", "flood", "silent"];
    let mut hostile = Vec::new();
    for mode in modes {
        hostile.push(RtspCamera::hostile(mode).await);
    }
    let (server, player) = crate::common::live_server(Server::builder()).await;
    let good = json!({"id": "cam", "kind": "rtsp", "url": camera.url(None, "/cam")});
    call(&server, Method::POST, "/api/inputs", Some(&good), 201).await;
    add_layer(&server, &video_layer("c", "cam", (0, 0, 960, 540))).await;
    // A second layer shows the same camera, smaller: one decoder serves both.
    add_layer(&server, &video_layer("c2", "cam", (1000, 0, 480, 270))).await;
    // A web server where a camera should be: this server's own HTTP port.
    let web = server.url("/cam").replace("http://", "rtsp://");
    let urls = hostile
        .iter()
        .map(|h| h.url(None, "/cam"))
        .chain([web])
        .zip(modes.iter().chain(&["web"]));
    for (i, (url, mode)) in urls.enumerate() {
        let input = json!({"id": mode, "kind": "rtsp", "url": url});
        call(&server, Method::POST, "/api/inputs", Some(&input), 201).await;
        // Below the camera's layer, clear of the point checked to be outside it.
        let x = (i as i32 % 3) * 300;
        let y = 600 + (i as i32 / 3) * 200;
        let layer = video_layer(&format!("l-{mode}"), mode, (x, y, 280, 160));
        add_layer(&server, &layer).await;
    }
    wait_state(&server, "cam", "playing").await;
    let before = server.state().await;
    let start = Instant::now();

    // The oversized picture is refused for good, from its parameter sets.
    let big = wait_state(&server, "bigsps", "failed").await;
    let error = big["stats"]["lastError"].as_str().unwrap_or_default();
    assert!(error.contains("10000×10000"), "{big}");
    assert!(error.contains("over the limit of 4096×2160"), "{big}");
    // Let every attacker run for a while.
    tokio::time::sleep(secs(8.0).saturating_sub(start.elapsed())).await;
    let frames = player.wait_since(Instant::now(), 30).await;
    assert_camera_on_air(&frames, "next to the attackers");
    let second = frames
        .iter()
        .filter(|f| bluish(pixel(f, 172, 4)) || bluish(pixel(f, 240, 40)))
        .count();
    assert!(
        second * 10 >= frames.len() * 9,
        "the second layer: {second}"
    );
    // None plays (the flood's random slices do decode, into noise: it is bounded below).
    for mode in modes.iter().chain(&["web"]).filter(|m| **m != "flood") {
        let input = server.get_json(&format!("/api/inputs/{mode}")).await;
        assert_ne!(input["state"], "playing", "{input}");
        assert_eq!(input["stats"]["framesDecoded"], 0, "{input}");
        if *mode != "silent" {
            assert!(input["stats"]["lastError"].is_string(), "{input}");
        }
    }
    // A flood is read no faster than the budget allows, and says nothing in the log.
    let flood = server.get_json("/api/inputs/flood").await;
    let kbps = flood["stats"]["bitrateKbps"].as_f64().unwrap_or(0.0);
    assert!(
        kbps <= 210_000.0,
        "the flood was read at {kbps} kbit/s: {flood}"
    );
    let log = std::fs::read_to_string(server_log(&server)).unwrap_or_default();
    assert!(
        log.lines().count() < 200,
        "{} log lines",
        log.lines().count()
    );
    let cam = server.get_json("/api/inputs/cam").await;
    assert_eq!(cam["state"], "playing", "{cam}");
    let fps = cam["stats"]["fps"].as_f64().unwrap();
    assert!(
        (27.0..=33.0).contains(&fps),
        "decoded once for both layers: {cam}"
    );
    let after = server.state().await;
    assert_eq!(after["droppedFrames"], before["droppedFrames"], "{after}");
    assert!(after["fps"].as_f64().unwrap() > 28.0, "{after}");
    let health = server.health().await;
    let not_playing = health["components"]["inputs"]["notPlaying"].to_string();
    assert!(
        modes
            .iter()
            .filter(|m| **m != "flood")
            .all(|m| not_playing.contains(m))
            && !not_playing.contains("\"cam\""),
        "{health}"
    );
    // Gone again without a trace: the layers, then the inputs.
    for mode in modes.iter().chain(&["web"]) {
        call(
            &server,
            Method::DELETE,
            &format!("/api/scene/layers/l-{mode}"),
            None,
            200,
        )
        .await;
        call(
            &server,
            Method::DELETE,
            &format!("/api/inputs/{mode}"),
            None,
            200,
        )
        .await;
    }
    let health = server.health().await;
    assert_eq!(health["components"]["inputs"]["status"], "ok", "{health}");
    drop(hostile);
}

/// H.265 in Matroska, VP9 in WebM, AV1 in MP4 and H.264 in QuickTime: each probed on upload
/// and played on its own layer, in its own colour.
#[tokio::test]
async fn files_of_each_codec_and_container_play() {
    let dir = TempDir::new("codecs");
    let cases = [
        ("red.mkv", "red", "libx265", "hevc", (0, 0)),
        ("lime.webm", "lime", "libvpx-vp9", "vp9", (960, 0)),
        ("blue.mp4", "blue", "libaom-av1", "av1", (0, 540)),
        ("white.mov", "white", "libx264", "h264", (960, 540)),
    ];
    let (server, player) = crate::common::live_server(Server::builder()).await;
    for (name, colour, encoder, codec, (x, y)) in cases {
        let path = dir.path().join(name);
        let mut args = vec!["-t", "1", "-c:v", encoder, "-pix_fmt", "yuv420p"];
        if encoder == "libaom-av1" {
            args.extend(["-cpu-used", "8", "-b:v", "200k"]);
        }
        if encoder == "libx265" {
            args.extend(["-x265-params", "log-level=error"]);
        }
        lavfi(&path, &format!("color=c={colour}:s=160x90:r=10"), &args);
        let reply = upload(&server, &path, "application/octet-stream").await;
        assert_eq!(reply.0, 201, "{name}: {}", reply.1);
        let media = &reply.1;
        assert_eq!(
            (&media["videoCodec"], &media["width"], &media["height"]),
            (&json!(codec), &json!(160), &json!(90)),
            "{name}: {media}"
        );
        let input = json!({"id": colour, "kind": "file", "url": media["id"]});
        call(&server, Method::POST, "/api/inputs", Some(&input), 201).await;
        add_layer(&server, &video_layer(colour, colour, (x, y, 960, 540))).await;
    }
    for (_, colour, ..) in cases {
        wait_state(&server, colour, "playing").await;
    }
    let frame = player.settled_after(Instant::now()).await;
    let white: Look = ("white", |p| p.iter().all(|&c| c > 220));
    let points = [
        (80, 45, RED),
        (240, 45, GREEN),
        (80, 135, BLUE),
        (240, 135, white),
    ];
    assert_looks(&frame, &points, "each file on its layer");
}

/// A camera over UDP that changes its picture size mid-session, and a camera sending H.265:
/// both on air, the resolution change taken without a reconnect or a dropped frame.
#[tokio::test]
async fn cameras_over_udp_in_h265_and_changing_resolution_stay_on_air() {
    let switching = RtspCamera::start(&["--switch", "640x360:0xff00ff00"]).await;
    let hevc = RtspCamera::start(&["--codec", "h265"]).await;
    let (server, player) = crate::common::live_server(Server::builder()).await;
    let mut ws = Ws::open(&server).await;
    let inputs = [
        ("udp", switching.url(None, "/cam"), "udp", (0, 0)),
        ("hevc", hevc.url(None, "/cam"), "tcp", (0, 540)),
    ];
    for (id, url, transport, (x, y)) in &inputs {
        let body = json!({"id": id, "kind": "rtsp", "url": url, "transport": transport});
        call(&server, Method::POST, "/api/inputs", Some(&body), 201).await;
        add_layer(&server, &video_layer(id, id, (*x, *y, 960, 540))).await;
    }
    for (id, ..) in &inputs {
        let playing = wait_state(&server, id, "playing").await;
        assert_eq!(
            (&playing["stats"]["width"], &playing["stats"]["height"]),
            (&json!(320), &json!(180)),
            "{id}: {playing}"
        );
    }
    let frames = player.wait_since(Instant::now(), 30).await;
    assert_camera_on_air(&frames, "over UDP");
    assert_mostly(&frames, (0, 90), bluish, "the H.265 camera's blue");
    assert_eq!(
        input_states(&mut ws, "udp").await,
        ["connecting", "playing"]
    );
    let before = server.state().await;

    // The camera switches to 640×360 on a green background: new parameter sets in band.
    switching.signal("USR1");
    let switched = Instant::now();
    let input = loop {
        let input = server.get("/api/inputs/udp").await.1;
        if input["stats"]["width"] == 640 {
            break input;
        }
        assert!(
            switched.elapsed() < secs(5.0),
            "still {}x{} 5 s after the switch: {input}",
            input["stats"]["width"],
            input["stats"]["height"]
        );
        tokio::time::sleep(secs(0.1)).await;
    };
    assert_eq!(input["stats"]["height"], 360, "{input}");
    assert_eq!(input["state"], "playing", "{input}");
    assert_eq!(input["stats"]["reconnects"], 0, "{input}");
    let frames = player.wait_since(Instant::now(), 30).await;
    assert_mostly(&frames, (0, 0), greenish, "the switched picture's green");
    assert!(
        frames.iter().all(|f| black(pixel(f, 240, 135))),
        "outside the layers"
    );
    let states = input_states(&mut ws, "udp").await;
    assert!(
        states.iter().all(|s| s == "playing"),
        "the switch was taken without leaving playing: {states:?}"
    );
    let after = server.state().await;
    assert_eq!(after["droppedFrames"], before["droppedFrames"], "{after}");
    assert!(after["fps"].as_f64().unwrap() > 28.0, "{after}");
}
