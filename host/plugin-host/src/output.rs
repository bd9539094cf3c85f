//! Where a plugin's words go: its stdout, stderr and `log` calls become server log lines,
//! tagged with the plugin, cut at [`MAX_LINE`] bytes and rate-limited per instance, so a
//! plugin that floods its output costs a counter, not the log.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line logged; the rest is cut.
pub const MAX_LINE: usize = 1024;
/// Lines a plugin may log per second, sustained.
const LINES_PER_SECOND: f64 = 20.0;
/// Lines a plugin may log in a burst.
const BURST: f64 = 100.0;

/// Severity of a plugin's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Fine detail.
    Debug,
    /// Normal events.
    Info,
    /// Something odd.
    Warn,
    /// Something failed.
    Error,
}

/// The log of one plugin instance: a token bucket and the partial lines of its streams.
#[derive(Debug)]
pub struct PluginLog {
    plugin: String,
    tokens: f64,
    last: Instant,
    suppressed: u64,
    partial: [Vec<u8>; 2],
    /// Stderr lines of the current call (rate limit or not), at most [`MAX_LINE`] bytes:
    /// where a panic's message and location are found.
    recent: String,
}

impl PluginLog {
    /// A log for the plugin named `plugin`.
    pub fn new(plugin: &str) -> Self {
        Self {
            plugin: plugin.to_string(),
            tokens: BURST,
            last: Instant::now(),
            suppressed: 0,
            partial: [Vec::new(), Vec::new()],
            recent: String::new(),
        }
    }

    /// Forgets the stderr of the previous call.
    pub fn clear_recent(&mut self) {
        self.recent.clear();
        self.partial[1].clear();
    }

    /// The message of a Rust panic printed on stderr during the current call: `panicked at
    /// FILE:LINE:COL: MESSAGE`.
    pub fn panic_message(&self) -> Option<String> {
        let mut text = self.recent.clone();
        text.push_str(&String::from_utf8_lossy(&self.partial[1]));
        let start = text.find("panicked at ")?;
        let mut lines = text[start..].lines();
        let head = lines.next()?.trim_end_matches(':').to_string();
        let message: Vec<&str> = lines
            .take_while(|l| !l.starts_with("note: ") && !l.starts_with("stack backtrace"))
            .collect();
        let mut out = if message.is_empty() {
            head
        } else {
            format!("{head}: {}", message.join(" "))
        };
        let mut end = out.len().min(300);
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        Some(out)
    }

    /// Logs one line if the rate allows, else counts it.
    pub fn line(&mut self, level: Level, text: &str) {
        let now = Instant::now();
        self.tokens = (self.tokens + (now - self.last).as_secs_f64() * LINES_PER_SECOND).min(BURST);
        self.last = now;
        if self.tokens < 1.0 {
            self.suppressed += 1;
            return;
        }
        self.tokens -= 1.0;
        let mut end = text.len().min(MAX_LINE);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let text = &text[..end];
        let (plugin, suppressed) = (&self.plugin, std::mem::take(&mut self.suppressed));
        match level {
            Level::Debug => tracing::debug!(plugin, suppressed, "{text}"),
            Level::Info => tracing::info!(plugin, suppressed, "{text}"),
            Level::Warn => tracing::warn!(plugin, suppressed, "{text}"),
            Level::Error => tracing::error!(plugin, suppressed, "{text}"),
        }
    }

    /// Takes bytes written to stdout (`stream` 0) or stderr (1) and logs whole lines.
    fn write(&mut self, stream: usize, mut bytes: &[u8]) {
        let level = if stream == 0 {
            Level::Info
        } else {
            Level::Warn
        };
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut self.partial[stream]);
            line.extend_from_slice(&bytes[..nl.min(MAX_LINE)]);
            let text = String::from_utf8_lossy(&line);
            if stream == 1 && self.recent.len() + text.len() < MAX_LINE {
                self.recent.push_str(&text);
                self.recent.push('\n');
            }
            self.line(level, &text);
            line.clear();
            self.partial[stream] = line;
            bytes = &bytes[nl + 1..];
        }
        let room = MAX_LINE.saturating_sub(self.partial[stream].len());
        self.partial[stream].extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// A plugin's stdout or stderr, written into its [`PluginLog`].
#[derive(Clone)]
pub struct GuestOutput {
    log: Arc<Mutex<PluginLog>>,
    stream: usize,
}

impl GuestOutput {
    /// The stdout (`stderr` false) or stderr of the plugin logging into `log`.
    pub fn new(log: Arc<Mutex<PluginLog>>, stderr: bool) -> Self {
        Self {
            log,
            stream: usize::from(stderr),
        }
    }

    fn take(&self, bytes: &[u8]) {
        if let Ok(mut log) = self.log.lock() {
            log.write(self.stream, bytes);
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.take(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.take(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_burst_and_counted() {
        let mut log = PluginLog::new("flood");
        for _ in 0..1000 {
            log.line(Level::Info, "x");
        }
        assert!(
            log.suppressed >= 1000 - BURST as u64 - 5,
            "{}",
            log.suppressed
        );
        let mut log = PluginLog::new("panics");
        log.write(
            1,
            b"\nthread '<unnamed>' panicked at src/lib.rs:12:5:\nhostile panic on call 7\n\
              note: run with `RUST_BACKTRACE=1`\n",
        );
        assert_eq!(
            log.panic_message().as_deref(),
            Some("panicked at src/lib.rs:12:5: hostile panic on call 7")
        );
        log.clear_recent();
        assert_eq!(log.panic_message(), None);
        let mut log = PluginLog::new("lines");
        log.write(0, b"hello\nwor");
        assert_eq!(log.partial[0], b"wor");
        log.write(0, &[b'y'; 5000]);
        assert_eq!(log.partial[0].len(), MAX_LINE, "partial lines are bounded");
    }
}
