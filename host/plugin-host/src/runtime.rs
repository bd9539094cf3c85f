//! The runtime: one wasmtime [`Engine`] with its limits, linker and compiled-component
//! cache; components prepared into [`Build`]s and instantiated into [`Instance`]s whose every
//! call runs under an epoch deadline checked against the thread's CPU time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimitsBuilder,
    UpdateDeadline,
};
use wasmtime_wasi::WasiCtxBuilder;

use crate::faults::{Fault, FaultKind, TemplateEvent, first_line};
use crate::host_state::{HostState, Limiter};
use crate::output::{GuestOutput, PluginLog};
use crate::wit;
use crate::wit::ApiVersion;
use crate::wit::since_v0_1_0 as v1;
use crate::wit::since_v0_2_0 as v2;
use sm_compose::Resources;
use sm_compose::commands::{Deadline, DrawCommand, Limits, validate};
use sm_compose::text::FontBook;
use sm_scene::TemplateSpec;

pub use crate::wit::since_v0_1_0::FrameInfo;

/// Name of the custom section in which the SDK records the API version a plugin was built
/// against.
pub const API_VERSION_SECTION: &str = "stream-manager:api-version";

/// Interval of the epoch ticker: the granularity of call budgets.
const TICK: Duration = Duration::from_millis(1);

/// Most bytes the host allocates for what one call hands over (a guest's arguments to a
/// host import, or an export's results), counted by wasmtime as it lifts them. Lists and
/// strings may alias in the canonical ABI, so a guest with 8 MiB of memory could otherwise
/// have the host copy one buffer thousands of times; past this the call fails (a fault).
/// The largest valid frame lifts to well under half of it (10 000 commands, 100 000 path
/// segments, 64 KiB of text, their fills and names).
pub const HOSTCALL_FUEL: usize = 16 << 20;

/// Limits every plugin runs under.
#[derive(Debug, Clone)]
pub struct PluginLimits {
    /// Linear memory per instance, bytes. Default 64 MiB.
    pub memory_bytes: usize,
    /// Share of the frame interval one `render` call may take. Default 0.25.
    pub budget_fraction: f64,
    /// Budget of `describe`, `configure`, `snapshot` and `restore`. Default 100 ms.
    pub setup_budget: Duration,
    /// Share of the frame interval that all template layers together may take per frame,
    /// their guest calls and the host's rasterizing of their pictures. Each layer gets an
    /// equal part of it (at most [`Self::budget_fraction`] for its call). Default 0.5.
    pub frame_fraction: f64,
    /// Consecutive faulty frames after which a layer's instance is quarantined. Default 5.
    pub quarantine_after: u32,
    /// Faults within [`Self::fault_window`] frames after which a layer is quarantined
    /// (intermittent faults). Default 10.
    pub fault_limit: u32,
    /// The sliding window of [`Self::fault_limit`], in frames. Default 300 (10 s at 30 fps).
    pub fault_window: u32,
    /// Largest component accepted, bytes. Default 16 MiB.
    pub max_component_bytes: usize,
    /// Bounds on the draw commands of one frame.
    pub commands: Limits,
    /// Linear memory of an asset loader's instance, bytes (a whole animation is returned
    /// at once). Default 256 MiB.
    pub loader_memory_bytes: usize,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            budget_fraction: 0.25,
            setup_budget: Duration::from_millis(100),
            frame_fraction: 0.5,
            quarantine_after: 5,
            fault_limit: 10,
            fault_window: 300,
            max_component_bytes: 16 << 20,
            commands: Limits::default(),
            loader_memory_bytes: 256 << 20,
        }
    }
}

impl PluginLimits {
    /// The budget of one `render` call at `fps`.
    pub fn render_budget(&self, fps: u32) -> Duration {
        Duration::from_secs_f64(self.budget_fraction.clamp(0.01, 1.0) / f64::from(fps.max(1)))
    }

    /// What all template layers together may take per frame at `fps` (guest calls and
    /// rasterizing).
    pub fn frame_budget(&self, fps: u32) -> Duration {
        Duration::from_secs_f64(self.frame_fraction.clamp(0.01, 1.0) / f64::from(fps.max(1)))
    }

    /// One layer's fair share of [`Self::frame_budget`] when `layers` template layers run.
    pub fn share(&self, fps: u32, layers: usize) -> Duration {
        self.frame_budget(fps) / u32::try_from(layers.max(1)).unwrap_or(u32::MAX)
    }
}

/// Why a component was refused.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Not WebAssembly at all.
    #[error("not a WebAssembly component: the bytes do not start with the wasm magic number")]
    NotWasm,
    /// A core module, not a component.
    #[error(
        "a core WebAssembly module, not a component: build the template for wasm32-wasip2 \
         (cargo build --release --target wasm32-wasip2)"
    )]
    CoreModule,
    /// Malformed or truncated, or failed to compile.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// Built against an API version this host does not serve.
    #[error("{0}")]
    UnsupportedVersion(String),
    /// A component of another world.
    #[error("{0}")]
    WrongWorld(String),
    /// Imports the host does not provide.
    #[error("the component imports what the host does not provide: {0}")]
    Imports(String),
    /// A core module declares more initial linear memory than a template may have.
    #[error(
        "declares {} of initial memory; templates get {} (`--template-memory-mib`)",
        readable_size(*.declared),
        readable_size(*.limit)
    )]
    TooMuchMemory {
        /// The largest initial memory declared, bytes.
        declared: u64,
        /// The memory limit, bytes.
        limit: u64,
    },
    /// `describe` answered something unusable.
    #[error("describe: {0}")]
    Info(String),
    /// A fault while describing, configuring or test-rendering.
    #[error("{stage}: {fault}")]
    Fault {
        /// Which call.
        stage: &'static str,
        /// What went wrong.
        fault: Fault,
    },
    /// The default params were refused by the template itself.
    #[error("configure with the default params: {0}")]
    Rejected(String),
    /// The runtime could not be set up.
    #[error("template runtime: {0}")]
    Runtime(String),
}

/// The initial memory that a failed instantiation (or compilation) was refused, from
/// wasmtime's error: the pooling allocator's slot limit, or the store's memory limit (while
/// instantiating, the only memory that grows is a new one, from nothing to its minimum).
fn refused_initial_memory(err: &wasmtime::Error) -> Option<u64> {
    err.chain().find_map(|e| {
        let text = e.to_string();
        let number_after = |prefix: &str| {
            let rest = &text[text.find(prefix)? + prefix.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u64>().ok()
        };
        number_after("minimum byte size of ")
            .or_else(|| number_after("forcing trap when growing memory to "))
            .or_else(|| number_after("memory minimum size of ").map(|p| p.saturating_mul(64 << 10)))
    })
}

/// `bytes` for people: `300 bytes`, `64 KiB`, `1.5 MiB`, `4 GiB`.
pub fn readable_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.1}");
    format!(
        "{} {}",
        text.strip_suffix(".0").unwrap_or(&text),
        UNITS[unit]
    )
}

/// What a template says about itself, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateInfo {
    /// Its name.
    pub name: String,
    /// Its own version.
    pub version: String,
    /// One line for operators.
    pub description: String,
    /// JSON Schema of its params.
    #[schema(value_type = Object)]
    pub params_schema: serde_json::Value,
    /// Params used when a layer gives none.
    #[schema(value_type = Object)]
    pub default_params: serde_json::Value,
    /// Size it is designed for: `[width, height]`.
    pub default_size: [u32; 2],
    /// WIT API version it was built against.
    pub api_version: String,
}

/// A prepared component: compiled, linked, described and test-rendered.
pub struct Build {
    /// SHA-256 of the component, hex.
    pub hash: String,
    /// What `describe` returned.
    pub info: TemplateInfo,
    /// The component's bytes (persisted, re-prepared at boot).
    pub bytes: Bytes,
    schema: jsonschema::Validator,
    pre: TemplatePre,
}

/// A template component linked for instantiation, by its WIT version.
enum TemplatePre {
    V0_1_0(v1::SceneTemplatePre<HostState>),
    V0_2_0(v2::SceneTemplatePre<HostState>),
}

/// A template instance's exports, by its WIT version.
enum TemplateExports {
    V0_1_0(v1::SceneTemplate),
    V0_2_0(v2::SceneTemplate),
}

impl std::fmt::Debug for Build {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Build")
            .field("hash", &self.hash)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Build {
    /// Checks params against the template's schema; the message lists what is wrong.
    pub fn check_params(&self, params: &serde_json::Value) -> Result<(), String> {
        let errors: Vec<String> = self
            .schema
            .iter_errors(params)
            .take(5)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// Checks a template layer's params (the template's defaults when it has none).
    pub fn check_spec(&self, spec: &TemplateSpec) -> Result<(), String> {
        self.check_params(spec.params_or(&self.info.default_params))
    }

    /// The WIT version the component was built against.
    pub fn api(&self) -> ApiVersion {
        match self.pre {
            TemplatePre::V0_1_0(_) => ApiVersion::V0_1_0,
            TemplatePre::V0_2_0(_) => ApiVersion::V0_2_0,
        }
    }
}

/// The engine, linker, cache and limits shared by every plugin.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    limits: PluginLimits,
    compiled: Mutex<HashMap<String, Component>>,
    cache_dir: Option<PathBuf>,
    events: (
        crossbeam_channel::Sender<TemplateEvent>,
        crossbeam_channel::Receiver<TemplateEvent>,
    ),
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("limits", &self.limits)
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime with `limits`, caching compiled components in `cache_dir` (when given) as
    /// well as in memory. Starts the epoch ticker, which stops when the runtime is dropped.
    pub fn new(limits: PluginLimits, cache_dir: Option<PathBuf>) -> Result<Arc<Self>, PluginError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        // Budgets are enforced by epochs: cheaper than fuel, and one ticker serves all.
        config.epoch_interruption(true);
        let mut pool = PoolingAllocationConfig::default();
        // Slots are reserved up front (address space, not memory); enough for a few
        // hundred live instances, each a component of a handful of core instances.
        pool.total_component_instances(256);
        pool.total_core_instances(1024);
        pool.total_memories(512);
        pool.total_tables(1024);
        pool.total_stacks(256);
        // A Rust wasip2 component has one memory and a few tables, plus adapter shims.
        pool.max_memories_per_component(4);
        pool.max_tables_per_component(8);
        pool.max_core_instances_per_component(16);
        // No memory may grow past the largest plugin limit (a loader's), whatever the
        // store allows; each store holds its instance to its own limit.
        pool.max_memory_size(limits.memory_bytes.max(limits.loader_memory_bytes));
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| PluginError::Runtime(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| PluginError::Runtime(format!("{e:#}")))?;
        v1::SceneTemplate::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| PluginError::Runtime(format!("{e:#}")))?;
        // 0.2.0's `types` are 0.1.0's (see `wit::since_v0_2_0`), so its world links its own
        // `host` under its own name and re-opens 0.1.0's `types`; its own `types` instance
        // (types only, nothing to implement) is defined here.
        v2::SceneTemplate::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| PluginError::Runtime(format!("{e:#}")))?;
        linker
            .instance("stream-manager:plugin/types@0.2.0")
            .map_err(|e| PluginError::Runtime(format!("{e:#}")))?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .map_err(|e| PluginError::Runtime(e.to_string()))?;
        if let Some(dir) = &cache_dir
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            tracing::warn!(dir = %dir.display(), "component cache unavailable: {e}");
        }
        Ok(Arc::new(Self {
            engine,
            linker,
            limits,
            compiled: Mutex::default(),
            cache_dir,
            events: crossbeam_channel::bounded(1024),
        }))
    }

    /// The limits.
    pub fn limits(&self) -> &PluginLimits {
        &self.limits
    }

    /// Reports what happened to a template layer (never blocks: when nobody drains the
    /// events, the newest are dropped).
    pub fn report(&self, event: TemplateEvent) {
        let _ = self.events.0.try_send(event);
    }

    /// The events reported by template layers.
    pub fn events(&self) -> crossbeam_channel::Receiver<TemplateEvent> {
        self.events.1.clone()
    }

    /// Compiles `bytes`, or takes the compiled component from the memory or disk cache.
    fn compile(&self, hash: &str, bytes: &[u8]) -> Result<Component, PluginError> {
        if let Some(c) = self.compiled.lock().ok().and_then(|m| m.get(hash).cloned()) {
            return Ok(c);
        }
        let file = self.cache_dir.as_ref().map(|dir| {
            let mut compat = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(&self.engine.precompile_compatibility_hash(), &mut compat);
            let compat = std::hash::Hasher::finish(&compat);
            dir.join(format!("{hash}-{compat:016x}.cwasm"))
        });
        let cached = file.as_ref().filter(|f| f.exists()).and_then(|f| {
            // SAFETY: the file is one this runtime wrote with `Component::serialize` into
            // its own cache directory, named by the content hash and the engine's
            // compatibility hash; wasmtime still checks its header and version.
            unsafe { Component::deserialize_file(&self.engine, f) }
                .inspect_err(|e| tracing::warn!(file = %f.display(), "stale cache entry: {e:#}"))
                .ok()
        });
        let component = match cached {
            Some(c) => c,
            None => {
                let c = Component::new(&self.engine, bytes).map_err(|e| {
                    // A memory that escaped `initial_memory` is refused by the pool here.
                    match refused_initial_memory(&e) {
                        Some(declared) => PluginError::TooMuchMemory {
                            declared,
                            limit: self.limits.memory_bytes as u64,
                        },
                        None => PluginError::Invalid(first_line(&format!("{e:#}"))),
                    }
                })?;
                if let Some(f) = &file {
                    match c.serialize() {
                        Ok(data) => {
                            let tmp = f.with_extension("tmp");
                            if let Err(e) =
                                std::fs::write(&tmp, data).and_then(|()| std::fs::rename(&tmp, f))
                            {
                                tracing::warn!(file = %f.display(), "component not cached: {e}");
                            }
                        }
                        Err(e) => tracing::warn!("component not serialized: {e:#}"),
                    }
                }
                c
            }
        };
        if let Ok(mut m) = self.compiled.lock() {
            m.insert(hash.to_string(), component.clone());
        }
        Ok(component)
    }

    /// Whether the component with this SHA-256 (hex) is compiled in memory already.
    pub fn is_compiled(&self, hash: &str) -> bool {
        self.compiled.lock().is_ok_and(|m| m.contains_key(hash))
    }

    /// Compiles a component ahead of its use (a standby following the primary's templates
    /// and loaders), with the checks that come before compiling (within the larger of the
    /// two memory limits; preparing it checks its own kind's). Blocking.
    pub fn precompile(&self, bytes: &[u8]) -> Result<(), PluginError> {
        let limit = self
            .limits
            .memory_bytes
            .max(self.limits.loader_memory_bytes);
        self.checked_compile(bytes, limit).map(drop)
    }

    /// Compiles the components of `hashes` not compiled yet, reading each one's bytes with
    /// `read` (hash → bytes), on blocking workers; how many it compiled. One that does not
    /// compile is skipped (preparing it later says why).
    pub async fn precompile_all<F>(
        self: &Arc<Self>,
        hashes: impl IntoIterator<Item = String>,
        read: impl Fn(String) -> F,
    ) -> usize
    where
        F: Future<Output = Option<Vec<u8>>>,
    {
        let mut compiled = 0;
        for hash in hashes {
            if self.is_compiled(&hash) {
                continue;
            }
            let Some(bytes) = read(hash).await else {
                continue;
            };
            let runtime = self.clone();
            let done = tokio::task::spawn_blocking(move || runtime.precompile(&bytes)).await;
            if matches!(done, Ok(Ok(()))) {
                compiled += 1;
            }
        }
        compiled
    }

    /// The names a component exports (which world it is of).
    pub(crate) fn export_names(&self, component: &Component) -> Vec<String> {
        component
            .component_type()
            .exports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// The checks made before compiling (a component of a supported API version, within
    /// `memory_limit`: a template's or a loader's), then the compiled component, its API
    /// version and its SHA-256.
    pub(crate) fn checked_compile(
        &self,
        bytes: &[u8],
        memory_limit: usize,
    ) -> Result<(Component, Option<String>, String), PluginError> {
        if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
            return Err(PluginError::NotWasm);
        }
        if bytes[4..8] == [1, 0, 0, 0] {
            return Err(PluginError::CoreModule);
        }
        let version = api_version(bytes)?;
        if let Some(v) = &version
            && !wit::SUPPORTED_VERSIONS.contains(&v.as_str())
        {
            return Err(PluginError::UnsupportedVersion(format!(
                "built against plugin API {v}; this server supports {}",
                wit::SUPPORTED_VERSIONS.join(", ")
            )));
        }
        // Refused before compiling: wasmtime would only say that a pool slot is too small.
        let limit = memory_limit as u64;
        let declared = initial_memory(bytes)?;
        if declared > limit {
            return Err(PluginError::TooMuchMemory { declared, limit });
        }
        let hash = hex(&Sha256::digest(bytes));
        Ok((self.compile(&hash, bytes)?, version, hash))
    }

    /// Prepares a component as a scene template: checks it, compiles it (or loads it from
    /// the cache), links it, describes it, configures it with its default params and
    /// renders one test frame at `fps`'s budget. Blocking: run it off the render thread.
    pub fn prepare(self: &Arc<Self>, bytes: Bytes, fps: u32) -> Result<Arc<Build>, PluginError> {
        let (component, version, hash) = self.checked_compile(&bytes, self.limits.memory_bytes)?;
        let exports = self.export_names(&component);
        let Some(api) = ApiVersion::of_template(&exports) else {
            let what = if ApiVersion::of_loader(&exports).is_some() {
                "an asset loader (world asset-loader)".to_string()
            } else {
                format!("a component exporting [{}]", exports.join(", "))
            };
            return Err(PluginError::WrongWorld(format!(
                "{what}, not a scene template: it must export {} (world scene-template)",
                wit::any_of(ApiVersion::template_export)
            )));
        };
        wit::agree(version.as_deref(), api).map_err(PluginError::UnsupportedVersion)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::Imports(first_line(&format!("{e:#}"))))?;
        let wrong = |e: wasmtime::Error| PluginError::WrongWorld(first_line(&format!("{e:#}")));
        let pre = match api {
            ApiVersion::V0_1_0 => {
                TemplatePre::V0_1_0(v1::SceneTemplatePre::new(pre).map_err(wrong)?)
            }
            ApiVersion::V0_2_0 => {
                TemplatePre::V0_2_0(v2::SceneTemplatePre::new(pre).map_err(wrong)?)
            }
        };
        let mut instance =
            Instance::start(self, &pre, "new template", Arc::default()).map_err(|fault| {
                PluginError::Fault {
                    stage: "instantiate",
                    fault,
                }
            })?;
        instance.patient = true;
        let info = instance
            .describe(self.limits.setup_budget)
            .map_err(|fault| PluginError::Fault {
                stage: "describe",
                fault,
            })?;
        let (info, schema) = parse_info(info, api.as_str())?;
        let build = Arc::new(Build {
            hash,
            info,
            bytes,
            schema,
            pre,
        });
        let defaults = build.info.default_params.clone();
        build
            .check_params(&defaults)
            .map_err(|e| PluginError::Info(format!("defaultParams fail paramsSchema: {e}")))?;
        instance.name = build.info.name.clone();
        match instance.configure(&defaults.to_string(), self.limits.setup_budget) {
            Ok(Ok(())) => {}
            Ok(Err(message)) => return Err(PluginError::Rejected(message)),
            Err(fault) => {
                return Err(PluginError::Fault {
                    stage: "configure",
                    fault,
                });
            }
        }
        let [width, height] = build.info.default_size;
        let frame = FrameInfo {
            frame: 0,
            time_ms: 0.0,
            wall_clock_ms: 0,
            utc_offset_minutes: 0,
            fps,
            width,
            height,
        };
        // A template that plays is played first, so the test render draws its picture
        // rather than the nothing of a template off air.
        instance
            .play(0.0, self.limits.setup_budget)
            .map_err(|fault| PluginError::Fault {
                stage: "play",
                fault,
            })?;
        // The first render pays for what a template sets up once (fonts, layouts), and a
        // busy machine must not refuse a template at boot: it gets the setup budget. On air
        // every frame has its share of the frame budget.
        instance
            .render(&frame, self.limits.setup_budget, &self.limits.commands)
            .map_err(|fault| PluginError::Fault {
                stage: "test render",
                fault,
            })?;
        Ok(build)
    }

    /// A new instance of `build`, drawing images from `resources`.
    pub fn instantiate(
        self: &Arc<Self>,
        build: &Arc<Build>,
        resources: Arc<Resources>,
    ) -> Result<Instance, Fault> {
        let mut instance = Instance::start(self, &build.pre, &build.info.name, resources)?;
        instance.build = Some(build.clone());
        instance.known_images = true;
        Ok(instance)
    }
}

/// Checks what `describe` answered and compiles its params schema.
fn parse_info(
    info: v1::Info,
    api: &str,
) -> Result<(TemplateInfo, jsonschema::Validator), PluginError> {
    const MAX_TEXT: usize = 64 * 1024;
    if info.name.is_empty() || info.name.len() > 64 {
        return Err(PluginError::Info("name must be 1 to 64 bytes".into()));
    }
    if info.params_schema.len() > MAX_TEXT || info.default_params.len() > MAX_TEXT {
        return Err(PluginError::Info(
            "params schema and defaults are limited to 64 KiB".into(),
        ));
    }
    let schema: serde_json::Value = serde_json::from_str(&info.params_schema)
        .map_err(|e| PluginError::Info(format!("paramsSchema is not JSON: {e}")))?;
    let default_params: serde_json::Value = serde_json::from_str(&info.default_params)
        .map_err(|e| PluginError::Info(format!("defaultParams is not JSON: {e}")))?;
    // Checked before compiling: the compiler would try to resolve it (and fail, or fetch).
    if let Some((at, target)) = external_ref(&schema, "") {
        let at = if at.is_empty() { "/".into() } else { at };
        return Err(PluginError::Info(format!(
            "paramsSchema at {at}: external `$ref` is not supported ({target:?}); put the \
             schema under `$defs` and refer to it as `#/$defs/...`"
        )));
    }
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .map_err(|e| PluginError::Info(format!("paramsSchema is not a valid JSON Schema: {e}")))?;
    let (w, h) = (info.default_size.width, info.default_size.height);
    if !(1..=7680).contains(&w) || !(1..=7680).contains(&h) {
        return Err(PluginError::Info(
            "defaultSize must be 1..=7680 in each dimension".into(),
        ));
    }
    Ok((
        TemplateInfo {
            name: info.name,
            version: info.version.chars().take(64).collect(),
            description: info.description.chars().take(1024).collect(),
            params_schema: schema,
            default_params,
            default_size: [w, h],
            api_version: api.to_string(),
        },
        validator,
    ))
}

/// The first `$ref` or `$dynamicRef` of `schema` (a schema at JSON pointer `at`) that
/// leaves the schema, i.e. does not start with `#`: its JSON pointer and its target. Values
/// of `const`, `enum`, `default` and `examples` are data, not schemas, and are skipped.
fn external_ref(schema: &serde_json::Value, at: &str) -> Option<(String, String)> {
    use serde_json::Value;
    let escape = |key: &str| key.replace('~', "~0").replace('/', "~1");
    let pointer = |key: &str| format!("{at}/{}", escape(key));
    match schema {
        Value::Object(map) => map
            .iter()
            .find_map(|(key, value)| match (key.as_str(), value) {
                ("$ref" | "$dynamicRef", Value::String(target)) if !target.starts_with('#') => {
                    Some((pointer(key), target.clone()))
                }
                ("const" | "enum" | "default" | "examples", _) => None,
                // Maps of names to schemas: the names are not keywords.
                (
                    "properties" | "patternProperties" | "$defs" | "definitions"
                    | "dependentSchemas",
                    Value::Object(named),
                ) => named.iter().find_map(|(name, sub)| {
                    external_ref(sub, &format!("{}/{}", pointer(key), escape(name)))
                }),
                _ => external_ref(value, &pointer(key)),
            }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, sub)| external_ref(sub, &format!("{at}/{i}"))),
        _ => None,
    }
}

/// The API version recorded by the SDK in [`API_VERSION_SECTION`], if any.
fn api_version(bytes: &[u8]) -> Result<Option<String>, PluginError> {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| PluginError::Invalid(e.message().to_string()))?;
        if let wasmparser::Payload::CustomSection(c) = payload
            && c.name() == API_VERSION_SECTION
        {
            let v = String::from_utf8_lossy(c.data()).trim().to_string();
            return Ok(Some(v.chars().take(32).collect()));
        }
    }
    Ok(None)
}

/// The largest initial linear memory that a core module of the component (nested modules
/// included) defines, in bytes (imported memories are another module's).
fn initial_memory(bytes: &[u8]) -> Result<u64, PluginError> {
    let mut largest = 0_u64;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| PluginError::Invalid(e.message().to_string()))?;
        if let wasmparser::Payload::MemorySection(memories) = payload {
            for memory in memories {
                let memory = memory.map_err(|e| PluginError::Invalid(e.message().to_string()))?;
                let page = 1_u128 << memory.page_size_log2.unwrap_or(16).min(64);
                let size = u128::from(memory.initial).saturating_mul(page);
                largest = largest.max(u64::try_from(size).unwrap_or(u64::MAX));
            }
        }
    }
    Ok(largest)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One running instance of a template: its own store, memory and WASI context.
pub struct Instance {
    store: Store<HostState>,
    bindings: TemplateExports,
    build: Option<Arc<Build>>,
    name: String,
    broken: bool,
    /// Image commands must name images of its resources (not while test-rendering an
    /// upload, which has none).
    known_images: bool,
    /// Checking an upload, off the render thread: a busy machine's waits are not held
    /// against the call (see [`Deadline::patient`]); its CPU time still is.
    patient: bool,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("name", &self.name)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// A fresh store for one instance of a plugin: its own memory limit, no WASI capability,
/// its output into the (rate-limited) log, the hostcall fuel, and the epoch deadline of
/// `budget`.
pub(crate) fn new_store(
    runtime: &Runtime,
    name: &str,
    resources: Arc<Resources>,
    (budget, memory_bytes): (Duration, usize),
) -> Store<HostState> {
    let log = Arc::new(Mutex::new(PluginLog::new(name)));
    // Nothing is granted: no preopened directories, environment, arguments or
    // network; stdout and stderr go to the (rate-limited) log.
    let wasi = WasiCtxBuilder::new()
        .stdout(GuestOutput::new(log.clone(), false))
        .stderr(GuestOutput::new(log.clone(), true))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    let limits = StoreLimitsBuilder::new()
        .memory_size(memory_bytes)
        .table_elements(100_000)
        .instances(32)
        .tables(16)
        .memories(4)
        .trap_on_grow_failure(true)
        .build();
    let mut fonts = FontBook::default();
    fonts.sync(resources.fonts.iter());
    let mut store = Store::new(
        &runtime.engine,
        HostState {
            wasi,
            table: ResourceTable::new(),
            limits: Limiter { limits, peak: 0 },
            log,
            fonts,
            resources,
            deadline: Deadline::start(budget),
        },
    );
    store.limiter(|s| &mut s.limits);
    store.set_hostcall_fuel(HOSTCALL_FUEL);
    // At the budget's epoch the call stops once it has had its budget of CPU time, or
    // has taken twice its budget of wall time whatever it had; until then it is looked
    // at again every tick.
    store.epoch_deadline_callback(|store| {
        Ok(if store.data().deadline.passed() {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Continue(1)
        })
    });
    store.set_epoch_deadline(ticks(budget));
    store
}

impl Instance {
    fn start(
        runtime: &Runtime,
        pre: &TemplatePre,
        name: &str,
        resources: Arc<Resources>,
    ) -> Result<Self, Fault> {
        let budget = runtime.limits.setup_budget;
        let memory = runtime.limits.memory_bytes;
        let mut store = new_store(runtime, name, resources, (budget, memory));
        let bindings = match pre {
            TemplatePre::V0_1_0(pre) => pre.instantiate(&mut store).map(TemplateExports::V0_1_0),
            TemplatePre::V0_2_0(pre) => pre.instantiate(&mut store).map(TemplateExports::V0_2_0),
        };
        let bindings = bindings.map_err(|e| match refused_initial_memory(&e) {
            Some(declared) => Fault {
                kind: FaultKind::Memory,
                message: PluginError::TooMuchMemory {
                    declared,
                    limit: runtime.limits.memory_bytes as u64,
                }
                .to_string(),
            },
            None => Fault::from_call(&e, budget),
        })?;
        Ok(Self {
            store,
            bindings,
            build: None,
            name: name.to_string(),
            broken: false,
            known_images: false,
            patient: false,
        })
    }

    /// The build this instance runs.
    pub fn build(&self) -> Option<&Arc<Build>> {
        self.build.as_ref()
    }

    /// The largest linear memory the instance has grown to, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.store.data().limits.peak
    }

    /// The WIT version the instance was built against.
    pub fn api(&self) -> ApiVersion {
        match self.bindings {
            TemplateExports::V0_1_0(_) => ApiVersion::V0_1_0,
            TemplateExports::V0_2_0(_) => ApiVersion::V0_2_0,
        }
    }

    /// Whether a call trapped: the instance must be replaced.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Gives host imports newer resources (images, fonts).
    pub fn set_resources(&mut self, resources: &Arc<Resources>) {
        let data = self.store.data_mut();
        if !Arc::ptr_eq(&data.resources, resources) {
            data.fonts.sync(resources.fonts.iter());
            data.resources = resources.clone();
        }
    }

    fn call<R>(
        &mut self,
        budget: Duration,
        f: impl FnOnce(&TemplateExports, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, Fault> {
        if self.broken {
            return Err(Fault {
                kind: FaultKind::Trap,
                message: "instance is broken by an earlier trap".into(),
            });
        }
        self.store.data_mut().deadline = if self.patient {
            Deadline::patient(budget)
        } else {
            Deadline::start(budget)
        };
        self.store.set_epoch_deadline(ticks(budget));
        if let Ok(mut log) = self.store.data().log.lock() {
            log.clear_recent();
        }
        f(&self.bindings, &mut self.store).map_err(|e| {
            self.broken = true;
            let mut fault = Fault::from_call(&e, budget);
            if fault.kind == FaultKind::Panic
                && let Ok(log) = self.store.data().log.lock()
                && let Some(panic) = log.panic_message()
            {
                // What the guest printed on stderr as it panicked: message and location.
                fault.message = panic;
            }
            fault
        })
    }

    /// Calls `describe`.
    pub fn describe(&mut self, budget: Duration) -> Result<v1::Info, Fault> {
        self.call(budget, |b, s| match b {
            TemplateExports::V0_1_0(b) => b.stream_manager_plugin_template().call_describe(s),
            TemplateExports::V0_2_0(b) => b
                .stream_manager_plugin_template()
                .call_describe(s)
                .map(v2::info),
        })
    }

    /// Calls `configure`; the inner error is the template's own refusal.
    pub fn configure(
        &mut self,
        params: &str,
        budget: Duration,
    ) -> Result<Result<(), String>, Fault> {
        self.call(budget, |b, s| match b {
            TemplateExports::V0_1_0(b) => {
                b.stream_manager_plugin_template().call_configure(s, params)
            }
            TemplateExports::V0_2_0(b) => {
                b.stream_manager_plugin_template().call_configure(s, params)
            }
        })
        .map(|r| r.map_err(|m| first_line(&m)))
    }

    /// Calls `render`: `None` when the picture is unchanged, else its validated commands.
    pub fn render(
        &mut self,
        frame: &FrameInfo,
        budget: Duration,
        limits: &Limits,
    ) -> Result<Option<Vec<DrawCommand>>, Fault> {
        let out = self.call(budget, |b, s| match b {
            TemplateExports::V0_1_0(b) => b
                .stream_manager_plugin_template()
                .call_render(s, *frame)
                .map(|out| match out {
                    v1::RenderOutput::Unchanged => None,
                    v1::RenderOutput::Commands(list) => Some(list),
                }),
            TemplateExports::V0_2_0(b) => b
                .stream_manager_plugin_template()
                .call_render(s, v2::frame(frame))
                .map(|out| match out {
                    v2::RenderOutput::Unchanged => None,
                    v2::RenderOutput::Commands(list) => Some(list),
                }),
        })?;
        let Some(list) = out else {
            return Ok(None);
        };
        if list.len() > limits.max_commands {
            return Err(Fault::invalid(format!(
                "{} draw commands (at most {})",
                list.len(),
                limits.max_commands
            )));
        }
        let commands: Vec<DrawCommand> = list.into_iter().map(v1::command).collect();
        validate(&commands, limits).map_err(|e| Fault::invalid(e.to_string()))?;
        if self.known_images {
            let resources = &self.store.data().resources;
            if let Some((i, asset)) = commands.iter().enumerate().find_map(|(i, c)| match c {
                DrawCommand::Image { asset, .. } if resources.image_size(asset).is_none() => {
                    Some((i, asset))
                }
                _ => None,
            }) {
                return Err(Fault::invalid(format!(
                    "command {i}: no uploaded image {asset:?}"
                )));
            }
        }
        Ok(Some(commands))
    }

    /// Calls `snapshot`.
    pub fn snapshot(&mut self, budget: Duration) -> Result<Option<String>, Fault> {
        self.call(budget, |b, s| match b {
            TemplateExports::V0_1_0(b) => b.stream_manager_plugin_template().call_snapshot(s),
            TemplateExports::V0_2_0(b) => b.stream_manager_plugin_template().call_snapshot(s),
        })
    }

    /// Calls `restore`; the inner error is the template's own refusal.
    pub fn restore(&mut self, state: &str, budget: Duration) -> Result<Result<(), String>, Fault> {
        self.call(budget, |b, s| match b {
            TemplateExports::V0_1_0(b) => b.stream_manager_plugin_template().call_restore(s, state),
            TemplateExports::V0_2_0(b) => b.stream_manager_plugin_template().call_restore(s, state),
        })
    }

    /// Calls `play` (the layer goes on air at layer time `at_ms`) on a template that plays
    /// ([`ApiVersion::plays`]); nothing for an older one.
    pub fn play(&mut self, at_ms: f64, budget: Duration) -> Result<(), Fault> {
        if !self.api().plays() {
            return Ok(());
        }
        self.call(budget, |b, s| match b {
            TemplateExports::V0_1_0(_) => Ok(()),
            TemplateExports::V0_2_0(b) => b.stream_manager_plugin_template().call_play(s, at_ms),
        })
    }

    /// Calls `stop` (the layer goes off air at layer time `at_ms`) on a template that
    /// plays ([`ApiVersion::plays`]); nothing for an older one.
    pub fn stop(&mut self, at_ms: f64, budget: Duration) -> Result<(), Fault> {
        if !self.api().plays() {
            return Ok(());
        }
        self.call(budget, |b, s| match b {
            TemplateExports::V0_1_0(_) => Ok(()),
            TemplateExports::V0_2_0(b) => b.stream_manager_plugin_template().call_stop(s, at_ms),
        })
    }
}

/// Epoch ticks for a budget (at least one whole tick past the current one).
fn ticks(budget: Duration) -> u64 {
    (budget.as_micros().div_ceil(TICK.as_micros()) as u64).max(1) + 1
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(readable_size(300), "300 bytes");
        assert_eq!(readable_size(64 << 10), "64 KiB");
        assert_eq!(readable_size(64 << 20), "64 MiB");
        assert_eq!(readable_size(3 << 19), "1.5 MiB");
        assert_eq!(readable_size(4 << 30), "4 GiB");
        assert_eq!(readable_size(u64::MAX), "16 EiB");
    }

    #[test]
    fn external_refs_are_found_where_they_are_and_local_ones_pass() {
        let local = json!({
            "$defs": {"x": {"type": "string"}},
            "properties": {"a": {"$ref": "#/$defs/x"}, "$ref": {"type": "string"}},
            "default": {"$ref": "https://example.com/data-not-schema"},
            "examples": [{"$ref": "urn:example"}]
        });
        assert_eq!(external_ref(&local, ""), None);
        let far = json!({
            "properties": {"a/b": {"anyOf": [{"type": "null"}, {"$dynamicRef": "other.json"}]}}
        });
        assert_eq!(
            external_ref(&far, ""),
            Some((
                "/properties/a~1b/anyOf/1/$dynamicRef".to_string(),
                "other.json".to_string()
            ))
        );
        let top = json!({"$ref": "https://example.com/x.json"});
        assert_eq!(external_ref(&top, "").unwrap().0, "/$ref");
    }

    #[test]
    fn wasmtime_memory_minimum_errors_give_the_declared_size() {
        for (text, bytes) in [
            (
                "memory has a minimum byte size of 4294967296 which exceeds the limit of \
                 67108864 bytes",
                4 << 30,
            ),
            (
                "forcing trap when growing memory to 134217728 bytes",
                128 << 20,
            ),
            (
                "memory minimum size of 2048 pages exceeds memory limits",
                128 << 20,
            ),
        ] {
            let err = wasmtime::Error::msg(text).context("instantiating");
            assert_eq!(refused_initial_memory(&err), Some(bytes), "{text}");
        }
        assert_eq!(
            refused_initial_memory(&wasmtime::Error::msg("out of bounds")),
            None
        );
    }
}
