//! Hot standby: two real processes on one real Redis and prefix, the primary SIGKILLed while
//! live and pushing to nginx-rtmp; the standby takes the channel over with the same scene,
//! templates, inputs and destinations, and the receiver gets its picture. A primary that
//! finds another holder in the lease writes nothing more and comes back as a standby.

use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{call, post_guest, rect, stream_scene, template_layer};
use crate::harness::{
    H, Nginx, Redis, Server, W, decode_frames, redis_command, secs, small_stream, wait_until, with,
};
use crate::pixels::{BLUE, GREEN, RED, assert_looks};

const PREFIX: &str = "e2e-standby:";

fn instance(health: &Value) -> (String, u64, String) {
    let i = &health["instance"];
    (
        i["role"].as_str().unwrap_or_default().to_string(),
        i["epoch"].as_u64().unwrap_or(0),
        i["name"].as_str().unwrap_or_default().to_string(),
    )
}

/// Waits until `server`'s health says `role`, and (for a primary) that destination `dest`
/// is live; returns the health.
async fn wait_role(server: &Server, role: &str, dest: Option<&str>, timeout: f64) -> Value {
    wait_until(
        &format!("the instance to be {role}"),
        secs(timeout),
        async || {
            // Between the standby's listener and the primary's the port is closed a moment.
            let resp = server
                .request(Method::GET, "/api/health")
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let (status, h) = crate::harness::reply_of(resp).await;
            let live = dest.is_none_or(|d| h["components"]["destinations"][d]["state"] == "live");
            if status == 200 && h["instance"]["role"] == role && live {
                Ok(h)
            } else {
                Err(format!("{status}: {h}"))
            }
        },
    )
    .await
}

/// What the standby must take over: scene, templates, inputs and config, as the API shows
/// them.
async fn channel(server: &Server) -> Value {
    // Each listed item as `[item[a], item[b]]`.
    let pairs = async |path: &str, a: &str, b: &str| -> Vec<Value> {
        let list = server.get_json(path).await;
        let items = list.as_array().into_iter().flatten();
        items.map(|i| json!([i[a], i[b]])).collect()
    };
    let templates = pairs("/api/templates", "id", "version").await;
    let inputs = pairs("/api/inputs", "id", "kind").await;
    json!({
        "scene": server.get_json("/api/scene").await,
        "templates": templates,
        "inputs": inputs,
        "destinations": server.config().await["destinations"],
    })
}

/// Left half: the template (red); right half: the canvas (blue) over a green bar at the
/// bottom.
const LOOKS: [(u32, u32, crate::pixels::Look); 3] = [
    (W / 4, H / 2, RED),
    (3 * W / 4, H / 4, BLUE),
    (3 * W / 4, H - 20, GREEN),
];

#[tokio::test]
async fn a_standby_takes_a_killed_primary_over_and_the_old_primary_stays_standby() {
    let redis = Redis::start().await;
    let nginx = Nginx::start().await;
    let config = with(
        small_stream(),
        json!({"destinations": [{"id": "cdn", "url": nginx.url("standby")}]}),
    );
    let mut a = Server::builder()
        .redis(&redis, PREFIX)
        .stream(Some(config))
        .start()
        .await;
    let (role, epoch_a, name_a) = instance(&a.health().await);
    assert_eq!(
        (role.as_str(), epoch_a > 0),
        ("primary", true),
        "A: {role} {epoch_a}"
    );

    let (status, guest) = post_guest(&a, "colour_a").await;
    assert_eq!(status, 201, "{guest}");
    let template = guest["id"].as_str().expect("template id").to_string();
    let loader = crate::assets::post_alone(
        &a,
        "/api/loaders",
        Some("application/wasm"),
        &crate::guests::test_guest("loader_stub"),
    )
    .await;
    assert_eq!(loader.0, 201, "{}", loader.1);
    call(
        &a,
        Method::POST,
        "/api/inputs",
        Some(&json!({"id": "guest", "kind": "rtmp"})),
        201,
    )
    .await;
    let scene = stream_scene(
        "#0000ffff",
        json!([
            template_layer(
                "tpl",
                &template,
                (0, 0, (W / 2) as i32, H as i32),
                json!({})
            ),
            rect(
                "bar",
                ((W / 2) as i32, (H - 40) as i32, (W / 2) as i32, 40),
                "#00ff00ff"
            ),
        ]),
    );
    call(&a, Method::PATCH, "/api/scene", Some(&scene), 200).await;
    a.start_stream().await;
    wait_role(&a, "primary", Some("cdn"), 15.0).await;
    let frames = decode_frames(&nginx.url("standby"), 2, W, H).await;
    assert_looks(&frames[1], &LOOKS, "the primary on air at the receiver");
    let before = channel(&a).await;

    // The standby follows: 200 health with its role, the API refused, the role in /metrics.
    let b = Server::builder()
        .redis(&redis, PREFIX)
        .stream(None)
        .args(["--standby"])
        .start()
        .await;
    let health_b = b.health().await;
    assert_eq!(health_b["status"], "standby", "{health_b}");
    let (role, epoch, name_b) = instance(&health_b);
    assert_eq!((role.as_str(), epoch), ("standby", epoch_a), "{health_b}");
    assert_eq!(
        health_b["instance"]["primary"],
        name_a.as_str(),
        "{health_b}"
    );
    assert_ne!(name_a, name_b);
    // It follows the primary's templates and loaders: compiled ahead, not at the takeover.
    wait_until(
        "the standby to compile the primary's template and loader",
        secs(10.0),
        async || {
            let log = b.log_tail(100);
            if log.contains("standby: compiled the primary's new templates compiled=1")
                && log.contains("standby: compiled the primary's new loaders compiled=1")
            {
                Ok(())
            } else {
                Err(log)
            }
        },
    )
    .await;
    let (status, refused) = b.get("/api/scene").await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (503, &json!("standby")),
        "{refused}"
    );
    let (status, refused) = b.post("/api/stream/stop").await;
    assert_eq!(status, 503, "{refused}");
    // An OGraf controller gets a problem document (RFC 7807).
    let (status, refused) = b.get("/ograf/v1/graphics").await;
    assert_eq!(
        (status, &refused["type"], &refused["status"]),
        (
            503,
            &json!("urn:stream-manager:problem:standby"),
            &json!(503)
        ),
        "{refused}"
    );
    let (_, metrics) = b.get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.contains("stream_instance_role{role=\"standby\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("stream_lease_epoch {epoch_a}")),
        "{metrics}"
    );
    let (_, metrics) = a.get("/metrics").await;
    assert!(
        metrics
            .as_str()
            .unwrap_or_default()
            .contains("stream_instance_role{role=\"primary\"} 1"),
        "{metrics}"
    );

    // The primary dies while live: the standby is live, pushing, within 5 s.
    let killed = Instant::now();
    a.proc.kill();
    wait_role(&b, "primary", None, 10.0).await;
    let primary = killed.elapsed();
    let health_b = wait_role(&b, "primary", Some("cdn"), 10.0).await;
    let took = killed.elapsed();
    eprintln!(
        "standby: primary {primary:?} and pushing to the receiver {took:?} after the primary \
         was killed"
    );
    assert!(took <= secs(5.0), "takeover took {took:?} (target 5 s)");
    let (_, epoch_b, _) = instance(&health_b);
    assert!(epoch_b > epoch_a, "epoch {epoch_b} after {epoch_a}");
    assert_eq!(b.state().await["isLive"], true);
    assert_eq!(
        channel(&b).await,
        before,
        "the standby serves the primary's channel"
    );
    let frames = decode_frames(&nginx.url("standby"), 2, W, H).await;
    assert_looks(&frames[1], &LOOKS, "the standby on air at the receiver");

    // The old primary comes back (same arguments, no --standby): it sees the newer epoch
    // and stays standby, also after a lease's lifetime.
    a.restart_as("standby").await;
    let health_a = a.health().await;
    assert_eq!(instance(&health_a).0, "standby", "{health_a}");
    assert_eq!(instance(&health_a).1, epoch_b, "{health_a}");
    tokio::time::sleep(secs(4.0)).await;
    assert_eq!(instance(&a.health().await).0, "standby");
    let health_b = b.health().await;
    assert_eq!(
        instance(&health_b),
        ("primary".into(), epoch_b, name_b),
        "{health_b}"
    );
    assert_eq!(
        health_b["components"]["destinations"]["cdn"]["state"],
        "live"
    );
    assert_eq!(
        redis.get(&format!("{PREFIX}lease")),
        Some(format!("{epoch_b} {}", instance(&health_b).2))
    );
}

#[tokio::test]
async fn a_primary_that_lost_its_lease_writes_nothing_more_and_comes_back_as_standby() {
    let redis = Redis::start().await;
    let a = Server::builder().redis(&redis, PREFIX).start().await;
    a.start_stream().await;
    let (_, epoch, name) = instance(&a.health().await);
    let scene_key = format!("{PREFIX}scenes");
    let stored = json!({"canvas": {"background": "#123456ff"}});
    call(&a, Method::PATCH, "/api/scene", Some(&stored), 200).await;
    let stored = wait_until("the scene stored", secs(5.0), async || {
        match redis.get(&scene_key) {
            Some(s) if s.contains("#123456") => Ok(s),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Another instance holds the lease now (as after this one was frozen past its TTL).
    let intruder = format!("{} elsewhere:1", epoch + 5);
    redis_command(
        redis.port,
        &["SET", &format!("{PREFIX}lease"), &intruder, "PX", "6000"],
    )
    .expect("SET lease");
    let change = json!({"canvas": {"background": "#ff00ffff"}});
    let (status, _) = a.patch_json("/api/scene", &change).await;
    assert!(status == 200 || status >= 500, "PATCH answered {status}");
    let health = wait_role(&a, "standby", None, 5.0).await;
    assert_eq!(health["instance"]["epoch"], epoch + 5, "{health}");
    assert_eq!(
        redis.get(&scene_key),
        Some(stored),
        "the fenced primary wrote the scene after losing the lease"
    );
    assert!(
        a.log_tail(200)
            .contains("another instance holds the channel's lease"),
        "{}",
        a.log_tail(40)
    );

    // The other holder goes away: this instance (its name in the lease once more) takes the
    // channel again with a newer epoch, and goes live as the stored state says.
    let health = wait_role(&a, "primary", None, 10.0).await;
    let (_, again, again_name) = instance(&health);
    assert!(again > epoch + 5, "epoch {again}");
    assert_eq!(again_name, name);
    wait_until("live again", secs(10.0), async || {
        let s = a.state().await;
        if s["isLive"] == true {
            Ok(())
        } else {
            Err(s.to_string())
        }
    })
    .await;
}

#[tokio::test]
async fn a_standby_needs_redis() {
    let (status, out) = Server::builder().args(["--standby"]).expect_exit().await;
    assert!(!status.success());
    assert!(
        out.contains("standby") && out.contains("--redis-url"),
        "{out}"
    );
}
