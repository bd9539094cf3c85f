//! Measurements of the process (CPU, memory from `/proc`) and the Prometheus text
//! exposition of the server's counters.

use std::time::Instant;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

/// One sample of the process's resource use.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessSample {
    /// CPU used since the previous sample, percent of all cores.
    pub cpu_percent: f64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// Machine memory, bytes.
    pub total_memory: u64,
    /// Cores available to the process.
    pub cores: u32,
}

/// Samples CPU time and memory of this process.
pub struct ProcessSampler {
    last: Option<(Instant, f64)>,
    cores: u32,
}

impl Default for ProcessSampler {
    fn default() -> Self {
        Self::new()
    }
}

/// Linux reports process times in USER_HZ ticks, fixed at 100 for user space.
const TICKS_PER_SEC: f64 = 100.0;

/// CPU time (user + system) used by this process so far, in seconds.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

fn kib_field(path: &str, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

impl ProcessSampler {
    /// A sampler; the first sample's CPU figure is 0.
    pub fn new() -> Self {
        Self {
            last: None,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        }
    }

    /// Takes a sample.
    pub fn sample(&mut self) -> ProcessSample {
        let now = Instant::now();
        let cpu = cpu_seconds().unwrap_or(0.0);
        let cpu_percent = match self.last {
            Some((t, c)) => {
                let wall = (now - t).as_secs_f64().max(1e-3);
                ((cpu - c) / wall / f64::from(self.cores) * 100.0).clamp(0.0, 100.0)
            }
            None => 0.0,
        };
        self.last = Some((now, cpu));
        ProcessSample {
            cpu_percent,
            rss_bytes: kib_field("/proc/self/status", "VmRSS:").unwrap_or(0),
            total_memory: kib_field("/proc/meminfo", "MemTotal:").unwrap_or(0),
            cores: self.cores,
        }
    }
}

/// Values exposed on `/metrics`.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// 1 while live.
    pub live: bool,
    /// 1 while paused.
    pub paused: bool,
    /// Frames rendered.
    pub frames: u64,
    /// Frames dropped.
    pub dropped: u64,
    /// Measured fps.
    pub fps: f64,
    /// Output bit rate, bit/s.
    pub bitrate: f64,
    /// Encoder latency, ms.
    pub encoder_latency_ms: f64,
    /// Render times over the last second, ms.
    pub render: sm_media::frames::RenderWindow,
    /// Bytes to RTMP peers.
    pub bytes_out: u64,
    /// Bytes from RTMP peers.
    pub bytes_in: u64,
    /// Process CPU %.
    pub cpu_percent: f64,
    /// Process RSS.
    pub rss_bytes: u64,
    /// 1 when the store answers.
    pub store_up: bool,
    /// Connected WebSocket clients.
    pub ws_clients: u64,
    /// Preview frames produced.
    pub preview_frames: u64,
    /// (destination id, connected, failures).
    pub destinations: Vec<(String, bool, u64)>,
    /// (template id, fault kind, count).
    pub template_faults: Vec<(String, String, u64)>,
    /// Template layers quarantined now.
    pub quarantined_layers: u64,
    /// Bytes of decoded asset pixels held (images, animation frames, resized copies).
    pub decoded_asset_bytes: u64,
    /// The server-wide budget of decoded asset pixels (`--max-decoded-bytes`).
    pub decoded_asset_budget_bytes: u64,
    /// Live inputs.
    pub inputs: Vec<InputSample>,
    /// The program's loudness (while live and measurable).
    pub audio: sm_media::audio::meter::ProgramLevels,
    /// Primary or standby, and the lease epoch.
    pub instance: crate::state::lease::InstanceStatus,
}

/// `stream_instance_role{role}` (1 for this instance's role, 0 for the other) and
/// `stream_lease_epoch` (when a lease was seen).
fn register_instance(r: &mut Registry, instance: &crate::state::lease::InstanceStatus) {
    use crate::state::lease::InstanceRole;
    let roles = Family::<Vec<(String, String)>, Gauge>::default();
    for role in [InstanceRole::Primary, InstanceRole::Standby] {
        roles
            .get_or_create(&vec![("role".into(), role.as_str().into())])
            .set(i64::from(instance.role == role));
    }
    r.register(
        "instance_role",
        "1 for this instance's part in the channel (primary or standby)",
        roles,
    );
    if let Some(epoch) = instance.epoch {
        r.register(
            "lease_epoch",
            "Epoch of the channel's lease this instance holds (primary) or saw held (standby)",
            ConstGauge::new(epoch as i64),
        );
    }
}

/// The metrics of a standby: its role, the lease epoch and whether the store answers.
pub fn render_standby(instance: &crate::state::lease::InstanceStatus, store_up: bool) -> String {
    let mut r = Registry::with_prefix("stream");
    register_instance(&mut r, instance);
    r.register("live", "1 while the stream is live", ConstGauge::new(0));
    r.register(
        "store_up",
        "1 when the state store answers",
        ConstGauge::new(i64::from(store_up)),
    );
    let mut text = String::new();
    encode(&mut text, &r).expect("metrics encode into a String");
    text
}

/// One live input's measurements.
#[derive(Debug, Clone, Default)]
pub struct InputSample {
    /// Input id.
    pub id: String,
    /// State code: 0 idle, 1 connecting, 2 playing, 3 stalled, 4 reconnecting, 5 failed,
    /// 6 ended.
    pub state: i64,
    /// Pictures per second.
    pub fps: f64,
    /// Reconnects since the input was created.
    pub reconnects: u64,
    /// Arrival to ready for the render thread, ms.
    pub latency_ms: f64,
}

/// Renders the snapshot in the Prometheus text format.
pub fn render(s: &Snapshot) -> String {
    let mut r = Registry::with_prefix("stream");
    register_instance(&mut r, &s.instance);
    r.register(
        "live",
        "1 while the stream is live",
        ConstGauge::new(i64::from(s.live)),
    );
    r.register(
        "paused",
        "1 while the stream is paused",
        ConstGauge::new(i64::from(s.paused)),
    );
    r.register(
        "frames",
        "Frames rendered since the stream started",
        ConstCounter::new(s.frames),
    );
    r.register(
        "dropped_frames",
        "Frames dropped since the stream started",
        ConstCounter::new(s.dropped),
    );
    r.register("fps", "Frames encoded per second", ConstGauge::new(s.fps));
    r.register(
        "bitrate_bits_per_second",
        "Output bit rate",
        ConstGauge::new(s.bitrate),
    );
    r.register(
        "encoder_latency_milliseconds",
        "Render-to-packet latency",
        ConstGauge::new(s.encoder_latency_ms),
    );
    r.register(
        "render_time_milliseconds",
        "Mean render time per frame over the last second",
        ConstGauge::new(s.render.mean),
    );
    let quantiles =
        Family::<Vec<(String, String)>, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for (q, v) in [
        ("0.5", s.render.p50),
        ("0.95", s.render.p95),
        ("0.99", s.render.p99),
        ("1", s.render.max),
    ] {
        quantiles
            .get_or_create(&vec![("quantile".into(), q.into())])
            .set(v);
    }
    r.register(
        "render_time_quantile_milliseconds",
        "Render time per frame over the last second at a quantile (1: the longest)",
        quantiles,
    );
    r.register(
        "rtmp_sent_bytes",
        "Bytes sent to RTMP peers",
        ConstCounter::new(s.bytes_out),
    );
    r.register(
        "rtmp_received_bytes",
        "Bytes received from RTMP peers",
        ConstCounter::new(s.bytes_in),
    );
    r.register(
        "process_cpu_percent",
        "CPU used by the process, percent of all cores",
        ConstGauge::new(s.cpu_percent),
    );
    r.register(
        "process_resident_memory_bytes",
        "Resident memory",
        ConstGauge::new(s.rss_bytes as i64),
    );
    r.register(
        "store_up",
        "1 when the state store answers",
        ConstGauge::new(i64::from(s.store_up)),
    );
    r.register(
        "preview_frames",
        "Preview frames produced (only while a client watches)",
        ConstCounter::new(s.preview_frames),
    );
    r.register(
        "websocket_clients",
        "Connected WebSocket clients",
        ConstGauge::new(s.ws_clients as i64),
    );
    let connected = Family::<Vec<(String, String)>, Gauge>::default();
    let failures = Family::<Vec<(String, String)>, Gauge>::default();
    for (id, up, fails) in &s.destinations {
        let labels = vec![("id".to_string(), id.clone())];
        connected.get_or_create(&labels).set(i64::from(*up));
        failures.get_or_create(&labels).set(*fails as i64);
    }
    r.register(
        "destination_connected",
        "1 while a destination is publishing",
        connected,
    );
    r.register(
        "destination_failures",
        "Failed attempts per destination",
        failures,
    );
    let faults = Family::<Vec<(String, String)>, Gauge>::default();
    for (template, kind, n) in &s.template_faults {
        let labels = vec![
            ("template".to_string(), template.clone()),
            ("kind".to_string(), kind.clone()),
        ];
        faults.get_or_create(&labels).set(*n as i64);
    }
    r.register(
        "template_faults",
        "Faulty template calls per template and kind (trap, panic, budget, rasterBudget, memory, stackOverflow, invalidOutput)",
        faults,
    );
    r.register(
        "template_quarantined_layers",
        "Template layers quarantined after repeated faults",
        ConstGauge::new(s.quarantined_layers as i64),
    );
    r.register(
        "decoded_asset_bytes",
        "Bytes of decoded asset pixels held: images, animation frames, resized copies",
        ConstGauge::new(s.decoded_asset_bytes as i64),
    );
    r.register(
        "decoded_asset_budget_bytes",
        "The server-wide budget of decoded asset pixels (--max-decoded-bytes)",
        ConstGauge::new(s.decoded_asset_budget_bytes as i64),
    );
    let state = Family::<Vec<(String, String)>, Gauge>::default();
    let fps = Family::<Vec<(String, String)>, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let reconnects = Family::<Vec<(String, String)>, Counter>::default();
    let latency =
        Family::<Vec<(String, String)>, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for i in &s.inputs {
        let labels = vec![("input".to_string(), i.id.clone())];
        state.get_or_create(&labels).set(i.state);
        fps.get_or_create(&labels).set(i.fps);
        reconnects.get_or_create(&labels).inc_by(i.reconnects);
        latency.get_or_create(&labels).set(i.latency_ms);
    }
    r.register(
        "input_state",
        "Live input state: 0 idle, 1 connecting, 2 playing, 3 stalled, 4 reconnecting, 5 failed, 6 ended",
        state,
    );
    r.register(
        "input_fps",
        "Pictures per second decoded from a live input",
        fps,
    );
    r.register(
        "input_reconnects",
        "Times a live input was opened again after a failure",
        reconnects,
    );
    r.register(
        "input_latency_ms",
        "From a live input picture's arrival to it being ready for the render thread, ms",
        latency,
    );
    let loudness = [
        (
            "audio_momentary_lufs",
            "Program loudness over the last 400 ms (EBU R128), LUFS",
            s.audio.momentary_lufs,
        ),
        (
            "audio_short_term_lufs",
            "Program loudness over the last 3 s (EBU R128), LUFS",
            s.audio.short_term_lufs,
        ),
        (
            "audio_integrated_lufs",
            "Program loudness since it started (EBU R128, gated), LUFS",
            s.audio.integrated_lufs,
        ),
        (
            "audio_true_peak_dbtp",
            "Program true peak over the last 100 ms, dBTP",
            s.audio.true_peak_dbtp,
        ),
    ];
    for (name, help, value) in loudness {
        if let Some(v) = value {
            r.register(name, help, ConstGauge::new(v));
        }
    }
    let mut out = String::new();
    encode(&mut out, &r).expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_counters_and_labels() {
        let text = render(&Snapshot {
            live: true,
            frames: 42,
            destinations: vec![("yt".into(), true, 3)],
            ..Default::default()
        });
        assert!(text.contains("stream_frames_total 42"), "{text}");
        assert!(text.contains("stream_live 1"), "{text}");
        assert!(
            text.contains("stream_destination_failures{id=\"yt\"} 3"),
            "{text}"
        );
    }

    #[test]
    fn the_role_and_the_lease_epoch_are_exposed() {
        use crate::state::lease::{InstanceRole, InstanceStatus};
        let standby = InstanceStatus {
            role: InstanceRole::Standby,
            epoch: Some(4),
            ..InstanceStatus::alone("a:1")
        };
        for text in [
            render(&Snapshot {
                instance: standby.clone(),
                ..Default::default()
            }),
            render_standby(&standby, true),
        ] {
            assert!(
                text.contains("stream_instance_role{role=\"standby\"} 1"),
                "{text}"
            );
            assert!(
                text.contains("stream_instance_role{role=\"primary\"} 0"),
                "{text}"
            );
            assert!(text.contains("stream_lease_epoch 4"), "{text}");
        }
        let alone = render(&Snapshot::default());
        assert!(
            alone.contains("stream_instance_role{role=\"primary\"} 1"),
            "{alone}"
        );
        assert!(!alone.contains("stream_lease_epoch"), "{alone}");
    }

    #[test]
    fn sampler_reads_proc() {
        let mut s = ProcessSampler::new();
        let a = s.sample();
        assert!(a.rss_bytes > 0 && a.total_memory > a.rss_bytes);
    }
}
