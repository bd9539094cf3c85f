//! Program sound end to end: publishers sending tones into `rtmp` inputs and sound-only
//! files, the program played back by FFmpeg and measured (levels, true peak, the moment a
//! fader moved against the moment a picture changed, a beep against its flash), and the
//! meters read over the WebSocket against FFmpeg's own EBU R128 reading of the source.

use std::path::Path;
use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;
use crate::harness::*;

const RATE: f64 = 48_000.0;

/// A small live stream that mixes its inputs' sound.
fn mixing() -> ServerBuilder {
    Server::builder().stream(Some(with(small_stream(), json!({"audio": "mix"}))))
}

/// `ffmpeg -re` publishing `video` (a lavfi source) and `sound` (an `aevalsrc` expression,
/// stereo, AAC) to `url` until dropped.
fn publisher(url: &str, video: &str, sound: &str, dir: &TempDir, tag: &str) -> Proc {
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-nostdin", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", video])
        .args(["-f", "lavfi", "-i"])
        .arg(format!("aevalsrc={sound}:s=48000:c=stereo"))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args(["-g", "30", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "192k", "-f", "flv"])
        .arg(url);
    Proc::spawn(tag, &mut cmd, &dir.join(&format!("{tag}.log")), false)
}

/// Creates `rtmp` input `id` with `audio`; returns its stream key.
async fn rtmp_input(server: &Server, id: &str, audio: Value) -> String {
    let created = call(
        server,
        Method::POST,
        "/api/inputs",
        Some(&json!({"id": id, "kind": "rtmp", "audio": audio})),
        201,
    )
    .await;
    created["streamKey"].as_str().unwrap().to_string()
}

/// Adds `layer` to the scene.
async fn add(server: &Server, layer: &Value) {
    call(server, Method::POST, "/api/scene/layers", Some(layer), 201).await;
}

/// The next WS message of `kind` within `timeout` (others are passed over).
async fn next_of(ws: &mut Ws, kind: &str, timeout: std::time::Duration) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = ws.try_next(left).await?;
        if m["type"] == kind {
            return Some(m);
        }
    }
}

/// Waits until input `id` is `playing`.
async fn playing(server: &Server, id: &str) {
    let path = format!("/api/inputs/{id}");
    wait_until(&format!("input {id} playing"), secs(20.0), async || {
        let input = server.get_json(&path).await;
        if input["state"] == "playing" {
            Ok(())
        } else {
            Err(input.to_string())
        }
    })
    .await;
}

/// The program as FFmpeg plays it back from a copy of the stream: the sound (interleaved
/// stereo, 48 kHz) from `audio_start` seconds, and each picture's centre colour from
/// `video_start` seconds at the stream's frame rate.
struct Program {
    audio_start: f64,
    audio: Vec<f32>,
    video_start: f64,
    frames: Vec<[u8; 3]>,
}

impl Program {
    /// Copies the live program for `seconds` (while `during` runs) and decodes it.
    async fn record<F: AsyncFnOnce()>(server: &Server, seconds: f64, during: F) -> Self {
        let dir = TempDir::new("program");
        let file = dir.join("program.mkv");
        let mut cmd = std::process::Command::new("ffmpeg");
        cmd.args(["-nostdin", "-loglevel", "error", "-i"])
            .arg(server.rtmp_play_url())
            .args(["-t", &seconds.to_string(), "-c", "copy", "-f", "matroska"])
            .arg(&file);
        let mut copy = Proc::spawn("copy", &mut cmd, &dir.join("copy.log"), false);
        during().await;
        let status = copy.wait_exit(secs(seconds + 20.0)).await;
        assert!(
            status.success(),
            "copying the program: {}",
            copy.log_tail(5)
        );
        Self::decode(&file).await
    }

    async fn decode(file: &Path) -> Self {
        let probe = ffprobe_json(&file.to_string_lossy()).await.unwrap();
        let start = |kind: &str| -> f64 {
            streams(&probe, kind)[0]["start_time"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0.0)
        };
        let raw = |args: &[&str]| {
            let out = std::process::Command::new("ffmpeg")
                .args(["-nostdin", "-loglevel", "error", "-i"])
                .arg(file)
                .args(args)
                .arg("-")
                .output()
                .expect("run ffmpeg");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        let audio = raw(&["-map", "0:a:0", "-f", "f32le", "-ac", "2", "-ar", "48000"])
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let frames = raw(&[
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-vf",
            "crop=16:16",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
        ])
        .chunks_exact(16 * 16 * 3)
        .map(|f| {
            let c = (8 * 16 + 8) * 3;
            [f[c], f[c + 1], f[c + 2]]
        })
        .collect();
        Self {
            audio_start: start("audio"),
            audio,
            video_start: start("video"),
            frames,
        }
    }

    /// The stereo samples from `from` to `to` seconds of program time.
    fn span(&self, from: f64, to: f64) -> &[f32] {
        let at =
            |t: f64| (((t - self.audio_start) * RATE).max(0.0) as usize * 2).min(self.audio.len());
        &self.audio[at(from)..at(to)]
    }

    /// RMS level (dBFS, both channels) from `from` to `to` seconds.
    fn rms_db(&self, from: f64, to: f64) -> f64 {
        let s = self.span(from, to);
        let power = s.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / s.len().max(1) as f64;
        10.0 * power.log10()
    }

    /// When the picture's centre first looks like `like`, at or after `after` seconds.
    fn first_picture(&self, after: f64, like: impl Fn([u8; 3]) -> bool) -> Option<f64> {
        self.frames
            .iter()
            .enumerate()
            .map(|(i, p)| (self.video_start + i as f64 / f64::from(FPS), *p))
            .find(|(t, p)| *t >= after && like(*p))
            .map(|(t, _)| t)
    }

    /// The first moment at or after `after` from which 5 ms of sound has an RMS level on the
    /// `rising` side of `db`.
    fn sound_crosses(&self, after: f64, db: f64, rising: bool) -> Option<f64> {
        let step = 0.001;
        let mut t = after.max(self.audio_start);
        let end = self.audio_start + self.audio.len() as f64 / 2.0 / RATE - 0.005;
        while t < end {
            let level = self.rms_db(t, t + 0.005);
            if (level > db) == rising {
                return Some(t);
            }
            t += step;
        }
        None
    }
}

fn red(p: [u8; 3]) -> bool {
    p[0] > 180 && p[1] < 80 && p[2] < 80
}

fn green(p: [u8; 3]) -> bool {
    p[1] > 180 && p[0] < 80 && p[2] < 80
}

fn blue(p: [u8; 3]) -> bool {
    p[2] > 180 && p[0] < 80 && p[1] < 80
}

fn white(p: [u8; 3]) -> bool {
    p.iter().all(|c| *c > 200)
}

/// The level of two tones of the given levels heard together (their powers add).
fn sum_db(a: f64, b: f64) -> f64 {
    10.0 * (10f64.powf(a / 10.0) + 10f64.powf(b / 10.0)).log10()
}

/// Runs FFmpeg's EBU R128 meter over interleaved stereo `samples`; returns (integrated
/// LUFS, true peak dBTP) as it prints them.
fn ffmpeg_r128(samples: &[f32], dir: &TempDir) -> (f64, f64) {
    let raw = dir.join("r128.f32");
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(&raw, bytes).unwrap();
    ffmpeg_r128_of(&["-f", "f32le", "-ar", "48000", "-ac", "2"], &raw)
}

/// FFmpeg's EBU R128 reading of `file` (opened with `input_args`).
fn ffmpeg_r128_of(input_args: &[&str], file: &Path) -> (f64, f64) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-nostats", "-hide_banner"])
        .args(input_args)
        .arg("-i")
        .arg(file)
        .args(["-af", "ebur128=peak=true", "-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let text = String::from_utf8_lossy(&out.stderr);
    let summary = text.rsplit("Summary:").next().unwrap_or_default();
    let value = |label: &str| -> f64 {
        summary
            .lines()
            .skip_while(|l| !l.contains(label))
            .find_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.parse::<f64>().ok())
                    .filter(|_| l.contains("I:") || l.contains("Peak:"))
            })
            .unwrap_or_else(|| panic!("no {label} in FFmpeg's summary: {summary}"))
    };
    (value("Integrated loudness"), value("True peak"))
}

/// Two publishers with tones (1 kHz and 440 Hz, both -20 dBFS peak) into `rtmp` inputs;
/// the operator moves faders while a marker on screen changes colour at the same moment.
/// The program, played back by FFmpeg: each tone at its level through its gain (within
/// 1 dB), the two summed, a muted one gone, every change heard within 100 ms of the
/// picture that changed with it, and with both faders and the master at +12 dB the
/// limiter holds the true peak at or below -1 dBTP (FFmpeg's meter). The master and the
/// limiter refuse what they cannot take.
#[tokio::test]
async fn faders_mutes_sums_and_the_limiter_are_heard_with_the_pictures() {
    let dir = TempDir::new("audio-faders");
    let server = mixing().start().await;
    clear_scene(&server).await;
    add(&server, &rect("marker", (0, 0, 1920, 1080), "#ff0000")).await;
    let a = rtmp_input(&server, "a", json!({"gainDb": 0, "muted": false})).await;
    let b = rtmp_input(&server, "b", json!({"gainDb": 0, "muted": true})).await;
    server.start_stream().await;
    let tone = |hz: u32| format!("0.1*sin(2*PI*{hz}*t)");
    let _pa = publisher(
        &server.rtmp_input_url(&a),
        "color=c=black:s=160x90:r=30",
        &tone(1000),
        &dir,
        "a",
    );
    let _pb = publisher(
        &server.rtmp_input_url(&b),
        "color=c=black:s=160x90:r=30",
        &tone(440),
        &dir,
        "b",
    );
    playing(&server, "a").await;
    playing(&server, "b").await;
    // Refusals leave the settings as they were.
    for (patch, code) in [
        (json!({"master": {"gainDb": 13}}), "out_of_range"),
        (json!({"master": {"gain": 0}}), "unknown_field"),
        (json!({"limiter": "on"}), "invalid_type"),
    ] {
        let reply = server.patch_json("/api/audio", &patch).await;
        assert_api_error(&reply, 422, code, &patch.to_string());
    }
    let settings = server.get_json("/api/audio").await;
    assert_eq!(
        settings,
        json!({"master": {"gainDb": 0.0, "muted": false}, "limiter": true})
    );

    let marker = async |colour: &str| {
        let patch = json!({"shape": {"fill": colour}});
        call(
            &server,
            Method::PATCH,
            "/api/scene/layers/marker",
            Some(&patch),
            200,
        )
        .await;
    };
    let fader = async |id: &str, audio: Value| {
        let patch = json!({"audio": audio});
        call(
            &server,
            Method::PATCH,
            &format!("/api/inputs/{id}"),
            Some(&patch),
            200,
        )
        .await;
    };
    let program = Program::record(&server, 9.0, async || {
        tokio::time::sleep(secs(2.0)).await;
        // Each change goes with a new marker colour, sent at the same moment.
        tokio::join!(marker("#00ff00"), fader("a", json!({"gainDb": -6})));
        tokio::time::sleep(secs(1.5)).await;
        tokio::join!(marker("#0000ff"), fader("b", json!({"muted": false})));
        tokio::time::sleep(secs(1.5)).await;
        tokio::join!(marker("#ffffff"), fader("a", json!({"muted": true})));
        tokio::time::sleep(secs(1.5)).await;
        fader("b", json!({"gainDb": 12})).await;
        let master = json!({"master": {"gainDb": 12}});
        assert_eq!(server.patch_json("/api/audio", &master).await.0, 200);
    })
    .await;

    let t_green = program.first_picture(0.0, green).expect("the green marker");
    let t_blue = program
        .first_picture(t_green, blue)
        .expect("the blue marker");
    let t_white = program
        .first_picture(t_blue, white)
        .expect("the white marker");
    let t0 = program.first_picture(0.0, red).expect("the red marker");
    let tone_db = -20.0 - 3.0103;
    let phases = [
        ("a alone at 0 dB", t0 + 0.5, t_green - 0.2, tone_db),
        ("a at -6 dB", t_green + 0.2, t_blue - 0.2, tone_db - 6.0),
        (
            "a at -6 dB and b at 0 dB",
            t_blue + 0.2,
            t_white - 0.2,
            sum_db(tone_db - 6.0, tone_db),
        ),
        ("b alone", t_white + 0.2, t_white + 1.3, tone_db),
    ];
    for (what, from, to, expected) in phases {
        let level = program.rms_db(from, to);
        assert!(
            (level - expected).abs() <= 1.0,
            "{what}: {level:.2} dBFS, expected {expected:.2} ({from:.2}..{to:.2} s)"
        );
    }
    // Each change is heard within 100 ms of the picture sent with it.
    for (what, at, level, rising) in [
        ("a down 6 dB", t_green, tone_db - 3.0, false),
        ("b unmuted", t_blue, tone_db - 3.0, true),
    ] {
        let heard = program
            .sound_crosses(at - 0.5, level, rising)
            .unwrap_or_else(|| panic!("{what}: never heard"));
        assert!(
            (heard - at).abs() <= 0.1,
            "{what}: heard at {heard:.3} s, pictured at {at:.3} s"
        );
    }
    // a muted: the level falls to b's alone (a 1 kHz tone less) around the white marker.
    let before = program.rms_db(t_white - 0.3, t_white - 0.1);
    let after = program.rms_db(t_white + 0.1, t_white + 0.3);
    assert!(
        before - after > 0.6,
        "muting a: {before:.2} -> {after:.2} dBFS"
    );

    // +24 dB on a -20 dBFS tone: limited.
    let end = program.audio_start + program.audio.len() as f64 / 2.0 / RATE;
    let loud = program.span(t_white + 1.9, end);
    assert!(loud.len() > 48_000, "the loud part is too short to measure");
    let (_, peak) = ffmpeg_r128(loud, &dir);
    assert!(peak <= -1.0, "true peak {peak} dBTP with the limiter on");
    assert!(
        program.rms_db(end - 0.8, end) > -8.0,
        "the limited tone is still loud"
    );
    let state = server.state().await;
    assert_eq!(state["droppedFrames"], 0, "{state}");
}

/// A sound-only file (a WAV jingle at -23 LUFS, looping) is an input whose sound is in the
/// program; the meters over the WebSocket read what FFmpeg's EBU R128 meter reads of the
/// file: -23 LUFS integrated within 0.5 LU, the source's peak, about 10 readings a second;
/// `/metrics` has the program's loudness; nothing is sent while the stream is stopped.
#[tokio::test]
async fn a_sound_only_file_plays_and_the_meters_read_its_loudness() {
    let dir = TempDir::new("audio-meters");
    let wav = dir.join("jingle.wav");
    let amplitude = 10f64.powf(-23.0 / 20.0);
    lavfi(
        &wav,
        &format!("aevalsrc={amplitude}*sin(2*PI*997*t):s=48000:c=stereo:d=4"),
        &["-c:a", "pcm_s16le"],
    );
    let (source_lufs, _) = ffmpeg_r128_of(&[], &wav);
    let server = mixing().start().await;
    clear_scene(&server).await;
    let bytes = std::fs::read(&wav).unwrap();
    let (status, media) = crate::assets::post_alone(
        &server,
        "/api/media?name=jingle",
        Some("application/octet-stream"),
        &bytes,
    )
    .await;
    assert_eq!(status, 201, "{media}");
    assert_eq!(
        (
            &media["audioCodec"],
            media.get("videoCodec"),
            &media["width"]
        ),
        (&json!("pcm_s16le"), None, &json!(0)),
        "{media}"
    );
    let id = media["id"].as_str().unwrap().to_string();
    // The other sound-only formats are taken too (44.1 kHz and mono among them).
    for (name, args, codec) in [
        ("x.mp3", ["-c:a", "libmp3lame", "-ar", "44100"], "mp3"),
        ("x.flac", ["-c:a", "flac", "-ac", "1"], "flac"),
        ("x.opus", ["-c:a", "libopus", "-ar", "48000"], "opus"),
        ("x.m4a", ["-c:a", "aac", "-ar", "44100"], "aac"),
    ] {
        let path = dir.join(name);
        lavfi(&path, "sine=f=440:d=1", &args);
        let (status, media) = crate::assets::post_alone(
            &server,
            "/api/media",
            Some("audio/mpeg"),
            &std::fs::read(&path).unwrap(),
        )
        .await;
        assert_eq!(
            (status, &media["audioCodec"]),
            (201, &json!(codec)),
            "{name}: {media}"
        );
    }
    call(
        &server,
        Method::POST,
        "/api/inputs",
        Some(&json!({"id": "jingle", "kind": "file", "url": id, "loop": true})),
        201,
    )
    .await;
    playing(&server, "jingle").await;
    let mut ws = Ws::open(&server).await;
    assert!(
        next_of(&mut ws, "audioLevels", secs(1.0)).await.is_none(),
        "audioLevels while the stream is stopped"
    );
    server.start_stream().await;
    let started = Instant::now();
    let mut readings = 0;
    let last = loop {
        let m = next_of(&mut ws, "audioLevels", secs(5.0))
            .await
            .expect("audioLevels while live");
        readings += 1;
        if started.elapsed() >= secs(9.0) {
            break m;
        }
    };
    let rate = f64::from(readings) / started.elapsed().as_secs_f64();
    assert!((7.0..=13.0).contains(&rate), "{rate:.1} readings a second");
    let program = &last["payload"]["program"];
    let integrated = program["integratedLufs"].as_f64().expect("integrated");
    assert!(
        (integrated - source_lufs).abs() <= 0.5,
        "integrated {integrated} LUFS, FFmpeg read {source_lufs} from the file: {last}"
    );
    let momentary = program["momentaryLufs"].as_f64().unwrap();
    assert!((momentary - source_lufs).abs() <= 1.0, "{last}");
    let source = &last["payload"]["sources"]["jingle"];
    let peak = source["peakDbfs"].as_f64().expect("source peak");
    assert!((peak - -23.0).abs() <= 0.5, "{last}");
    let metrics = server.get("/metrics").await.1;
    let gauge = metrics
        .as_str()
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("stream_audio_integrated_lufs "))
        .unwrap_or_else(|| panic!("no loudness gauge in /metrics"))
        .to_string();
    let value: f64 = gauge.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((value - source_lufs).abs() <= 0.5, "{gauge}");
}

/// A source whose every second starts with a white flash and a 1 kHz beep on the same
/// frame: in the program each beep starts within one frame of its flash, from two seconds
/// after the source went on air (the ten-minute run is `benches/av_sync.py`).
#[tokio::test]
async fn a_beep_is_heard_with_its_flash() {
    let dir = TempDir::new("audio-sync");
    let server = mixing().start().await;
    clear_scene(&server).await;
    let key = rtmp_input(&server, "cam", json!({"gainDb": 0, "muted": false})).await;
    let layer = json!({"id": "cam", "kind": "video",
        "position": {"x": 0, "y": 0, "width": 1920, "height": 1080},
        "video": {"input": "cam", "fit": "fill"}});
    add(&server, &layer).await;
    server.start_stream().await;
    let _cam = publisher(
        &server.rtmp_input_url(&key),
        "color=c=black:s=320x180:r=30,drawbox=c=white:t=fill:enable='lt(mod(t\\,1)\\,0.033)'",
        "if(lt(mod(t\\,1)\\,0.1)\\,0.5*sin(2*PI*1000*t)\\,0)",
        &dir,
        "cam",
    );
    playing(&server, "cam").await;
    let program = Program::record(&server, 9.0, async || {}).await;
    let mut offsets = Vec::new();
    let mut t = program.video_start + 2.0;
    while let Some(flash) = program.first_picture(t, white) {
        if let Some(beep) = program.sound_crosses(flash - 0.5, -30.0, true) {
            offsets.push(beep - flash);
        }
        t = flash + 0.5;
    }
    assert!(offsets.len() >= 5, "flashes and beeps: {offsets:?}");
    let frame = 1.0 / f64::from(FPS);
    assert!(
        offsets.iter().all(|o| o.abs() <= frame + 0.002),
        "beep - flash (s): {offsets:?}"
    );
}

/// An RTSP camera (GStreamer's RTSP server: H.264 and a 440 Hz AAC tone at 0.8 of full
/// scale) is a source too: its tone is in the program at its level, without dropouts.
#[tokio::test]
async fn a_cameras_sound_is_in_the_program() {
    let camera = RtspCamera::start(&[]).await;
    let server = mixing().start().await;
    clear_scene(&server).await;
    let cam = json!({"id": "cam", "kind": "rtsp", "url": camera.url(None, "/cam")});
    call(&server, Method::POST, "/api/inputs", Some(&cam), 201).await;
    server.start_stream().await;
    playing(&server, "cam").await;
    let program = Program::record(&server, 5.0, async || {}).await;
    let end = program.audio_start + program.audio.len() as f64 / 2.0 / RATE;
    let expected = 20.0 * 0.8f64.log10() - 3.0103;
    let level = program.rms_db(end - 2.5, end - 0.2);
    assert!(
        (level - expected).abs() <= 1.0,
        "{level:.2} dBFS, expected {expected:.2}"
    );
    let mut t = end - 2.5;
    while t < end - 0.3 {
        let window = program.rms_db(t, t + 0.1);
        assert!(
            window > expected - 3.0,
            "a dropout at {t:.2} s: {window:.1} dBFS"
        );
        t += 0.1;
    }
}

/// A live config change restarts the pipeline: the sound stops with the pictures and goes on
/// after the same pause, each audio timestamp once, in order (before, the look-behind's last
/// 100 ms of sound were never encoded, so the sound paused 100 ms longer than the pictures).
#[tokio::test]
async fn a_live_config_change_pauses_the_sound_no_longer_than_the_pictures() {
    let dir = TempDir::new("audio-restart");
    let server = mixing().start().await;
    clear_scene(&server).await;
    server.start_stream().await;
    let file = dir.join("program.flv");
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-nostdin", "-loglevel", "error", "-i"])
        .arg(server.rtmp_play_url())
        .args(["-t", "5", "-c", "copy", "-copyts", "-f", "flv"])
        .arg(&file);
    let mut copy = Proc::spawn("copy", &mut cmd, &dir.join("copy.log"), false);
    tokio::time::sleep(secs(2.0)).await;
    server.patch_config(json!({"videoBitrateKbps": 500})).await;
    let status = copy.wait_exit(secs(25.0)).await;
    assert!(
        status.success(),
        "copying the program: {}",
        copy.log_tail(5)
    );

    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=codec_type,pts",
            "-of",
            "csv=p=0",
        ])
        .arg(&file)
        .output()
        .expect("run ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    let times = |kind: &str| -> Vec<i64> {
        text.lines()
            .filter_map(|l| l.split_once(','))
            .filter(|(k, _)| *k == kind)
            .filter_map(|(_, t)| t.trim().parse().ok())
            .collect()
    };
    let (audio, video) = (times("audio"), times("video"));
    assert!(
        audio.len() > 100 && video.len() > 60,
        "{} audio, {} video packets",
        audio.len(),
        video.len()
    );
    let widest = |ts: &[i64]| ts.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    for w in audio.windows(2) {
        assert!(w[1] > w[0], "audio timestamps {} then {}", w[0], w[1]);
    }
    let (audio_gap, video_gap) = (widest(&audio), widest(&video));
    assert!(
        video_gap > 34,
        "no restart seen in the pictures (widest step {video_gap} ms)"
    );
    // An AAC frame is 21.3 ms: the sound may end up to one frame after the last picture and
    // start with the first.
    assert!(
        audio_gap <= video_gap + 2 * 22,
        "the sound paused {audio_gap} ms at the restart, the pictures {video_gap} ms"
    );
}
