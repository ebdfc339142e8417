//! The proxy-wasm adapter: configuration in `on_configure`, one decision per
//! request in `on_http_request_headers`, the remote documents on `on_tick`
//! and `on_http_call_response`. All policy lives in the core modules; this
//! file only moves data between them and the host.

use rustc_hash::FxHashMap as HashMap;
use std::cell::{Cell, RefCell};
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action as HostAction, BufferType, ContextType, LogLevel, MapType, MetricType};

use crate::binding::{Identity, IdentitySource};
use crate::cache::SharedStore;
use crate::config::{Config, Policy};
use crate::decision::{Action, Decision, Verdict, decide};
use crate::keys::KeySet;
use crate::license::License;
use crate::reason::Reason;
use crate::remote::{
    Document, FetchOutcome, FetchRecord, FetchRequest, FetchResponse, Fetcher, Publications, Published, RemoteSettings,
    Validated,
};
use crate::request::{HeaderEdit, RequestHeaders, decode_header_map};
use crate::revocation::RevocationList;
use crate::runtime::{Runtime, Trace};
use crate::stats::{
    Counter, DEFAULT_BUCKET_LABEL, Gauge, REMAINING_VALIDITY, counted, rate_limited_name, remaining_validity,
};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// How often each VM looks at the fetch state in shared data.
const TICK: Duration = Duration::from_millis(500);
/// `response.code_details` of the local replies of Envoy's local and global
/// rate limit filters.
const RATE_LIMITED_DETAILS: [&[u8]; 2] = [b"local_rate_limited", b"request_rate_limited"];
/// At most one log line per document per VM this often about failed fetches.
const FAILURE_LOG_INTERVAL_MS: u64 = 10_000;

fn log(level: LogLevel, message: &str) {
    // Logging must never take the request down with it.
    let _ = hostcalls::log(level, message);
}

/// Milliseconds since the epoch on the host's clock.
fn now_millis() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn now_seconds() -> u64 {
    now_millis() / 1_000
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
    gauges: Vec<Option<u32>>,
    remaining: Option<u32>,
    /// `rate_limited` by plan label; empty unless a plan carries a quota.
    rate_limited: HashMap<String, u32>,
}

impl Metrics {
    fn define(remote: bool, policy: &Policy) -> Metrics {
        let counters =
            Counter::all().into_iter().map(|c| hostcalls::define_metric(MetricType::Counter, &c.name()).ok()).collect();
        // Gauges only where something sets them: an idle 0 would read as "no keys".
        let gauges = Gauge::ALL
            .iter()
            .map(|g| if remote { hostcalls::define_metric(MetricType::Gauge, g.name()).ok() } else { None })
            .collect();
        let remaining = hostcalls::define_metric(MetricType::Histogram, REMAINING_VALIDITY).ok();
        let mut rate_limited = HashMap::default();
        if policy.plans.iter().any(|(_, plan)| plan.quota.is_some()) {
            let quota_plans = policy.plans.iter().filter(|(_, plan)| plan.quota.is_some()).map(|(name, _)| name);
            let labels = quota_plans.chain([DEFAULT_BUCKET_LABEL]);
            for label in labels {
                if let Ok(id) = hostcalls::define_metric(MetricType::Counter, &rate_limited_name(label)) {
                    rate_limited.insert(label.to_string(), id);
                }
            }
        }
        Metrics { counters, gauges, remaining, rate_limited }
    }

    /// The `rate_limited` counter for a request forwarded with `license`
    /// (its plan's counter when the limiter has a bucket for its plan and
    /// tenant, else the default bucket's); `None` when no plan has a quota
    /// (nothing to watch on the way back).
    fn rate_limited_id(&self, license: Option<&License>) -> Option<u32> {
        if self.rate_limited.is_empty() {
            return None;
        }
        let label = match license {
            Some(License { plan: Some(plan), tenant: Some(_), .. })
                if self.rate_limited.contains_key(plan.as_str()) =>
            {
                plan.as_str()
            }
            _ => DEFAULT_BUCKET_LABEL,
        };
        self.rate_limited.get(label).copied()
    }

    fn count(&self, counter: Counter) {
        if let Some(Some(id)) = self.counters.get(counter.index()) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }

    fn set(&self, gauge: Gauge, value: u64) {
        let index = Gauge::ALL.iter().position(|g| *g == gauge).unwrap_or(0);
        if let Some(Some(id)) = self.gauges.get(index) {
            let _ = hostcalls::record_metric(*id, value);
        }
    }

    fn record_remaining(&self, seconds: u64) {
        if let Some(id) = self.remaining {
            let _ = hostcalls::record_metric(id, seconds);
        }
    }
}

/// What every request of this VM shares: the policy, the runtime state the
/// root context keeps current, and the stats.
struct Shared {
    policy: Policy,
    runtime: RefCell<Runtime>,
    metrics: Metrics,
    /// A request met an unknown `kid` with remote keys configured.
    early_refresh: Cell<bool>,
    /// Deployment binding is on and the identity is still to be read.
    identity_pending: Cell<bool>,
    /// The remote documents' fetchers (keys first: a revocation list is
    /// verified with them), driven by the root context.
    remotes: RefCell<Vec<Remote>>,
    /// Bumped when any worker publishes a document; `None` without remotes.
    publications: Option<Publications>,
}

impl Shared {
    /// Reads the gateway's identity once, on the VM's first request: Envoy
    /// answers node properties to stream contexts (not during `on_configure`).
    fn read_identity_once(&self) {
        if !self.identity_pending.replace(false) {
            return;
        }
        let Some(binding) = &self.policy.binding else { return };
        let identity = read_identity(&binding.identity);
        if let Err(why) = &identity {
            log(
                LogLevel::Error,
                &format!(
                    "license-gate: binding: the gateway's identity cannot be read ({why}): every bound license is refused"
                ),
            );
        }
        self.runtime.borrow_mut().identity = identity;
    }

    /// Installs what another worker published since this VM last looked:
    /// one shared-data read per request, so that no worker serves from an
    /// older key set or revocation list than the one in force until its
    /// next tick.
    fn pick_up_publications(&self) {
        let Some(publications) = &self.publications else { return };
        if !publications.changed(&HostSharedData) {
            return;
        }
        let now_ms = now_millis();
        let mut remotes = self.remotes.borrow_mut();
        for remote in remotes.iter_mut() {
            if let Some(published) = remote.fetcher.sync(&HostSharedData) {
                install(self, remote, published, now_ms);
            }
            keep_fresh(self, remote);
        }
    }
}

/// One fetched document's fetcher, and its last failure log line.
struct Remote {
    document: Document,
    fetcher: Fetcher,
    last_failure_log_ms: u64,
}

#[derive(Default)]
struct Root {
    gate: Option<Rc<Shared>>,
    /// `dispatch_http_call` tokens in flight, by the remote they fetch for.
    calls: HashMap<u32, usize>,
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, num_headers: usize, body_size: usize, _trailers: usize) {
        let Some(index) = self.calls.remove(&token) else { return };
        let Some(shared) = self.gate.clone() else { return };
        let mut remotes = shared.remotes.borrow_mut();
        let Some(remote) = remotes.get_mut(index) else { return };
        let max_bytes = remote.fetcher.settings.max_bytes;
        let headers = if num_headers == 0 {
            Vec::new()
        } else {
            header_map(MapType::HttpCallResponseHeaders).and_then(|w| decode_header_map(&w)).unwrap_or_default()
        };
        let header = |name: &str| {
            headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).and_then(|(_, v)| std::str::from_utf8(v).ok())
        };
        let status = header(":status").and_then(|s| s.parse::<u32>().ok());
        let etag = header("etag").map(str::to_string);
        let body = if body_size > max_bytes {
            Err(body_size)
        } else {
            Ok(hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size).ok().flatten().unwrap_or_default())
        };
        let now_ms = now_millis();
        let response = FetchResponse { status, etag, body };
        let document = remote.document;
        let (outcome, published) = {
            let runtime = shared.runtime.borrow();
            let validate = |body: &[u8], current: &FetchRecord| {
                validate(document, &shared.policy, &runtime, body, current, now_ms)
            };
            remote.fetcher.on_response(&HostSharedData, now_ms, response, validate)
        };
        record_fetch(&shared, remote, &outcome, now_ms);
        if let Some(published) = published {
            install(&shared, remote, published, now_ms);
            if let Some(publications) = &shared.publications {
                publications.bump(&HostSharedData);
            }
        }
        keep_fresh(&shared, remote);
        set_gauges(&shared, now_ms, &remotes);
    }
}

/// Tells the runtime until when the remote document in force may be trusted.
fn keep_fresh(shared: &Shared, remote: &Remote) {
    let fresh_until = remote.fetcher.fresh_until();
    let mut runtime = shared.runtime.borrow_mut();
    match remote.document {
        Document::Jwks => runtime.keys.set_fresh_until(fresh_until),
        Document::Revocations => runtime.revocations.set_fresh_until(fresh_until),
    }
}

/// Checks a fetched document as this kind of document, against what is in
/// force (a revocation list must not be older than the one in force).
fn validate(
    document: Document,
    policy: &Policy,
    runtime: &Runtime,
    body: &[u8],
    current: &FetchRecord,
    now_ms: u64,
) -> Result<Validated, String> {
    match document {
        Document::Jwks => KeySet::from_jwks_document(body, runtime.keys.allowed())
            .map(|set| Validated { fingerprint: set.fingerprint, issued_at: 0 }),
        Document::Revocations => {
            let now = now_ms / 1_000;
            let list =
                RevocationList::parse(body, &runtime.keys, policy.verifier.issuers(), now, policy.verifier.skew())?;
            if current.fetched_at_ms > 0 && list.issued_at < current.issued_at {
                return Err(format!(
                    "issued at {}, older than the list in force ({})",
                    list.issued_at, current.issued_at
                ));
            }
            Ok(list.validated())
        }
    }
}

/// Puts a published document in force in this VM. A document this VM
/// cannot read yet (a revocation list signed by a key it has not fetched)
/// is read again on the next tick.
fn install(shared: &Shared, remote: &mut Remote, published: Published, now_ms: u64) {
    let mut runtime = shared.runtime.borrow_mut();
    let installed = match remote.document {
        Document::Jwks => KeySet::from_jwks_document(&published.document, runtime.keys.allowed())
            .map(|set| runtime.keys.set_remote(Rc::new(set), published.generation)),
        Document::Revocations => {
            let policy = &shared.policy;
            RevocationList::parse(
                &published.document,
                &runtime.keys,
                policy.verifier.issuers(),
                now_ms / 1_000,
                policy.verifier.skew(),
            )
            .map(|list| runtime.revocations.set_remote(Rc::new(list), published.generation))
        }
    };
    if let Err(why) = installed {
        remote.fetcher.forget_generation();
        log(
            LogLevel::Warn,
            &format!("license-gate: {}: cannot install the published document yet: {why}", name(remote)),
        );
    }
}

fn name(remote: &Remote) -> &'static str {
    match remote.document {
        Document::Jwks => "keys.remote",
        Document::Revocations => "revocation.remote",
    }
}

/// Counts a fetch and logs a failure (at most once per interval).
fn record_fetch(shared: &Shared, remote: &mut Remote, outcome: &FetchOutcome, now_ms: u64) {
    match outcome {
        FetchOutcome::Success { .. } => shared.metrics.count(Counter::FetchSuccess(remote.document)),
        FetchOutcome::Failed { failure, detail } => {
            shared.metrics.count(Counter::FetchFailed(remote.document, *failure));
            if now_ms.saturating_sub(remote.last_failure_log_ms) >= FAILURE_LOG_INTERVAL_MS {
                remote.last_failure_log_ms = now_ms;
                let settings = &remote.fetcher.settings;
                log(
                    LogLevel::Warn,
                    &format!(
                        "license-gate: {}: fetching {} from cluster \"{}\" failed ({}): {detail}; the last good document stays in force",
                        name(remote),
                        settings.path,
                        settings.cluster,
                        failure.code()
                    ),
                );
            }
        }
    }
}

fn set_gauges(shared: &Shared, now_ms: u64, remotes: &[Remote]) {
    let runtime = shared.runtime.borrow();
    let now = now_ms / 1_000;
    for remote in remotes {
        let age = remote.fetcher.fetched_at_ms().map(|at| now_ms.saturating_sub(at) / 1_000);
        match remote.document {
            Document::Jwks => {
                shared.metrics.set(Gauge::JwksKeys, runtime.keys.remote(now).map_or(0, |s| s.len() as u64));
                if let Some(age) = age {
                    shared.metrics.set(Gauge::JwksAge, age);
                }
            }
            Document::Revocations => {
                shared.metrics.set(Gauge::RevocationIds, runtime.revocations.remote_len() as u64);
                if let Some(age) = age {
                    shared.metrics.set(Gauge::RevocationAge, age);
                }
            }
        }
    }
}

/// The gateway's identity for deployment binding, read once.
fn read_identity(source: &IdentitySource) -> Identity {
    match source {
        IdentitySource::Value(v) => Ok(v.clone()),
        IdentitySource::Property(path) => {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            match hostcalls::get_property(path) {
                Ok(Some(bytes)) if !bytes.is_empty() => {
                    String::from_utf8(bytes).map_err(|_| format!("{} is not text", source.describe()))
                }
                Ok(_) => Err(format!("{} is not set", source.describe())),
                Err(status) => Err(format!("{} cannot be read (status {status:?})", source.describe())),
            }
        }
    }
}

/// A random id for this VM: context ids repeat across workers.
fn vm_id() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(now_millis());
    hasher.finish().max(1)
}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes =
            hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).ok().flatten().unwrap_or_default();
        if bytes.is_empty() {
            log(LogLevel::Error, "license-gate: config: config: the plugin configuration is empty");
            return false;
        }
        let config = match Config::from_json(&bytes) {
            Ok(config) => config,
            Err(e) => {
                log(LogLevel::Error, &e.to_string());
                return false;
            }
        };
        let Config { policy, runtime, remote_keys, remote_revocations, fingerprint } = config;
        let id = vm_id();
        let prefix =
            |document: Document| format!("lg2:{}:{fingerprint}:{}", crate::cache::build_id(), document.stat_name());
        let remote = |document: Document, settings: Option<RemoteSettings>| {
            settings.map(|s| Remote {
                document,
                fetcher: Fetcher::new(s, prefix(document), id),
                last_failure_log_ms: 0,
            })
        };
        // Keys first: a revocation list is verified with them.
        let remotes: Vec<Remote> =
            [remote(Document::Jwks, remote_keys), remote(Document::Revocations, remote_revocations)]
                .into_iter()
                .flatten()
                .collect();
        self.calls.clear();
        let any_remote = !remotes.is_empty();
        let publications =
            any_remote.then(|| Publications::new(&format!("lg2:{}:{fingerprint}", crate::cache::build_id())));
        let metrics = Metrics::define(any_remote, &policy);
        self.gate = Some(Rc::new(Shared {
            identity_pending: Cell::new(policy.binding.is_some()),
            policy,
            runtime: RefCell::new(runtime),
            metrics,
            early_refresh: Cell::new(false),
            remotes: RefCell::new(remotes),
            publications,
        }));
        if any_remote {
            let _ = hostcalls::set_tick_period(TICK);
        }
        true
    }

    fn on_tick(&mut self) {
        let Some(shared) = self.gate.clone() else { return };
        let now_ms = now_millis();
        let mut remotes = shared.remotes.borrow_mut();
        if shared.early_refresh.take()
            && let Some(jwks) = remotes.iter().find(|r| r.document == Document::Jwks)
        {
            jwks.fetcher.request_early_refresh();
        }
        for (index, remote) in remotes.iter_mut().enumerate() {
            let outcome = remote.fetcher.tick(&HostSharedData, now_ms);
            if let Some(published) = outcome.published {
                install(&shared, remote, published, now_ms);
            }
            keep_fresh(&shared, remote);
            if let Some(request) = outcome.fetch {
                match dispatch(&request) {
                    Some(token) => {
                        self.calls.insert(token, index);
                    }
                    None => {
                        let outcome = remote.fetcher.dispatch_failed(&HostSharedData, now_ms);
                        record_fetch(&shared, remote, &outcome, now_ms);
                    }
                }
            }
        }
        set_gauges(&shared, now_ms, &remotes);
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let shared = self.gate.clone()?;
        Some(Box::new(Gate { shared, rate_limited: None }))
    }
}

fn dispatch(request: &FetchRequest) -> Option<u32> {
    let headers: Vec<(&str, &str)> = request.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let timeout = Duration::from_millis(request.timeout_ms);
    hostcalls::dispatch_http_call(&request.cluster, headers, None, vec![], timeout).ok()
}

struct Gate {
    shared: Rc<Shared>,
    /// For a forwarded request when plans carry quotas: the counter to bump
    /// if a rate limiter after this filter refuses it.
    rate_limited: Option<u32>,
}

impl Context for Gate {}

impl HttpContext for Gate {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> HostAction {
        // Headers that cannot be fetched or decoded are no headers: every
        // rule that needs a part of them then fails closed, and whatever the
        // client sent under the filter's own names is removed unseen.
        let req = match header_map(MapType::HttpRequestHeaders).and_then(|wire| decode_header_map(&wire)) {
            Some(headers) => RequestHeaders::new(headers),
            None => RequestHeaders::unreadable(),
        };
        let shared = &self.shared;
        shared.read_identity_once();
        shared.pick_up_publications();
        let runtime = shared.runtime.borrow();
        let now = now_seconds();
        let mut trace = Trace::default();
        let mut verify = |token: &str, now: u64| {
            let (verdict, t) = runtime.verdict(&shared.policy, &HostSharedData, token, now);
            trace = t;
            verdict
        };
        let decision = decide(&shared.policy, &runtime.identity, &req, now, &mut verify);
        if matches!(decision.verdict, Verdict::Denied { reason: Reason::UnknownKid, .. })
            && runtime.keys.remote_configured()
        {
            shared.early_refresh.set(true);
        }
        self.record(&req, &decision, &trace, now);
        let action = decision.action(&req, now);
        if matches!(action, Action::Continue(_)) {
            let license = match &decision.verdict {
                Verdict::Allowed { license, .. } | Verdict::Denied { license: Some(license), .. } => Some(license),
                _ => None,
            };
            self.rate_limited = shared.metrics.rate_limited_id(license.map(|l| &**l));
        }
        apply(action)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> HostAction {
        // The 429s of Envoy's own limiters, told apart from an upstream's
        // 429 by the details of their local reply.
        if let Some(id) = self.rate_limited
            && let Ok(Some(details)) = hostcalls::get_property(vec!["response", "code_details"])
            && RATE_LIMITED_DETAILS.contains(&details.as_slice())
        {
            let _ = hostcalls::increment_metric(id, 1);
        }
        HostAction::Continue
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

/// A header map in wire format, straight from the host (see
/// [`decode_header_map`] for why not the SDK's `get_map_bytes`).
#[allow(unsafe_code)]
fn header_map(map_type: MapType) -> Option<Vec<u8>> {
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
        match proxy_get_header_map_pairs(map_type, &mut data, &mut size) {
            Status::Ok if data.is_null() => Some(Vec::new()),
            Status::Ok => Some(Vec::from_raw_parts(data, size, size)),
            _ => None,
        }
    }
}
