//! Persistence in Redis: config and state survive a crash, instances share one Redis by key
//! prefix, the server keeps streaming through Redis outages and catches up afterwards, and
//! a Redis that comes back empty gets everything back.

use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{post_guest, send_json};
use crate::harness::*;
use crate::pixels::assert_picture;

async fn wait_health(server: &Server, status: &str, store: &str) -> Value {
    let what = format!("health {status} with store {store}");
    wait_until(&what, secs(8.0), async || {
        let h = server.health().await;
        if h["status"] == status && h["components"]["store"]["status"] == store {
            Ok(h)
        } else {
            Err(h.to_string())
        }
    })
    .await
}

/// Waits until Redis holds a config and a state under `prefix` that satisfy `ok`.
async fn wait_stored(redis: &Redis, prefix: &str, ok: impl Fn(&Value, &Value) -> bool) {
    let (config_key, state_key) = (
        format!("{prefix}stream:config"),
        format!("{prefix}stream:state"),
    );
    wait_until("config and state stored in Redis", secs(8.0), async || {
        let config = redis.get_json(&config_key).unwrap_or_default();
        let state = redis.get_json(&state_key).unwrap_or_default();
        if ok(&config, &state) {
            Ok(())
        } else {
            Err(format!("{config_key} = {config}, {state_key} = {state}"))
        }
    })
    .await
}

#[tokio::test]
async fn config_and_live_state_survive_a_crash() {
    let redis = Redis::start().await;
    let mut server = Server::builder().redis(&redis, "e2e-a:").start().await;
    let patched = server
        .patch_config(json!({
            "width": 352, "height": 198, "videoBitrateKbps": 700, "keyframeIntervalSec": 1.5,
            "destinations": [{"id": "off", "url": "rtmp://127.0.0.1:9/live/k", "enabled": false}]
        }))
        .await;
    let stored = redis
        .get_json("e2e-a:stream:config")
        .expect("config stored under the prefix");
    assert_eq!(
        (&stored["width"], &stored["videoBitrateKbps"]),
        (&json!(352), &json!(700))
    );
    assert_eq!(
        stored["destinations"][0]["url"], "rtmp://127.0.0.1:9/live/k",
        "{stored}"
    );
    assert_eq!(
        redis.get("stream:config"),
        None,
        "config stored without the prefix"
    );
    // Sending the config back exactly as read (keys masked) keeps the stored keys.
    assert_eq!(server.patch_config(patched.clone()).await, patched);
    let stored = redis
        .get_json("e2e-a:stream:config")
        .expect("config still stored");
    assert_eq!(
        stored["destinations"][0]["url"], "rtmp://127.0.0.1:9/live/k",
        "{stored}"
    );

    server.start_stream().await;
    wait_stored(&redis, "e2e-a:", |_, s| s["isLive"] == true).await;
    let crash = Instant::now();
    server.restart().await;
    assert_eq!(server.config().await, patched, "config lost in the restart");

    wait_until(
        "the restarted server to be live again",
        secs(10.0),
        async || {
            let s = server.state().await;
            if s["isLive"] == true && u(&s, "frameCount") > 0 {
                Ok(())
            } else {
                Err(s.to_string())
            }
        },
    )
    .await;
    eprintln!("live again {:?} after the crash", crash.elapsed());
    let frames = wait_until("frames at the restored size", secs(15.0), async || {
        try_decode_frames(&server.rtmp_play_url(), 3, 352, 198).await
    })
    .await;
    assert_picture(&frames[0], "frame after the restart");
}

#[tokio::test]
async fn instances_share_one_redis_by_key_prefix() {
    let redis = Redis::start().await;
    let mut a = Server::builder().redis(&redis, "chan-a:").start().await;
    let b = Server::builder().redis(&redis, "chan-b:").start().await;
    a.patch_config(json!({"videoBitrateKbps": 800})).await;
    b.patch_config(json!({"videoBitrateKbps": 900})).await;
    let bitrate = |key: &str| redis.get_json(key).map(|c| c["videoBitrateKbps"].clone());
    assert_eq!(bitrate("chan-a:stream:config"), Some(json!(800)));
    assert_eq!(bitrate("chan-b:stream:config"), Some(json!(900)));

    a.restart().await;
    assert_eq!(
        a.config().await["videoBitrateKbps"],
        800,
        "restored another instance's config"
    );
}

#[tokio::test]
async fn streams_without_redis_and_catches_up_when_it_appears() {
    let mut redis = Redis::not_running(free_port());
    let server = Server::builder().redis(&redis, "e2e-c:").start().await;
    let health = server.health().await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["components"]["store"]["status"], "down", "{health}");

    server.patch_config(json!({"videoBitrateKbps": 650})).await;
    server.start_stream().await;
    let player = Player::spawn(&server.rtmp_play_url(), W, H);
    player.wait_frames(15, secs(15.0)).await;

    let t = Instant::now();
    redis.restart().await;
    wait_health(&server, "ok", "ok").await;
    wait_stored(&redis, "e2e-c:", |c, s| {
        c["videoBitrateKbps"] == 650 && s["isLive"] == true
    })
    .await;
    eprintln!("state written to Redis {:?} after it came up", t.elapsed());
    let gap = player.max_gap_since(t);
    assert!(
        gap < secs(1.5),
        "the stream stalled for {gap:?} when Redis came up"
    );
}

#[tokio::test]
async fn redis_outage_while_live_loses_no_update() {
    let mut redis = Redis::start().await;
    let server = Server::builder().redis(&redis, "e2e-d:").start().await;
    server.start_stream().await;
    let player = Player::spawn(&server.rtmp_play_url(), W, H);
    player.wait_frames(15, secs(15.0)).await;

    let t = Instant::now();
    redis.kill();
    let dests = json!([{"id": "later", "url": "rtmp://127.0.0.1:9/live/k", "enabled": false}]);
    server.patch_config(json!({"destinations": dests})).await;
    let health = wait_health(&server, "degraded", "down").await;
    assert_eq!(server.state().await["isLive"], true, "{health}");

    redis.restart().await;
    wait_health(&server, "ok", "ok").await;
    wait_stored(&redis, "e2e-d:", |c, s| {
        c["destinations"][0]["id"] == "later" && s["isLive"] == true
    })
    .await;
    let gap = player.max_gap_since(t);
    assert!(
        gap < secs(1.5),
        "the stream stalled for {gap:?} during the Redis outage"
    );
}

#[tokio::test]
async fn clean_shutdown_is_not_resumed_on_restart() {
    let redis = Redis::start().await;
    let mut server = Server::builder().redis(&redis, "e2e-e:").start().await;
    server.start_stream().await;
    server.proc.signal("TERM");
    let status = server.proc.wait_exit(secs(15.0)).await;
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status}");
    let stored = redis.get_json("e2e-e:stream:state").expect("state stored");
    assert_eq!(
        stored["isLive"], false,
        "a clean shutdown left the state live: {stored}"
    );

    server.restart().await;
    tokio::time::sleep(secs(2.0)).await;
    let state = server.state().await;
    assert_eq!(
        state["isLive"], false,
        "went live again after a clean shutdown: {state}"
    );
}

/// Redis restarted without persistence, or flushed: the server notices (its marker key is
/// gone) and writes everything back (the config, the scenes, the assets with their bytes,
/// the templates with their components), so a later restart loses nothing.
#[tokio::test]
async fn a_redis_that_comes_back_empty_gets_everything_back() {
    let mut redis = Redis::start().await;
    let prefix = "e2e-empty:";
    let mut server = Server::builder().redis(&redis, prefix).start().await;
    let template = post_guest(&server, "colour_a").await;
    assert_eq!(template.0, 201, "{template:?}");
    let template = template.1["id"].as_str().unwrap().to_string();
    let asset = crate::assets::post_alone(
        &server,
        "/api/assets",
        Some("image/png"),
        &crate::assets::flat_png(64, 32),
    )
    .await;
    assert_eq!(asset.0, 201, "{asset:?}");
    let asset = asset.1["id"].as_str().unwrap().to_string();
    let scene =
        json!({"id": "break", "scene": {"canvas": {"background": "#203040"}, "layers": []}});
    let created = send_json(&server, Method::POST, "/api/scenes", Some(&scene)).await;
    assert_eq!(created.0, 201, "{created:?}");
    server.patch_config(json!({"videoBitrateKbps": 777})).await;

    let everything = [
        "stream:config".to_string(),
        "scenes".into(),
        "assets".into(),
        format!("asset:{asset}"),
        "templates".into(),
    ];
    for how in ["restarted empty", "flushed"] {
        if how == "flushed" {
            assert_eq!(
                redis_command(redis.port, &["FLUSHALL"]).unwrap().as_deref(),
                Some("OK")
            );
        } else {
            redis.restart().await;
        }
        // Values may be binary (uploads): asked whether they exist.
        let exists = |key: &str| {
            redis_command(redis.port, &["EXISTS", key])
                .ok()
                .flatten()
                .as_deref()
                == Some("1")
        };
        wait_until(
            &format!("everything back in a Redis {how}"),
            secs(15.0),
            async || {
                let missing: Vec<&String> = everything
                    .iter()
                    .filter(|k| !exists(&format!("{prefix}{k}")))
                    .collect();
                let index = redis
                    .get_json(&format!("{prefix}templates"))
                    .unwrap_or_default();
                let hashes = index.to_string();
                if !missing.is_empty() {
                    return Err(format!("missing {missing:?}"));
                }
                // The component bytes the index names are there too.
                let hash = hashes
                    .split('"')
                    .find(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                    .ok_or_else(|| format!("no component hash in {index}"))?;
                exists(&format!("{prefix}template:{hash}"))
                    .then_some(())
                    .ok_or_else(|| format!("component {hash} missing"))
            },
        )
        .await;
        let config = redis.get_json(&format!("{prefix}stream:config")).unwrap();
        assert_eq!(config["videoBitrateKbps"], 777, "{how}");
    }
    let log = std::fs::read_to_string(server.dir().join("server.log")).unwrap();
    assert!(
        log.contains("store_emptied"),
        "the operator is told:\n{log}"
    );

    // A new process on this Redis finds all of it.
    server.restart().await;
    assert_eq!(
        server.get(&format!("/api/templates/{template}")).await.0,
        200
    );
    assert_eq!(server.get(&format!("/api/assets/{asset}")).await.0, 200);
    assert_eq!(server.get("/api/scenes/break").await.0, 200);
    assert_eq!(server.config().await["videoBitrateKbps"], 777);
}
