//! The WebSocket feed: on connect the current `stateUpdate`, then every event of the bus in
//! order, the latest `previewFrame` whenever a new one is ready, and `audioLevels` whenever
//! the mixer has published new meter readings (about 10 a second while live; checked every
//! [`LEVELS_EVERY`], so no client costs the mixer anything). Each client has its own bounded receiver on the bus: a client that falls behind
//! (its receiver overflows) or does not take a message within [`SEND_TIMEOUT`] is dropped,
//! so a slow or dead client never slows the server or another client.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::app::{AppState, bearer};
use super::error::ApiError;
use crate::auth::Role;
use crate::state::Event;

/// How often a session looks for new meter readings.
pub const LEVELS_EVERY: Duration = Duration::from_millis(50);

/// Longest a client may take to accept one message.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest message (and frame) a client may send. The feed needs nothing from clients but
/// pings and a close, so a few KiB is plenty; a larger one closes the connection with 1009
/// before its bytes are buffered.
pub const MAX_CLIENT_MESSAGE: usize = 4096;

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The subprotocol the server answers with when a client offers it (browsers, which
/// cannot set an `Authorization` header on a WebSocket, offer it beside their token).
pub const SUBPROTOCOL: &str = "stream-manager";

/// Prefix of the subprotocol that carries a token: `bearer.<base64url of the token>`.
const TOKEN_PROTOCOL: &str = "bearer.";

/// The WebSocket router (served on its own port), at `/` and `/ws`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(upgrade))
        .route("/ws", get(upgrade))
        .with_state(state)
}

/// The WebSocket at `/ws` alone, for the HTTP port (where the console opens it).
pub fn route(state: AppState) -> Router {
    Router::new().route("/ws", get(upgrade)).with_state(state)
}

async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    extensions: axum::http::Extensions,
    ws: WebSocketUpgrade,
) -> Response {
    if !super::console::same_origin(&headers) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "a page of another origin may not open this WebSocket",
        )
        .into_response();
    }
    let offered = protocol_token(&headers);
    let presented = bearer(&headers)
        .or(offered.as_deref())
        .or(q.token.as_deref());
    let addr = super::access::client_addr(&extensions);
    if let Err(refused) =
        super::access::authorize(&state.access, addr, presented, Some(Role::Viewer))
    {
        return refused.into_response();
    }
    let Some(seat) = Seat::take(&state) else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_clients",
            format!(
                "{} WebSocket clients are connected, the most this server admits (--max-ws-clients)",
                state.max_ws_clients
            ),
        )
        .into_response();
    };
    ws.protocols([SUBPROTOCOL])
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| async move {
            let (tx, rx) = socket.split();
            session(&state, tx, rx).await;
            drop(seat);
        })
}

/// One connected client, counted from admission until its session ends (or its upgrade
/// fails and the seat is dropped unused).
struct Seat(Arc<std::sync::atomic::AtomicU64>);

impl Seat {
    fn take(state: &AppState) -> Option<Self> {
        let max = state.max_ws_clients as u64;
        state
            .ws_clients
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(state.ws_clients.clone()))
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The token a client offered as the subprotocol `bearer.<base64url, no padding>`, if any
/// (one that does not decode to UTF-8 is no token, and fails as a wrong one would).
fn protocol_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(TOKEN_PROTOCOL))
        .map(|encoded| {
            URL_SAFE_NO_PAD
                .decode(encoded)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .unwrap_or_default()
        })
}

/// Serializes one event as `{type, payload}`.
pub fn encode(event: &Event) -> String {
    serde_json::to_string(event).expect("events serialize")
}

/// One client's session, generic over the socket halves so it can be tested without one.
pub async fn session<Tx, Rx>(state: &AppState, mut tx: Tx, mut rx: Rx)
where
    Tx: Sink<Message> + Unpin,
    Rx: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    // Subscribe before reading the state so no change falls between the two.
    let mut events = state.state.subscribe();
    // Watching makes the pipeline produce previews; the guard stops that when we leave.
    let (_viewer, mut previews) = state.controller.preview().watch();
    let initial = Event::StateUpdate(state.controller.state());
    if !send(&mut tx, encode(&initial)).await {
        return;
    }
    let mut levels_tick = tokio::time::interval(LEVELS_EVERY);
    levels_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut levels_seen = state.audio.levels_seq();
    loop {
        tokio::select! {
            _ = levels_tick.tick() => {
                if state.audio.levels_seq() != levels_seen {
                    let (seq, levels) = state.audio.levels();
                    levels_seen = seq;
                    if seq != 0 && !send(&mut tx, encode(&Event::AudioLevels(levels))).await {
                        tracing::info!("websocket client too slow; dropped");
                        return;
                    }
                }
            }
            ev = events.recv() => match ev {
                Ok(ev) => {
                    if !send(&mut tx, encode(&Arc::unwrap_or_clone(ev))).await {
                        tracing::info!("websocket client too slow; dropped");
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::info!(missed = n, "websocket client fell behind; dropped");
                    let _ = tx
                        .send(Message::Close(Some(CloseFrame { code: 1008, reason: "too slow; reconnect".into() })))
                        .await;
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            changed = previews.changed() => {
                if changed.is_err() {
                    return;
                }
                // Only the latest preview is ever sent: a slow client gets fewer frames.
                let latest = previews.borrow_and_update().clone();
                if let Some(text) = latest
                    && !send(&mut tx, text.to_string()).await
                {
                    tracing::info!("websocket client too slow; dropped");
                    return;
                }
            }
            msg = rx.next() => match msg {
                Some(Ok(Message::Close(_))) | None => return,
                Some(Err(e)) => {
                    if too_big(e) {
                        tracing::info!(max = MAX_CLIENT_MESSAGE, "websocket client sent a message too large; closed");
                        let close = CloseFrame { code: 1009, reason: "message too large".into() };
                        let _ = tokio::time::timeout(SEND_TIMEOUT, tx.send(Message::Close(Some(close)))).await;
                    }
                    return;
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Whether a read failed because the client's message or frame exceeded
/// [`MAX_CLIENT_MESSAGE`].
fn too_big(e: axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error as WsError;
    e.into_inner()
        .downcast_ref::<WsError>()
        .is_some_and(|e| matches!(e, WsError::Capacity(_)))
}

async fn send<Tx: Sink<Message> + Unpin>(tx: &mut Tx, text: String) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, tx.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll};

    use futures_util::stream;

    use super::*;
    use crate::api::tests::app;
    use crate::state::{FaultEvent, StreamMetrics};

    /// A client that never takes a message.
    struct Stuck;

    impl Sink<Message> for Stuck {
        type Error = ();
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Pending
        }
        fn start_send(self: Pin<&mut Self>, _: Message) -> Result<(), ()> {
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Pending
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A client that records what it is sent.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Message>>>);

    impl Sink<Message> for Recorder {
        type Error = ();
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(self: Pin<&mut Self>, m: Message) -> Result<(), ()> {
            self.0.lock().unwrap().push(m);
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl Recorder {
        fn texts(&self) -> Vec<serde_json::Value> {
            self.0
                .lock()
                .unwrap()
                .iter()
                .filter_map(|m| match m {
                    Message::Text(t) => serde_json::from_str(t).ok(),
                    _ => None,
                })
                .collect()
        }
    }

    fn never_reads() -> impl Stream<Item = Result<Message, axum::Error>> + Unpin {
        stream::pending()
    }

    /// A session for a recording client, once it has sent the initial state.
    async fn connected() -> (AppState, Recorder, tokio::task::JoinHandle<()>) {
        let app = app(None);
        let rec = Recorder::default();
        let task = tokio::spawn({
            let (app, rec) = (app.clone(), rec.clone());
            async move { session(&app, rec, never_reads()).await }
        });
        while rec.texts().is_empty() {
            tokio::task::yield_now().await;
        }
        (app, rec, task)
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_reads_is_dropped() {
        let app = app(None);
        let session = session(&app, Stuck, never_reads());
        tokio::time::timeout(SEND_TIMEOUT * 3, session)
            .await
            .expect("the session gives up on a stuck client");
    }

    #[tokio::test]
    async fn state_first_then_events_in_order() {
        let (app, rec, task) = connected().await;
        app.state
            .publish(Event::MetricsUpdate(StreamMetrics::default()));
        app.state.fault("test_fault", Some("test"), "first");
        while rec.texts().len() < 3 {
            tokio::task::yield_now().await;
        }
        task.abort();
        let types: Vec<String> = rec
            .texts()
            .iter()
            .map(|m| m["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(types, ["stateUpdate", "metricsUpdate", "error"]);
        assert_eq!(rec.texts()[0]["payload"]["isLive"], false);
        assert_eq!(rec.texts()[2]["payload"]["code"], "test_fault");
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_is_closed_with_1008() {
        // The session has subscribed; overflow the bus before it reads.
        let (app, rec, task) = connected().await;
        for i in 0..400 {
            app.state.publish(Event::Error(FaultEvent {
                code: "flood".into(),
                message: i.to_string(),
                component: None,
            }));
        }
        tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .expect("the session ends")
            .unwrap();
        let last = rec.0.lock().unwrap().last().cloned();
        assert!(
            matches!(
                last,
                Some(Message::Close(Some(CloseFrame { code: 1008, .. })))
            ),
            "{last:?}"
        );
    }

    #[tokio::test]
    async fn a_client_message_too_large_closes_with_1009() {
        use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
        let app = app(None);
        let rec = Recorder::default();
        let too_big = WsError::Capacity(CapacityError::MessageTooLong {
            size: 60 << 20,
            max_size: MAX_CLIENT_MESSAGE,
        });
        // The client's read fails once its first message is seen to be too large.
        let reads =
            stream::once(async move { Err(axum::Error::new(too_big)) }).chain(stream::pending());
        let reads = Box::pin(reads);
        tokio::time::timeout(Duration::from_secs(5), session(&app, rec.clone(), reads))
            .await
            .expect("the session ends");
        let last = rec.0.lock().unwrap().last().cloned();
        assert!(
            matches!(
                last,
                Some(Message::Close(Some(CloseFrame { code: 1009, .. })))
            ),
            "{last:?}"
        );
    }
}
