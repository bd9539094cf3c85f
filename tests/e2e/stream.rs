//! The stream as a player sees it: format, a moving picture, stream control, late joiners
//! and configuration changes while live.

use std::time::Instant;

use serde_json::json;

use crate::harness::*;
use crate::pixels::{assert_picture, changed_pixels};

#[tokio::test]
async fn live_stream_has_the_configured_format_and_moves() {
    let config = with(small_stream(), json!({"targetFPS": 25}));
    let server = Server::builder().stream(Some(config)).start().await;
    server.start_stream().await;
    let url = server.rtmp_play_url();

    let probe = wait_until("ffprobe of the live stream", secs(20.0), async || {
        ffprobe_json(&url).await
    })
    .await;
    let video = streams(&probe, "video");
    assert_eq!(video.len(), 1, "one video stream expected: {probe}");
    assert_eq!(video[0]["codec_name"], "h264", "{probe}");
    assert_eq!(
        (video[0]["width"].as_u64(), video[0]["height"].as_u64()),
        (Some(320), Some(180))
    );
    let fps = [&video[0]["avg_frame_rate"], &video[0]["r_frame_rate"]]
        .map(rate)
        .into_iter()
        .find(|r| *r > 0.0)
        .unwrap_or(0.0);
    assert!(
        (fps - 25.0).abs() < 2.5,
        "frame rate {fps}, expected 25: {probe}"
    );
    let audio = streams(&probe, "audio");
    assert_eq!(audio.len(), 1, "one audio stream expected: {probe}");
    assert_eq!(audio[0]["codec_name"], "aac", "{probe}");
    // Nothing else: no stray data or subtitle tracks from RTMP status messages.
    let all = probe["streams"].as_array().map_or(0, Vec::len);
    assert_eq!(all, 2, "exactly video + audio expected: {probe}");

    // One second of video: a drawn scene that changes from frame to frame.
    let frames = decode_frames(&url, 25, W, H).await;
    assert_picture(&frames[0], "first frame");
    assert_picture(&frames[24], "last frame");
    let changed = changed_pixels(&frames[0], &frames[24]);
    assert!(
        changed > 200,
        "only {changed} pixels changed in one second of video"
    );

    // The state reports the configured and the measured rate.
    let state = wait_until("fps near 25 in the state", secs(10.0), async || {
        let s = server.state().await;
        let fps = f(&s, "fps");
        if (20.0..=27.5).contains(&fps) {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    })
    .await;
    assert_eq!(state["targetFPS"], 25, "{state}");
    assert_eq!(state["isLive"], true, "{state}");
}

#[tokio::test]
async fn audio_none_streams_video_only() {
    let config = with(small_stream(), json!({"audio": "none"}));
    let server = Server::builder().stream(Some(config)).start().await;
    server.start_stream().await;
    let url = server.rtmp_play_url();
    let probe = wait_until("ffprobe of the live stream", secs(20.0), async || {
        ffprobe_json(&url).await
    })
    .await;
    assert_eq!(streams(&probe, "video").len(), 1, "{probe}");
    assert_eq!(
        streams(&probe, "audio").len(),
        0,
        "audio \"none\" still has audio: {probe}"
    );
}

#[tokio::test]
async fn control_follows_the_state_machine() {
    let server = Server::start().await;
    for action in ["stop", "pause", "resume"] {
        let reply = server.post(&format!("/api/stream/{action}")).await;
        assert_api_error(
            &reply,
            409,
            "invalid_state",
            &format!("{action} while not live"),
        );
    }
    let idle = server.state().await;
    assert_eq!(
        (&idle["isLive"], &idle["isPaused"]),
        (&json!(false), &json!(false)),
        "{idle}"
    );

    server.start_stream().await;
    let reply = server.post("/api/stream/start").await;
    assert_api_error(&reply, 409, "invalid_state", "start while live");
    let reply = server.post("/api/stream/resume").await;
    assert_api_error(&reply, 409, "invalid_state", "resume while not paused");

    let mut player = Player::spawn(&server.rtmp_play_url(), W, H);
    player.wait_frames(10, secs(15.0)).await;

    let paused = server.control("pause").await;
    assert_eq!(
        (&paused["isLive"], &paused["isPaused"]),
        (&json!(true), &json!(true)),
        "{paused}"
    );
    let reply = server.post("/api/stream/pause").await;
    assert_api_error(&reply, 409, "invalid_state", "pause while paused");
    // Paused: players stay connected and keep getting pictures (the held frame or a slate).
    tokio::time::sleep(secs(0.5)).await;
    let t = Instant::now();
    tokio::time::sleep(secs(2.0)).await;
    let during_pause = player.frames_since(t);
    assert!(
        during_pause >= 10,
        "the player got {during_pause} frames in 2 s of pause"
    );
    assert!(
        player.max_gap_since(t) < secs(1.0),
        "the player stalled while paused"
    );
    let state = server.state().await;
    assert_eq!(
        (&state["isLive"], &state["isPaused"]),
        (&json!(true), &json!(true)),
        "{state}"
    );

    let resumed = server.control("resume").await;
    assert_eq!(
        (&resumed["isLive"], &resumed["isPaused"]),
        (&json!(true), &json!(false)),
        "{resumed}"
    );
    let t = Instant::now();
    wait_until("frames after resume", secs(5.0), async || {
        let n = player.frames_since(t);
        if n >= 15 {
            Ok(())
        } else {
            Err(format!("{n} frames"))
        }
    })
    .await;

    // Stop ends the stream for players instead of leaving them hanging.
    let stopped = server.control("stop").await;
    assert_eq!(
        (&stopped["isLive"], &stopped["isPaused"]),
        (&json!(false), &json!(false)),
        "{stopped}"
    );
    player.wait_exit(secs(10.0)).await;
    for action in ["stop", "pause", "resume"] {
        let reply = server.post(&format!("/api/stream/{action}")).await;
        assert_api_error(
            &reply,
            409,
            "invalid_state",
            &format!("{action} after stop"),
        );
    }

    // The stream starts again after a stop, and a paused stream can be stopped.
    server.start_stream().await;
    let frames = wait_until("frames after the second start", secs(15.0), async || {
        try_decode_frames(&server.rtmp_play_url(), 3, W, H).await
    })
    .await;
    assert_picture(&frames[0], "frame after restart");
    server.control("pause").await;
    let stopped = server.control("stop").await;
    assert_eq!(
        (&stopped["isLive"], &stopped["isPaused"]),
        (&json!(false), &json!(false)),
        "{stopped}"
    );
}

#[tokio::test]
async fn late_joiner_sees_a_picture_at_once() {
    let config = with(small_stream(), json!({"keyframeIntervalSec": 10.0}));
    let server = Server::builder().stream(Some(config)).start().await;
    server.start_stream().await;
    // Join 3 to 7 seconds into a 10-second GOP: far from any keyframe.
    let gop = u64::from(10 * FPS);
    wait_until("the stream to be mid-GOP", secs(20.0), async || {
        let n = u(&server.state().await, "frameCount");
        let pos = n % gop;
        if (3 * gop / 10..7 * gop / 10).contains(&pos) {
            Ok(())
        } else {
            Err(format!("frame {n}"))
        }
    })
    .await;
    let player = Player::spawn(&server.rtmp_play_url(), W, H);
    player.wait_frames(1, secs(15.0)).await;
    let ttff = player.first_frame_after().expect("a first frame");
    eprintln!("time to first frame, player joining mid-GOP: {ttff:?} (goal 0.5 s)");
    assert!(
        ttff < secs(2.0),
        "first frame after {ttff:?}: late joiners wait for a keyframe?"
    );
    let (first, _) = player.first_and_last();
    assert_picture(&first, "late joiner's first frame");
}

#[tokio::test]
async fn resize_while_live_restarts_the_pipeline_and_stays_live() {
    let server = Server::start().await;
    server.start_stream().await;
    server.wait_frames(30).await;

    let config = server
        .patch_config(json!({"width": 480, "height": 270}))
        .await;
    assert_eq!(
        (&config["width"], &config["height"]),
        (&json!(480), &json!(270)),
        "{config}"
    );
    let t = Instant::now();
    while t.elapsed() < secs(3.0) {
        let s = server.state().await;
        assert_eq!(
            s["isLive"], true,
            "the stream went down during a config change: {s}"
        );
        tokio::time::sleep(secs(0.2)).await;
    }

    let frames = wait_until(
        "a new player to get 480x270 frames",
        secs(15.0),
        async || try_decode_frames(&server.rtmp_play_url(), 5, 480, 270).await,
    )
    .await;
    assert_picture(&frames[4], "frame after resize");
    wait_until("frames rendered at the new size", secs(10.0), async || {
        let s = server.state().await;
        if f(&s, "fps") > 0.0 && s["isLive"] == true {
            Ok(())
        } else {
            Err(s.to_string())
        }
    })
    .await;
}

#[tokio::test]
async fn autostart_goes_live_without_a_request() {
    let server = Server::builder().args(["--autostart"]).start().await;
    let state = server.wait_frames(1).await;
    assert_eq!(state["isLive"], true, "{state}");
    let frames = wait_until(
        "frames from the autostarted stream",
        secs(15.0),
        async || try_decode_frames(&server.rtmp_play_url(), 3, W, H).await,
    )
    .await;
    assert_picture(&frames[0], "autostarted stream");
}

/// The measured output bit rate once it is within ±30 % of `kbps`.
async fn settles_near(ws: &mut Ws, kbps: f64) -> f64 {
    let deadline = Instant::now() + secs(10.0);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let m = ws.next_of_type("metricsUpdate", secs(3.0)).await;
        let bps = m["payload"]["bitrate"].as_f64().unwrap_or(0.0);
        if (bps / 1000.0 - kbps).abs() < kbps * 0.3 {
            return bps;
        }
        seen.push(bps / 1000.0);
    }
    panic!("bit rate never settled near {kbps} kbps; measured {seen:?} kbps");
}

#[tokio::test]
async fn bitrate_change_while_live_takes_effect_and_players_keep_playing() {
    let config = with(small_stream(), json!({"videoBitrateKbps": 300}));
    let server = Server::builder().stream(Some(config)).start().await;
    server.start_stream().await;
    let mut ws = Ws::open(&server).await;
    settles_near(&mut ws, 300.0).await;
    let player = Player::spawn(&server.rtmp_play_url(), W, H);
    wait_until("the player to show frames", secs(10.0), async || {
        if player.frames() > 0 {
            Ok(())
        } else {
            Err("no frame yet".into())
        }
    })
    .await;

    let changed = server.patch_config(json!({"videoBitrateKbps": 1200})).await;
    assert_eq!(changed["videoBitrateKbps"], 1200);
    let t = Instant::now();
    settles_near(&mut ws, 1200.0).await;
    assert!(
        player.frames_since(t) > 30,
        "the player stalled across the change"
    );
    let s = server.state().await;
    assert_eq!(s["isLive"], true, "{s}");
}

#[tokio::test]
async fn config_change_while_paused_keeps_a_picture_on_air() {
    let server = Server::start().await;
    server.start_stream().await;
    server.wait_frames(15).await;
    server.control("pause").await;
    server
        .patch_config(json!({"width": 480, "height": 270}))
        .await;
    // The restarted pipeline is still paused, yet players get its (repeated) first frame.
    let frames = wait_until(
        "frames of the paused, restarted stream",
        secs(15.0),
        async || try_decode_frames(&server.rtmp_play_url(), 10, 480, 270).await,
    )
    .await;
    assert_picture(&frames[0], "paused frame after restart");
    // The same picture, up to codec noise where a new GOP re-encodes it (a live scene
    // changes thousands of pixels per second).
    let changed = changed_pixels(&frames[0], &frames[9]);
    assert!(
        changed < 100,
        "a paused stream repeats one frame; {changed} pixels changed"
    );
    let s = server.state().await;
    assert_eq!(
        (s["isLive"].as_bool(), s["isPaused"].as_bool()),
        (Some(true), Some(true)),
        "{s}"
    );
}

/// `encoder: auto` tries NVENC, Quick Sync and VA-API in that order, really opening each,
/// and says which one it uses and why the others did not open: in the state, the health
/// report and the log. This machine has no GPU, so it is libx264 after three refusals. A
/// hardware encoder asked for by name that cannot open is a 503 naming it and why.
#[tokio::test]
async fn auto_probes_the_hardware_encoders_then_uses_libx264() {
    let server = Server::start().await;
    let state = server.start_stream().await;
    let chosen = &state["encoder"];
    let skipped: Vec<&str> = chosen["skipped"]
        .as_array()
        .unwrap_or_else(|| panic!("no encoder in the state: {state}"))
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let order = ["h264_nvenc", "h264_qsv", "h264_vaapi"];
    assert_eq!(skipped, order[..skipped.len()], "{chosen}");
    if chosen["name"] == "libx264" {
        assert_eq!(skipped, order, "{chosen}");
        assert_eq!(chosen["hardware"], false);
        for s in chosen["skipped"].as_array().unwrap() {
            assert!(s["reason"].as_str().is_some_and(|r| r.len() > 10), "{s}");
        }
    }
    let health = server.health().await;
    let encoder = &health["components"]["encoder"];
    assert_eq!(
        (
            &encoder["status"],
            &encoder["configured"],
            &encoder["selected"]
        ),
        (&json!("ok"), &json!("auto"), chosen),
        "{health}"
    );
    server.wait_frames(10).await;
    let log = std::fs::read_to_string(server.dir().join("server.log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("video encoder opened"))
        .unwrap_or_else(|| panic!("the choice is not logged:\n{log}"));
    for name in skipped {
        assert!(line.contains(name), "{line}");
    }
    assert_eq!(server.post("/api/stream/stop").await.0, 200);
    assert!(server.state().await.get("encoder").is_none());

    // By name: no fallback.
    for (name, words) in [("h264_vaapi", "VA-API"), ("h264_nvenc", "NVIDIA")] {
        if chosen["name"] == name {
            continue;
        }
        server.patch_config(json!({"encoder": name})).await;
        let reply = server.post("/api/stream/start").await;
        if reply.0 == 200 {
            // This machine has that encoder after all.
            assert_eq!(server.post("/api/stream/stop").await.0, 200);
            continue;
        }
        assert_api_error(&reply, 503, "pipeline_unavailable", name);
        let message = reply.1["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(name) && message.contains(words),
            "{message}"
        );
        assert_eq!(server.state().await["isLive"], false);
    }
    server.patch_config(json!({"encoder": "auto"})).await;
    server.start_stream().await;
    server.wait_frames(5).await;
}
