//! The state of one plugin call: a fresh store per call, so a trap or a panic
//! poisons nothing beyond the call that caused it.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::Services;
use super::http_gate::HttpGate;
use crate::store::Integration;

/// Bytes of guest stderr kept to explain a trap (a panic message is short).
const GUEST_OUTPUT_CAPACITY: usize = 16 << 10;

/// Who a call acts for.
#[derive(Clone, Debug, Default)]
pub struct CallContext {
    pub integration: Option<Integration>,
    /// Hosts the call may reach when no integration is current yet (installation).
    pub extra_hosts: Vec<String>,
    /// Host patterns the call may reach too: during installation, the provider's
    /// declared `allowed-host-patterns` (it may need them to check a credential).
    pub host_patterns: Vec<String>,
}

impl CallContext {
    /// A call acting for `integration`, reaching its hosts only.
    pub fn for_integration(integration: Integration) -> CallContext {
        CallContext {
            integration: Some(integration),
            extra_hosts: Vec::new(),
            host_patterns: Vec::new(),
        }
    }
}

pub struct CallState {
    pub(super) plugin: String,
    pub(super) version: String,
    /// Carried by the plugin's log lines: the webhook request or job it serves.
    pub(super) request_id: String,
    pub(super) integration: Option<Integration>,
    pub(super) services: Arc<Services>,
    pub(super) limits: StoreLimits,
    pub(super) stderr: MemoryOutputPipe,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    pub(super) gate: HttpGate,
    pub(super) table: ResourceTable,
}

impl CallState {
    pub fn new(
        plugin: &str,
        version: &str,
        request_id: String,
        services: Arc<Services>,
        ctx: CallContext,
        memory_cap: usize,
    ) -> CallState {
        let stderr = MemoryOutputPipe::new(GUEST_OUTPUT_CAPACITY);
        // No sockets, no files, no environment: wasi:http through the gate is the
        // only way out of the sandbox.
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut allowed = ctx.extra_hosts;
        if let Some(i) = &ctx.integration {
            allowed.extend(i.allowed_hosts.iter().cloned());
        }
        let addresses = services.addresses.clone();
        let metrics = services.metrics.clone();
        let mut state = CallState {
            plugin: plugin.to_owned(),
            version: version.to_owned(),
            request_id,
            integration: ctx.integration,
            services,
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_cap)
                .trap_on_grow_failure(true)
                .build(),
            stderr,
            wasi,
            http: WasiHttpCtx::new(),
            gate: HttpGate {
                plugin: plugin.to_owned(),
                allowed,
                patterns: ctx.host_patterns,
                addresses,
                metrics,
                integration: None,
                stand_ins: Default::default(),
            },
            table: ResourceTable::new(),
        };
        state.gate.integration = state.integration.as_ref().map(|i| i.id);
        state
    }

    /// Make `integration` the one this call acts for (and whose hosts it may reach).
    pub(super) fn select(&mut self, integration: Integration) {
        self.gate.allowed = integration.allowed_hosts.clone();
        self.gate.patterns.clear();
        self.gate.integration = Some(integration.id);
        self.integration = Some(integration);
    }

    pub fn integration(&self) -> Option<&Integration> {
        self.integration.as_ref()
    }

    pub fn guest_output(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).into_owned()
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.gate,
        }
    }
}
