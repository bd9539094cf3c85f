//! Recordings of the program: started, listed, downloaded with Range and stopped through
//! the API, checked with ffprobe; "go live and record"; a crash (SIGKILL) mid-recording;
//! a full disk that fails the recording and not the stream.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{call, refused};
use crate::harness::*;

/// `POST /api/recordings` with `body`, which must answer 201.
async fn start_recording(server: &Server, body: Value) -> Value {
    let rec = call(server, Method::POST, "/api/recordings", Some(&body), 201).await;
    assert_eq!(rec["state"], "recording", "{rec}");
    rec
}

/// `method` on `/api/recordings/{id}{rest}` (no body), which must answer `status`.
async fn on_recording(server: &Server, method: Method, id: &str, rest: &str, status: u16) -> Value {
    call(
        server,
        method,
        &format!("/api/recordings/{id}{rest}"),
        None,
        status,
    )
    .await
}

/// The WS `error` `recording_failed`, within `timeout`.
async fn recording_failed(ws: &mut Ws, timeout: std::time::Duration) -> Value {
    ws.wait_for(
        "recording_failed",
        timeout,
        |_| {},
        |m| m["type"] == "error" && m["payload"]["code"] == "recording_failed",
    )
    .await
}

/// Waits until recording `id` is in `state`.
async fn wait_recording(server: &Server, id: &str, state: &str) -> Value {
    let path = format!("/api/recordings/{id}");
    wait_until(&format!("recording {id} {state}"), secs(15.0), async || {
        let rec = server.get_json(&path).await;
        if rec["state"] == state {
            Ok(rec)
        } else {
            Err(rec.to_string())
        }
    })
    .await
}

/// Downloads file `n` of recording `id` into `dir`; returns its path.
async fn download(server: &Server, id: &str, n: usize, dir: &TempDir) -> PathBuf {
    let (status, kind, body) = server
        .get_bytes(&format!("/api/recordings/{id}/files/{n}"))
        .await;
    assert_eq!(
        (status, kind.as_str()),
        (200, "video/mp4"),
        "file {n} of {id}"
    );
    let path = dir.join(&format!("{id}-{n}.mp4"));
    std::fs::write(&path, body).unwrap();
    path
}

/// Checks a recorded file with ffprobe against what the API says of it: H.264 of the
/// stream's size and AAC, every frame the API counted, and a duration within one frame of
/// those frames. Returns the frames ffprobe read.
async fn assert_plays(path: &Path, file: &Value) -> u64 {
    let probe = ffprobe_counted(path).await.unwrap();
    let video = streams(&probe, "video");
    let audio = streams(&probe, "audio");
    assert_eq!(
        (video.len(), audio.len()),
        (1, 1),
        "one video and one audio stream: {probe}"
    );
    assert_eq!(
        (
            &video[0]["codec_name"],
            &video[0]["width"],
            &video[0]["height"]
        ),
        (&json!("h264"), &json!(W), &json!(H)),
        "{probe}"
    );
    assert_eq!(audio[0]["codec_name"], "aac", "{probe}");
    let frames: u64 = video[0]["nb_read_frames"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .expect("a frame count");
    assert_eq!(frames, u(file, "frames"), "frames of {file}");
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    let counted = frames as f64 / f64::from(FPS);
    assert!(
        (duration - counted).abs() <= 1.0 / f64::from(FPS) + 1e-3,
        "{} s long for {frames} frames ({counted} s): {probe}",
        duration
    );
    frames
}

#[tokio::test]
async fn a_recording_is_what_went_out_and_is_kept_stopped_downloaded_and_deleted() {
    let server = Server::start().await;
    let mut ws = Ws::open(&server).await;
    refused(
        &server,
        Method::POST,
        "/api/recordings",
        Some(&json!({})),
        409,
        "conflict",
    )
    .await;
    server.start_stream().await;
    for (body, code) in [
        (json!({"segmentMinutes": 0}), "out_of_range"),
        (json!({"name": ""}), "out_of_range"),
        (json!({"name": "x".repeat(257)}), "out_of_range"),
        (json!({"color": "red"}), "unknown_field"),
        (json!({"segmentMinutes": "ten"}), "invalid_type"),
    ] {
        refused(
            &server,
            Method::POST,
            "/api/recordings",
            Some(&body),
            422,
            code,
        )
        .await;
    }
    let t0 = Instant::now();
    let rec = start_recording(&server, json!({"name": "Evening show"})).await;
    let id = rec["id"].as_str().unwrap().to_string();
    assert_eq!(
        (&rec["name"], &rec["id"]),
        (&json!("Evening show"), &json!("rec-1"))
    );
    let update = ws.next_of_type("recordingUpdate", secs(5.0)).await;
    assert_eq!(
        (&update["payload"]["id"], &update["payload"]["state"]),
        (&json!(id), &json!("recording"))
    );

    // While it runs: listed with what it has written, kept from deletion, readable by range.
    tokio::time::sleep(secs(3.0)).await;
    let running = server.get_json("/api/recordings").await;
    assert_eq!(running[0]["id"], id, "{running}");
    assert!(u(&running[0], "bytes") > 0, "{running}");
    refused(
        &server,
        Method::DELETE,
        &format!("/api/recordings/{id}"),
        None,
        409,
        "conflict",
    )
    .await;
    let ranged = server
        .request(Method::GET, &format!("/api/recordings/{id}/files/0"))
        .header("range", "bytes=4-11")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        ranged.headers()["content-disposition"],
        format!("attachment; filename=\"{id}-1.mp4\"")
    );
    assert_eq!(&ranged.bytes().await.unwrap()[..4], b"ftyp", "an MP4");

    // Thirty seconds, then stop: done, its file finished and whole.
    tokio::time::sleep(secs(30.0).saturating_sub(t0.elapsed())).await;
    let done = on_recording(&server, Method::POST, &id, "/stop", 200).await;
    assert_eq!(done["state"], "done", "{done}");
    let files = done["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{done}");
    let frames = u(&files[0], "frames");
    // It starts at the key frame before the request (up to a second earlier); a frame or
    // two lost on a loaded machine would not be in it either.
    let wall = t0.elapsed().as_secs_f64();
    let recorded = frames as f64 / f64::from(FPS);
    assert!(
        recorded > wall - 3.0 && recorded < wall + 1.5,
        "{recorded} s recorded in {wall} s: {done}"
    );
    assert_eq!(u(&done, "durationMs"), u(&files[0], "durationMs"));
    let dir = TempDir::new("recordings");
    let file = download(&server, &id, 0, &dir).await;
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        u(&done, "bytes"),
        "{done}"
    );
    assert_plays(&file, &files[0]).await;
    let update = ws.next_of_type("recordingUpdate", secs(5.0)).await;
    assert_eq!(update["payload"]["state"], "done", "{update}");
    refused(
        &server,
        Method::POST,
        &format!("/api/recordings/{id}/stop"),
        None,
        409,
        "conflict",
    )
    .await;
    for path in [
        format!("/api/recordings/{id}/files/1"),
        "/api/recordings/rec-99".to_string(),
    ] {
        let reply = server.get(&path).await;
        assert_api_error(&reply, 404, "not_found", &path);
    }

    // Deleted with its file.
    let on_disk = server.dir().join("recordings").join(format!("{id}-1.mp4"));
    assert!(on_disk.exists(), "{}", on_disk.display());
    on_recording(&server, Method::DELETE, &id, "", 200).await;
    assert!(!on_disk.exists());
    assert_eq!(server.get_json("/api/recordings").await, json!([]));
}

#[tokio::test]
async fn go_live_and_record_in_one_call_and_stopping_the_stream_finishes_it() {
    let server = Server::builder().token("rec-t0ken").start().await;
    let reply = server
        .request(Method::POST, "/api/stream/start")
        .json(&json!({"record": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let location = reply.headers()["location"].to_str().unwrap().to_string();
    let state: Value = reply.json().await.unwrap();
    assert_eq!(state["isLive"], true, "{state}");
    assert_eq!(location, "/api/recordings/rec-1");
    let rec = server.get_json(&location).await;
    assert_eq!(rec["state"], "recording", "{rec}");
    // Live already: a second go-live is refused, and records nothing more.
    refused(
        &server,
        Method::POST,
        "/api/stream/start",
        Some(&json!({"record": true})),
        409,
        "invalid_state",
    )
    .await;
    tokio::time::sleep(secs(4.0)).await;
    server.control("stop").await;
    let done = wait_recording(&server, "rec-1", "done").await;
    assert_eq!(
        server
            .get_json("/api/recordings")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let dir = TempDir::new("recordings");
    let file = download(&server, "rec-1", 0, &dir).await;
    let frames = assert_plays(&file, &done["files"][0]).await;
    assert!(frames >= 3 * u64::from(FPS), "{frames} frames: {done}");

    // A download link works without the token, for that file only.
    let link = call(
        &server,
        Method::POST,
        "/api/recordings/rec-1/files/0/link",
        None,
        200,
    )
    .await;
    let url = link["url"].as_str().unwrap();
    assert!(
        url.starts_with("/api/recordings/rec-1/files/0?ticket="),
        "{link}"
    );
    assert_eq!(link["expiresInSeconds"], 600);
    let anonymous = reqwest::Client::new();
    let got = anonymous.get(server.url(url)).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(
        got.bytes().await.unwrap().len() as u64,
        u(&done, "bytes"),
        "the whole file"
    );
    let ticket = url.split_once('?').unwrap().1;
    for other in [
        format!("/api/recordings/rec-1?{ticket}"),
        format!("/api/recordings/rec-1/files/1?{ticket}"),
        format!("/api/stream/state?{ticket}"),
        "/api/recordings/rec-1/files/0?ticket=guessed".to_string(),
        "/api/recordings/rec-1/files/0".to_string(),
    ] {
        let got = anonymous.get(server.url(&other)).send().await.unwrap();
        assert_eq!(got.status(), 401, "{other}");
    }
}

#[tokio::test]
async fn a_recording_cut_by_a_crash_plays_and_is_closed_at_the_next_start() {
    let redis = Redis::start().await;
    let kept = TempDir::new("kept-recordings");
    let dir = kept.path().to_string_lossy().into_owned();
    let mut server = Server::builder()
        .redis(&redis, "e2e-rec:")
        .args(["--recordings-dir", &dir])
        .start()
        .await;
    server.start_stream().await;
    let rec = start_recording(&server, json!({})).await;
    let id = rec["id"].as_str().unwrap().to_string();
    tokio::time::sleep(secs(6.0)).await;
    let before = server.get_json(&format!("/api/recordings/{id}")).await;
    server.restart().await; // SIGKILL, then a new process on the same store
    let after = server.get_json(&format!("/api/recordings/{id}")).await;
    assert_eq!(after["state"], "done", "{after}");
    let file = kept.path().join(format!("{id}-1.mp4"));
    let frames = assert_plays(&file, &after["files"][0]).await;
    // Up to its last complete fragment: within 2 s of the kill (6 s and more recorded).
    let played = frames as f64 / f64::from(FPS);
    assert!(played >= 4.0, "{played} s play of about 6: {after}");
    assert!(
        u(&after, "durationMs") + 2_000 >= u(&before, "durationMs"),
        "{before} then {after}"
    );
    // The stream goes live again by itself (it was live); the next recording gets the next
    // number.
    server.wait_frames(1).await;
    let next = start_recording(&server, json!({})).await;
    assert_eq!(next["id"], "rec-2", "{next}");
}

/// A tmpfs of `kib` KiB mounted on a new folder, unmounted when dropped (needs root, or
/// sudo without a password, as CI has).
struct SmallDisk {
    dir: TempDir,
}

impl SmallDisk {
    fn mount(kib: u32) -> Self {
        let dir = TempDir::new("small-disk");
        let target = dir.path().to_string_lossy().into_owned();
        let size = format!("size={kib}k");
        let args = ["-t", "tmpfs", "-o", &size, "tmpfs", &target];
        let mounted = Command::new("mount")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
            || Command::new("sudo")
                .arg("-n")
                .arg("mount")
                .args(args)
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            mounted,
            "cannot mount a {kib} KiB tmpfs on {target}: this test needs root or passwordless sudo"
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let target = self.dir.path().to_string_lossy().into_owned();
        if !Command::new("umount")
            .arg(&target)
            .status()
            .is_ok_and(|s| s.success())
        {
            let _ = Command::new("sudo")
                .args(["-n", "umount", &target])
                .status();
        }
    }
}

#[tokio::test]
async fn a_full_disk_fails_the_recording_and_not_the_stream_and_the_quota_refuses_more() {
    let disk = SmallDisk::mount(256);
    let dir = disk.path().to_string_lossy().into_owned();
    let (server, player) = crate::common::live_server(Server::builder().args([
        "--recordings-dir",
        &dir,
        "--recordings-max-bytes",
        "100000",
    ]))
    .await;
    let mut ws = Ws::open(&server).await;
    let before = server.state().await;
    let rec = start_recording(&server, json!({"name": "too big"})).await;
    let id = rec["id"].as_str().unwrap().to_string();
    // 400 kbit/s fills 256 KiB in about 5 s.
    let failed = wait_recording(&server, &id, "failed").await;
    let why = failed["error"].as_str().unwrap_or_default();
    assert!(
        why.contains("No space left on device") || why.contains("space"),
        "{failed}"
    );
    let error = recording_failed(&mut ws, secs(5.0)).await;
    assert_eq!(
        error["payload"]["component"],
        format!("recording:{id}"),
        "{error}"
    );
    // What it wrote plays, up to its last complete fragment.
    let file = disk.path().join(format!("{id}-1.mp4"));
    let probe = ffprobe_counted(&file).await.unwrap();
    assert_eq!(streams(&probe, "video").len(), 1, "{probe}");
    // The stream never noticed.
    let t = Instant::now();
    player
        .wait_frames(player.frames() + 2 * FPS as usize, secs(10.0))
        .await;
    assert!(player.max_gap_since(t) < secs(0.5));
    let after = server.assert_still_live(&before).await;
    assert_eq!(after["droppedFrames"], 0, "{after}");
    // Over its quota now (256 KiB written of 100 000 bytes): no new recording.
    refused(
        &server,
        Method::POST,
        "/api/recordings",
        Some(&json!({})),
        507,
        "insufficient_storage",
    )
    .await;
    // Deleting the failed one frees the quota (and the disk).
    on_recording(&server, Method::DELETE, &id, "", 200).await;
    let next = start_recording(&server, json!({})).await;
    let next = next["id"].as_str().unwrap();
    on_recording(&server, Method::POST, next, "/stop", 200).await;
    drop(player);
    drop(server);
}

#[tokio::test]
async fn a_hung_disk_fails_the_recording_within_its_queue_and_not_the_stream() {
    let dir = TempDir::new("hung-disk");
    let recordings = dir.path().to_string_lossy().into_owned();
    let (server, player) =
        crate::common::live_server(Server::builder().args(["--recordings-dir", &recordings])).await;
    // The recording's first file is a FIFO nobody reads: opening it blocks the writer the
    // way a hung network mount does. (Made after the start: a file already there at boot
    // moves the numbering past it.)
    let fifo = dir.join("rec-1-1.mp4");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    let mut ws = Ws::open(&server).await;
    let before = server.state().await;
    let t = Instant::now();
    start_recording(&server, json!({})).await;
    let error = recording_failed(&mut ws, secs(20.0)).await;
    let waited = t.elapsed();
    assert!(
        error["payload"]["message"]
            .as_str()
            .unwrap()
            .contains("too slow"),
        "{error}"
    );
    // About 640 packets of 30 video and ~47 audio a second: some 8 s.
    assert!(
        waited > secs(4.0) && waited < secs(15.0),
        "failed after {waited:?}"
    );
    let failed = wait_recording(&server, "rec-1", "failed").await;
    assert!(
        failed["error"].as_str().unwrap().contains("too slow"),
        "{failed}"
    );
    let after = server.assert_still_live(&before).await;
    assert_eq!(after["droppedFrames"], 0, "{after}");
    assert!(player.max_gap_since(t) < secs(0.5));
    // Unblock the writer (it finishes on its own; the recording stays failed).
    let drain = tokio::task::spawn_blocking(move || std::fs::read(&fifo).map(|b| b.len()));
    let drained = tokio::time::timeout(secs(20.0), drain)
        .await
        .expect("the writer finishes once unblocked");
    assert!(
        drained.unwrap().unwrap() > 0,
        "the writer went on once unblocked"
    );
    assert_eq!(
        server.get_json("/api/recordings/rec-1").await["state"],
        "failed"
    );
}

#[tokio::test]
async fn a_fresh_store_never_writes_over_the_recordings_in_the_folder() {
    let kept = TempDir::new("kept-recordings");
    let dir = kept.path().to_string_lossy().into_owned();
    let mut server = Server::builder()
        .args(["--recordings-dir", &dir])
        .start()
        .await;
    server.start_stream().await;
    let first = start_recording(&server, json!({})).await;
    assert_eq!(first["id"], "rec-1");
    tokio::time::sleep(secs(1.5)).await;
    let done = on_recording(&server, Method::POST, "rec-1", "/stop", 200).await;
    let file = kept.path().join("rec-1-1.mp4");
    let bytes = std::fs::metadata(&file).unwrap().len();
    assert_eq!(bytes, u(&done, "bytes"));
    // The memory store starts empty: the list is gone, the file is not.
    server.restart().await;
    assert_eq!(server.get_json("/api/recordings").await, json!([]));
    server.start_stream().await;
    let next = start_recording(&server, json!({})).await;
    assert_eq!(next["id"], "rec-2", "{next}");
    on_recording(&server, Method::POST, "rec-2", "/stop", 200).await;
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        bytes,
        "rec-1's file untouched"
    );
}
