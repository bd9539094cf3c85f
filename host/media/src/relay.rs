//! What the embedded server's players and the pushed destinations share: the RTMP handshake
//! over a socket, and the relay loop that sends a hub subscription (headers, cached GOP, live
//! packets) into an RTMP session while answering the peer's control messages.
//!
//! A consumer that cannot keep up skips ahead: once the packet it is about to send is more
//! than [`MAX_BEHIND_MS`] older than the newest one published, it drops packets until a
//! keyframe within that distance of live (also when it lost packets at its own hub
//! receiver), so a viewer's delay cannot creep up; a peer that stops reading is cut after
//! [`WRITE_TIMEOUT`]. Neither ever slows the encoder or another consumer.

use std::time::Duration;

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::StreamMetadata;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use crate::hub::{MediaEvent, MediaHub, MediaPacket, StreamHeaders, Subscription, Track};

/// Longest a single write to a peer may take before the peer is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How far behind the newest packet a consumer may send before it skips to a newer keyframe.
pub const MAX_BEHIND_MS: u32 = 3000;

/// Longest the handshake and the session set-up may take.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A failure on one RTMP connection.
#[derive(Debug, thiserror::Error)]
pub enum RtmpError {
    /// Socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer did not answer in time.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// The peer closed the connection.
    #[error("peer closed the connection")]
    Closed,
    /// The RTMP library refused something.
    #[error("rtmp: {0}")]
    Protocol(String),
    /// The peer refused our request.
    #[error("refused: {0}")]
    Refused(String),
}

/// Converts any displayable RTMP library error.
pub fn protocol<E: std::fmt::Debug>(e: E) -> RtmpError {
    RtmpError::Protocol(format!("{e:?}"))
}

/// An RTMP session that media can be written into.
pub trait MediaSession {
    /// Serializes `onMetaData`.
    fn metadata(&mut self, metadata: &StreamMetadata) -> Result<Vec<u8>, RtmpError>;
    /// Serializes one FLV tag body.
    fn media(&mut self, track: Track, data: Bytes, timestamp: u32) -> Result<Vec<u8>, RtmpError>;
    /// Processes bytes from the peer; returns what must be sent back.
    fn input(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, RtmpError>;
}

/// Writes with a deadline, counting bytes on the hub.
pub async fn write<S: AsyncWrite + Unpin>(
    sock: &mut S,
    hub: &MediaHub,
    bytes: &[u8],
) -> Result<(), RtmpError> {
    tokio::time::timeout(WRITE_TIMEOUT, sock.write_all(bytes))
        .await
        .map_err(|_| RtmpError::Timeout("writing to the peer"))??;
    hub.count_out(bytes.len());
    Ok(())
}

/// Reads with a deadline; a closed socket is [`RtmpError::Closed`].
pub async fn read<S: AsyncRead + Unpin>(
    sock: &mut S,
    hub: &MediaHub,
    buf: &mut [u8],
    what: &'static str,
) -> Result<usize, RtmpError> {
    let n = tokio::time::timeout(SETUP_TIMEOUT, sock.read(buf))
        .await
        .map_err(|_| RtmpError::Timeout(what))??;
    if n == 0 {
        return Err(RtmpError::Closed);
    }
    hub.count_in(n);
    Ok(n)
}

/// Runs the RTMP handshake within [`SETUP_TIMEOUT`] in all (a peer trickling bytes cannot
/// hold a connection); returns bytes the peer sent after it.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    sock: &mut S,
    hub: &MediaHub,
    peer: PeerType,
) -> Result<Vec<u8>, RtmpError> {
    tokio::time::timeout(SETUP_TIMEOUT, handshake_steps(sock, hub, peer))
        .await
        .map_err(|_| RtmpError::Timeout("during the handshake"))?
}

async fn handshake_steps<S: AsyncRead + AsyncWrite + Unpin>(
    sock: &mut S,
    hub: &MediaHub,
    peer: PeerType,
) -> Result<Vec<u8>, RtmpError> {
    let is_client = peer == PeerType::Client;
    let mut hs = Handshake::new(peer);
    if is_client {
        let c0c1 = hs.generate_outbound_p0_and_p1().map_err(protocol)?;
        write(sock, hub, &c0c1).await?;
    }
    let mut buf = vec![0u8; 4096];
    loop {
        let n = read(sock, hub, &mut buf, "during the handshake").await?;
        match hs.process_bytes(&buf[..n]).map_err(protocol)? {
            HandshakeProcessResult::InProgress { response_bytes } => {
                write(sock, hub, &response_bytes).await?;
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                write(sock, hub, &response_bytes).await?;
                return Ok(remaining_bytes);
            }
        }
    }
}

/// How a relay ended.
#[derive(Debug, PartialEq, Eq)]
pub enum RelayEnd {
    /// The stream stopped.
    StreamEnded,
    /// We were told to stop.
    Stopped,
}

async fn send_headers<S, M>(
    sock: &mut S,
    hub: &MediaHub,
    session: &mut M,
    h: &StreamHeaders,
    ts: u32,
) -> Result<(), RtmpError>
where
    S: AsyncWrite + Unpin,
    M: MediaSession,
{
    let bytes = session.metadata(&h.metadata)?;
    write(sock, hub, &bytes).await?;
    let bytes = session.media(Track::Video, h.video.clone(), ts)?;
    write(sock, hub, &bytes).await?;
    if let Some(audio) = &h.audio {
        let bytes = session.media(Track::Audio, audio.clone(), ts)?;
        write(sock, hub, &bytes).await?;
    }
    Ok(())
}

async fn send_packet<S, M>(
    sock: &mut S,
    hub: &MediaHub,
    session: &mut M,
    p: &MediaPacket,
) -> Result<(), RtmpError>
where
    S: AsyncWrite + Unpin,
    M: MediaSession,
{
    let bytes = session.media(p.track, p.data.clone(), p.timestamp)?;
    write(sock, hub, &bytes).await
}

/// Sends the subscription into the session until the stream ends, `stop` turns true, or
/// the peer fails.
pub async fn relay<S, M>(
    sock: &mut S,
    hub: &MediaHub,
    session: &mut M,
    sub: Subscription,
    stop: &mut watch::Receiver<bool>,
) -> Result<RelayEnd, RtmpError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    M: MediaSession,
{
    let Subscription {
        headers,
        gop,
        mut rx,
    } = sub;
    let mut last_ts = gop.first().map_or(0, |p| p.timestamp);
    if let Some(h) = &headers {
        send_headers(sock, hub, session, h, last_ts).await?;
    }
    for p in &gop {
        send_packet(sock, hub, session, p).await?;
        last_ts = p.timestamp;
    }
    // Without a cached GOP the first packet sent must be a keyframe.
    let mut waiting_for_key = gop.is_empty();
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            n = sock.read(&mut buf) => {
                let n = n?;
                if n == 0 {
                    return Err(RtmpError::Closed);
                }
                hub.count_in(n);
                for out in session.input(&buf[..n])? {
                    write(sock, hub, &out).await?;
                }
            }
            ev = rx.recv() => match ev {
                Ok(MediaEvent::Packet(p)) => {
                    let behind = hub.newest_timestamp().wrapping_sub(p.timestamp);
                    if (MAX_BEHIND_MS..u32::MAX / 2).contains(&behind) {
                        if !waiting_for_key {
                            tracing::info!(behind_ms = behind, "consumer fell behind live; skipping to a newer keyframe");
                        }
                        waiting_for_key = true;
                        continue;
                    }
                    if waiting_for_key {
                        if !(p.track == Track::Video && p.keyframe) {
                            continue;
                        }
                        waiting_for_key = false;
                    }
                    last_ts = p.timestamp;
                    send_packet(sock, hub, session, &p).await?;
                }
                Ok(MediaEvent::Headers(h)) => {
                    send_headers(sock, hub, session, &h, last_ts).await?;
                    waiting_for_key = true;
                }
                Ok(MediaEvent::End) | Err(RecvError::Closed) => return Ok(RelayEnd::StreamEnded),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "consumer fell behind; resuming at the next keyframe");
                    waiting_for_key = true;
                }
            },
            _ = stop.changed() => return Ok(RelayEnd::Stopped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session whose every media message is `PACKET` bytes starting with the timestamp.
    struct Stamps;
    const PACKET: usize = 1024;

    impl MediaSession for Stamps {
        fn metadata(&mut self, _: &StreamMetadata) -> Result<Vec<u8>, RtmpError> {
            Ok(Vec::new())
        }
        fn media(&mut self, _: Track, _: Bytes, timestamp: u32) -> Result<Vec<u8>, RtmpError> {
            let mut out = vec![0u8; PACKET];
            out[..4].copy_from_slice(&timestamp.to_be_bytes());
            Ok(out)
        }
        fn input(&mut self, _: &[u8]) -> Result<Vec<Vec<u8>>, RtmpError> {
            Ok(Vec::new())
        }
    }

    /// A viewer that stops reading for ten seconds of stream comes back within
    /// MAX_BEHIND_MS of live, at a keyframe, and goes on from there without a gap.
    #[tokio::test]
    async fn a_consumer_that_fell_behind_skips_to_a_keyframe_near_live() {
        let hub = std::sync::Arc::new(MediaHub::new());
        let (mut viewer, mut server_side) = tokio::io::duplex(16 * PACKET);
        let (stop_tx, mut stop) = watch::channel(false);
        let sub = hub.subscribe();
        let relay_hub = hub.clone();
        let relay = tokio::spawn(async move {
            relay(&mut server_side, &relay_hub, &mut Stamps, sub, &mut stop).await
        });
        // 10 s of 30 fps video, a keyframe a second, published while nobody reads.
        let ts = |i: u32| i * 1000 / 30;
        for i in 0..300 {
            hub.publish(MediaPacket {
                track: Track::Video,
                timestamp: ts(i),
                keyframe: i % 30 == 0,
                data: Bytes::from_static(b"x"),
            });
            tokio::task::yield_now().await;
        }
        let newest = hub.newest_timestamp();
        assert_eq!(newest, ts(299));
        let mut seen = Vec::new();
        let mut buf = vec![0u8; PACKET];
        while seen.last() != Some(&newest) {
            tokio::time::timeout(Duration::from_secs(5), viewer.read_exact(&mut buf))
                .await
                .expect("the relay goes on")
                .unwrap();
            seen.push(u32::from_be_bytes(buf[..4].try_into().unwrap()));
        }
        let jump = seen
            .windows(2)
            .position(|w| w[1] - w[0] > 40)
            .expect("a skip ahead");
        let resumed = seen[jump + 1];
        assert!(
            newest - resumed <= MAX_BEHIND_MS,
            "resumed at {resumed} of {newest}"
        );
        assert_eq!(
            resumed,
            ts(resumed * 30 / 1000 / 30 * 30),
            "at a keyframe: {resumed}"
        );
        assert!(
            seen[jump + 1..].windows(2).all(|w| w[1] - w[0] <= 34),
            "no gap after it: {seen:?}"
        );
        stop_tx.send(true).unwrap();
        assert_eq!(relay.await.unwrap().unwrap(), RelayEnd::Stopped);
    }
}
