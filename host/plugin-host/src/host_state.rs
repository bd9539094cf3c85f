//! The state of one instance (a wasmtime store's data): its WASI context (empty), resource
//! table, memory limiter, log, fonts and the scene's resources, reachable from the host
//! imports of every WIT version.

use std::sync::{Arc, Mutex};

use sm_compose::Resources;
use sm_compose::commands::Deadline;
use sm_compose::text::FontBook;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::output::PluginLog;

/// The state of one instance, reachable from host imports.
pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: Limiter,
    pub(crate) log: Arc<Mutex<PluginLog>>,
    pub(crate) fonts: FontBook,
    pub(crate) resources: Arc<Resources>,
    /// The running call's time budget, counted in this thread's CPU time (see
    /// [`Deadline`]): a guest the machine kept off the CPU is not cut short for it.
    pub(crate) deadline: Deadline,
}

/// The store's limits, recording the largest memory the instance grew to.
pub(crate) struct Limiter {
    pub(crate) limits: StoreLimits,
    pub(crate) peak: usize,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = self.limits.memory_growing(current, desired, maximum)?;
        if ok {
            self.peak = self.peak.max(desired);
        }
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
