//! The proxy-wasm adapter: configuration in `on_configure`, one decision per
//! request in `on_http_request_headers`. All policy lives in the core modules;
//! this file only moves data between them and the host.

use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action as HostAction, BufferType, ContextType, LogLevel, MapType, MetricType};

use crate::cache::SharedStore;
use crate::config::Config;
use crate::decision::{Action, Decision, Verdict, decide};
use crate::request::{HeaderEdit, RequestHeaders, decode_header_map};
use crate::stats::{Counter, REMAINING_VALIDITY, Trace, counted, remaining_validity};
use crate::verify::Verifier;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { gate: None }) });
}}

fn log(level: LogLevel, message: &str) {
    // Logging must never take the request down with it.
    let _ = hostcalls::log(level, message);
}

/// Seconds since the epoch on the host's clock.
fn now_seconds() -> u64 {
    hostcalls::get_current_time().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs())
}

/// Envoy's shared data: one store for every worker of the process.
struct HostSharedData;

impl SharedStore for HostSharedData {
    fn get(&self, key: &str) -> Option<(Vec<u8>, Option<u32>)> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(value), cas)) => Some((value, cas)),
            _ => None,
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }
}

/// Metric ids, defined once per VM when the configuration is accepted.
struct Metrics {
    counters: Vec<Option<u32>>,
    remaining: Option<u32>,
}

impl Metrics {
    fn define() -> Metrics {
        let counters =
            Counter::all().into_iter().map(|c| hostcalls::define_metric(MetricType::Counter, &c.name()).ok()).collect();
        let remaining = hostcalls::define_metric(MetricType::Histogram, REMAINING_VALIDITY).ok();
        Metrics { counters, remaining }
    }

    fn count(&self, counter: Counter) {
        if let Some(Some(id)) = self.counters.get(counter.index()) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }

    fn record_remaining(&self, seconds: u64) {
        if let Some(id) = self.remaining {
            let _ = hostcalls::record_metric(id, seconds);
        }
    }
}

/// What every request of this VM shares: the compiled config and the stats.
struct Shared {
    config: Config,
    metrics: Metrics,
}

struct Root {
    gate: Option<Rc<Shared>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes =
            hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).ok().flatten().unwrap_or_default();
        if bytes.is_empty() {
            log(LogLevel::Error, "license-gate: config: config: the plugin configuration is empty");
            return false;
        }
        match Config::from_json(&bytes) {
            Ok(config) => {
                self.gate = Some(Rc::new(Shared { config, metrics: Metrics::define() }));
                true
            }
            Err(e) => {
                log(LogLevel::Error, &e.to_string());
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let shared = self.gate.clone()?;
        Some(Box::new(Gate { shared }))
    }
}

struct Gate {
    shared: Rc<Shared>,
}

impl Context for Gate {}

impl HttpContext for Gate {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> HostAction {
        // Headers that cannot be fetched or decoded are no headers: every
        // rule that needs a part of them then fails closed.
        let headers = request_header_map().and_then(|wire| decode_header_map(&wire)).unwrap_or_default();
        let req = RequestHeaders::new(headers);
        let config = &self.shared.config;
        let now = now_seconds();
        let mut trace = Trace::default();
        let mut verify = |token: &str, now: u64| {
            let (verdict, outcome) = config.cache.verdict(&HostSharedData, token, now, |t| {
                let result = config.verifier.verify(t, now);
                trace.signature_checked = Verifier::signature_checked(&result);
                result
            });
            trace.cache = outcome;
            verdict
        };
        let decision = decide(config, &req, now, &mut verify);
        self.record(&req, &decision, &trace, now);
        apply(decision.action(&req, now))
    }
}

impl Gate {
    /// Stats, the access-log properties and the dry-run log line.
    fn record(&self, req: &RequestHeaders, decision: &Decision, trace: &Trace, now: u64) {
        let metrics = &self.shared.metrics;
        for counter in counted(decision, trace) {
            metrics.count(counter);
        }
        if let Some(seconds) = remaining_validity(decision, now) {
            metrics.record_remaining(seconds);
        }
        if let Some(reason) = decision.would_deny {
            log(
                LogLevel::Info,
                &format!(
                    "license-gate: dry_run: would deny {} {}: {reason}",
                    req.method().unwrap_or("-"),
                    req.path().unwrap_or("(unreadable path)")
                ),
            );
        }
        // Envoy stores these as filter state `wasm.license_gate.*`, which its
        // access log prints with %FILTER_STATE(wasm.license_gate.decision:PLAIN)%.
        // Values that do not apply are not set at all: the access log prints
        // `-` for them anyway, and each property is a host call that builds a
        // filter-state object in Envoy.
        let (outcome, reason, license) = match &decision.verdict {
            Verdict::Open => ("open", "-", None),
            Verdict::Allowed { license, .. } => ("allow", "-", Some(license)),
            Verdict::Denied { reason, license, .. } => {
                let outcome = if decision.would_deny.is_some() { "dry_run" } else { "deny" };
                (outcome, reason.code(), license.as_ref())
            }
        };
        let id = license.and_then(|l| l.license_id.as_deref()).unwrap_or("-");
        let tenant = license.and_then(|l| l.tenant.as_deref()).unwrap_or("-");
        for (name, value) in [
            ("license_gate.decision", outcome),
            ("license_gate.reason", reason),
            ("license_gate.license_id", id),
            ("license_gate.tenant", tenant),
        ] {
            if value != "-" {
                let _ = hostcalls::set_property(vec![name], Some(value.as_bytes()));
            }
        }
    }
}

fn apply(action: Action) -> HostAction {
    match action {
        Action::Continue(edits) => {
            for edit in edits {
                let _ = match edit {
                    HeaderEdit::Remove(name) => hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None),
                    HeaderEdit::Set(name, value) => {
                        hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, Some(&value))
                    }
                    HeaderEdit::Add(name, value) => {
                        hostcalls::add_map_value_bytes(MapType::HttpRequestHeaders, name, &value)
                    }
                };
            }
            HostAction::Continue
        }
        Action::Respond(resp) => {
            let headers: Vec<(&str, &str)> = resp.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let _ = hostcalls::send_http_response(resp.status, headers, Some(resp.body.as_bytes()));
            HostAction::Pause
        }
    }
}

/// The request header map in wire format, straight from the host (see
/// [`decode_header_map`] for why not the SDK's `get_map_bytes`).
#[allow(unsafe_code)]
fn request_header_map() -> Option<Vec<u8>> {
    use proxy_wasm::types::Status;

    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        fn proxy_get_header_map_pairs(map_type: MapType, return_data: *mut *mut u8, return_size: *mut usize) -> Status;
    }
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host fills `data` with a buffer of `size` bytes that it
    // obtained from the SDK's `proxy_on_memory_allocate` (a boxed slice of
    // exactly `size` bytes, allocated by this module's allocator) and hands
    // over to us; we take ownership of it once, as the SDK's own
    // `get_map_bytes` does.
    unsafe {
        match proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut data, &mut size) {
            Status::Ok if data.is_null() => Some(Vec::new()),
            Status::Ok => Some(Vec::from_raw_parts(data, size, size)),
            _ => None,
        }
    }
}
