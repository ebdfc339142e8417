//! The host side of the proxy-wasm ABI 0.2.1 and the WASI calls a Rust
//! `wasm32-wasip1` module imports, implemented as Envoy does for the parts a
//! filter can observe. Calls the filter has no business making are answered
//! `Unimplemented` and recorded, so a test notices them.

use std::collections::HashMap;
use std::sync::OnceLock;

use wasmtime::error::Context as _;
use wasmtime::{Caller, Config, Engine, Extern, FuncType, Linker, Memory, OptLevel, Val, ValType};
use wasmtime::{Result, bail, format_err};

use crate::process::{
    CallRecord, MetricKind, Process, STATUS_BAD_ARGUMENT, STATUS_NOT_FOUND, STATUS_OK, STATUS_UNIMPLEMENTED, Scripted,
};
use crate::wire::{Pairs, decode_map, encode_map};

/// A local response the module asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u32,
    pub details: String,
    pub body: Vec<u8>,
    pub headers: Pairs,
    pub grpc_status: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// proxy-wasm log level: 0 trace … 5 critical.
    pub level: i32,
    pub message: String,
}

/// Per-VM host state (one wasmtime `Store`).
#[derive(Debug)]
pub struct HostState {
    pub process: Process,
    pub vm_configuration: Option<Vec<u8>>,
    pub plugin_configuration: Option<Vec<u8>>,
    /// Header maps by proxy-wasm `MapType` (0 request headers … 7).
    pub maps: [Pairs; 8],
    pub local_response: Option<LocalResponse>,
    pub logs: Vec<LogLine>,
    /// `set_property` values by their NUL-separated path.
    pub properties: HashMap<Vec<u8>, Vec<u8>>,
    pub tick_period_ms: u32,
    /// Imports the module called that this host does not implement.
    pub unimplemented: Vec<&'static str>,
    /// What the module wrote to stdout/stderr through WASI.
    pub stdio: Vec<u8>,
    /// `proxy_http_call`s not yet answered.
    pub pending_calls: Vec<PendingCall>,
    next_call_token: u32,
    /// The answer being delivered (`proxy_on_http_call_response`), read
    /// through map 6 (headers) and buffer 4 (body).
    pub call_body: Vec<u8>,
    /// When the next `proxy_on_tick` is due (clock milliseconds).
    pub next_tick_ms: Option<u64>,
    rng: u64,
}

/// A `proxy_http_call` in flight: its token, when it was sent, its
/// timeout, and the scripted answer.
#[derive(Debug, Clone)]
pub struct PendingCall {
    pub token: u32,
    pub sent_ms: u64,
    pub timeout_ms: u64,
    pub answer: Scripted,
}

impl PendingCall {
    /// When Envoy would deliver it: the answer after its delay, or a
    /// timeout (no headers, no body) at the timeout.
    pub fn due_ms(&self) -> u64 {
        match &self.answer {
            Scripted::Answer { delay_ms, .. } if *delay_ms < self.timeout_ms => self.sent_ms + delay_ms,
            _ => self.sent_ms + self.timeout_ms,
        }
    }
}

impl HostState {
    pub fn new(process: Process) -> HostState {
        HostState {
            vm_configuration: None,
            plugin_configuration: None,
            maps: Default::default(),
            local_response: None,
            logs: Vec::new(),
            properties: HashMap::new(),
            tick_period_ms: 0,
            unimplemented: Vec::new(),
            stdio: Vec::new(),
            pending_calls: Vec::new(),
            next_call_token: 1,
            call_body: Vec::new(),
            next_tick_ms: None,
            rng: 0x9E37_79B9_7F4A_7C15
                ^ process
                    .state
                    .vm_seeds
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                    .wrapping_mul(0xA24B_AED4_963E_E407),
            process,
        }
    }
}

/// One engine for the test binary: modules compile once and VMs share code.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.cranelift_opt_level(OptLevel::Speed);
        // `perf record` can name the module's functions with a perf map
        // (build the module unstripped to get names).
        if std::env::var_os("LICENSE_GATE_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        Engine::new(&config).unwrap_or_else(|e| panic!("wasmtime engine: {e}"))
    })
}

/// An engine that meters execution with fuel: about one unit per Wasm
/// instruction, a count that does not depend on the machine's load.
pub fn metered_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.cranelift_opt_level(OptLevel::Speed);
        config.consume_fuel(true);
        Engine::new(&config).unwrap_or_else(|e| panic!("wasmtime engine: {e}"))
    })
}

/// The linker (every import defined) for `engine`; built once per engine.
pub fn linker_for(engine: &Engine) -> &'static Linker<HostState> {
    static PLAIN: OnceLock<Linker<HostState>> = OnceLock::new();
    static METERED: OnceLock<Linker<HostState>> = OnceLock::new();
    let (cell, engine) =
        if Engine::same(engine, metered_engine()) { (&METERED, metered_engine()) } else { (&PLAIN, self::engine()) };
    cell.get_or_init(|| build_linker(engine).unwrap_or_else(|e| panic!("host linker: {e:#}")))
}

type C<'a> = Caller<'a, HostState>;

fn memory(caller: &mut C<'_>) -> Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => bail!("module exports no memory"),
    }
}

fn read(caller: &mut C<'_>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let mem = memory(caller)?;
    let mut buf = vec![0u8; len as u32 as usize];
    mem.read(&*caller, ptr as u32 as usize, &mut buf).context("guest read out of bounds")?;
    Ok(buf)
}

fn write(caller: &mut C<'_>, ptr: i32, bytes: &[u8]) -> Result<()> {
    let mem = memory(caller)?;
    mem.write(&mut *caller, ptr as u32 as usize, bytes).context("guest write out of bounds")
}

fn write_u32(caller: &mut C<'_>, ptr: i32, v: u32) -> Result<()> {
    write(caller, ptr, &v.to_le_bytes())
}

/// Copies `bytes` into memory the module allocates, and stores the pointer
/// and size where the module asked (as Envoy does; empty data is a null pointer).
fn give(caller: &mut C<'_>, bytes: &[u8], ret_data: i32, ret_size: i32) -> Result<()> {
    let ptr = if bytes.is_empty() {
        0
    } else {
        let alloc = caller
            .get_export("proxy_on_memory_allocate")
            .or_else(|| caller.get_export("malloc"))
            .and_then(Extern::into_func)
            .ok_or_else(|| format_err!("module exports no allocator"))?
            .typed::<i32, i32>(&*caller)?;
        let ptr = alloc.call(&mut *caller, bytes.len() as i32)?;
        if ptr == 0 {
            bail!("module allocator returned null");
        }
        write(caller, ptr, bytes)?;
        ptr
    };
    write_u32(caller, ret_data, ptr as u32)?;
    write_u32(caller, ret_size, bytes.len() as u32)
}

fn map_mut<'a>(caller: &'a mut C<'_>, map_type: i32) -> Option<&'a mut Pairs> {
    caller.data_mut().maps.get_mut(usize::try_from(map_type).ok()?)
}

fn text(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).context("header name is not UTF-8")
}

fn build_linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut l: Linker<HostState> = Linker::new(engine);
    let env = "env";

    l.func_wrap(env, "proxy_log", |mut c: C<'_>, level: i32, ptr: i32, len: i32| -> Result<i32> {
        let message = String::from_utf8_lossy(&read(&mut c, ptr, len)?).into_owned();
        c.data_mut().logs.push(LogLine { level, message });
        Ok(STATUS_OK)
    })?;
    l.func_wrap(env, "proxy_get_log_level", |mut c: C<'_>, ret: i32| -> Result<i32> {
        write_u32(&mut c, ret, 0)?;
        Ok(STATUS_OK)
    })?;
    l.func_wrap(env, "proxy_get_current_time_nanoseconds", |mut c: C<'_>, ret: i32| -> Result<i32> {
        let now = c.data().process.clock().now_nanos();
        write(&mut c, ret, &now.to_le_bytes())?;
        Ok(STATUS_OK)
    })?;
    l.func_wrap(env, "proxy_set_tick_period_milliseconds", |mut c: C<'_>, period: i32| -> i32 {
        let now = c.data().process.clock().now_millis();
        let state = c.data_mut();
        state.tick_period_ms = period as u32;
        // As in Envoy: the first tick comes one period after the call; 0 stops them.
        state.next_tick_ms = (period > 0).then(|| now + period as u32 as u64);
        STATUS_OK
    })?;
    l.func_wrap(
        env,
        "proxy_get_buffer_bytes",
        |mut c: C<'_>, buffer_type: i32, start: i32, max: i32, ret_data: i32, ret_size: i32| -> Result<i32> {
            let buffer = match buffer_type {
                4 => Some(c.data().call_body.clone()),
                6 => c.data().vm_configuration.clone(),
                7 => c.data().plugin_configuration.clone(),
                _ => return Ok(STATUS_NOT_FOUND),
            };
            let Some(buffer) = buffer else { return Ok(STATUS_NOT_FOUND) };
            let start = (start as u32 as usize).min(buffer.len());
            let end = start.saturating_add(max as u32 as usize).min(buffer.len());
            give(&mut c, &buffer[start..end], ret_data, ret_size)?;
            Ok(STATUS_OK)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_get_header_map_pairs",
        |mut c: C<'_>, map_type: i32, ret_data: i32, ret_size: i32| -> Result<i32> {
            let Some(map) = map_mut(&mut c, map_type) else { return Ok(STATUS_BAD_ARGUMENT) };
            let bytes = encode_map(map);
            give(&mut c, &bytes, ret_data, ret_size)?;
            Ok(STATUS_OK)
        },
    )?;
    l.func_wrap(env, "proxy_set_header_map_pairs", |mut c: C<'_>, map_type: i32, ptr: i32, len: i32| -> Result<i32> {
        let pairs = decode_map(&read(&mut c, ptr, len)?)?;
        let Some(map) = map_mut(&mut c, map_type) else { return Ok(STATUS_BAD_ARGUMENT) };
        *map = pairs;
        Ok(STATUS_OK)
    })?;
    l.func_wrap(
        env,
        "proxy_get_header_map_value",
        |mut c: C<'_>, map_type: i32, key: i32, key_len: i32, ret_data: i32, ret_size: i32| -> Result<i32> {
            let key = text(read(&mut c, key, key_len)?)?;
            let Some(map) = map_mut(&mut c, map_type) else { return Ok(STATUS_BAD_ARGUMENT) };
            let Some(value) = map.iter().find(|(n, _)| n.eq_ignore_ascii_case(&key)).map(|(_, v)| v.clone()) else {
                return Ok(STATUS_NOT_FOUND);
            };
            give(&mut c, &value, ret_data, ret_size)?;
            Ok(STATUS_OK)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_replace_header_map_value",
        |mut c: C<'_>, map_type: i32, key: i32, key_len: i32, val: i32, val_len: i32| -> Result<i32> {
            let key = text(read(&mut c, key, key_len)?)?.to_ascii_lowercase();
            let value = read(&mut c, val, val_len)?;
            let Some(map) = map_mut(&mut c, map_type) else { return Ok(STATUS_BAD_ARGUMENT) };
            // Envoy's replace: the first value takes the new one, the rest go.
            match map.iter().position(|(n, _)| n.eq_ignore_ascii_case(&key)) {
                Some(first) => {
                    map[first].1 = value;
                    let mut i = 0;
                    map.retain(|(n, _)| {
                        let keep = i == first || !n.eq_ignore_ascii_case(&key);
                        i += 1;
                        keep
                    });
                }
                None => map.push((key, value)),
            }
            Ok(STATUS_OK)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_add_header_map_value",
        |mut c: C<'_>, map_type: i32, key: i32, key_len: i32, val: i32, val_len: i32| -> Result<i32> {
            let key = text(read(&mut c, key, key_len)?)?.to_ascii_lowercase();
            let value = read(&mut c, val, val_len)?;
            let Some(map) = map_mut(&mut c, map_type) else { return Ok(STATUS_BAD_ARGUMENT) };
            map.push((key, value));
            Ok(STATUS_OK)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_remove_header_map_value",
        |mut c: C<'_>, map_type: i32, key: i32, key_len: i32| -> Result<i32> {
            let key = text(read(&mut c, key, key_len)?)?;
            let Some(map) = map_mut(&mut c, map_type) else { return Ok(STATUS_BAD_ARGUMENT) };
            map.retain(|(n, _)| !n.eq_ignore_ascii_case(&key));
            Ok(STATUS_OK)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_get_property",
        |mut c: C<'_>, path: i32, path_len: i32, ret_data: i32, ret_size: i32| -> Result<i32> {
            let path = read(&mut c, path, path_len)?;
            let value = c.data().properties.get(&path).cloned().or_else(|| c.data().process.node_property(&path));
            let Some(value) = value else { return Ok(STATUS_NOT_FOUND) };
            give(&mut c, &value, ret_data, ret_size)?;
            Ok(STATUS_OK)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_set_property",
        |mut c: C<'_>, path: i32, path_len: i32, val: i32, val_len: i32| -> Result<i32> {
            let path = read(&mut c, path, path_len)?;
            let value = read(&mut c, val, val_len)?;
            c.data_mut().properties.insert(path, value);
            Ok(STATUS_OK)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_get_shared_data",
        |mut c: C<'_>, key: i32, key_len: i32, ret_data: i32, ret_size: i32, ret_cas: i32| -> Result<i32> {
            let key = read(&mut c, key, key_len)?;
            let Some((value, cas)) = c.data().process.shared_data().get(&key) else {
                return Ok(STATUS_NOT_FOUND);
            };
            give(&mut c, &value, ret_data, ret_size)?;
            write_u32(&mut c, ret_cas, cas)?;
            Ok(STATUS_OK)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_set_shared_data",
        |mut c: C<'_>, key: i32, key_len: i32, val: i32, val_len: i32, cas: i32| -> Result<i32> {
            let key = read(&mut c, key, key_len)?;
            let value = read(&mut c, val, val_len)?;
            Ok(c.data().process.shared_data().set(&key, &value, cas as u32))
        },
    )?;
    l.func_wrap(
        env,
        "proxy_send_local_response",
        |mut c: C<'_>,
         status: i32,
         details: i32,
         details_len: i32,
         body: i32,
         body_len: i32,
         headers: i32,
         headers_len: i32,
         grpc_status: i32|
         -> Result<i32> {
            let details = String::from_utf8_lossy(&read(&mut c, details, details_len)?).into_owned();
            let body = read(&mut c, body, body_len)?;
            let headers = decode_map(&read(&mut c, headers, headers_len)?)?;
            if c.data().local_response.is_some() {
                bail!("send_local_response called twice for one request");
            }
            c.data_mut().local_response =
                Some(LocalResponse { status: status as u32, details, body, headers, grpc_status });
            Ok(STATUS_OK)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_http_call",
        |mut c: C<'_>,
         upstream: i32,
         upstream_len: i32,
         headers: i32,
         headers_len: i32,
         _body: i32,
         _body_len: i32,
         _trailers: i32,
         _trailers_len: i32,
         timeout_ms: i32,
         ret_token: i32|
         -> Result<i32> {
            let cluster = String::from_utf8_lossy(&read(&mut c, upstream, upstream_len)?).into_owned();
            let headers = decode_map(&read(&mut c, headers, headers_len)?)?;
            // Envoy refuses a call to a cluster it does not know, and one
            // without the pseudo-headers an HTTP request needs.
            let has = |name: &str| headers.iter().any(|(n, v)| n == name && !v.is_empty());
            if !has(":method") || !has(":path") || !has(":authority") {
                return Ok(STATUS_BAD_ARGUMENT);
            }
            let now = c.data().process.clock().now_millis();
            let record = CallRecord { cluster, headers, at_millis: now };
            let answer = {
                let mut clusters = c.data().process.clusters();
                if !clusters.exists(&record.cluster) {
                    return Ok(STATUS_BAD_ARGUMENT);
                }
                clusters.call(record).unwrap_or(Scripted::Silence)
            };
            let state = c.data_mut();
            let token = state.next_call_token;
            state.next_call_token += 1;
            state.pending_calls.push(PendingCall { token, sent_ms: now, timeout_ms: timeout_ms as u32 as u64, answer });
            write_u32(&mut c, ret_token, token)?;
            Ok(STATUS_OK)
        },
    )?;
    l.func_wrap(env, "proxy_continue_stream", |_: C<'_>, _stream: i32| STATUS_OK)?;
    l.func_wrap(env, "proxy_close_stream", |_: C<'_>, _stream: i32| STATUS_OK)?;
    l.func_wrap(env, "proxy_set_effective_context", |_: C<'_>, _ctx: i32| STATUS_OK)?;
    l.func_wrap(env, "proxy_done", |_: C<'_>| STATUS_OK)?;

    l.func_wrap(
        env,
        "proxy_define_metric",
        |mut c: C<'_>, kind: i32, name: i32, name_len: i32, ret_id: i32| -> Result<i32> {
            let Some(kind) = MetricKind::from_abi(kind) else { return Ok(STATUS_BAD_ARGUMENT) };
            let name = text(read(&mut c, name, name_len)?)?;
            let id = c.data().process.metrics().define(kind, &name);
            write_u32(&mut c, ret_id, id)?;
            Ok(STATUS_OK)
        },
    )?;
    l.func_wrap(env, "proxy_get_metric", |mut c: C<'_>, id: i32, ret: i32| -> Result<i32> {
        let value = {
            let metrics = c.data().process.metrics();
            match metrics.all.get(id as u32 as usize) {
                Some(m) if m.kind != MetricKind::Histogram => m.value,
                Some(_) => return Ok(STATUS_BAD_ARGUMENT),
                None => return Ok(STATUS_NOT_FOUND),
            }
        };
        write(&mut c, ret, &value.to_le_bytes())?;
        Ok(STATUS_OK)
    })?;
    l.func_wrap(env, "proxy_increment_metric", |c: C<'_>, id: i32, offset: i64| -> i32 {
        let mut metrics = c.data().process.metrics();
        match metrics.all.get_mut(id as u32 as usize) {
            // Envoy refuses to decrement a counter.
            Some(m) if m.kind == MetricKind::Counter && offset < 0 => STATUS_BAD_ARGUMENT,
            Some(m) if m.kind != MetricKind::Histogram => {
                m.value = m.value.saturating_add_signed(offset);
                STATUS_OK
            }
            Some(_) => STATUS_BAD_ARGUMENT,
            None => STATUS_NOT_FOUND,
        }
    })?;
    l.func_wrap(env, "proxy_record_metric", |c: C<'_>, id: i32, value: i64| -> i32 {
        let mut metrics = c.data().process.metrics();
        match metrics.all.get_mut(id as u32 as usize) {
            Some(m) if m.kind == MetricKind::Histogram => {
                m.samples.push(value as u64);
                STATUS_OK
            }
            Some(m) => {
                m.value = value as u64;
                STATUS_OK
            }
            None => STATUS_NOT_FOUND,
        }
    })?;

    // Imports the SDK declares but license-gate never calls: answer
    // Unimplemented and record the call so the driver fails the test.
    let unimplemented: [(&'static str, usize); 12] = [
        ("proxy_set_buffer_bytes", 5),
        ("proxy_register_shared_queue", 3),
        ("proxy_resolve_shared_queue", 5),
        ("proxy_dequeue_shared_queue", 3),
        ("proxy_enqueue_shared_queue", 3),
        ("proxy_grpc_call", 12),
        ("proxy_grpc_stream", 9),
        ("proxy_grpc_send", 4),
        ("proxy_grpc_cancel", 1),
        ("proxy_grpc_close", 1),
        ("proxy_get_status", 3),
        ("proxy_call_foreign_function", 6),
    ];
    for (name, params) in unimplemented {
        let ty = FuncType::new(engine, vec![ValType::I32; params], [ValType::I32]);
        l.func_new(env, name, ty, move |mut c: C<'_>, _args: &[Val], results: &mut [Val]| {
            c.data_mut().unimplemented.push(name);
            results[0] = Val::I32(STATUS_UNIMPLEMENTED);
            Ok(())
        })?;
    }

    define_wasi(&mut l)?;
    Ok(l)
}

/// The WASI preview 1 calls Rust's standard library imports.
fn define_wasi(l: &mut Linker<HostState>) -> Result<()> {
    let wasi = "wasi_snapshot_preview1";
    const ERRNO_SUCCESS: i32 = 0;
    const ERRNO_BADF: i32 = 8;
    const ERRNO_INVAL: i32 = 28;

    l.func_wrap(wasi, "clock_time_get", |mut c: C<'_>, clock_id: i32, _precision: i64, ret: i32| -> Result<i32> {
        // realtime, monotonic, process and thread CPU time: one test clock.
        if !(0..=3).contains(&clock_id) {
            return Ok(ERRNO_INVAL);
        }
        let now = c.data().process.clock().now_nanos();
        write(&mut c, ret, &now.to_le_bytes())?;
        Ok(ERRNO_SUCCESS)
    })?;
    l.func_wrap(wasi, "random_get", |mut c: C<'_>, buf: i32, len: i32| -> Result<i32> {
        // Deterministic (xorshift): tests must not depend on luck.
        let mut bytes = vec![0u8; len as u32 as usize];
        for b in bytes.iter_mut() {
            let s = &mut c.data_mut().rng;
            *s ^= *s << 13;
            *s ^= *s >> 7;
            *s ^= *s << 17;
            *b = (*s >> 24) as u8;
        }
        write(&mut c, buf, &bytes)?;
        Ok(ERRNO_SUCCESS)
    })?;
    l.func_wrap(wasi, "environ_sizes_get", |mut c: C<'_>, count: i32, size: i32| -> Result<i32> {
        write_u32(&mut c, count, 0)?;
        write_u32(&mut c, size, 0)?;
        Ok(ERRNO_SUCCESS)
    })?;
    l.func_wrap(wasi, "environ_get", |_: C<'_>, _environ: i32, _buf: i32| ERRNO_SUCCESS)?;
    l.func_wrap(wasi, "args_sizes_get", |mut c: C<'_>, count: i32, size: i32| -> Result<i32> {
        write_u32(&mut c, count, 0)?;
        write_u32(&mut c, size, 0)?;
        Ok(ERRNO_SUCCESS)
    })?;
    l.func_wrap(wasi, "args_get", |_: C<'_>, _argv: i32, _buf: i32| ERRNO_SUCCESS)?;
    l.func_wrap(
        wasi,
        "fd_write",
        |mut c: C<'_>, fd: i32, iovs: i32, iovs_len: i32, ret_written: i32| -> Result<i32> {
            if fd != 1 && fd != 2 {
                return Ok(ERRNO_BADF);
            }
            let mut written = 0u32;
            for i in 0..iovs_len {
                let iov = read(&mut c, iovs + i * 8, 8)?;
                let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                let data = read(&mut c, ptr, len)?;
                written += data.len() as u32;
                c.data_mut().stdio.extend_from_slice(&data);
            }
            write_u32(&mut c, ret_written, written)?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    l.func_wrap(wasi, "proc_exit", |_: C<'_>, code: i32| -> Result<()> { bail!("module called proc_exit({code})") })?;
    Ok(())
}
