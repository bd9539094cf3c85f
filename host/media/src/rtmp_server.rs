//! The embedded RTMP server: players pull `rtmp://host:<rtmp-port>/live/main`, and
//! publishers push live inputs to `rtmp://host:<rtmp-port>/input/<streamKey>`.
//!
//! Each connection is a tokio task: handshake, then a session, then the shared relay (a
//! player) or the ingest loop (a publisher, see [`crate::input::rtmp`]). The session uses `rml_rtmp`'s chunk and AMF0 layers but answers the few commands
//! a player sends (`connect`, `createStream`, `play`) itself: `rml_rtmp`'s general server
//! session stamps its data messages (`onMetaData`, `|RtmpSampleAccess`,
//! `NetStream.Data.Start`) with the session's wall-clock age, which FFmpeg-based players
//! (ffplay, OBS, VLC) then show as stray subtitle and data tracks. Here every data message
//! is stamped 0, as nginx-rtmp does. Publishing is accepted only on the `input` application
//! with the stream key of an `rtmp` input, one publisher per key. A player that connects
//! while the stream is stopped waits for it to start.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use rml_rtmp::chunk_io::{ChunkDeserializer, ChunkSerializer};
use rml_rtmp::handshake::PeerType;
use rml_rtmp::messages::{PeerBandwidthLimitType, RtmpMessage, UserControlEventType};
use rml_rtmp::rml_amf0::Amf0Value;
use rml_rtmp::sessions::StreamMetadata;
use rml_rtmp::time::RtmpTimestamp;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::Instrument;

use crate::hub::{MediaHub, Track};
use crate::input::rtmp::{INGEST_APP, IngestMessage, IngestRegistry, PublishRefusal, Publishing};
use crate::relay::{self, MediaSession, RtmpError, protocol};

/// The application name players use.
pub const APP: &str = "live";
/// The stream key players use.
pub const STREAM_KEY: &str = "main";
/// Outgoing chunk size (RTMP's default of 128 costs a header every 128 bytes).
const CHUNK_SIZE: u32 = 4096;
/// The message stream id handed out by `createStream`.
const STREAM_ID: u32 = 1;
/// A publisher silent this long is disconnected.
const PUBLISH_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// What a player asked for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// `play` of the live stream was accepted on this message stream.
    Play(u32),
    /// `publish` to an input's key was accepted.
    Publish,
    /// The peer closed its stream, or its request was refused.
    Close,
}

/// A server session: players on `live`, publishers on `input`.
struct PlaySession {
    serializer: ChunkSerializer,
    deserializer: ChunkDeserializer,
    stream_id: u32,
    app: String,
    ingest: Option<Arc<IngestRegistry>>,
    publishing: Option<Publishing>,
}

fn object(pairs: &[(&str, Amf0Value)]) -> Amf0Value {
    Amf0Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<HashMap<_, _>>(),
    )
}

fn text(s: &str) -> Amf0Value {
    Amf0Value::Utf8String(s.into())
}

fn status(level: &str, code: &str, description: &str) -> Amf0Value {
    object(&[
        ("level", text(level)),
        ("code", text(code)),
        ("description", text(description)),
    ])
}

impl PlaySession {
    /// A session and the control messages that open it.
    fn new(ingest: Option<Arc<IngestRegistry>>) -> Result<(Self, Vec<Vec<u8>>), RtmpError> {
        let mut session = Self {
            serializer: ChunkSerializer::new(),
            deserializer: ChunkDeserializer::new(),
            stream_id: STREAM_ID,
            app: String::new(),
            ingest,
            publishing: None,
        };
        let mut out = vec![
            session
                .serializer
                .set_max_chunk_size(CHUNK_SIZE, RtmpTimestamp::new(0))
                .map_err(protocol)?
                .bytes,
        ];
        out.push(session.message(RtmpMessage::WindowAcknowledgement { size: 2_500_000 }, 0, 0)?);
        out.push(session.message(
            RtmpMessage::SetPeerBandwidth {
                size: 2_500_000,
                limit_type: PeerBandwidthLimitType::Dynamic,
            },
            0,
            0,
        )?);
        Ok((session, out))
    }

    fn message(
        &mut self,
        message: RtmpMessage,
        timestamp: u32,
        stream_id: u32,
    ) -> Result<Vec<u8>, RtmpError> {
        let payload = message
            .into_message_payload(RtmpTimestamp::new(timestamp), stream_id)
            .map_err(protocol)?;
        Ok(self
            .serializer
            .serialize(&payload, false, false)
            .map_err(protocol)?
            .bytes)
    }

    fn command(
        &mut self,
        name: &str,
        transaction: f64,
        object: Amf0Value,
        args: Vec<Amf0Value>,
        stream_id: u32,
    ) -> Result<Vec<u8>, RtmpError> {
        self.message(
            RtmpMessage::Amf0Command {
                command_name: name.into(),
                transaction_id: transaction,
                command_object: object,
                additional_arguments: args,
            },
            0,
            stream_id,
        )
    }

    /// Processes bytes from the player: answers its commands into `out`, and returns what
    /// it asked for, if anything.
    fn handle(
        &mut self,
        bytes: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<Option<Request>, RtmpError> {
        let mut input = bytes;
        let mut request = None;
        while let Some(payload) = self
            .deserializer
            .get_next_message(input)
            .map_err(protocol)?
        {
            input = &[];
            let message = payload.to_rtmp_message().map_err(protocol)?;
            let RtmpMessage::Amf0Command {
                command_name,
                transaction_id,
                command_object,
                additional_arguments,
            } = message
            else {
                let ts = payload.timestamp.value;
                match (message, &mut self.publishing) {
                    (RtmpMessage::SetChunkSize { size }, _) => self
                        .deserializer
                        .set_max_chunk_size(size as usize)
                        .map_err(protocol)?,
                    (RtmpMessage::VideoData { data }, Some(p)) => {
                        p.send(IngestMessage::Video(data, ts))
                    }
                    (RtmpMessage::AudioData { data }, Some(p)) => {
                        p.send(IngestMessage::Audio(data, ts))
                    }
                    _ => {}
                }
                continue;
            };
            let stream = payload.message_stream_id;
            match command_name.as_str() {
                "connect" => {
                    let app = match &command_object {
                        Amf0Value::Object(props) => match props.get("app") {
                            Some(Amf0Value::Utf8String(app)) => {
                                app.trim_end_matches('/').to_string()
                            }
                            _ => String::new(),
                        },
                        _ => String::new(),
                    };
                    let accepted = app == APP || (app == INGEST_APP && self.ingest.is_some());
                    self.app = app;
                    if accepted {
                        let props = object(&[
                            ("fmsVer", text("FMS/3,0,1,123")),
                            ("capabilities", Amf0Value::Number(31.0)),
                        ]);
                        let mut info = status(
                            "status",
                            "NetConnection.Connect.Success",
                            "Connection succeeded.",
                        );
                        if let Amf0Value::Object(map) = &mut info {
                            map.insert("objectEncoding".into(), Amf0Value::Number(0.0));
                        }
                        out.push(self.command("_result", transaction_id, props, vec![info], 0)?);
                    } else {
                        let info = status(
                            "error",
                            "NetConnection.Connect.Rejected",
                            "unknown application; use live",
                        );
                        out.push(self.command(
                            "_error",
                            transaction_id,
                            Amf0Value::Null,
                            vec![info],
                            0,
                        )?);
                    }
                }
                "createStream" => {
                    out.push(self.command(
                        "_result",
                        transaction_id,
                        Amf0Value::Null,
                        vec![Amf0Value::Number(f64::from(STREAM_ID))],
                        0,
                    )?);
                }
                "play" => {
                    let name = match additional_arguments.first() {
                        Some(Amf0Value::Utf8String(n)) => {
                            n.split('?').next().unwrap_or_default().to_string()
                        }
                        _ => String::new(),
                    };
                    let stream = if stream == 0 { STREAM_ID } else { stream };
                    if name == STREAM_KEY {
                        self.stream_id = stream;
                        out.push(self.message(
                            RtmpMessage::UserControl {
                                event_type: UserControlEventType::StreamBegin,
                                stream_id: Some(stream),
                                buffer_length: None,
                                timestamp: None,
                            },
                            0,
                            0,
                        )?);
                        let reset = status(
                            "status",
                            "NetStream.Play.Reset",
                            "Playing and resetting live/main.",
                        );
                        out.push(self.command(
                            "onStatus",
                            0.0,
                            Amf0Value::Null,
                            vec![reset],
                            stream,
                        )?);
                        let start = status(
                            "status",
                            "NetStream.Play.Start",
                            "Started playing live/main.",
                        );
                        out.push(self.command(
                            "onStatus",
                            0.0,
                            Amf0Value::Null,
                            vec![start],
                            stream,
                        )?);
                        request = Some(Request::Play(stream));
                    } else {
                        let info = status(
                            "error",
                            "NetStream.Play.StreamNotFound",
                            "unknown stream; play live/main",
                        );
                        out.push(self.command(
                            "onStatus",
                            0.0,
                            Amf0Value::Null,
                            vec![info],
                            stream,
                        )?);
                    }
                }
                "publish" => {
                    let key = match additional_arguments.first() {
                        Some(Amf0Value::Utf8String(n)) => n.split('?').next().unwrap_or_default(),
                        _ => "",
                    };
                    let admitted = match (&self.ingest, self.app == INGEST_APP) {
                        (Some(ingest), true) => ingest.publish(key),
                        _ => Err(PublishRefusal::UnknownKey),
                    };
                    let stream = if stream == 0 { STREAM_ID } else { stream };
                    let (level, code, description) = match admitted {
                        Ok(p) => {
                            self.publishing = Some(p);
                            request = Some(Request::Publish);
                            ("status", "NetStream.Publish.Start", "publishing")
                        }
                        Err(PublishRefusal::UnknownKey) => {
                            request = Some(Request::Close);
                            tracing::info!(app = %self.app, "publish refused: unknown stream key");
                            (
                                "error",
                                "NetStream.Publish.BadName",
                                "unknown stream key; publish to input/<streamKey> of an rtmp input",
                            )
                        }
                        Err(PublishRefusal::Busy) => {
                            request = Some(Request::Close);
                            tracing::info!(
                                "publish refused: another publisher is live on this key"
                            );
                            (
                                "error",
                                "NetStream.Publish.BadName",
                                "another publisher is live on this stream key",
                            )
                        }
                    };
                    let info = status(level, code, description);
                    out.push(self.command("onStatus", 0.0, Amf0Value::Null, vec![info], stream)?);
                }
                "deleteStream" | "closeStream" | "FCUnpublish" => request = Some(Request::Close),
                // releaseStream, FCPublish, getStreamLength, _checkbw, …: answered when the
                // peer waits for an answer, otherwise ignored.
                _ if transaction_id > 0.0 => {
                    out.push(self.command(
                        "_result",
                        transaction_id,
                        Amf0Value::Null,
                        vec![],
                        0,
                    )?);
                }
                _ => {}
            }
        }
        Ok(request)
    }
}

impl MediaSession for PlaySession {
    fn metadata(&mut self, m: &StreamMetadata) -> Result<Vec<u8>, RtmpError> {
        let mut props = HashMap::new();
        let mut num = |k: &str, v: Option<f64>| {
            if let Some(v) = v {
                props.insert(k.to_string(), Amf0Value::Number(v));
            }
        };
        num("width", m.video_width.map(f64::from));
        num("height", m.video_height.map(f64::from));
        num("videocodecid", m.video_codec_id.map(f64::from));
        num("videodatarate", m.video_bitrate_kbps.map(f64::from));
        num("framerate", m.video_frame_rate.map(f64::from));
        num("audiocodecid", m.audio_codec_id.map(f64::from));
        num("audiodatarate", m.audio_bitrate_kbps.map(f64::from));
        num("audiosamplerate", m.audio_sample_rate.map(f64::from));
        num("audiochannels", m.audio_channels.map(f64::from));
        if let Some(stereo) = m.audio_is_stereo {
            props.insert("stereo".into(), Amf0Value::Boolean(stereo));
        }
        if let Some(encoder) = &m.encoder {
            props.insert("encoder".into(), text(encoder));
        }
        let values = vec![text("onMetaData"), Amf0Value::Object(props)];
        self.message(RtmpMessage::Amf0Data { values }, 0, self.stream_id)
    }

    fn media(&mut self, track: Track, data: Bytes, timestamp: u32) -> Result<Vec<u8>, RtmpError> {
        let message = match track {
            Track::Video => RtmpMessage::VideoData { data },
            Track::Audio => RtmpMessage::AudioData { data },
        };
        self.message(message, timestamp, self.stream_id)
    }

    fn input(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, RtmpError> {
        let mut out = Vec::new();
        if self.handle(bytes, &mut out)? == Some(Request::Close) {
            return Err(RtmpError::Closed);
        }
        Ok(out)
    }
}

/// Most players served at once; more are refused at accept.
pub const MAX_PLAYERS: usize = 256;

/// Accepts players until `shutdown` turns true.
/// Publishers are let in on the keys of `ingest` (none: publishing is refused).
pub async fn serve(
    listener: TcpListener,
    hub: Arc<MediaHub>,
    ingest: Option<Arc<IngestRegistry>>,
    shutdown: watch::Receiver<bool>,
) {
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
                    let (hub, shutdown, ingest) = (hub.clone(), shutdown.clone(), ingest.clone());
                    tokio::spawn(async move {
                        let _slot = slot;
                        match serve_player(sock, &hub, ingest, shutdown).await {
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
    ingest: Option<Arc<IngestRegistry>>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), RtmpError> {
    sock.set_nodelay(true)?;
    // The handshake and the session set-up each have one deadline: a peer trickling bytes
    // cannot hold a slot.
    let remaining = relay::handshake(&mut sock, hub, PeerType::Server).await?;
    let (mut session, mut out) = PlaySession::new(ingest)?;
    let mut input = remaining;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + relay::SETUP_TIMEOUT * 2;
    loop {
        let request = session.handle(&input, &mut out)?;
        for bytes in out.drain(..) {
            relay::write(&mut sock, hub, &bytes).await?;
        }
        match request {
            Some(Request::Play(_)) => {
                let sub = hub.subscribe();
                relay::relay(&mut sock, hub, &mut session, sub, &mut shutdown).await?;
                return Ok(());
            }
            Some(Request::Publish) => {
                return receive_published(&mut sock, hub, &mut session, &mut shutdown).await;
            }
            Some(Request::Close) => return Ok(()),
            None => {}
        }
        let n =
            tokio::time::timeout_at(deadline, relay::read(&mut sock, hub, &mut buf, "for play"))
                .await
                .map_err(|_| RtmpError::Timeout("waiting for play"))??;
        input = buf[..n].to_vec();
    }
}

/// Reads a publisher's media into its input until it stops, goes silent for
/// [`PUBLISH_IDLE`], or the server shuts down. The input hears `End` when the session (and
/// its [`Publishing`]) is dropped.
async fn receive_published(
    sock: &mut TcpStream,
    hub: &MediaHub,
    session: &mut PlaySession,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), RtmpError> {
    use tokio::io::AsyncReadExt as _;
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    loop {
        let n = tokio::select! {
            read = tokio::time::timeout(PUBLISH_IDLE, sock.read(&mut buf)) => {
                read.map_err(|_| RtmpError::Timeout("waiting for the publisher's media"))??
            }
            _ = shutdown.changed() => return Ok(()),
        };
        if n == 0 {
            return Err(RtmpError::Closed);
        }
        hub.count_in(n);
        let request = session.handle(&buf[..n], &mut out)?;
        for bytes in out.drain(..) {
            relay::write(sock, hub, &bytes).await?;
        }
        if request == Some(Request::Close) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(session: &mut ChunkDeserializer, bytes: &[Vec<u8>]) -> Vec<(String, u32, u32)> {
        let mut found = Vec::new();
        for b in bytes {
            let mut input = &b[..];
            while let Some(p) = session.get_next_message(input).unwrap() {
                input = &[];
                match p.to_rtmp_message().unwrap() {
                    RtmpMessage::Amf0Command { command_name, .. } => {
                        found.push((command_name, p.message_stream_id, p.timestamp.value))
                    }
                    RtmpMessage::Amf0Data { .. } => {
                        found.push(("data".into(), p.message_stream_id, p.timestamp.value))
                    }
                    RtmpMessage::SetChunkSize { size } => {
                        session.set_max_chunk_size(size as usize).unwrap()
                    }
                    _ => {}
                }
            }
        }
        found
    }

    fn client_command(
        client: &mut ChunkSerializer,
        name: &str,
        txn: f64,
        obj: Amf0Value,
        args: Vec<Amf0Value>,
        stream: u32,
    ) -> Vec<u8> {
        let m = RtmpMessage::Amf0Command {
            command_name: name.into(),
            transaction_id: txn,
            command_object: obj,
            additional_arguments: args,
        };
        client
            .serialize(
                &m.into_message_payload(RtmpTimestamp::new(0), stream)
                    .unwrap(),
                false,
                false,
            )
            .unwrap()
            .bytes
    }

    #[test]
    fn player_commands_are_answered_and_data_is_stamped_zero() {
        let (mut session, mut out) = PlaySession::new(None).unwrap();
        let mut client = ChunkSerializer::new();
        let mut reader = ChunkDeserializer::new();
        let connect = client_command(
            &mut client,
            "connect",
            1.0,
            object(&[("app", text("live"))]),
            vec![],
            0,
        );
        assert_eq!(session.handle(&connect, &mut out).unwrap(), None);
        let create = client_command(&mut client, "createStream", 2.0, Amf0Value::Null, vec![], 0);
        assert_eq!(session.handle(&create, &mut out).unwrap(), None);
        let play = client_command(
            &mut client,
            "play",
            0.0,
            Amf0Value::Null,
            vec![text("main")],
            1,
        );
        assert_eq!(
            session.handle(&play, &mut out).unwrap(),
            Some(Request::Play(1))
        );
        out.push(session.metadata(&StreamMetadata::new()).unwrap());
        let seen = commands(&mut reader, &out);
        let names: Vec<&str> = seen.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["_result", "_result", "onStatus", "onStatus", "data"]
        );
        assert!(seen.iter().all(|(_, _, ts)| *ts == 0), "{seen:?}");
        assert_eq!(seen[4].1, 1, "metadata on the play stream");
    }

    #[test]
    fn other_apps_and_streams_are_refused() {
        let (mut session, mut out) = PlaySession::new(None).unwrap();
        let mut client = ChunkSerializer::new();
        let connect = client_command(
            &mut client,
            "connect",
            1.0,
            object(&[("app", text("vod"))]),
            vec![],
            0,
        );
        session.handle(&connect, &mut out).unwrap();
        let play = client_command(
            &mut client,
            "play",
            0.0,
            Amf0Value::Null,
            vec![text("other")],
            1,
        );
        assert_eq!(session.handle(&play, &mut out).unwrap(), None);
        let names: Vec<String> = commands(&mut ChunkDeserializer::new(), &out)
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(names, ["_error", "onStatus"]);
    }
}
