//! Drives a module through Envoy's lifecycle: create the root context, start
//! the VM, configure the plugin; then per request: create a context, request
//! headers, done, log, delete.

use wasmtime::error::Context as _;
use wasmtime::{Engine, Instance, Module, Store};
use wasmtime::{Result, bail};

use crate::host::{HostState, LocalResponse, LogLine, linker_for, metered_engine};
use crate::process::{Process, Scripted};
use crate::wire::Pairs;

const ROOT_CONTEXT: i32 = 1;
const MAP_REQUEST_HEADERS: usize = 0;
const MAP_HTTP_CALL_RESPONSE_HEADERS: usize = 6;

/// The proxy-wasm `Action` a callback returned.
const ACTION_CONTINUE: i32 = 0;
const ACTION_PAUSE: i32 = 1;

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The filter let it through; these are the headers the upstream gets.
    Forwarded { headers: Pairs },
    /// The filter answered it.
    Local(LocalResponse),
}

impl Reply {
    /// The status the client sees (200 for a forwarded request).
    pub fn status(&self) -> u32 {
        match self {
            Reply::Forwarded { .. } => 200,
            Reply::Local(r) => r.status,
        }
    }

    /// A forwarded header (first value, as text), or a local response header.
    pub fn header(&self, name: &str) -> Option<String> {
        let pairs = match self {
            Reply::Forwarded { headers } => headers,
            Reply::Local(r) => &r.headers,
        };
        pairs.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// How many values a header has.
    pub fn header_count(&self, name: &str) -> usize {
        match self {
            Reply::Forwarded { headers } => headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).count(),
            Reply::Local(r) => r.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).count(),
        }
    }

    pub fn body(&self) -> String {
        match self {
            Reply::Forwarded { .. } => String::new(),
            Reply::Local(r) => String::from_utf8_lossy(&r.body).into_owned(),
        }
    }
}

/// One VM: one instance of the module, as one Envoy worker thread holds.
pub struct Vm {
    store: Store<HostState>,
    instance: Instance,
    next_context: i32,
}

impl Vm {
    /// Instantiates the module and runs `_initialize`, context creation for
    /// the root and `proxy_on_vm_start`.
    pub fn start(module: &Module, process: &Process) -> Result<Vm> {
        let mut store = Store::new(module.engine(), HostState::new(process.clone()));
        if Engine::same(module.engine(), metered_engine()) {
            store.set_fuel(u64::MAX)?;
        }
        let instance = linker_for(module.engine()).instantiate(&mut store, module).context("instantiate")?;
        let mut vm = Vm { store, instance, next_context: ROOT_CONTEXT + 1 };
        if let Ok(init) = vm.instance.get_typed_func::<(), ()>(&mut vm.store, "_initialize") {
            init.call(&mut vm.store, ())?;
        }
        vm.call::<(i32, i32), ()>("proxy_on_context_create", (ROOT_CONTEXT, 0))?;
        let vm_config_len = vm.store.data().vm_configuration.as_ref().map_or(0, Vec::len) as i32;
        if vm.call::<(i32, i32), i32>("proxy_on_vm_start", (ROOT_CONTEXT, vm_config_len))? == 0 {
            bail!("proxy_on_vm_start returned false");
        }
        Ok(vm)
    }

    fn call<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(&mut self, name: &str, params: P) -> Result<R> {
        let f =
            self.instance.get_typed_func::<P, R>(&mut self.store, name).with_context(|| format!("export {name}"))?;
        let out = f.call(&mut self.store, params).with_context(|| format!("{name} trapped"))?;
        let unimplemented = std::mem::take(&mut self.store.data_mut().unimplemented);
        if !unimplemented.is_empty() {
            bail!("{name} called unimplemented host functions: {unimplemented:?}");
        }
        Ok(out)
    }

    /// `proxy_on_configure` with this plugin configuration; Envoy refuses the
    /// configuration when it returns false.
    pub fn configure(&mut self, plugin_configuration: &[u8]) -> Result<bool> {
        self.store.data_mut().plugin_configuration = Some(plugin_configuration.to_vec());
        let len = plugin_configuration.len() as i32;
        Ok(self.call::<(i32, i32), i32>("proxy_on_configure", (ROOT_CONTEXT, len))? != 0)
    }

    /// One request with these headers (pseudo-headers included) and no body.
    pub fn request(&mut self, headers: &[(&str, &str)]) -> Result<Reply> {
        let pairs: Pairs = headers.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect();
        self.request_bytes(pairs)
    }

    pub fn request_bytes(&mut self, headers: Pairs) -> Result<Reply> {
        let ctx = self.next_context;
        self.next_context += 1;
        let count = headers.len() as i32;
        {
            let state = self.store.data_mut();
            state.maps[MAP_REQUEST_HEADERS] = headers;
            state.local_response = None;
            // Filter state (set_property) lives as long as one stream in Envoy.
            state.properties.clear();
        }
        self.call::<(i32, i32), ()>("proxy_on_context_create", (ctx, ROOT_CONTEXT))?;
        let action = self.call::<(i32, i32, i32), i32>("proxy_on_request_headers", (ctx, count, 1))?;
        let local = self.store.data_mut().local_response.take();
        let reply = match (action, local) {
            (ACTION_PAUSE, Some(response)) => Reply::Local(response),
            (ACTION_CONTINUE, None) => {
                Reply::Forwarded { headers: std::mem::take(&mut self.store.data_mut().maps[MAP_REQUEST_HEADERS]) }
            }
            (ACTION_CONTINUE, Some(_)) => bail!("local response sent but the request continued"),
            (ACTION_PAUSE, None) => bail!("request paused without a local response: it would hang"),
            (other, _) => bail!("proxy_on_request_headers returned unknown action {other}"),
        };
        self.call::<i32, i32>("proxy_on_done", ctx)?;
        self.call::<i32, ()>("proxy_on_log", ctx)?;
        self.call::<i32, ()>("proxy_on_delete", ctx)?;
        Ok(reply)
    }

    /// `proxy_on_tick` on the root context, now.
    pub fn tick(&mut self) -> Result<()> {
        self.call::<i32, ()>("proxy_on_tick", ROOT_CONTEXT)
    }

    /// Brings the VM up to the process clock, as Envoy's event loop would:
    /// delivers every `proxy_http_call` answer (or timeout) that is due, in
    /// the order they fall due, then the tick if one is due. Returns how
    /// many callbacks ran.
    pub fn pump(&mut self) -> Result<usize> {
        let now = self.store.data().process.clock().now_millis();
        let mut ran = 0;
        loop {
            let state = self.store.data_mut();
            let due = state
                .pending_calls
                .iter()
                .enumerate()
                .filter(|(_, c)| c.due_ms() <= now)
                .min_by_key(|(_, c)| c.due_ms());
            let Some((index, _)) = due else { break };
            let call = state.pending_calls.remove(index);
            let (headers, body) = match call.answer {
                Scripted::Answer { status, headers, body, delay_ms } if delay_ms < call.timeout_ms => {
                    let mut pairs = vec![(":status".to_string(), status.to_string().into_bytes())];
                    pairs.extend(headers.into_iter().map(|(n, v)| (n.to_ascii_lowercase(), v.into_bytes())));
                    (pairs, body)
                }
                // Envoy's timeout: the callback with no headers and no body.
                _ => (Vec::new(), Vec::new()),
            };
            let (count, size) = (headers.len() as i32, body.len() as i32);
            state.maps[MAP_HTTP_CALL_RESPONSE_HEADERS] = headers;
            state.call_body = body;
            self.call::<(i32, i32, i32, i32, i32), ()>(
                "proxy_on_http_call_response",
                (ROOT_CONTEXT, call.token as i32, count, size, 0),
            )?;
            let state = self.store.data_mut();
            state.maps[MAP_HTTP_CALL_RESPONSE_HEADERS].clear();
            state.call_body.clear();
            ran += 1;
        }
        let state = self.store.data_mut();
        if let Some(at) = state.next_tick_ms
            && at <= now
        {
            let period = u64::from(state.tick_period_ms.max(1));
            state.next_tick_ms = Some(at + period * ((now - at) / period + 1));
            self.tick()?;
            ran += 1;
        }
        Ok(ran)
    }

    /// `proxy_http_call`s this VM has in flight.
    pub fn pending_calls(&self) -> usize {
        self.store.data().pending_calls.len()
    }

    /// Fuel (about one unit per Wasm instruction) used so far by a VM of a
    /// metered module; 0 otherwise.
    pub fn fuel_consumed(&self) -> u64 {
        self.store.get_fuel().map_or(0, |left| u64::MAX - left)
    }

    pub fn logs(&self) -> &[LogLine] {
        &self.store.data().logs
    }

    pub fn take_logs(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.store.data_mut().logs)
    }

    pub fn state(&self) -> &HostState {
        self.store.data()
    }

    pub fn state_mut(&mut self) -> &mut HostState {
        self.store.data_mut()
    }

    /// Calls a `() -> i32` export; for the harness's own WAT probes.
    pub fn call_probe(&mut self, name: &str) -> Result<i32> {
        self.call::<(), i32>(name, ())
    }

    /// Reads guest memory; for the harness's own WAT probes.
    pub fn read_memory(&mut self, ptr: usize, len: usize) -> Result<Vec<u8>> {
        let mem = self.instance.get_memory(&mut self.store, "memory").context("no memory export")?;
        let mut buf = vec![0u8; len];
        mem.read(&self.store, ptr, &mut buf)?;
        Ok(buf)
    }
}

/// Compiles a module for the shared engine.
pub fn compile(wasm: &[u8]) -> Result<Module> {
    Module::new(crate::host::engine(), wasm)
}

/// Compiles a module for the fuel-metered engine (see [`Vm::fuel_consumed`]).
pub fn compile_metered(wasm: &[u8]) -> Result<Module> {
    Module::new(metered_engine(), wasm)
}
