//! The WebSocket feed: on connect the current `stateUpdate`, then every event of the bus in
//! order. Each client has its own bounded receiver on the bus: a client that falls behind
//! (its receiver overflows) or does not take a message within [`SEND_TIMEOUT`] is dropped,
//! so a slow or dead client never slows the server or another client.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::{AppState, bearer};
use crate::state::Event;

/// Longest a client may take to accept one message.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The WebSocket router (served on its own port), at `/` and `/ws`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(upgrade))
        .route("/ws", get(upgrade))
        .with_state(state)
}

async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let presented = bearer(&headers).or(q.token.as_deref());
    if !state.authorized(presented) {
        return ApiError::unauthorized().into_response();
    }
    ws.on_upgrade(move |socket| async move {
        state.ws_clients.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = socket.split();
        session(&state, tx, rx).await;
        state.ws_clients.fetch_sub(1, Ordering::Relaxed);
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
    let initial = Event::StateUpdate(state.controller.state());
    if !send(&mut tx, encode(&initial)).await {
        return;
    }
    loop {
        tokio::select! {
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
            msg = rx.next() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn send<Tx: Sink<Message> + Unpin>(tx: &mut Tx, text: String) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, tx.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}
