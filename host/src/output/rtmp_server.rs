//! The embedded RTMP server: players pull `rtmp://host:<rtmp-port>/live/main`.
//!
//! Each connection is a tokio task: handshake, then an `rml_rtmp` server session that accepts
//! `connect` and `play` for `live/main` (publishing is refused: the only source is our
//! encoder), then the shared relay. A player that connects while the stream is stopped waits
//! for it to start.

use std::sync::Arc;

use bytes::Bytes;
use rml_rtmp::handshake::PeerType;
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult, StreamMetadata,
};
use rml_rtmp::time::RtmpTimestamp;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::Instrument;

use super::hub::{MediaHub, Track};
use super::relay::{self, MediaSession, RtmpError, protocol};

/// The application name players use.
pub const APP: &str = "live";
/// The stream key players use.
pub const STREAM_KEY: &str = "main";

struct Player {
    session: ServerSession,
    stream_id: u32,
}

impl MediaSession for Player {
    fn metadata(&mut self, _metadata: &StreamMetadata) -> Result<Vec<u8>, RtmpError> {
        // rml_rtmp stamps onMetaData with the session's wall-clock age; FFmpeg-based players
        // then take it for a subtitle stream. Players learn everything from the sequence
        // headers, so the embedded server sends none.
        Ok(Vec::new())
    }

    fn media(&mut self, track: Track, data: Bytes, timestamp: u32) -> Result<Vec<u8>, RtmpError> {
        let ts = RtmpTimestamp::new(timestamp);
        let packet = match track {
            Track::Video => self
                .session
                .send_video_data(self.stream_id, data, ts, false),
            Track::Audio => self
                .session
                .send_audio_data(self.stream_id, data, ts, false),
        };
        Ok(packet.map_err(protocol)?.bytes)
    }

    fn input(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, RtmpError> {
        Ok(outbound(
            self.session.handle_input(bytes).map_err(protocol)?,
        ))
    }
}

fn outbound(results: Vec<ServerSessionResult>) -> Vec<Vec<u8>> {
    results
        .into_iter()
        .filter_map(|r| match r {
            ServerSessionResult::OutboundResponse(p) => Some(p.bytes),
            _ => None,
        })
        .collect()
}

/// Most players served at once; more are refused at accept.
pub const MAX_PLAYERS: usize = 256;

/// Accepts players until `shutdown` turns true.
pub async fn serve(listener: TcpListener, hub: Arc<MediaHub>, shutdown: watch::Receiver<bool>) {
    let mut stop = shutdown.clone();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_PLAYERS));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((sock, peer)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, "player refused: {MAX_PLAYERS} players already connected");
                        continue;
                    };
                    let (hub, shutdown) = (hub.clone(), shutdown.clone());
                    tokio::spawn(async move {
                        let _slot = slot;
                        match serve_player(sock, &hub, shutdown).await {
                            Ok(()) | Err(RtmpError::Closed) => tracing::debug!("player left"),
                            Err(e) => tracing::info!(error = %e, "player connection ended"),
                        }
                    }.instrument(tracing::info_span!("rtmp_player", %peer)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

async fn serve_player(
    mut sock: TcpStream,
    hub: &MediaHub,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), RtmpError> {
    sock.set_nodelay(true)?;
    // The whole handshake has one deadline: a peer trickling bytes cannot hold a slot.
    let remaining = tokio::time::timeout(
        relay::SETUP_TIMEOUT,
        relay::handshake(&mut sock, hub, PeerType::Server),
    )
    .await
    .map_err(|_| RtmpError::Timeout("during the handshake"))??;
    let (mut session, initial) =
        ServerSession::new(ServerSessionConfig::new()).map_err(protocol)?;
    let mut pending = initial;
    pending.extend(session.handle_input(&remaining).map_err(protocol)?);
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + relay::SETUP_TIMEOUT * 2;
    loop {
        let mut play = None;
        let mut more = Vec::new();
        for result in pending.drain(..) {
            match result {
                ServerSessionResult::OutboundResponse(p) => {
                    relay::write(&mut sock, hub, &p.bytes).await?
                }
                ServerSessionResult::RaisedEvent(ev) => match ev {
                    ServerSessionEvent::ConnectionRequested {
                        request_id,
                        app_name,
                    } => {
                        more.extend(
                            if app_name == APP {
                                session.accept_request(request_id)
                            } else {
                                session.reject_request(
                                    request_id,
                                    "NetConnection.Connect.Rejected",
                                    "unknown application",
                                )
                            }
                            .map_err(protocol)?,
                        );
                    }
                    ServerSessionEvent::PlayStreamRequested {
                        request_id,
                        stream_key,
                        stream_id,
                        ..
                    } => {
                        if stream_key == STREAM_KEY {
                            more.extend(session.accept_request(request_id).map_err(protocol)?);
                            play = Some(stream_id);
                        } else {
                            more.extend(
                                session
                                    .reject_request(
                                        request_id,
                                        "NetStream.Play.StreamNotFound",
                                        "unknown stream; play live/main",
                                    )
                                    .map_err(protocol)?,
                            );
                        }
                    }
                    ServerSessionEvent::PublishStreamRequested { request_id, .. } => {
                        more.extend(
                            session
                                .reject_request(
                                    request_id,
                                    "NetStream.Publish.Denied",
                                    "publishing is not accepted here",
                                )
                                .map_err(protocol)?,
                        );
                    }
                    _ => {}
                },
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        for p in outbound(std::mem::take(&mut more)) {
            relay::write(&mut sock, hub, &p).await?;
        }
        if let Some(stream_id) = play {
            let mut player = Player { session, stream_id };
            let sub = hub.subscribe();
            relay::relay(&mut sock, hub, &mut player, sub, &mut shutdown).await?;
            return Ok(());
        }
        let n =
            tokio::time::timeout_at(deadline, relay::read(&mut sock, hub, &mut buf, "for play"))
                .await
                .map_err(|_| RtmpError::Timeout("waiting for play"))??;
        pending = session.handle_input(&buf[..n]).map_err(protocol)?;
    }
}
