//! Guards and helpers for the end-to-end tests: the server binary and the real peers it
//! talks to (Redis, FFmpeg players and receivers, nginx-rtmp), each one killed and reaped on
//! drop so that nothing outlives a test, even a panicking one.
//!
//! Every wait is a bounded poll that panics with what it was waiting for and what it saw
//! last. A guard dropped during a panic prints the tail of its process's log.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

/// Frame size and rate of the small stream most tests use (cheap on a 2-core machine).
pub const W: u32 = 320;
pub const H: u32 = 180;
pub const FPS: u32 = 30;

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// The `StreamConfig` most tests start from: small, fast, keyframe every second, no preview.
pub fn small_stream() -> Value {
    json!({
        "width": W, "height": H, "targetFPS": FPS, "videoBitrateKbps": 400,
        "encoder": "auto", "preset": "ultrafast", "keyframeIntervalSec": 1.0,
        "audio": "silent", "destinations": [],
        "preview": {"enabled": false, "fps": 5, "width": 320, "quality": 60}
    })
}

/// `base` with the top-level keys of `patch` replaced (enough for config tables here).
pub fn with(mut base: Value, patch: Value) -> Value {
    for (k, v) in patch.as_object().expect("patch is an object") {
        base[k] = v.clone();
    }
    base
}

// ---------------------------------------------------------------------------------------
// Polling

/// Polls `probe` until it returns `Ok`, for at most `timeout`; `Err` describes what was
/// seen, for the panic message.
pub async fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        let last = match probe().await {
            Ok(v) => return v,
            Err(e) => e,
        };
        if start.elapsed() >= timeout {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Ports, directories, processes

/// A loopback port that is free and stays this test's until its process exits.
///
/// Ports are taken from below the kernel's ephemeral range, so no outgoing connection (the
/// tests and the servers open many) can take one between this check and the server binding
/// it. nextest runs each test in its own process, so each port is also reserved across
/// processes: a lock on a file named after it, held until this process exits.
pub fn free_port() -> u16 {
    static HELD: Mutex<Vec<fs::File>> = Mutex::new(Vec::new());
    static POOL: LazyLock<(u16, u16, PathBuf)> = LazyLock::new(|| {
        let (low, high) = port_pool();
        let dir = std::env::temp_dir().join("stream-manager-e2e-ports");
        fs::create_dir_all(&dir).expect("create the port reservation directory");
        (low, high, dir)
    });
    let (low, high, dir) = &*POOL;
    let (low, high) = (*low, *high);
    let span = u64::from(high - low) + 1;
    let start =
        std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), std::process::id()) % span;
    for i in 0..span {
        let port = low + u16::try_from((start + i) % span).expect("span fits a port");
        let Ok(file) = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
        else {
            continue;
        };
        // Another test process holds it, or this one already does (a second open file
        // description of the same file cannot take the lock either).
        if file.try_lock().is_err() || TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        HELD.lock().unwrap().push(file);
        return port;
    }
    panic!("no free loopback port in {low}..={high}");
}

/// The ports `free_port` hands out: those below the kernel's ephemeral range (from which
/// outgoing connections take their local ports), or above it when too few are below.
fn port_pool() -> (u16, u16) {
    let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut bounds = range
        .split_whitespace()
        .filter_map(|n| n.parse::<u16>().ok());
    let (first, last) = match (bounds.next(), bounds.next()) {
        (Some(first), Some(last)) => (first, last),
        _ => (32768, 60999),
    };
    const LOWEST: u16 = 10_000;
    if first.saturating_sub(LOWEST) >= 2_000 {
        (LOWEST, first - 1)
    } else if u16::MAX - last >= 2_000 {
        (last + 1, u16::MAX)
    } else {
        panic!("the ephemeral port range {first}..={last} leaves too few ports for the tests")
    }
}

/// Whether something listens on `port` (read from /proc, so a single-accept listener such
/// as `ffmpeg -listen 1` is not disturbed by a probe connection).
pub fn is_listening(port: u16) -> bool {
    let wanted = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|p| {
        fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() > 3 && cols[1].ends_with(&wanted) && cols[3] == "0A"
            })
    })
}

pub async fn wait_listening(port: u16, what: &str) {
    wait_until(
        &format!("{what} to listen on port {port}"),
        secs(10.0),
        async || {
            is_listening(port)
                .then_some(())
                .ok_or_else(|| "not listening".to_string())
        },
    )
    .await
}

/// A fresh directory under the system temp dir; removed on drop unless the test failed.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir =
            std::env::temp_dir().join(format!("sm-e2e-{tag}-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for inspection", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A process's resident memory, bytes.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// Resident now.
    pub rss: u64,
    /// The most it was resident at any time (its high-water mark).
    pub peak: u64,
}

/// A child process that is killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr appended to `log` (stdout stays piped if the
    /// caller set it up so).
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path, keep_stdout: bool) -> Self {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open log");
        cmd.stdin(Stdio::null())
            .stderr(file.try_clone().expect("clone log handle"));
        if !keep_stdout {
            cmd.stdout(file);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {name} ({cmd:?}): {e}"));
        Self {
            name: name.into(),
            child: Some(child),
            log: log.into(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("process running").id()
    }

    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("process running")
    }

    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log, n)
    }

    /// Sends a signal by name (`TERM`, `INT`, ...).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "could not send SIG{sig} to {}", self.name);
    }

    /// Exit status if the process has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().expect("try_wait")
    }

    /// Waits at most `timeout` for the process to end by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let name = self.name.clone();
        let log = self.log.clone();
        wait_until(&format!("{name} to exit"), timeout, async || {
            self.try_wait()
                .ok_or_else(|| format!("still running; log tail:\n{}", tail(&log, 20)))
        })
        .await
    }

    /// Resident memory now and at its peak so far (`VmRSS`, `VmHWM` of
    /// `/proc/<pid>/status`), in bytes.
    pub fn memory(&self) -> Memory {
        let path = format!("/proc/{}/status", self.pid());
        let status =
            fs::read_to_string(&path).unwrap_or_else(|e| panic!("{} ({path}): {e}", self.name));
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {field} in {path}:\n{status}"))
        };
        Memory {
            rss: kib("VmRSS:") * 1024,
            peak: kib("VmHWM:") * 1024,
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- last lines of {} ({}) ---\n{}\n---",
                self.name,
                self.log.display(),
                self.log_tail(40)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The server

/// How to start `stream-manager serve`. Ports are picked free; the config file always exists
/// (with the small `[stream]` table unless replaced) so every server renders cheaply.
#[derive(Clone)]
pub struct ServerBuilder {
    http_port: u16,
    ws_port: u16,
    rtmp_port: u16,
    pass_http_port: bool,
    args: Vec<String>,
    env: Vec<(String, String)>,
    file_lines: Vec<String>,
    stream: Option<Value>,
    token: Option<String>,
}

impl ServerBuilder {
    /// Appends command-line arguments after `serve`.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// A raw line of the TOML config file (top level, before `[stream]`).
    pub fn file_line(mut self, line: &str) -> Self {
        self.file_lines.push(line.into());
        self
    }

    /// Replaces the `[stream]` table (`None`: no table).
    pub fn stream(mut self, config: Option<Value>) -> Self {
        self.stream = config;
        self
    }

    /// Passes `--api-token`; the request helpers then send it.
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.into());
        self.args(["--api-token", token])
    }

    pub fn redis(self, redis: &Redis, prefix: &str) -> Self {
        self.args(["--redis-url", &redis.url(), "--key-prefix", prefix])
    }

    /// Does not pass `--http-port`; the test provides the port another way and tells the
    /// harness which one should answer.
    pub fn http_port_elsewhere(mut self, answering: u16) -> Self {
        self.pass_http_port = false;
        self.http_port = answering;
        self
    }

    fn command(&self, dir: &TempDir) -> Command {
        let mut file = self.file_lines.join("\n");
        if let Some(stream) = &self.stream {
            file.push_str("\n[stream]\n");
            for (k, v) in stream.as_object().expect("stream config is an object") {
                writeln!(file, "{} = {}", toml_key(k), toml_value(v)).unwrap();
            }
        }
        let config = dir.join("config.toml");
        fs::write(&config, file + "\n").expect("write config file");

        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stream-manager"));
        cmd.arg("serve").arg("--config").arg(&config);
        if self.pass_http_port {
            cmd.args(["--http-port", &self.http_port.to_string()]);
        }
        cmd.args(["--ws-port", &self.ws_port.to_string()]);
        cmd.args(["--rtmp-port", &self.rtmp_port.to_string()]);
        // Media uploads go to the run's own folder unless the test keeps them across restarts.
        if !self.args.iter().any(|a| a == "--media-dir") {
            cmd.arg("--media-dir").arg(dir.join("media"));
        }
        if !self.args.iter().any(|a| a == "--recordings-dir") {
            cmd.arg("--recordings-dir").arg(dir.join("recordings"));
        }
        cmd.args(&self.args);
        // Only what the test sets reaches the server (the log filter may stay, for debugging).
        for (k, _) in std::env::vars() {
            if k.starts_with("STREAM_MANAGER_") && k != "STREAM_MANAGER_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Spawns the server without waiting for it.
    pub fn spawn(self) -> Server {
        let dir = TempDir::new("server");
        let proc = Proc::spawn(
            "stream-manager",
            &mut self.command(&dir),
            &dir.join("server.log"),
            false,
        );
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(secs(10.0))
            .build()
            .expect("http client");
        Server {
            builder: self,
            proc,
            http,
            dir,
        }
    }

    /// Spawns the server and waits until `/api/health` answers.
    pub async fn start(self) -> Server {
        let mut server = self.spawn();
        server.wait_ready().await;
        server
    }

    /// Spawns a server that is expected to refuse to start: waits for its exit and returns
    /// the status and everything it printed.
    pub async fn expect_exit(self) -> (ExitStatus, String) {
        let mut server = self.spawn();
        let status = server.proc.wait_exit(secs(15.0)).await;
        let output = fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
        (status, output)
    }
}

fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        k.into()
    } else {
        Value::String(k.into()).to_string()
    }
}

/// A JSON value as a TOML value (objects become inline tables).
fn toml_value(v: &Value) -> String {
    match v {
        Value::Null => panic!("TOML has no null"),
        Value::Bool(_) | Value::Number(_) | Value::String(_) => v.to_string(),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(toml_value).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(o) => {
            let items: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{} = {}", toml_key(k), toml_value(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
    }
}

/// A running `stream-manager serve`, killed on drop.
pub struct Server {
    builder: ServerBuilder,
    pub proc: Proc,
    http: reqwest::Client,
    dir: TempDir,
}

/// Status code and body (JSON if it parses, else the text as a JSON string).
pub type Reply = (u16, Value);

impl Server {
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            http_port: free_port(),
            ws_port: free_port(),
            rtmp_port: free_port(),
            pass_http_port: true,
            args: Vec::new(),
            env: Vec::new(),
            file_lines: Vec::new(),
            stream: Some(small_stream()),
            token: None,
        }
    }

    /// A server with the small stream config and nothing else.
    pub async fn start() -> Server {
        Self::builder().start().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.builder.http_port)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.builder.ws_port)
    }

    /// Where a publisher pushes input `key`.
    pub fn rtmp_input_url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/input/{key}", self.builder.rtmp_port)
    }

    pub fn rtmp_play_url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live/main", self.builder.rtmp_port)
    }

    pub fn token(&self) -> Option<&str> {
        self.builder.token.as_deref()
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn log_tail(&self, n: usize) -> String {
        self.proc.log_tail(n)
    }

    /// The folder of this run of the server (its log, config and, unless the test chose
    /// another, its media folder `media`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Waits until `GET /api/health` answers 200 from the primary (from a standby when the
    /// server was started with `--standby`); panics early if the process exits. A server
    /// started on other ports than a killed one with the same Redis waits for the dead
    /// one's lease to lapse (up to 3 s).
    pub async fn wait_ready(&mut self) {
        let standby = self.builder.args.iter().any(|a| a == "--standby");
        self.wait_ready_as(if standby { "standby" } else { "primary" })
            .await
    }

    /// Waits until `GET /api/health` answers 200 with `instance.role` = `role`.
    pub async fn wait_ready_as(&mut self, role: &str) {
        let url = self.url("/api/health");
        let http = self.http.clone();
        let proc = &mut self.proc;
        wait_until("the server to answer /api/health", secs(30.0), async || {
            if let Some(status) = proc.try_wait() {
                panic!(
                    "the server exited ({status}) before it was ready:\n{}",
                    proc.log_tail(40)
                );
            }
            match http.get(&url).send().await {
                Ok(r) if r.status() == 200 => {
                    let health: Value = r.json().await.map_err(|e| e.to_string())?;
                    if health["instance"]["role"] == role {
                        Ok(())
                    } else {
                        Err(format!("not yet {role}: {health}"))
                    }
                }
                Ok(r) => Err(format!("status {}", r.status())),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
    }

    /// Starts the server again with the same ports and arguments, after a SIGKILL if it is
    /// still running (a crash).
    pub async fn restart(&mut self) {
        self.respawn();
        self.wait_ready().await;
    }

    /// [`Server::restart`], waiting until it answers as `role`.
    pub async fn restart_as(&mut self, role: &str) {
        self.respawn();
        self.wait_ready_as(role).await;
    }

    fn respawn(&mut self) {
        self.proc.kill();
        let dir = TempDir::new("server");
        self.proc = Proc::spawn(
            "stream-manager",
            &mut self.builder.command(&dir),
            &dir.join("server.log"),
            false,
        );
        self.dir = dir;
    }

    /// A request with the API token, when the server has one.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, self.url(path));
        match self.token() {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("request failed: {e}\nserver log:\n{}", self.log_tail(30)));
        reply_of(resp).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    /// `GET` of bytes: status, Content-Type and body.
    pub async fn get_bytes(&self, path: &str) -> (u16, String, Vec<u8>) {
        let resp = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} failed: {e}"));
        let status = resp.status().as_u16();
        let kind = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (status, kind, resp.bytes().await.expect("a body").to_vec())
    }

    /// A thumbnail route's picture (asserting a 200 of `kind`): its size and centre pixel.
    pub async fn thumbnail(&self, path: &str, kind: &str) -> ((u32, u32), [u8; 4]) {
        let (status, got, body) = self.get_bytes(path).await;
        assert_eq!(
            (status, got.as_str()),
            (200, kind),
            "GET {path}: {}",
            String::from_utf8_lossy(&body)
        );
        let image = image::load_from_memory(&body)
            .expect("a picture")
            .to_rgba8();
        let (w, h) = image.dimensions();
        ((w, h), image.get_pixel(w / 2, h / 2).0)
    }

    /// `GET` that must answer 200 with JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path} answered {status}: {body}");
        body
    }

    pub async fn post(&self, path: &str) -> Reply {
        self.send(self.request(reqwest::Method::POST, path)).await
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> Reply {
        self.send(self.request(reqwest::Method::PATCH, path).json(body))
            .await
    }

    /// `PATCH /api/stream/config` that must succeed; returns the new config.
    pub async fn patch_config(&self, patch: Value) -> Value {
        let (status, body) = self.patch_json("/api/stream/config", &patch).await;
        assert_eq!(
            status, 200,
            "PATCH config {patch} answered {status}: {body}"
        );
        body
    }

    pub async fn state(&self) -> Value {
        self.get_json("/api/stream/state").await
    }

    pub async fn config(&self) -> Value {
        self.get_json("/api/stream/config").await
    }

    pub async fn health(&self) -> Value {
        self.get_json("/api/health").await
    }

    /// A stream control call (`start`, `stop`, `pause`, `resume`) that must succeed.
    pub async fn control(&self, action: &str) -> Value {
        let (status, body) = self.post(&format!("/api/stream/{action}")).await;
        assert_eq!(status, 200, "POST {action} answered {status}: {body}");
        body
    }

    /// Starts the stream and waits until frames are being rendered.
    pub async fn start_stream(&self) -> Value {
        let state = self.control("start").await;
        assert_eq!(state["isLive"], true, "state after start: {state}");
        self.wait_frames(1).await
    }

    /// Waits until `frameCount` reaches `n`; returns that state.
    pub async fn wait_frames(&self, n: u64) -> Value {
        wait_until(&format!("frameCount >= {n}"), secs(15.0), async || {
            let s = self.state().await;
            if u(&s, "frameCount") >= n {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        })
        .await
    }

    /// Waits until 30 frames more than `before` (an earlier state) counted have been rendered
    /// and asserts the stream is still live and not paused; returns that state.
    pub async fn assert_still_live(&self, before: &Value) -> Value {
        let after = self.wait_frames(u(before, "frameCount") + 30).await;
        assert_eq!(
            (&after["isLive"], &after["isPaused"]),
            (&json!(true), &json!(false)),
            "{after}"
        );
        after
    }
}

/// The status and body of a response, as a [`Reply`].
pub async fn reply_of(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("response body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// A numeric field as u64 (panics naming the field).
pub fn u(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} is not an unsigned integer in {v}"))
}

/// A numeric field as f64 (panics naming the field).
pub fn f(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {v}"))
}

/// Asserts the documented error shape: `status` and `{"error":{"code","message"}}`.
pub fn assert_api_error(reply: &Reply, status: u16, code: &str, context: &str) {
    if let Err(e) = check_api_error(reply, status, code) {
        panic!("{context}: {e}");
    }
}

/// Checks the documented error shape; `Err` says what differs.
pub fn check_api_error(reply: &Reply, status: u16, code: &str) -> Result<(), String> {
    let (got, body) = reply;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    if *got != status || body["error"]["code"] != code || message.is_empty() {
        return Err(format!(
            "expected {status} {code:?} with a message, got {got} {body}"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// One-shot media tools

/// `ffprobe -show_streams` of a URL or file, bounded by `timeout`.
pub async fn ffprobe_json(input: &str) -> Result<Value, String> {
    let out = run_bounded(
        15,
        "ffprobe",
        &["-v", "error", "-show_streams", "-of", "json", input],
    )
    .await?;
    serde_json::from_slice(&out).map_err(|e| format!("ffprobe printed no JSON: {e}"))
}

/// `ffprobe -count_frames -show_streams -show_format` of a file: every stream with its
/// `nb_read_frames`, and the format's `duration`.
pub async fn ffprobe_counted(path: &Path) -> Result<Value, String> {
    let path = path.to_string_lossy();
    let out = run_bounded(
        60,
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
            &path,
        ],
    )
    .await?;
    serde_json::from_slice(&out).map_err(|e| format!("ffprobe printed no JSON: {e}"))
}

/// Streams of one kind (`video`, `audio`) in an ffprobe result.
pub fn streams<'a>(probe: &'a Value, kind: &str) -> Vec<&'a Value> {
    probe["streams"]
        .as_array()
        .map(|s| s.iter().filter(|s| s["codec_type"] == kind).collect())
        .unwrap_or_default()
}

/// Parses an ffprobe rate such as `30/1`.
pub fn rate(s: &Value) -> f64 {
    let text = s.as_str().unwrap_or("0/0");
    let (n, d) = text.split_once('/').unwrap_or((text, "1"));
    let (n, d): (f64, f64) = (n.parse().unwrap_or(0.0), d.parse().unwrap_or(0.0));
    if d == 0.0 { 0.0 } else { n / d }
}

/// Writes what FFmpeg's `lavfi` `source` produces, with output `args`, to `path` (the
/// extension picks the format); panics with FFmpeg's message if it cannot.
pub fn lavfi(path: &Path, source: &str, args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            source,
        ])
        .args(args)
        .arg(path)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg could not write {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Decodes the first `n` video frames of a URL or file as `w`×`h` RGB24.
pub async fn try_decode_frames(
    input: &str,
    n: usize,
    w: u32,
    h: u32,
) -> Result<Vec<Vec<u8>>, String> {
    let count = n.to_string();
    let out = run_bounded(
        20,
        "ffmpeg",
        &[
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            input,
            "-map",
            "0:v:0",
            "-frames:v",
            &count,
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
    )
    .await?;
    let size = (w * h * 3) as usize;
    if out.len() != n * size {
        return Err(format!(
            "expected {n} frames of {w}x{h} ({} bytes), got {} bytes ({:.2} frames of that size)",
            n * size,
            out.len(),
            out.len() as f64 / size as f64
        ));
    }
    Ok(out.chunks(size).map(<[u8]>::to_vec).collect())
}

pub async fn decode_frames(input: &str, n: usize, w: u32, h: u32) -> Vec<Vec<u8>> {
    try_decode_frames(input, n, w, h)
        .await
        .unwrap_or_else(|e| panic!("decoding {n} frames of {input}: {e}"))
}

/// Runs a tool under `timeout` and returns its stdout, or an error with its stderr.
async fn run_bounded(secs: u32, tool: &str, args: &[&str]) -> Result<Vec<u8>, String> {
    let run = tokio::process::Command::new("timeout")
        .args(["-k", "2", &secs.to_string(), tool])
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(u64::from(secs) + 5), run)
        .await
        .map_err(|_| format!("{tool} did not finish"))?
        .map_err(|e| format!("cannot run {tool}: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "{tool} {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

// ---------------------------------------------------------------------------------------
// A continuous player

/// How many decoded frames a player started by [`Player::on_air`] keeps (8 s at 30 fps,
/// ~40 MB at 320×180).
pub const KEPT_FRAMES: usize = 240;

#[derive(Default)]
struct Arrivals {
    times: Vec<Instant>,
    first: Option<Vec<u8>>,
    last: Option<Vec<u8>>,
    /// The last `keep` frames with their arrival times.
    recent: VecDeque<(Instant, Vec<u8>)>,
    keep: usize,
}

impl Arrivals {
    fn record(&mut self, frame: &[u8]) {
        let now = Instant::now();
        self.times.push(now);
        if self.first.is_none() {
            self.first = Some(frame.to_vec());
        }
        if self.keep > 0 {
            if self.recent.len() == self.keep {
                self.recent.pop_front();
            }
            self.recent.push_back((now, frame.to_vec()));
        }
        self.last = Some(frame.to_vec());
    }
}

/// An FFmpeg player that decodes a stream continuously and records when frames arrive (and,
/// started by [`Player::on_air`], keeps the recent frames, so a test can look at the frames
/// that arrived after a change).
pub struct Player {
    proc: Proc,
    arrivals: Arc<Mutex<Arrivals>>,
    reader: Option<JoinHandle<()>>,
    started: Instant,
    _dir: TempDir,
}

impl Player {
    /// Starts playing `url`, expecting `w`×`h` frames.
    pub fn spawn(url: &str, w: u32, h: u32) -> Self {
        Self::keeping(url, w, h, 0)
    }

    /// Starts playing the server's stream (`W`×`H`), keeping the last [`KEPT_FRAMES`] frames,
    /// and waits until the catch-up burst of the cached GOP is over (so later arrivals are
    /// frames rendered about when they arrive).
    pub async fn on_air(server: &Server) -> Self {
        let player = Self::keeping(&server.rtmp_play_url(), W, H, KEPT_FRAMES);
        player.wait_frames((FPS * 3 / 2) as usize, secs(20.0)).await;
        player
    }

    /// Starts playing `url`, expecting `w`×`h` frames and keeping the last `keep` of them.
    fn keeping(url: &str, w: u32, h: u32, keep: usize) -> Self {
        let dir = TempDir::new("player");
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-nostdin", "-loglevel", "error", "-i", url, "-map", "0:v:0"])
            .args(["-fps_mode", "passthrough", "-flush_packets", "1"])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .stdout(Stdio::piped());
        let mut proc = Proc::spawn(
            &format!("player {url}"),
            &mut cmd,
            &dir.join("player.log"),
            true,
        );
        let mut stdout = proc.child_mut().stdout.take().expect("player stdout");
        let arrivals = Arc::new(Mutex::new(Arrivals {
            keep,
            ..Arrivals::default()
        }));
        let sink = arrivals.clone();
        let size = (w * h * 3) as usize;
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0; size];
            while stdout.read_exact(&mut buf).is_ok() {
                sink.lock().unwrap().record(&buf);
            }
        });
        Self {
            proc,
            arrivals,
            reader: Some(reader),
            started: Instant::now(),
            _dir: dir,
        }
    }

    pub fn frames(&self) -> usize {
        self.arrivals.lock().unwrap().times.len()
    }

    /// Frames that arrived after `t`.
    pub fn frames_since(&self, t: Instant) -> usize {
        self.arrivals
            .lock()
            .unwrap()
            .times
            .iter()
            .filter(|&&a| a > t)
            .count()
    }

    /// When the first frame arrived, counted from the spawn of the player.
    pub fn first_frame_after(&self) -> Option<Duration> {
        let a = self.arrivals.lock().unwrap();
        a.times.first().map(|t| *t - self.started)
    }

    pub fn first_and_last(&self) -> (Vec<u8>, Vec<u8>) {
        let a = self.arrivals.lock().unwrap();
        (
            a.first.clone().expect("a first frame"),
            a.last.clone().expect("a last frame"),
        )
    }

    /// The longest time without a frame between `since` and now.
    pub fn max_gap_since(&self, since: Instant) -> Duration {
        let a = self.arrivals.lock().unwrap();
        let mut prev = since;
        let mut gap = Duration::ZERO;
        for &t in a.times.iter().filter(|&&t| t > since) {
            gap = gap.max(t - prev);
            prev = t;
        }
        gap.max(Instant::now() - prev)
    }

    /// Waits until at least `n` frames have arrived in total.
    pub async fn wait_frames(&self, n: usize, timeout: Duration) {
        self.wait_count(
            &format!("{n} frames at the player"),
            n,
            timeout,
            Self::frames,
        )
        .await
    }

    /// Waits until `count` of the player reaches `n`, for at most `timeout`.
    async fn wait_count(
        &self,
        what: &str,
        n: usize,
        timeout: Duration,
        count: impl Fn(&Self) -> usize,
    ) {
        wait_until(what, timeout, async || {
            let got = count(self);
            if got >= n {
                Ok(())
            } else {
                Err(format!(
                    "{got} frames; player log: {}",
                    self.proc.log_tail(5)
                ))
            }
        })
        .await
    }

    /// The kept frames that arrived after `t` (see [`Player::on_air`]).
    pub fn kept_since(&self, t: Instant) -> Vec<Vec<u8>> {
        let a = self.arrivals.lock().unwrap();
        a.recent
            .iter()
            .filter(|(arrived, _)| *arrived > t)
            .map(|(_, f)| f.clone())
            .collect()
    }

    /// Waits until at least `n` frames have arrived after `t`, for at most `timeout`.
    async fn wait_frames_since(&self, t: Instant, n: usize, timeout: Duration) {
        let what = format!("{n} frames at the player after the change");
        self.wait_count(&what, n, timeout, |p| p.frames_since(t))
            .await
    }

    /// Waits until `n` frames have arrived after `t` (at most the kept number); returns the
    /// kept frames that arrived after `t`.
    pub async fn wait_since(&self, t: Instant, n: usize) -> Vec<Vec<u8>> {
        let keep = self.arrivals.lock().unwrap().keep;
        assert!(
            n <= keep,
            "waiting for {n} frames of a player that keeps {keep}"
        );
        self.wait_frames_since(t, n, secs(30.0)).await;
        self.kept_since(t)
    }

    /// The latest frame once 20 frames (2/3 s) have arrived after `t`: a frame rendered well
    /// after a change answered at `t`.
    pub async fn settled_after(&self, t: Instant) -> Vec<u8> {
        self.wait_frames_since(t, 20, secs(10.0)).await;
        self.first_and_last().1
    }

    /// Waits for the player to end by itself (the stream ended).
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.proc.wait_exit(timeout).await
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        self.proc.kill();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

// ---------------------------------------------------------------------------------------
// RTMP peers

/// `ffmpeg -listen 1` receiving one push and recording it to a file; restartable on the same
/// port (each run records to a new file).
pub struct FfmpegReceiver {
    pub port: u16,
    runs: u32,
    pub file: PathBuf,
    proc: Option<Proc>,
    dir: TempDir,
}

impl FfmpegReceiver {
    pub async fn start() -> Self {
        let mut r = Self {
            port: free_port(),
            runs: 0,
            file: PathBuf::new(),
            proc: None,
            dir: TempDir::new("receiver"),
        };
        r.restart().await;
        r
    }

    /// The push URL, with `key` as the stream key.
    pub fn url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.port)
    }

    /// (Re)starts listening on the same port, recording to a new file.
    pub async fn restart(&mut self) {
        self.kill();
        self.runs += 1;
        self.file = self.dir.join(&format!("received-{}.flv", self.runs));
        let listen = format!("rtmp://127.0.0.1:{}/live/x", self.port);
        let mut cmd = Command::new("ffmpeg");
        cmd.args([
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-listen",
            "1",
            "-f",
            "flv",
        ])
        .args([
            "-i",
            &listen,
            "-c",
            "copy",
            "-flush_packets",
            "1",
            "-f",
            "flv",
        ])
        .arg(&self.file);
        let log = self.dir.join("receiver.log");
        self.proc = Some(Proc::spawn("ffmpeg receiver", &mut cmd, &log, false));
        wait_listening(self.port, "the ffmpeg receiver").await;
    }

    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Bytes recorded by the current run.
    pub fn bytes(&self) -> u64 {
        fs::metadata(&self.file).map(|m| m.len()).unwrap_or(0)
    }

    /// Waits until the current run has recorded at least `n` bytes.
    pub async fn wait_bytes(&self, n: u64, timeout: Duration) {
        wait_until(&format!("{n} bytes at the receiver"), timeout, async || {
            let got = self.bytes();
            if got >= n {
                Ok(())
            } else {
                Err(format!(
                    "{got} bytes; receiver log: {}",
                    tail(&self.dir.join("receiver.log"), 5)
                ))
            }
        })
        .await
    }

    /// Waits for the current run to end (the publisher closed the connection).
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.proc
            .as_mut()
            .expect("receiver running")
            .wait_exit(timeout)
            .await
    }
}

/// nginx with the RTMP module: `rtmp://127.0.0.1:PORT/live/<key>` accepts pushes and plays.
pub struct Nginx {
    pub port: u16,
    _proc: Proc,
    _dir: TempDir,
}

pub const NGINX_RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

impl Nginx {
    pub async fn start() -> Self {
        assert!(
            Path::new(NGINX_RTMP_MODULE).exists(),
            "{NGINX_RTMP_MODULE} is missing (apt install libnginx-mod-rtmp)"
        );
        let port = free_port();
        let dir = TempDir::new("nginx");
        let d = dir.path().display();
        let conf = format!(
            "load_module {NGINX_RTMP_MODULE};\ndaemon off;\nmaster_process off;\n\
             pid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; }} }} }}\n"
        );
        fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
        let mut cmd = Command::new("nginx");
        cmd.arg("-p").arg(dir.path());
        cmd.arg("-e").arg(dir.join("error.log"));
        cmd.arg("-c").arg(dir.join("nginx.conf"));
        let proc = Proc::spawn("nginx", &mut cmd, &dir.join("error.log"), false);
        wait_listening(port, "nginx").await;
        Self {
            port,
            _proc: proc,
            _dir: dir,
        }
    }

    pub fn url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.port)
    }
}

// ---------------------------------------------------------------------------------------
// Redis

/// An RTSP camera: GStreamer's RTSP server (`tests/peers/rtsp_camera.py`, system python3)
/// serving a white ball moving over a blue background (H.264 + AAC) at `/cam`; can be
/// killed, frozen (SIGSTOP) and started again on the same port.
pub struct RtspCamera {
    pub port: u16,
    script: &'static str,
    args: Vec<String>,
    proc: Option<Proc>,
    dir: TempDir,
}

impl RtspCamera {
    /// A camera on a free port; `args` are passed to the script (`--user`, `--password`, …).
    pub async fn start(args: &[&str]) -> Self {
        Self::run("rtsp_camera.py", args).await
    }

    /// An attacker posing as a camera (`tests/peers/hostile_rtsp.py --mode <mode>`): garbage
    /// RTP, a 100-Mpx SPS, key frames without pictures, a flood, a web server, silence.
    pub async fn hostile(mode: &str) -> Self {
        Self::run("hostile_rtsp.py", &["--mode", mode]).await
    }

    async fn run(script: &'static str, args: &[&str]) -> Self {
        let mut c = Self {
            port: free_port(),
            script,
            args: args.iter().map(|a| a.to_string()).collect(),
            proc: None,
            dir: TempDir::new("camera"),
        };
        c.restart().await;
        c
    }

    /// `rtsp://[credentials@]127.0.0.1:<port><path>`.
    pub fn url(&self, credentials: Option<&str>, path: &str) -> String {
        match credentials {
            Some(c) => format!("rtsp://{c}@127.0.0.1:{}{path}", self.port),
            None => format!("rtsp://127.0.0.1:{}{path}", self.port),
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Freezes (`STOP`) or thaws (`CONT`) the camera: its sockets stay open.
    pub fn signal(&self, sig: &str) {
        self.proc.as_ref().expect("camera running").signal(sig);
    }

    /// (Re)starts the camera on the same port and waits until it listens.
    pub async fn restart(&mut self) {
        self.kill();
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/peers")
            .join(self.script);
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(script)
            .args(["--port", &self.port.to_string()])
            .args(&self.args);
        self.proc = Some(Proc::spawn(
            "rtsp camera",
            &mut cmd,
            &self.dir.join("camera.log"),
            false,
        ));
        wait_listening(self.port, "the RTSP camera").await;
    }
}

/// `redis-server` without persistence on a fixed port; can be killed and started again on
/// the same port (it comes back empty).
pub struct Redis {
    pub port: u16,
    proc: Option<Proc>,
    dir: TempDir,
}

impl Redis {
    pub async fn start() -> Self {
        Self::on_port(free_port()).await
    }

    /// A handle for `port` with nothing running yet; call [`Redis::restart`] to start it.
    pub fn not_running(port: u16) -> Self {
        Self {
            port,
            proc: None,
            dir: TempDir::new("redis"),
        }
    }

    pub async fn on_port(port: u16) -> Self {
        let mut r = Self::not_running(port);
        r.restart().await;
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// (Re)starts the server on the same port and waits until it answers PING.
    pub async fn restart(&mut self) {
        self.kill();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path());
        self.proc = Some(Proc::spawn(
            "redis-server",
            &mut cmd,
            &self.dir.join("redis.log"),
            false,
        ));
        wait_until(
            "redis to answer PING",
            secs(10.0),
            async || match redis_command(self.port, &["PING"]) {
                Ok(Some(pong)) if pong == "PONG" => Ok(()),
                other => Err(format!("{other:?}")),
            },
        )
        .await
    }

    /// `GET key`.
    pub fn get(&self, key: &str) -> Option<String> {
        redis_command(self.port, &["GET", key]).unwrap_or_else(|e| panic!("redis GET {key}: {e}"))
    }

    /// `GET key` parsed as JSON.
    pub fn get_json(&self, key: &str) -> Option<Value> {
        self.get(key).map(|text| {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{key} holds no JSON ({e}): {text}"))
        })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One RESP command over a fresh connection; answers simple strings, bulk strings and
/// integers (`None` for nil).
pub fn redis_command(port: u16, args: &[&str]) -> Result<Option<String>, String> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(secs(2.0)))
        .map_err(|e| e.to_string())?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        write!(req, "${}\r\n{a}\r\n", a.len()).unwrap();
    }
    conn.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end();
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" | ":" => Ok(Some(rest.into())),
        "-" => Err(rest.into()),
        "$" if rest == "-1" => Ok(None),
        "$" => {
            let len: usize = rest.parse().map_err(|_| format!("bad reply {line}"))?;
            let mut buf = vec![0; len + 2];
            reader.read_exact(&mut buf).map_err(|e| e.to_string())?;
            buf.truncate(len);
            String::from_utf8(buf).map(Some).map_err(|e| e.to_string())
        }
        _ => Err(format!("unexpected reply {line:?}")),
    }
}

// ---------------------------------------------------------------------------------------
// WebSocket

/// A WebSocket client that reads the server's `{type, payload}` JSON messages.
pub struct Ws {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// Why a WebSocket connection failed: the HTTP status of a refused handshake, or `None`.
pub type WsRefusal = (Option<u16>, String);

impl Ws {
    /// Connects, with `Authorization: Bearer <bearer>` when given.
    pub async fn connect(url: &str, bearer: Option<&str>) -> Result<Ws, WsRefusal> {
        Self::connect_from(url, bearer, None).await
    }

    /// [`Ws::connect`] as a browser page of `origin` does (its `Origin` header).
    pub async fn connect_from(
        url: &str,
        bearer: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Ws, WsRefusal> {
        let mut req = url.into_client_request().expect("valid ws url");
        if let Some(t) = bearer {
            let value = format!("Bearer {t}").parse().expect("header value");
            req.headers_mut().insert("authorization", value);
        }
        if let Some(o) = origin {
            req.headers_mut()
                .insert("origin", o.parse().expect("header value"));
        }
        Self::handshake(req).await.map(|(ws, _)| ws)
    }

    /// Connects offering `protocols` (`Sec-WebSocket-Protocol`), as a browser does that
    /// carries its token there; also returns the subprotocol the server chose.
    pub async fn connect_offering(
        url: &str,
        protocols: &[&str],
    ) -> Result<(Ws, Option<String>), WsRefusal> {
        let mut req = url.into_client_request().expect("valid ws url");
        let offer = protocols.join(", ").parse().expect("header value");
        req.headers_mut().insert("sec-websocket-protocol", offer);
        Self::handshake(req).await
    }

    async fn handshake(
        req: tungstenite::handshake::client::Request,
    ) -> Result<(Ws, Option<String>), WsRefusal> {
        let connect = tokio_tungstenite::connect_async(req);
        match tokio::time::timeout(secs(10.0), connect).await {
            Err(_) => Err((None, "handshake timed out".into())),
            Ok(Ok((stream, resp))) => {
                let chosen = resp
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                Ok((Ws { stream }, chosen))
            }
            Ok(Err(tungstenite::Error::Http(resp))) => {
                let body = resp.body().as_deref().map(String::from_utf8_lossy);
                Err((
                    Some(resp.status().as_u16()),
                    format!("{} {}", resp.status(), body.unwrap_or_default()),
                ))
            }
            Ok(Err(e)) => Err((None, e.to_string())),
        }
    }

    /// Connects to the server's WebSocket (with its token, if any) or panics.
    pub async fn open(server: &Server) -> Ws {
        Self::connect(&server.ws_url(), server.token())
            .await
            .unwrap_or_else(|e| panic!("WebSocket connect failed: {e:?}"))
    }

    /// The next JSON message, or `None` after `timeout`.
    pub async fn try_next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()?;
            match msg {
                Some(Ok(Message::Text(text))) => {
                    let text = text.as_str();
                    return Some(serde_json::from_str(text).unwrap_or_else(|e| {
                        panic!("WebSocket message is not JSON ({e}): {text}")
                    }));
                }
                Some(Ok(Message::Ping(p))) => {
                    let _ = self.stream.send(Message::Pong(p)).await;
                }
                Some(Ok(Message::Close(frame))) => {
                    panic!("WebSocket closed by the server: {frame:?}")
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("WebSocket error: {e}"),
                None => panic!("WebSocket ended"),
            }
        }
    }

    /// The next JSON message, within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Value {
        self.try_next(timeout)
            .await
            .unwrap_or_else(|| panic!("no WebSocket message within {timeout:?}"))
    }

    /// Skips messages until one satisfies `pred`, within `timeout` overall; every skipped
    /// message is passed to `seen`.
    pub async fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut seen: impl FnMut(&Value),
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        let mut last = Value::Null;
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            let Some(msg) = self.try_next(left).await else {
                panic!(
                    "timed out after {timeout:?} waiting for {what} on the WebSocket; \
                     last message: {last}"
                );
            };
            if pred(&msg) {
                return msg;
            }
            seen(&msg);
            last = msg;
        }
    }

    /// Sends `text` as one message and returns the close code the server answers with
    /// (reading past its other messages), or `None` if it did not close within `timeout`.
    pub async fn send_until_closed(&mut self, text: String, timeout: Duration) -> Option<u16> {
        // A refused send is fine: the server may close while the message is in flight.
        let _ = self.stream.send(Message::Text(text.into())).await;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| f.code.into()),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => return None,
            }
        }
    }

    /// The next message of type `ty` (others skipped), within `timeout`.
    pub async fn next_of_type(&mut self, ty: &str, timeout: Duration) -> Value {
        self.wait_for(ty, timeout, |_| {}, |m| m["type"] == ty)
            .await
    }
}
