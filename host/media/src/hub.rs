//! The media hub: where encoded packets meet their consumers (players of the embedded RTMP
//! server, pushed destinations). The encoder publishes into it without ever blocking on a
//! consumer: packets go out on a bounded broadcast channel, and a consumer that falls behind
//! loses packets at its own receiver and resumes at the next keyframe.
//!
//! The hub also keeps what a consumer needs to start mid-stream: the sequence headers and
//! the current GOP (last keyframe onward), so a player that joins shows a picture at once
//! instead of waiting for the next keyframe.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use rml_rtmp::sessions::StreamMetadata;
use tokio::sync::broadcast;

/// Which track a packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// H.264 video.
    Video,
    /// AAC audio.
    Audio,
}

/// One encoded packet as an FLV tag body, with its RTMP timestamp.
#[derive(Debug, Clone)]
pub struct MediaPacket {
    /// Video or audio.
    pub track: Track,
    /// Decoding timestamp in milliseconds.
    pub timestamp: u32,
    /// A video keyframe (a point where a decoder can start).
    pub keyframe: bool,
    /// FLV tag body (refcounted: shared by every consumer).
    pub data: Bytes,
}

/// Codec set-up a consumer sends before any packet.
#[derive(Debug, Clone)]
pub struct StreamHeaders {
    /// `onMetaData` values.
    pub metadata: StreamMetadata,
    /// AVC sequence header (FLV body).
    pub video: Bytes,
    /// AAC sequence header (FLV body), when there is audio.
    pub audio: Option<Bytes>,
}

/// What consumers receive.
#[derive(Debug, Clone)]
pub enum MediaEvent {
    /// New codec set-up (the pipeline (re)started); send before the packets that follow.
    Headers(Arc<StreamHeaders>),
    /// A packet.
    Packet(MediaPacket),
    /// The stream stopped; consumers finish and close.
    End,
}

/// What a new consumer starts from.
pub struct Subscription {
    /// Current headers, if the stream is running.
    pub headers: Option<Arc<StreamHeaders>>,
    /// The current GOP, starting with a keyframe (empty before the first keyframe).
    pub gop: Vec<MediaPacket>,
    /// Everything published after the snapshot above.
    pub rx: broadcast::Receiver<MediaEvent>,
}

/// Bounds on the cached GOP: past these the cache is dropped until the next keyframe.
const GOP_MAX_PACKETS: usize = 8192;
const GOP_MAX_BYTES: usize = 64 << 20;

#[derive(Default)]
struct Inner {
    headers: Option<Arc<StreamHeaders>>,
    gop: Vec<MediaPacket>,
    gop_bytes: usize,
    /// When the last packet was published (its timestamp is `MediaHub::newest`).
    last_published: Option<std::time::Instant>,
}

/// Fan-out point between the encoder and every output.
pub struct MediaHub {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<MediaEvent>,
    /// Timestamp of the newest packet published (what "live" is for a consumer); written
    /// under `inner`'s lock, read without it.
    newest: std::sync::atomic::AtomicU32,
    /// Bytes sent to all RTMP peers (players and destinations).
    pub bytes_out: AtomicU64,
    /// Bytes received from all RTMP peers.
    pub bytes_in: AtomicU64,
}

impl Default for MediaHub {
    fn default() -> Self {
        Self::new()
    }
}

impl MediaHub {
    /// A hub whose consumers may fall up to ~1024 packets behind before they skip.
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            tx: broadcast::channel(1024).0,
            newest: std::sync::atomic::AtomicU32::new(0),
            bytes_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("hub lock poisoned")
    }

    /// Starts (or restarts) a run of the encoder with new headers. Returns the timestamp the
    /// run starts at, so timestamps keep increasing across pipeline restarts.
    pub fn begin(&self, headers: StreamHeaders) -> u32 {
        let headers = Arc::new(headers);
        let mut inner = self.lock();
        inner.headers = Some(headers.clone());
        inner.gop.clear();
        inner.gop_bytes = 0;
        // A restart continues the timeline by the wall time that passed, so timestamps keep
        // increasing and stay in step with the clock. RTMP timestamps are 32-bit
        // milliseconds and wrap (after ~49 days) by design.
        let base = match inner.last_published {
            None => 0,
            Some(at) => self
                .newest_timestamp()
                .wrapping_add((at.elapsed().as_millis() as u32).max(1)),
        };
        let _ = self.tx.send(MediaEvent::Headers(headers));
        base
    }

    /// Publishes one packet to every consumer; never blocks on them.
    pub fn publish(&self, packet: MediaPacket) {
        let mut inner = self.lock();
        // Audio and video interleave, so keep the latest of them (in wrapping order); only
        // written under the lock.
        if packet.timestamp.wrapping_sub(self.newest_timestamp()) < u32::MAX / 2 {
            self.newest.store(packet.timestamp, Ordering::Relaxed);
        }
        inner.last_published = Some(std::time::Instant::now());
        if packet.track == Track::Video && packet.keyframe {
            inner.gop.clear();
            inner.gop_bytes = 0;
        }
        let starts_with_key = inner.gop.first().is_some_and(|p| p.keyframe)
            || (packet.track == Track::Video && packet.keyframe);
        if starts_with_key {
            if inner.gop.len() >= GOP_MAX_PACKETS
                || inner.gop_bytes + packet.data.len() > GOP_MAX_BYTES
            {
                inner.gop.clear();
                inner.gop_bytes = 0;
            } else {
                inner.gop_bytes += packet.data.len();
                inner.gop.push(packet.clone());
            }
        }
        let _ = self.tx.send(MediaEvent::Packet(packet));
    }

    /// Ends the stream: consumers finish; the cache is cleared.
    pub fn end(&self) {
        let mut inner = self.lock();
        inner.headers = None;
        inner.gop.clear();
        inner.gop_bytes = 0;
        let _ = self.tx.send(MediaEvent::End);
    }

    /// Timestamp of the newest packet published, in RTMP milliseconds: how far behind live
    /// a consumer is, is this minus the timestamp of the packet it is sending.
    pub fn newest_timestamp(&self) -> u32 {
        self.newest.load(Ordering::Relaxed)
    }

    /// Whether a run is active.
    pub fn is_running(&self) -> bool {
        self.lock().headers.is_some()
    }

    /// A consumer's starting point: headers + GOP snapshot and a receiver for what follows,
    /// taken under one lock so nothing is missed or doubled.
    pub fn subscribe(&self) -> Subscription {
        let inner = self.lock();
        Subscription {
            headers: inner.headers.clone(),
            gop: inner.gop.clone(),
            rx: self.tx.subscribe(),
        }
    }

    /// Counts bytes sent to a peer.
    pub fn count_out(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts bytes received from a peer.
    pub fn count_in(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(track: Track, ts: u32, keyframe: bool) -> MediaPacket {
        MediaPacket {
            track,
            timestamp: ts,
            keyframe,
            data: Bytes::from_static(b"x"),
        }
    }

    fn headers() -> StreamHeaders {
        StreamHeaders {
            metadata: StreamMetadata::new(),
            video: Bytes::new(),
            audio: None,
        }
    }

    #[test]
    fn late_joiner_gets_gop_from_last_keyframe() {
        let hub = MediaHub::new();
        assert_eq!(hub.begin(headers()), 0);
        hub.publish(pkt(Track::Video, 0, true));
        hub.publish(pkt(Track::Video, 33, false));
        hub.publish(pkt(Track::Video, 66, true));
        hub.publish(pkt(Track::Audio, 70, false));
        hub.publish(pkt(Track::Video, 100, false));
        let sub = hub.subscribe();
        let ts: Vec<u32> = sub.gop.iter().map(|p| p.timestamp).collect();
        assert_eq!(ts, vec![66, 70, 100]);
        assert!(sub.headers.is_some());
    }

    #[test]
    fn restart_continues_timestamps() {
        let hub = MediaHub::new();
        hub.begin(headers());
        hub.publish(pkt(Track::Video, 5000, true));
        assert!(hub.begin(headers()) > 5000);
        hub.end();
        assert!(!hub.is_running());
        assert!(hub.subscribe().gop.is_empty());
    }
}
