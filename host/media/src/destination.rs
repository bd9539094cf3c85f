//! Pushing the stream to RTMP destinations (a platform's ingest, a media server).
//!
//! Each destination is its own tokio task with its own hub receiver (its queue), so one
//! slow or failing destination never affects the encoder or another destination. A task
//! loops: connect → handshake → `connect`/`publish` → relay; on any failure it records the
//! error, waits with capped exponential backoff, and tries again, until the stream stops
//! or the destination is removed. Stream keys never appear in logs: URLs are masked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rml_rtmp::handshake::PeerType;
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
    PublishRequestType, StreamMetadata,
};
use rml_rtmp::time::RtmpTimestamp;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types};
use tracing::Instrument;
use utoipa::ToSchema;

use crate::config::{Destination, RtmpUrl, mask_url};
use crate::hub::{MediaHub, Track};
use crate::relay::{self, MediaSession, RelayEnd, RtmpError, protocol};

/// Where a destination reports a failure: `(code, component, message)`, once per outage
/// (the server publishes it as an `error` event).
pub type FaultSink = Arc<dyn Fn(&str, &str, String) + Send + Sync>;

/// First wait after a failure; doubles up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_millis(200);
/// Longest wait between attempts: a receiver that comes back is reached within this.
const BACKOFF_MAX: Duration = Duration::from_millis(1500);
/// Connection attempts give up after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Connection state of one destination, as `/api/health` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationStatus {
    /// `connecting`, `live`, `retrying`, `stopped`, or `failed` (the URL is unusable).
    pub state: &'static str,
    /// Masked URL (not shown to callers without a token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The last failure, if any (not shown to callers without a token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Successful connections so far.
    pub connects: u64,
    /// Failed attempts so far.
    pub failures: u64,
}

type StatusMap = Arc<Mutex<HashMap<String, DestinationStatus>>>;

struct Running {
    destination: Destination,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The set of destination tasks of a live stream.
pub struct Destinations {
    hub: Arc<MediaHub>,
    faults: FaultSink,
    tls: TlsConnector,
    running: HashMap<String, Running>,
    status: StatusMap,
}

impl Destinations {
    /// No destination running yet; `rtmps://` destinations are verified with `tls`, and
    /// their failures go to `faults`.
    pub fn new(hub: Arc<MediaHub>, faults: FaultSink, tls: TlsConnector) -> Self {
        Self {
            hub,
            faults,
            tls,
            running: HashMap::new(),
            status: Arc::default(),
        }
    }

    /// A handle for reading status without the controller lock.
    pub fn status_handle(
        &self,
    ) -> impl Fn() -> HashMap<String, DestinationStatus> + Send + Sync + 'static {
        let status = self.status.clone();
        move || status.lock().expect("status lock").clone()
    }

    /// Makes the running set match `wanted` (enabled ones only): starts new ones, stops
    /// removed or changed ones, leaves unchanged ones connected.
    pub async fn reconcile(&mut self, wanted: &[Destination]) {
        let wanted: HashMap<&str, &Destination> = wanted
            .iter()
            .filter(|d| d.is_enabled())
            .map(|d| (d.id.as_str(), d))
            .collect();
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(id, r)| wanted.get(id.as_str()).is_none_or(|d| **d != r.destination))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            if let Some(r) = self.running.remove(&id) {
                let live = self.is_live(&id);
                stop_task(r, live).await;
            }
            self.status.lock().expect("status lock").remove(&id);
        }
        for (id, d) in wanted {
            if self.running.contains_key(id) {
                continue;
            }
            let (stop, stop_rx) = watch::channel(false);
            let span = tracing::info_span!("destination", id = %d.id, url = %mask_url(&d.url));
            let task = tokio::spawn(
                run(
                    d.clone(),
                    self.hub.clone(),
                    self.faults.clone(),
                    self.tls.clone(),
                    self.status.clone(),
                    stop_rx,
                )
                .instrument(span),
            );
            self.running.insert(
                id.to_string(),
                Running {
                    destination: d.clone(),
                    stop,
                    task,
                },
            );
        }
    }

    /// Whether destination `id` has a session up (published and relaying).
    fn is_live(&self, id: &str) -> bool {
        self.status
            .lock()
            .expect("status lock")
            .get(id)
            .is_some_and(|s| s.state == "live")
    }

    /// Lets every destination send what it has queued (call after the hub's end of
    /// stream) and closes them, all at once, within a few seconds in all.
    pub async fn close_all(&mut self) {
        let live: Vec<bool> = self.running.keys().map(|id| self.is_live(id)).collect();
        let closing = self
            .running
            .drain()
            .zip(live)
            .map(|((_, r), live)| async move {
                let mut task = r.task;
                // One that is not connected has nothing to send: its connect attempt or retry
                // wait is cancelled, never waited for (an unreachable host would hold the
                // caller for the connect timeout).
                if !live {
                    task.abort();
                    return;
                }
                // The relay drains up to the hub's End and returns by itself...
                if tokio::time::timeout(Duration::from_secs(2), &mut task)
                    .await
                    .is_ok()
                {
                    return;
                }
                // ...unless it is stuck (retry wait, slow peer): then it is told, then cut.
                let _ = r.stop.send(true);
                if tokio::time::timeout(Duration::from_secs(1), &mut task)
                    .await
                    .is_err()
                {
                    task.abort();
                }
            });
        futures_util::future::join_all(closing).await;
        self.status.lock().expect("status lock").clear();
    }
}

/// Stops one destination: a connected one is told and given a moment to close its session;
/// one that is not connected is cancelled at once.
async fn stop_task(r: Running, live: bool) {
    let _ = r.stop.send(true);
    let mut task = r.task;
    if !live {
        task.abort();
        return;
    }
    if tokio::time::timeout(Duration::from_secs(3), &mut task)
        .await
        .is_err()
    {
        task.abort();
    }
}

fn set_status(status: &StatusMap, id: &str, f: impl FnOnce(&mut DestinationStatus)) {
    if let Some(s) = status.lock().expect("status lock").get_mut(id) {
        f(s);
    }
}

async fn run(
    dest: Destination,
    hub: Arc<MediaHub>,
    faults: FaultSink,
    tls: TlsConnector,
    status: StatusMap,
    mut stop: watch::Receiver<bool>,
) {
    let masked = mask_url(&dest.url);
    status.lock().expect("status lock").insert(
        dest.id.clone(),
        DestinationStatus {
            state: "connecting",
            url: Some(masked.clone()),
            last_error: None,
            connects: 0,
            failures: 0,
        },
    );
    // `${NAME}` references are filled in from the environment now, not stored anywhere.
    let expanded = crate::config::expand_references(&dest.url, |k| std::env::var(k).ok());
    let url = match expanded.and_then(|u| RtmpUrl::parse(&u)) {
        Ok(u) => u,
        Err(e) => {
            set_status(&status, &dest.id, |s| {
                s.state = "failed";
                s.last_error = Some(e);
            });
            return;
        }
    };
    let mut backoff = BACKOFF_START;
    let component = format!("destination:{}", dest.id);
    // A failure is reported once per outage: again only after a successful connection.
    let mut reported_at_connects = None;
    loop {
        set_status(&status, &dest.id, |s| s.state = "connecting");
        let started = Instant::now();
        let result = push(&url, &hub, &tls, &status, &dest.id, &mut stop).await;
        match result {
            Ok(RelayEnd::StreamEnded | RelayEnd::Stopped) => {
                set_status(&status, &dest.id, |s| s.state = "stopped");
                return;
            }
            Err(e) => {
                if *stop.borrow() {
                    return;
                }
                if started.elapsed() > Duration::from_secs(10) {
                    backoff = BACKOFF_START;
                }
                let message = format!("{masked}: {e}");
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "destination failed");
                set_status(&status, &dest.id, |s| {
                    s.state = "retrying";
                    s.failures += 1;
                    s.last_error = Some(message.clone());
                });
                let connects = status
                    .lock()
                    .expect("status lock")
                    .get(&dest.id)
                    .map_or(0, |s| s.connects);
                if reported_at_connects != Some(connects) {
                    faults("destination_failed", &component, message);
                    reported_at_connects = Some(connects);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

struct Publisher {
    session: ClientSession,
}

fn client_outbound(results: Vec<ClientSessionResult>) -> (Vec<Vec<u8>>, Vec<ClientSessionEvent>) {
    let mut out = Vec::new();
    let mut events = Vec::new();
    for r in results {
        match r {
            ClientSessionResult::OutboundResponse(p) => out.push(p.bytes),
            ClientSessionResult::RaisedEvent(e) => events.push(e),
            ClientSessionResult::UnhandleableMessageReceived(_) => {}
        }
    }
    (out, events)
}

fn one(
    result: Result<ClientSessionResult, rml_rtmp::sessions::ClientSessionError>,
) -> Result<Vec<u8>, RtmpError> {
    match result.map_err(protocol)? {
        ClientSessionResult::OutboundResponse(p) => Ok(p.bytes),
        _ => Ok(Vec::new()),
    }
}

impl MediaSession for Publisher {
    fn metadata(&mut self, metadata: &StreamMetadata) -> Result<Vec<u8>, RtmpError> {
        one(self.session.publish_metadata(metadata))
    }

    fn media(&mut self, track: Track, data: Bytes, timestamp: u32) -> Result<Vec<u8>, RtmpError> {
        let ts = RtmpTimestamp::new(timestamp);
        one(match track {
            Track::Video => self.session.publish_video_data(data, ts, false),
            Track::Audio => self.session.publish_audio_data(data, ts, false),
        })
    }

    fn input(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, RtmpError> {
        Ok(client_outbound(self.session.handle_input(bytes).map_err(protocol)?).0)
    }
}

/// Reads until `want` is raised; fails on a rejection.
async fn await_event<S: AsyncRead + AsyncWrite + Unpin>(
    sock: &mut S,
    hub: &MediaHub,
    session: &mut ClientSession,
    pending: Vec<u8>,
    want: fn(&ClientSessionEvent) -> bool,
    what: &'static str,
) -> Result<(), RtmpError> {
    let mut buf = vec![0u8; 4096];
    let mut input = pending;
    loop {
        if !input.is_empty() {
            let (out, events) = client_outbound(session.handle_input(&input).map_err(protocol)?);
            for o in out {
                relay::write(sock, hub, &o).await?;
            }
            for e in events {
                if want(&e) {
                    return Ok(());
                }
                if let ClientSessionEvent::ConnectionRequestRejected { description } = e {
                    return Err(RtmpError::Refused(description));
                }
                if let ClientSessionEvent::UnhandleableOnStatusCode { code } = e
                    && (code.contains("Failed")
                        || code.contains("BadName")
                        || code.contains("Denied"))
                {
                    return Err(RtmpError::Refused(code));
                }
            }
        }
        let n = relay::read(sock, hub, &mut buf, what).await?;
        input = buf[..n].to_vec();
    }
}

/// Why the TLS set-up for `rtmps://` could not be built.
#[derive(Debug, thiserror::Error)]
#[error("tls-ca-file {path}: {reason}")]
pub struct TlsSetupError {
    path: String,
    reason: String,
}

/// The TLS client for `rtmps://` destinations: Mozilla's root certificates (webpki-roots),
/// plus the PEM certificates of `extra_ca_file` (a private ingest's own CA).
pub fn tls_connector(
    extra_ca_file: Option<&std::path::Path>,
) -> Result<TlsConnector, TlsSetupError> {
    use pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca_file {
        let fail = |reason: String| TlsSetupError {
            path: path.display().to_string(),
            reason,
        };
        let certs = pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| fail(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(e.to_string()))?;
        if certs.is_empty() {
            return Err(fail("no PEM certificate in the file".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| fail(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError {
            path: String::new(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn push(
    url: &RtmpUrl,
    hub: &MediaHub,
    tls: &TlsConnector,
    status: &StatusMap,
    id: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<RelayEnd, RtmpError> {
    let sock = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((url.host.as_str(), url.port)),
    )
    .await
    .map_err(|_| RtmpError::Timeout("connecting"))??;
    sock.set_nodelay(true)?;
    if !url.tls {
        let mut sock = sock;
        return publish(&mut sock, url, hub, status, id, stop).await;
    }
    let name = pki_types::ServerName::try_from(url.host.clone())
        .map_err(|e| RtmpError::Protocol(format!("TLS server name {:?}: {e}", url.host)))?;
    let mut sock = tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(name, sock))
        .await
        .map_err(|_| RtmpError::Timeout("in the TLS handshake"))?
        .map_err(|e| RtmpError::Refused(format!("TLS: {e}")))?;
    publish(&mut sock, url, hub, status, id, stop).await
}

/// RTMP handshake, `connect`, `publish`, then the relay, over any byte stream.
async fn publish<S: AsyncRead + AsyncWrite + Unpin>(
    sock: &mut S,
    url: &RtmpUrl,
    hub: &MediaHub,
    status: &StatusMap,
    id: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<RelayEnd, RtmpError> {
    let remaining = relay::handshake(sock, hub, PeerType::Client).await?;
    let mut config = ClientSessionConfig::new();
    config.tc_url = Some(url.tc_url.clone());
    let (mut session, initial) = ClientSession::new(config).map_err(protocol)?;
    for o in client_outbound(initial).0 {
        relay::write(sock, hub, &o).await?;
    }
    let connect = one(session.request_connection(url.app.clone()))?;
    relay::write(sock, hub, &connect).await?;
    await_event(
        sock,
        hub,
        &mut session,
        remaining,
        |e| matches!(e, ClientSessionEvent::ConnectionRequestAccepted),
        "for connect",
    )
    .await?;
    let publish = one(session.request_publishing(url.key.clone(), PublishRequestType::Live))?;
    relay::write(sock, hub, &publish).await?;
    await_event(
        sock,
        hub,
        &mut session,
        Vec::new(),
        |e| matches!(e, ClientSessionEvent::PublishRequestAccepted),
        "for publish",
    )
    .await?;
    tracing::info!("publishing");
    set_status(status, id, |s| {
        s.state = "live";
        s.connects += 1;
        s.last_error = None;
    });
    let mut publisher = Publisher { session };
    let sub = hub.subscribe();
    let end = relay::relay(sock, hub, &mut publisher, sub, stop).await?;
    if let Ok(results) = publisher.session.stop_publishing() {
        for bytes in client_outbound(results).0 {
            let _ = relay::write(sock, hub, &bytes).await;
        }
    }
    Ok(end)
}
