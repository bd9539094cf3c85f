//! Server settings: defaults < TOML file < `STREAM_MANAGER_*` environment < CLI flags,
//! validated once at start with errors that name the field or variable. See
//! `docs/config.md`, which mirrors this file.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

use crate::state::StreamConfig;

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "stream-manager",
    version,
    about = "Live-graphics streaming server"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Render a scene offline into PNG files or an MP4.
    Render(crate::render::RenderArgs),
    /// Check or render a template component offline (for template authors).
    #[command(subcommand)]
    Template(crate::render::TemplateCommand),
    /// Run an asset loader on a file offline (for loader authors).
    #[command(subcommand)]
    Loader(crate::loader_cli::LoaderCommand),
    /// Make API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `stream-manager token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a fresh random token, and the `[[auth.tokens]]` entry of the config file that
    /// gives it `--role` (only the token's SHA-256 goes into the file).
    New {
        /// What the token may do.
        #[arg(long, value_enum)]
        role: crate::auth::Role,
        /// Who holds it, as the log and `GET /api/me` name it. Default: the role's name.
        #[arg(long)]
        name: Option<String>,
    },
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of `serve`; each overrides the environment and the file.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML config file (env STREAM_MANAGER_CONFIG).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on. Default 127.0.0.1.
    #[arg(long)]
    pub bind: Option<IpAddr>,
    /// REST port. Default 4200.
    #[arg(long)]
    pub http_port: Option<u16>,
    /// WebSocket port. Default 4201.
    #[arg(long)]
    pub ws_port: Option<u16>,
    /// Embedded RTMP server port. Default 1935.
    #[arg(long)]
    pub rtmp_port: Option<u16>,
    /// Redis URL; without it state is kept in memory only.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key (several instances on one Redis).
    #[arg(long)]
    pub key_prefix: Option<String>,
    /// Bearer token required on the API and WebSocket, with the `admin` role (the config
    /// file's `[[auth.tokens]]` add tokens with other roles).
    #[arg(long)]
    pub api_token: Option<String>,
    /// Most WebSocket clients connected at once. Default 64.
    #[arg(long)]
    pub max_ws_clients: Option<usize>,
    /// Wrong tokens a client address may present per minute before its tokens are refused
    /// (429) for the rest of the minute. Default 10.
    #[arg(long)]
    pub auth_failure_limit: Option<u32>,
    /// Start streaming at once.
    #[arg(long)]
    pub autostart: bool,
    /// Allow a non-loopback bind address without a token.
    #[arg(long)]
    pub insecure: bool,
    /// Log format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// PEM file of extra CA certificates trusted for rtmps:// destinations.
    #[arg(long)]
    pub tls_ca_file: Option<PathBuf>,
    /// Largest asset upload in bytes. Default 33554432 (32 MiB).
    #[arg(long)]
    pub max_asset_bytes: Option<usize>,
    /// Most pixels of an uploaded image. Default 64000000.
    #[arg(long)]
    pub max_asset_pixels: Option<u64>,
    /// Bytes of decoded pixels all images and their resized copies may hold at once.
    /// Default 1073741824 (1 GiB).
    #[arg(long)]
    pub max_decoded_bytes: Option<u64>,
    /// Folder of template components (`*.wasm`) installed at start, each under its file
    /// stem as id (the bundled templates). Default: none.
    #[arg(long)]
    pub templates_dir: Option<PathBuf>,
    /// Hot-swap a template of `--templates-dir` when its file changes (for authors).
    #[arg(long)]
    pub watch_templates: bool,
    /// Folder for compiled templates, so a restart does not compile them again.
    /// Default: none (compiled in memory only).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Share of the frame interval a template's render call may take. Default 0.25.
    #[arg(long)]
    pub template_budget: Option<f64>,
    /// Share of the frame interval all template layers together may take per frame (their
    /// calls and the rasterizing of their pictures), split evenly between them. Default 0.5.
    #[arg(long)]
    pub template_frame_budget: Option<f64>,
    /// Faults within `--template-fault-window` frames that quarantine a template layer.
    /// Default 10.
    #[arg(long)]
    pub template_fault_limit: Option<u32>,
    /// The sliding window of `--template-fault-limit`, in frames. Default 300.
    #[arg(long)]
    pub template_fault_window: Option<u32>,
    /// Linear memory per template instance in MiB. Default 64.
    #[arg(long)]
    pub template_memory_mib: Option<usize>,
    /// Largest template upload in bytes. Default 16777216 (16 MiB).
    #[arg(long)]
    pub max_template_bytes: Option<usize>,
    /// Linear memory of an asset loader's instance in MiB (a whole animation is returned
    /// at once). Default 256.
    #[arg(long)]
    pub loader_memory_mib: Option<usize>,
    /// Time one asset-loader decode may take, in milliseconds. Default 2000.
    #[arg(long)]
    pub loader_budget_ms: Option<u64>,
    /// Folder of media files (uploads through `POST /api/media`, and files that `file`
    /// inputs name by path). Default `media`.
    #[arg(long)]
    pub media_dir: Option<PathBuf>,
    /// Largest media upload in bytes. Default 4294967296 (4 GiB).
    #[arg(long)]
    pub max_media_bytes: Option<u64>,
    /// Largest picture an input may decode, `WIDTHxHEIGHT`. Default 4096x2160.
    #[arg(long)]
    pub max_input_size: Option<String>,
    /// An input with no picture for this long is `stalled`, in ms. Default 2000.
    #[arg(long)]
    pub input_stall_ms: Option<u64>,
    /// Folder of recordings. Default `recordings`.
    #[arg(long)]
    pub recordings_dir: Option<PathBuf>,
    /// Bytes all recordings may take; once used up, new recordings are refused (507).
    /// Default: no quota.
    #[arg(long)]
    pub recordings_max_bytes: Option<u64>,
    /// Start as a hot standby: follow the primary that shares the Redis and key prefix,
    /// and take the channel over when its lease lapses (needs --redis-url).
    #[arg(long)]
    pub standby: bool,
    /// This instance's name in the channel's lease. Default `<host name>:<http port>`.
    #[arg(long)]
    pub instance_name: Option<String>,
}

/// The TOML file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    bind: Option<IpAddr>,
    http_port: Option<u16>,
    ws_port: Option<u16>,
    rtmp_port: Option<u16>,
    redis_url: Option<String>,
    key_prefix: Option<String>,
    api_token: Option<String>,
    max_ws_clients: Option<usize>,
    auth_failure_limit: Option<u32>,
    autostart: Option<bool>,
    insecure: Option<bool>,
    log_format: Option<LogFormat>,
    tls_ca_file: Option<PathBuf>,
    max_asset_bytes: Option<usize>,
    max_asset_pixels: Option<u64>,
    max_decoded_bytes: Option<u64>,
    templates_dir: Option<PathBuf>,
    watch_templates: Option<bool>,
    standby: Option<bool>,
    instance_name: Option<String>,
    cache_dir: Option<PathBuf>,
    template_budget: Option<f64>,
    template_frame_budget: Option<f64>,
    template_fault_limit: Option<u32>,
    template_fault_window: Option<u32>,
    template_memory_mib: Option<usize>,
    max_template_bytes: Option<usize>,
    loader_memory_mib: Option<usize>,
    loader_budget_ms: Option<u64>,
    media_dir: Option<PathBuf>,
    max_media_bytes: Option<u64>,
    max_input_size: Option<String>,
    input_stall_ms: Option<u64>,
    recordings_dir: Option<PathBuf>,
    recordings_max_bytes: Option<u64>,
    /// Initial stream config (camelCase, as in the API), used when the store has none.
    stream: Option<toml::Table>,
    /// API tokens with roles.
    auth: Option<AuthFile>,
}

/// The `[auth]` table of the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    #[serde(default)]
    tokens: Vec<crate::auth::TokenEntry>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address of every server.
    pub bind: IpAddr,
    /// REST port.
    pub http_port: u16,
    /// WebSocket port.
    pub ws_port: u16,
    /// RTMP port.
    pub rtmp_port: u16,
    /// Redis URL (none: memory store).
    pub redis_url: Option<String>,
    /// Redis key prefix.
    pub key_prefix: String,
    /// API token (role `admin`).
    pub api_token: Option<String>,
    /// The config file's tokens with roles.
    pub auth_tokens: Vec<crate::auth::TokenEntry>,
    /// Most WebSocket clients at once.
    pub max_ws_clients: usize,
    /// Wrong tokens per address and minute.
    pub auth_failure_limit: u32,
    /// Start streaming at boot.
    pub autostart: bool,
    /// Allow an open non-loopback bind.
    pub insecure: bool,
    /// Log format.
    pub log_format: LogFormat,
    /// Extra CA certificates for rtmps:// destinations.
    pub tls_ca_file: Option<PathBuf>,
    /// Upload limits of the Asset Manager.
    pub asset_limits: crate::assets::AssetLimits,
    /// Template components installed at start.
    pub templates_dir: Option<PathBuf>,
    /// Hot-swap templates of `templates_dir` when their files change.
    pub watch_templates: bool,
    /// Start as a hot standby.
    pub standby: bool,
    /// This instance's name in the lease.
    pub instance_name: String,
    /// Compiled-template cache folder.
    pub cache_dir: Option<PathBuf>,
    /// Template limits.
    pub plugin_limits: sm_plugin_host::PluginLimits,
    /// Bounds of one asset-loader decode.
    pub loader_limits: sm_plugin_host::loader::LoaderLimits,
    /// Stream config used when the store holds none.
    pub stream: StreamConfig,
    /// Limits and timings of live inputs, and the media folder.
    pub inputs: sm_media::input::InputSettings,
    /// Largest media upload in bytes.
    pub max_media_bytes: u64,
    /// Where recordings go, and their quota.
    pub recordings: crate::recordings::RecordingSettings,
}

/// This machine's host name (`localhost` when it cannot be read).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Parses `WIDTHxHEIGHT`.
fn parse_size(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.trim().split_once(['x', 'X'])?;
    Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
}

/// A configuration error; the message names the field, variable or flag.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

fn env_value<T: std::str::FromStr>(
    env: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<T>, SettingsError>
where
    T::Err: std::fmt::Display,
{
    match env(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| SettingsError(format!("environment variable {name}={v:?}: {e}"))),
    }
}

fn env_flag(
    env: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<bool>, SettingsError> {
    match env(name).as_deref().map(str::trim) {
        None => Ok(None),
        Some("1" | "true" | "yes" | "on") => Ok(Some(true)),
        Some("0" | "false" | "no" | "off" | "") => Ok(Some(false)),
        Some(v) => Err(SettingsError(format!(
            "environment variable {name}={v:?}: expected true or false"
        ))),
    }
}

impl Settings {
    /// Merges file, environment (read through `env`) and flags, and validates.
    pub fn resolve(
        args: &ServeArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        const P: &str = "STREAM_MANAGER_";
        let var = |n: &str| format!("{P}{n}");
        let path = args
            .config
            .clone()
            .or_else(|| env(&var("CONFIG")).map(PathBuf::from));
        let file = match &path {
            None => FileConfig::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| SettingsError(format!("config file {}: {e}", p.display())))?;
                toml::from_str(&text)
                    .map_err(|e| SettingsError(format!("config file {}: {e}", p.display())))?
            }
        };
        let pick = |flag: Option<String>, env_name: &str, file: Option<String>| {
            flag.or_else(|| env(&var(env_name))).or(file)
        };
        let mut s = Self {
            bind: args
                .bind
                .or(env_value(env, &var("BIND"))?)
                .or(file.bind)
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            http_port: args
                .http_port
                .or(env_value(env, &var("HTTP_PORT"))?)
                .or(file.http_port)
                .unwrap_or(4200),
            ws_port: args
                .ws_port
                .or(env_value(env, &var("WS_PORT"))?)
                .or(file.ws_port)
                .unwrap_or(4201),
            rtmp_port: args
                .rtmp_port
                .or(env_value(env, &var("RTMP_PORT"))?)
                .or(file.rtmp_port)
                .unwrap_or(1935),
            redis_url: pick(args.redis_url.clone(), "REDIS_URL", file.redis_url)
                .filter(|u| !u.is_empty()),
            key_prefix: pick(args.key_prefix.clone(), "KEY_PREFIX", file.key_prefix)
                .unwrap_or_default(),
            api_token: pick(args.api_token.clone(), "API_TOKEN", file.api_token),
            auth_tokens: file.auth.map(|a| a.tokens).unwrap_or_default(),
            auth_failure_limit: args
                .auth_failure_limit
                .or(env_value(env, &var("AUTH_FAILURE_LIMIT"))?)
                .or(file.auth_failure_limit)
                .unwrap_or(crate::auth::FAILURES_PER_WINDOW),
            max_ws_clients: args
                .max_ws_clients
                .or(env_value(env, &var("MAX_WS_CLIENTS"))?)
                .or(file.max_ws_clients)
                .unwrap_or(crate::api::DEFAULT_MAX_WS_CLIENTS),
            autostart: args.autostart
                || env_flag(env, &var("AUTOSTART"))?
                    .or(file.autostart)
                    .unwrap_or(false),
            insecure: args.insecure
                || env_flag(env, &var("INSECURE"))?
                    .or(file.insecure)
                    .unwrap_or(false),
            log_format: match args.log_format {
                Some(f) => f,
                None => match env(&var("LOG_FORMAT")).as_deref() {
                    Some("json") => LogFormat::Json,
                    Some("text") => LogFormat::Text,
                    Some(v) => {
                        return Err(SettingsError(format!(
                            "environment variable {P}LOG_FORMAT={v:?}: expected text or json"
                        )));
                    }
                    None => file.log_format.unwrap_or_default(),
                },
            },
            tls_ca_file: args
                .tls_ca_file
                .clone()
                .or_else(|| env(&var("TLS_CA_FILE")).map(PathBuf::from))
                .or(file.tls_ca_file),
            asset_limits: crate::assets::AssetLimits {
                max_bytes: args
                    .max_asset_bytes
                    .or(env_value(env, &var("MAX_ASSET_BYTES"))?)
                    .or(file.max_asset_bytes)
                    .unwrap_or(crate::assets::AssetLimits::default().max_bytes),
                max_pixels: args
                    .max_asset_pixels
                    .or(env_value(env, &var("MAX_ASSET_PIXELS"))?)
                    .or(file.max_asset_pixels)
                    .unwrap_or(crate::assets::AssetLimits::default().max_pixels),
                max_decoded_bytes: args
                    .max_decoded_bytes
                    .or(env_value(env, &var("MAX_DECODED_BYTES"))?)
                    .or(file.max_decoded_bytes)
                    .unwrap_or(crate::assets::AssetLimits::default().max_decoded_bytes),
            },
            templates_dir: args
                .templates_dir
                .clone()
                .or_else(|| env(&var("TEMPLATES_DIR")).map(PathBuf::from))
                .or(file.templates_dir),
            watch_templates: args.watch_templates
                || env_flag(env, &var("WATCH_TEMPLATES"))?
                    .or(file.watch_templates)
                    .unwrap_or(false),
            standby: args.standby
                || env_flag(env, &var("STANDBY"))?
                    .or(file.standby)
                    .unwrap_or(false),
            instance_name: pick(
                args.instance_name.clone(),
                "INSTANCE_NAME",
                file.instance_name,
            )
            .unwrap_or_default(),
            cache_dir: args
                .cache_dir
                .clone()
                .or_else(|| env(&var("CACHE_DIR")).map(PathBuf::from))
                .or(file.cache_dir),
            plugin_limits: {
                let d = sm_plugin_host::PluginLimits::default();
                sm_plugin_host::PluginLimits {
                    budget_fraction: args
                        .template_budget
                        .or(env_value(env, &var("TEMPLATE_BUDGET"))?)
                        .or(file.template_budget)
                        .unwrap_or(d.budget_fraction),
                    frame_fraction: args
                        .template_frame_budget
                        .or(env_value(env, &var("TEMPLATE_FRAME_BUDGET"))?)
                        .or(file.template_frame_budget)
                        .unwrap_or(d.frame_fraction),
                    fault_limit: args
                        .template_fault_limit
                        .or(env_value(env, &var("TEMPLATE_FAULT_LIMIT"))?)
                        .or(file.template_fault_limit)
                        .unwrap_or(d.fault_limit),
                    fault_window: args
                        .template_fault_window
                        .or(env_value(env, &var("TEMPLATE_FAULT_WINDOW"))?)
                        .or(file.template_fault_window)
                        .unwrap_or(d.fault_window),
                    memory_bytes: args
                        .template_memory_mib
                        .or(env_value(env, &var("TEMPLATE_MEMORY_MIB"))?)
                        .or(file.template_memory_mib)
                        .map_or(d.memory_bytes, |m| m << 20),
                    max_component_bytes: args
                        .max_template_bytes
                        .or(env_value(env, &var("MAX_TEMPLATE_BYTES"))?)
                        .or(file.max_template_bytes)
                        .unwrap_or(d.max_component_bytes),
                    loader_memory_bytes: args
                        .loader_memory_mib
                        .or(env_value(env, &var("LOADER_MEMORY_MIB"))?)
                        .or(file.loader_memory_mib)
                        .map_or(d.loader_memory_bytes, |m| m << 20),
                    ..d
                }
            },
            loader_limits: {
                let d = sm_plugin_host::loader::LoaderLimits::default();
                sm_plugin_host::loader::LoaderLimits {
                    budget: args
                        .loader_budget_ms
                        .or(env_value(env, &var("LOADER_BUDGET_MS"))?)
                        .or(file.loader_budget_ms)
                        .map_or(d.budget, std::time::Duration::from_millis),
                    ..d
                }
            },
            inputs: sm_media::input::InputSettings {
                media_dir: args
                    .media_dir
                    .clone()
                    .or_else(|| env(&var("MEDIA_DIR")).map(PathBuf::from))
                    .or(file.media_dir)
                    .unwrap_or_else(|| PathBuf::from("media")),
                max_picture: match pick(
                    args.max_input_size.clone(),
                    "MAX_INPUT_SIZE",
                    file.max_input_size,
                ) {
                    None => sm_media::input::decode::DEFAULT_MAX_PICTURE,
                    Some(v) => parse_size(&v)
                        .filter(|(w, h)| (16..=16384).contains(w) && (16..=16384).contains(h))
                        .ok_or_else(|| {
                            SettingsError(format!(
                                "max-input-size: {v:?} is not WIDTHxHEIGHT with each 16..=16384"
                            ))
                        })?,
                },
                stall_after: std::time::Duration::from_millis(
                    args.input_stall_ms
                        .or(env_value(env, &var("INPUT_STALL_MS"))?)
                        .or(file.input_stall_ms)
                        .unwrap_or(2000),
                ),
            },
            max_media_bytes: args
                .max_media_bytes
                .or(env_value(env, &var("MAX_MEDIA_BYTES"))?)
                .or(file.max_media_bytes)
                .unwrap_or(4 << 30),
            recordings: crate::recordings::RecordingSettings {
                dir: args
                    .recordings_dir
                    .clone()
                    .or_else(|| env(&var("RECORDINGS_DIR")).map(PathBuf::from))
                    .or(file.recordings_dir)
                    .unwrap_or_else(|| PathBuf::from("recordings")),
                max_bytes: args
                    .recordings_max_bytes
                    .or(env_value(env, &var("RECORDINGS_MAX_BYTES"))?)
                    .or(file.recordings_max_bytes),
            },
            stream: match file.stream {
                None => StreamConfig::default(),
                Some(table) => {
                    let patch = serde_json::to_value(table)
                        .map_err(|e| SettingsError(format!("[stream]: {e}")))?;
                    let c = StreamConfig::default()
                        .merged(&patch)
                        .map_err(|e| SettingsError(format!("[stream] {e}")))?;
                    c.validate()
                        .map_err(|e| SettingsError(format!("[stream] {e}")))?;
                    c
                }
            },
        };
        if s.instance_name.is_empty() {
            s.instance_name = format!("{}:{}", host_name(), s.http_port);
        }
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let l = &self.plugin_limits;
        if !(0.01..=1.0).contains(&l.budget_fraction) {
            return Err(SettingsError("template-budget: must be 0.01..=1.0".into()));
        }
        if !(0.01..=1.0).contains(&l.frame_fraction) {
            return Err(SettingsError(
                "template-frame-budget: must be 0.01..=1.0".into(),
            ));
        }
        if !(1..=100_000).contains(&l.fault_limit) {
            return Err(SettingsError(
                "template-fault-limit: must be 1..=100000".into(),
            ));
        }
        if !(1..=1_000_000).contains(&l.fault_window) {
            return Err(SettingsError(
                "template-fault-window: must be 1..=1000000 frames".into(),
            ));
        }
        if !(1..=4096).contains(&(l.memory_bytes >> 20)) {
            return Err(SettingsError(
                "template-memory-mib: must be 1..=4096".into(),
            ));
        }
        if !(1..=4096).contains(&(l.loader_memory_bytes >> 20)) {
            return Err(SettingsError("loader-memory-mib: must be 1..=4096".into()));
        }
        if !(10..=60_000).contains(&self.loader_limits.budget.as_millis()) {
            return Err(SettingsError("loader-budget-ms: must be 10..=60000".into()));
        }
        if self.asset_limits.max_decoded_bytes < 1 << 20 {
            return Err(SettingsError(
                "max-decoded-bytes: must be at least 1048576 (1 MiB)".into(),
            ));
        }
        if !(1..=1_000_000).contains(&self.auth_failure_limit) {
            return Err(SettingsError(
                "auth-failure-limit: must be 1..=1000000".into(),
            ));
        }
        if !(1..=10_000).contains(&self.max_ws_clients) {
            return Err(SettingsError("max-ws-clients: must be 1..=10000".into()));
        }
        let stall = self.inputs.stall_after.as_millis();
        if !(100..=60_000).contains(&stall) {
            return Err(SettingsError("input-stall-ms: must be 100..=60000".into()));
        }
        if self.recordings.max_bytes == Some(0) {
            return Err(SettingsError(
                "recordings-max-bytes: must be at least 1".into(),
            ));
        }
        if self.max_media_bytes == 0 {
            return Err(SettingsError("max-media-bytes: must be at least 1".into()));
        }
        if l.max_component_bytes == 0 {
            return Err(SettingsError(
                "max-template-bytes: must be at least 1".into(),
            ));
        }
        let ports = [
            ("http-port", self.http_port),
            ("ws-port", self.ws_port),
            ("rtmp-port", self.rtmp_port),
        ];
        for (i, (name, port)) in ports.iter().enumerate() {
            if *port == 0 {
                return Err(SettingsError(format!("{name}: must be 1..=65535")));
            }
            if let Some((other, _)) = ports[..i].iter().find(|(_, p)| p == port) {
                return Err(SettingsError(format!(
                    "{name}: port {port} is already used by {other}"
                )));
            }
        }
        if self.standby && self.redis_url.is_none() {
            return Err(SettingsError(
                "standby: a standby follows a primary through Redis; set --redis-url (and the \
                 primary's --key-prefix)"
                    .into(),
            ));
        }
        if self.instance_name.chars().count() > 128
            || self.instance_name.chars().any(char::is_control)
        {
            return Err(SettingsError(
                "instance-name: must be 1–128 characters without control characters".into(),
            ));
        }
        if let Some(url) = &self.redis_url
            && !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("redis+unix://"))
        {
            return Err(SettingsError(
                "redis-url: must start with redis://, rediss:// or redis+unix://".into(),
            ));
        }
        if self
            .api_token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(SettingsError("api-token: must not be empty".into()));
        }
        self.access()?;
        if !self.bind.is_loopback()
            && self.api_token.is_none()
            && self.auth_tokens.is_empty()
            && !self.insecure
        {
            return Err(SettingsError(format!(
                "bind: {} is reachable from other machines and no token is set; set --api-token \
                 or [[auth.tokens]], or pass --insecure to serve without access control",
                self.bind
            )));
        }
        Ok(())
    }
}

impl Settings {
    /// The tokens and roles these settings give.
    pub fn access(&self) -> Result<crate::auth::Access, SettingsError> {
        crate::auth::Access::new(self.api_token.as_deref(), &self.auth_tokens)
            .map(|a| a.with_failure_limit(self.auth_failure_limit))
            .map_err(|e| SettingsError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(args: ServeArgs, vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::resolve(&args, &|k| map.get(k).cloned())
    }

    #[test]
    fn file_then_env_then_flag() {
        let dir = std::env::temp_dir().join(format!("sm-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "http-port = 5000\nws-port = 5001\n[stream]\nwidth = 640\nheight = 360\n",
        )
        .unwrap();
        let args = || ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        let s = resolve(args(), &[]).unwrap();
        assert_eq!(
            (s.http_port, s.ws_port, s.stream.width, s.stream.height),
            (5000, 5001, 640, 360)
        );
        let s = resolve(args(), &[("STREAM_MANAGER_HTTP_PORT", "6000")]).unwrap();
        assert_eq!(s.http_port, 6000);
        let s = resolve(
            ServeArgs {
                http_port: Some(7000),
                ..args()
            },
            &[("STREAM_MANAGER_HTTP_PORT", "6000")],
        )
        .unwrap();
        assert_eq!(s.http_port, 7000);
    }

    #[test]
    fn errors_name_the_field() {
        let e = resolve(
            ServeArgs::default(),
            &[("STREAM_MANAGER_HTTP_PORT", "http")],
        )
        .unwrap_err();
        assert!(e.to_string().contains("STREAM_MANAGER_HTTP_PORT"), "{e}");
        let e = resolve(
            ServeArgs {
                bind: Some("0.0.0.0".parse().unwrap()),
                ..Default::default()
            },
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("--insecure"), "{e}");
        assert!(
            resolve(
                ServeArgs {
                    bind: Some("0.0.0.0".parse().unwrap()),
                    insecure: true,
                    ..Default::default()
                },
                &[]
            )
            .is_ok()
        );
        let e = resolve(
            ServeArgs {
                ws_port: Some(4200),
                ..Default::default()
            },
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("ws-port"), "{e}");
    }

    #[test]
    fn the_template_fault_rule_and_frame_budget_are_configurable_and_checked() {
        let s = resolve(ServeArgs::default(), &[]).unwrap();
        let l = &s.plugin_limits;
        assert_eq!(
            (l.frame_fraction, l.fault_limit, l.fault_window),
            (0.5, 10, 300)
        );
        let s = resolve(
            ServeArgs {
                template_frame_budget: Some(0.75),
                template_fault_window: Some(600),
                ..Default::default()
            },
            &[("STREAM_MANAGER_TEMPLATE_FAULT_LIMIT", "4")],
        )
        .unwrap();
        let l = &s.plugin_limits;
        assert_eq!(
            (l.frame_fraction, l.fault_limit, l.fault_window),
            (0.75, 4, 600)
        );
        for (args, field) in [
            (
                ServeArgs {
                    template_frame_budget: Some(0.0),
                    ..Default::default()
                },
                "template-frame-budget",
            ),
            (
                ServeArgs {
                    template_fault_limit: Some(0),
                    ..Default::default()
                },
                "template-fault-limit",
            ),
            (
                ServeArgs {
                    template_fault_window: Some(0),
                    ..Default::default()
                },
                "template-fault-window",
            ),
        ] {
            let e = resolve(args, &[]).unwrap_err();
            assert!(e.to_string().starts_with(field), "{e}");
        }
    }

    #[test]
    fn tokens_with_roles_come_from_the_file_and_are_checked() {
        use crate::auth::{Identity, Role, config_entry};
        let dir = std::env::temp_dir().join(format!("sm-config-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        let args = || ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        std::fs::write(
            &file,
            config_entry("wall", Role::Viewer, "tok-v")
                + &config_entry("desk", Role::Operator, "tok-o"),
        )
        .unwrap();
        let s = resolve(args(), &[]).unwrap();
        let access = s.access().unwrap();
        let Identity::Known(c) = access.identify(Some("tok-o")) else {
            panic!("the operator token is not known")
        };
        assert_eq!((&*c.name, c.role), ("desk", Role::Operator));
        // Tokens are access control: a non-loopback bind is allowed with them alone.
        let open = resolve(
            ServeArgs {
                bind: Some("0.0.0.0".parse().unwrap()),
                ..args()
            },
            &[],
        );
        assert!(open.is_ok(), "{open:?}");
        for (text, names) in [
            (
                "[[auth.tokens]]\nname = \"a\"\nrole = \"owner\"\nsha256 = \"00\"\n",
                "role",
            ),
            (
                "[[auth.tokens]]\nname = \"a\"\nrole = \"admin\"\nsha256 = \"00\"\n",
                "auth.tokens[0].sha256",
            ),
            (
                "[[auth.tokens]]\nname = \"a\"\nrole = \"admin\"\n",
                "sha256",
            ),
            ("[auth]\nusers = []\n", "users"),
        ] {
            std::fs::write(&file, text).unwrap();
            let e = resolve(args(), &[]).unwrap_err().to_string();
            assert!(e.contains(names), "{text}: {e}");
        }
    }
}
