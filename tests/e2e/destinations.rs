//! Pushing to RTMP destinations: what a receiving server gets, destinations changed while
//! live, and reconnection when a receiver goes away, without disturbing anything else.

use std::time::Instant;

use serde_json::{Value, json};

use crate::harness::*;
use crate::pixels::{assert_picture, changed_pixels};

fn destinations(list: &[(&str, String)]) -> Value {
    list.iter()
        .map(|(id, url)| json!({"id": id, "url": url}))
        .collect()
}

#[tokio::test]
async fn every_destination_receives_a_decodable_stream() {
    let mut receiver = FfmpegReceiver::start().await;
    let nginx = Nginx::start().await;
    let dests = destinations(&[
        ("ffmpeg", receiver.url("key1")),
        ("nginx", nginx.url("key2")),
    ]);
    let config = with(small_stream(), json!({"destinations": dests}));
    let server = Server::builder().stream(Some(config)).start().await;
    server.start_stream().await;

    receiver.wait_bytes(20_000, secs(15.0)).await;
    // nginx relays the push: a player pulling from it sees the moving scene.
    let relayed = nginx.url("key2");
    let frames = wait_until("frames relayed by nginx", secs(20.0), async || {
        try_decode_frames(&relayed, 30, W, H).await
    })
    .await;
    assert_picture(&frames[0], "relayed frame");
    let changed = changed_pixels(&frames[0], &frames[29]);
    assert!(
        changed > 200,
        "relayed stream barely moves ({changed} pixels changed)"
    );

    // Stop closes the push, so the receiver's recording ends; it holds the whole stream.
    server.control("stop").await;
    receiver.wait_exit(secs(10.0)).await;
    let file = receiver.file.to_str().expect("utf-8 path").to_string();
    let probe = ffprobe_json(&file).await.expect("probe the recording");
    let video = streams(&probe, "video");
    assert_eq!(video.len(), 1, "{probe}");
    assert_eq!(video[0]["codec_name"], "h264", "{probe}");
    assert_eq!(
        (video[0]["width"].as_u64(), video[0]["height"].as_u64()),
        (Some(320), Some(180))
    );
    let audio = streams(&probe, "audio");
    assert_eq!(audio.len(), 1, "{probe}");
    assert_eq!(audio[0]["codec_name"], "aac", "{probe}");
    let frames = decode_frames(&file, 10, W, H).await;
    assert_picture(&frames[0], "first recorded frame");
}

#[tokio::test]
async fn destination_enabled_while_live_starts_receiving() {
    let receiver = FfmpegReceiver::start().await;
    let server = Server::start().await;
    server.start_stream().await;
    let player = Player::spawn(&server.rtmp_play_url(), W, H);
    player.wait_frames(15, secs(15.0)).await;
    let t = Instant::now();

    let off = json!([{"id": "late", "url": receiver.url("k"), "enabled": false}]);
    let config = server.patch_config(json!({"destinations": off})).await;
    assert_eq!(config["destinations"][0]["enabled"], false, "{config}");
    tokio::time::sleep(secs(3.0)).await;
    assert_eq!(receiver.bytes(), 0, "a disabled destination received data");

    let enabled_at = Instant::now();
    let on = json!([{"id": "late", "url": receiver.url("k"), "enabled": true}]);
    server.patch_config(json!({"destinations": on})).await;
    receiver.wait_bytes(20_000, secs(10.0)).await;
    eprintln!(
        "destination receiving {:?} after it was enabled",
        enabled_at.elapsed()
    );

    // Destinations apply live: the stream and its players were not interrupted.
    let state = server.state().await;
    assert_eq!(state["isLive"], true, "{state}");
    let gap = player.max_gap_since(t);
    assert!(
        gap < secs(1.5),
        "the embedded server's player stalled for {gap:?}"
    );
}

#[tokio::test]
async fn destination_reconnects_and_the_others_never_stall() {
    let mut receiver = FfmpegReceiver::start().await;
    let nginx = Nginx::start().await;
    let dests = destinations(&[
        ("ffmpeg", receiver.url("key1")),
        ("nginx", nginx.url("key2")),
    ]);
    let config = with(small_stream(), json!({"destinations": dests}));
    let server = Server::builder().stream(Some(config)).start().await;
    server.start_stream().await;
    receiver.wait_bytes(20_000, secs(15.0)).await;
    let embedded = Player::spawn(&server.rtmp_play_url(), W, H);
    let relayed = Player::spawn(&nginx.url("key2"), W, H);
    embedded.wait_frames(15, secs(15.0)).await;
    relayed.wait_frames(15, secs(20.0)).await;
    let mut ws = Ws::open(&server).await;

    let outage = Instant::now();
    let frames_before = u(&server.state().await, "frameCount");
    receiver.kill();
    let fault = ws.next_of_type("error", secs(5.0)).await;
    assert!(
        fault["payload"]["code"].is_string(),
        "error event without code: {fault}"
    );
    assert!(
        fault["payload"]["message"].is_string(),
        "error event without message: {fault}"
    );
    // Let the server fail to reconnect a few times before the receiver comes back.
    tokio::time::sleep(secs(3.0)).await;

    receiver.restart().await;
    let back = Instant::now();
    receiver.wait_bytes(1, secs(8.0)).await;
    let reconnect = back.elapsed();
    eprintln!(
        "destination receiving again {reconnect:?} after its server came back (reconnect + the receiver's probe; goal 2 s)"
    );
    assert!(
        reconnect < secs(4.0),
        "reconnected only after {reconnect:?}"
    );
    receiver.wait_bytes(20_000, secs(8.0)).await;
    let file = receiver.file.to_str().expect("utf-8 path").to_string();
    let frames = wait_until(
        "decodable frames in the new recording",
        secs(10.0),
        async || try_decode_frames(&file, 5, W, H).await,
    )
    .await;
    assert_picture(&frames[0], "first frame after reconnect");

    // Neither the embedded server nor the other destination noticed.
    let gap = embedded.max_gap_since(outage);
    assert!(
        gap < secs(1.5),
        "embedded server's player stalled for {gap:?} during the outage"
    );
    let gap = relayed.max_gap_since(outage);
    assert!(
        gap < secs(1.5),
        "the other destination stalled for {gap:?} during the outage"
    );
    let state = server.state().await;
    assert_eq!(state["isLive"], true, "{state}");
    let rendered = u(&state, "frameCount") - frames_before;
    let elapsed = outage.elapsed().as_secs_f64();
    assert!(
        rendered as f64 > elapsed * f64::from(FPS) * 0.8,
        "only {rendered} frames rendered in {elapsed:.1} s"
    );
}

/// A TLS terminator (socat, with a certificate from a throw-away CA) in front of a plain
/// RTMP receiver, as an `rtmps://` ingest.
struct TlsIngest {
    receiver: FfmpegReceiver,
    port: u16,
    /// The CA that signed the ingest's certificate, for `--tls-ca-file`.
    ca: String,
    _socat: Proc,
    _dir: TempDir,
}

impl TlsIngest {
    async fn start() -> Self {
        let receiver = FfmpegReceiver::start().await;
        let dir = TempDir::new("tls");
        // A throw-away CA and a server certificate for `localhost` signed by it.
        let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
        let (cert, key, csr, ext) = (
            dir.join("cert.pem"),
            dir.join("key.pem"),
            dir.join("leaf.csr"),
            dir.join("leaf.ext"),
        );
        std::fs::write(&ext, "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
            .expect("write extensions");
        let openssl = |args: &[&std::ffi::OsStr]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let os = |s: &'static str| std::ffi::OsStr::new(s);
        openssl(&[
            os("req"),
            os("-x509"),
            os("-newkey"),
            os("rsa:2048"),
            os("-nodes"),
            os("-days"),
            os("1"),
            os("-subj"),
            os("/CN=stream-manager test CA"),
            os("-keyout"),
            ca_key.as_os_str(),
            os("-out"),
            ca.as_os_str(),
        ]);
        openssl(&[
            os("req"),
            os("-newkey"),
            os("rsa:2048"),
            os("-nodes"),
            os("-subj"),
            os("/CN=localhost"),
            os("-keyout"),
            key.as_os_str(),
            os("-out"),
            csr.as_os_str(),
        ]);
        openssl(&[
            os("x509"),
            os("-req"),
            os("-in"),
            csr.as_os_str(),
            os("-CA"),
            ca.as_os_str(),
            os("-CAkey"),
            ca_key.as_os_str(),
            os("-CAcreateserial"),
            os("-days"),
            os("1"),
            os("-extfile"),
            ext.as_os_str(),
            os("-out"),
            cert.as_os_str(),
        ]);
        let port = free_port();
        let socat = Proc::spawn(
            "socat",
            std::process::Command::new("socat")
                .arg(format!(
                    "openssl-listen:{port},bind=127.0.0.1,reuseaddr,fork,verify=0,cert={},key={}",
                    cert.display(),
                    key.display()
                ))
                .arg(format!("tcp:127.0.0.1:{}", receiver.port)),
            &dir.join("socat.log"),
            false,
        );
        wait_listening(port, "socat TLS terminator").await;
        let ca = ca.to_str().expect("utf-8 path").to_string();
        Self {
            receiver,
            port,
            ca,
            _socat: socat,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("rtmps://localhost:{}/live/secret", self.port)
    }
}

#[tokio::test]
async fn rtmps_destination_is_pushed_over_tls() {
    let ingest = TlsIngest::start().await;
    let config = with(
        small_stream(),
        json!({"destinations": [{"id": "tls", "url": ingest.url()}]}),
    );
    let server = Server::builder()
        .stream(Some(config))
        .args(["--tls-ca-file", ingest.ca.as_str()])
        .start()
        .await;
    server.start_stream().await;
    ingest.receiver.wait_bytes(20_000, secs(15.0)).await;
    let health = server.health().await;
    assert_eq!(
        health["components"]["destinations"]["tls"]["state"], "live",
        "{health}"
    );
}

#[tokio::test]
async fn rtmps_with_an_untrusted_certificate_is_refused_and_reported() {
    let ingest = TlsIngest::start().await;
    let config = with(
        small_stream(),
        json!({"destinations": [{"id": "tls", "url": ingest.url()}]}),
    );
    let server = Server::builder().stream(Some(config)).start().await;
    server.start_stream().await;
    let health = wait_until("a certificate error in health", secs(10.0), async || {
        let h = server.health().await;
        let dest = &h["components"]["destinations"]["tls"];
        let error = dest["lastError"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        if dest["state"] == "retrying" && error.contains("certificate") {
            Ok(h)
        } else {
            Err(h.to_string())
        }
    })
    .await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        !health.to_string().contains("secret"),
        "stream key leaked: {health}"
    );
    // The embedded output is not affected.
    let before = u(&server.state().await, "frameCount");
    let frames = decode_frames(&server.rtmp_play_url(), 5, W, H).await;
    assert_picture(&frames[0], "embedded output while the TLS push fails");
    assert!(u(&server.state().await, "frameCount") > before);
}

/// Destinations that never connect (a port that accepts and never speaks RTMP, an address
/// nothing answers, a host name that does not resolve) hold neither stop nor removal: their
/// connect attempts are cancelled, not waited for (the connect timeout is 3 s).
#[tokio::test]
async fn control_calls_never_wait_on_unreachable_destinations() {
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let server = Server::start().await;
    let unreachable = json!([
        {"id": "silent", "url": format!("rtmp://127.0.0.1:{silent_port}/live/k1")},
        {"id": "blackhole", "url": "rtmp://10.255.255.1:1935/live/k2"},
        {"id": "nowhere", "url": "rtmp://no-such-host.invalid/live/k3"},
    ]);
    for round in 0..2 {
        server
            .patch_config(json!({"destinations": unreachable}))
            .await;
        server.start_stream().await;
        server.wait_frames(10).await;
        let health = server.health().await;
        let states = &health["components"]["destinations"];
        assert!(
            states
                .as_object()
                .is_some_and(|d| d.len() == 3 && d.values().all(|s| s["state"] != "live")),
            "{health}"
        );
        let t = Instant::now();
        let reply = if round == 0 {
            // Stop while they are trying.
            server.post("/api/stream/stop").await
        } else {
            // Remove them while live, then stop.
            let reply = server
                .send(
                    server
                        .request(reqwest::Method::PATCH, "/api/stream/config")
                        .json(&json!({"destinations": []})),
                )
                .await;
            assert_eq!(reply.0, 200, "{reply:?}");
            server.post("/api/stream/stop").await
        };
        let took = t.elapsed();
        assert_eq!(reply.0, 200, "{reply:?}");
        assert!(
            took < secs(1.5),
            "round {round}: the call took {took:?}, waiting on destinations that never connected"
        );
    }
    drop(silent);
}

/// A stream key given as `${NAME}` is read from the server's environment when it pushes:
/// the config (API, store) holds only the name, the receiver gets the real key, and a
/// reference to a variable that is not set fails that destination with the name, not a
/// value.
#[tokio::test]
async fn stream_keys_can_come_from_the_environment() {
    let nginx = Nginx::start().await;
    let secret = "env-key-9f41c2";
    let by_name = nginx.url("KEY").replace("/KEY", "/${E2E_DEST_KEY}");
    let missing = nginx.url("KEY").replace("/KEY", "/${E2E_NOT_SET}");
    let server = Server::builder().env("E2E_DEST_KEY", secret).start().await;
    let config = server
        .patch_config(json!({"destinations": [
            {"id": "env", "url": by_name},
            {"id": "unset", "url": missing},
        ]}))
        .await;
    assert_eq!(
        config["destinations"][0]["url"],
        by_name.as_str(),
        "{config}"
    );
    server.start_stream().await;
    // nginx relays what was pushed under the real key.
    let frames = wait_until(
        "frames pushed with the key from the environment",
        secs(20.0),
        async || try_decode_frames(&nginx.url(secret), 10, W, H).await,
    )
    .await;
    assert_picture(&frames[0], "relayed frame");
    let health = wait_until("the unset reference to fail", secs(10.0), async || {
        let h = server.health().await;
        let d = &h["components"]["destinations"]["unset"];
        (d["state"] == "failed")
            .then(|| h.clone())
            .ok_or(format!("{d}"))
    })
    .await;
    let error = health["components"]["destinations"]["unset"]["lastError"].to_string();
    assert!(error.contains("E2E_NOT_SET"), "{error}");
    let log = std::fs::read_to_string(server.dir().join("server.log")).unwrap();
    assert!(!log.contains(secret), "the key reached the log:\n{log}");
    assert!(
        !server
            .get("/api/stream/config")
            .await
            .1
            .to_string()
            .contains(secret)
    );
}
