//! What Envoy shares between the VMs of one process (its worker threads):
//! the clock, shared data (with Envoy's CAS semantics) and the stats store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub const STATUS_OK: i32 = 0;
pub const STATUS_NOT_FOUND: i32 = 1;
pub const STATUS_BAD_ARGUMENT: i32 = 2;
pub const STATUS_CAS_MISMATCH: i32 = 8;
pub const STATUS_UNIMPLEMENTED: i32 = 12;

/// One test-controlled clock behind both the proxy-wasm and the WASI clocks.
#[derive(Debug, Default)]
pub struct Clock {
    nanos: AtomicU64,
}

impl Clock {
    pub fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }
    pub fn set_seconds(&self, secs: u64) {
        self.nanos.store(secs * 1_000_000_000, Ordering::SeqCst);
    }
    pub fn advance_seconds(&self, secs: u64) {
        self.nanos.fetch_add(secs * 1_000_000_000, Ordering::SeqCst);
    }
    pub fn advance_millis(&self, millis: u64) {
        self.nanos.fetch_add(millis * 1_000_000, Ordering::SeqCst);
    }
    pub fn now_millis(&self) -> u64 {
        self.now_nanos() / 1_000_000
    }
}

/// What a scripted upstream answers one `proxy_http_call` with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scripted {
    /// An answer, `delay_ms` after the call (Envoy delivers a timeout
    /// instead when the delay reaches the call's timeout).
    Answer { status: u32, headers: Vec<(String, String)>, body: Vec<u8>, delay_ms: u64 },
    /// No answer at all: the call times out.
    Silence,
}

impl Scripted {
    pub fn ok(body: impl Into<Vec<u8>>) -> Scripted {
        Scripted::Answer { status: 200, headers: Vec::new(), body: body.into(), delay_ms: 0 }
    }
    pub fn status(status: u32) -> Scripted {
        Scripted::Answer { status, headers: Vec::new(), body: Vec::new(), delay_ms: 0 }
    }
}

/// A request a VM sent to a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    pub cluster: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub at_millis: u64,
}

type Script = Box<dyn Fn(&CallRecord) -> Scripted + Send>;

/// The clusters `proxy_http_call` can reach (Envoy refuses any other), each
/// answered by the test's script, and every request they got.
#[derive(Default)]
pub struct Clusters {
    scripts: HashMap<String, Script>,
    pub calls: Vec<CallRecord>,
}

impl std::fmt::Debug for Clusters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clusters")
            .field("names", &self.scripts.keys().collect::<Vec<_>>())
            .field("calls", &self.calls)
            .finish()
    }
}

impl Clusters {
    /// Defines (or redefines) a cluster and how it answers.
    pub fn script(&mut self, cluster: &str, script: impl Fn(&CallRecord) -> Scripted + Send + 'static) {
        self.scripts.insert(cluster.to_string(), Box::new(script));
    }
    pub fn exists(&self, cluster: &str) -> bool {
        self.scripts.contains_key(cluster)
    }
    /// Records the call and asks the script for its answer.
    pub fn call(&mut self, record: CallRecord) -> Option<Scripted> {
        let answer = self.scripts.get(&record.cluster).map(|script| script(&record));
        self.calls.push(record);
        answer
    }
    /// How many requests a cluster got.
    pub fn count(&self, cluster: &str) -> usize {
        self.calls.iter().filter(|c| c.cluster == cluster).count()
    }
}

/// Envoy's shared data: a write with cas 0 is unconditional; every write
/// gets a fresh non-zero cas; a write with a stale cas is refused.
#[derive(Debug, Default)]
pub struct SharedData {
    entries: HashMap<Vec<u8>, (Vec<u8>, u32)>,
    last_cas: u32,
}

impl SharedData {
    pub fn get(&self, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        self.entries.get(key).cloned()
    }

    /// Returns a proxy-wasm status.
    pub fn set(&mut self, key: &[u8], value: &[u8], cas: u32) -> i32 {
        if let Some((_, current)) = self.entries.get(key)
            && cas != 0
            && cas != *current
        {
            return STATUS_CAS_MISMATCH;
        }
        self.last_cas = self.last_cas.wrapping_add(1).max(1);
        self.entries.insert(key.to_vec(), (value.to_vec(), self.last_cas));
        STATUS_OK
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn keys(&self) -> Vec<Vec<u8>> {
        self.entries.keys().cloned().collect()
    }

    pub fn total_bytes(&self) -> usize {
        self.entries.iter().map(|(k, (v, _))| k.len() + v.len()).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    pub fn from_abi(v: i32) -> Option<MetricKind> {
        match v {
            0 => Some(MetricKind::Counter),
            1 => Some(MetricKind::Gauge),
            2 => Some(MetricKind::Histogram),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Metric {
    pub name: String,
    pub kind: MetricKind,
    pub value: u64,
    /// Every value recorded into a histogram.
    pub samples: Vec<u64>,
}

/// The stats store: one stat per name, whichever VM defines it.
#[derive(Debug, Default)]
pub struct Metrics {
    pub all: Vec<Metric>,
}

impl Metrics {
    /// Returns the id of the stat with this name, defining it if new.
    pub fn define(&mut self, kind: MetricKind, name: &str) -> u32 {
        if let Some(i) = self.all.iter().position(|m| m.name == name && m.kind == kind) {
            return i as u32;
        }
        self.all.push(Metric { name: name.to_string(), kind, value: 0, samples: Vec::new() });
        (self.all.len() - 1) as u32
    }

    pub fn get(&self, name: &str) -> Option<&Metric> {
        self.all.iter().find(|m| m.name == name)
    }
}

#[derive(Debug, Default)]
pub struct ProcessState {
    pub clock: Clock,
    pub shared_data: Mutex<SharedData>,
    pub metrics: Mutex<Metrics>,
    pub clusters: Mutex<Clusters>,
    /// Properties of the process every VM reads (`node.id`, `node.metadata.*`),
    /// by their proxy-wasm path (segments joined by NUL).
    pub node: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    /// Seeds each VM's WASI random numbers differently, as a real host would.
    pub vm_seeds: AtomicU64,
}

/// An Envoy process: what its VMs share.
#[derive(Debug, Clone, Default)]
pub struct Process {
    pub state: Arc<ProcessState>,
}

impl Process {
    pub fn new() -> Process {
        Process::default()
    }
    pub fn clock(&self) -> &Clock {
        &self.state.clock
    }
    pub fn shared_data(&self) -> MutexGuard<'_, SharedData> {
        self.state.shared_data.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn metrics(&self) -> MutexGuard<'_, Metrics> {
        self.state.metrics.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn clusters(&self) -> MutexGuard<'_, Clusters> {
        self.state.clusters.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Sets a node property, such as `&["node", "id"]` (Envoy's `--service-node`).
    pub fn set_node_property(&self, path: &[&str], value: &[u8]) {
        let key = path.join("\0").into_bytes();
        self.state.node.lock().unwrap_or_else(|p| p.into_inner()).insert(key, value.to_vec());
    }
    pub fn node_property(&self, path: &[u8]) -> Option<Vec<u8>> {
        self.state.node.lock().unwrap_or_else(|p| p.into_inner()).get(path).cloned()
    }
    /// A counter's or gauge's value, by full name.
    pub fn metric(&self, name: &str) -> Option<u64> {
        self.metrics().get(name).map(|m| m.value)
    }
    /// A histogram's recorded values, by full name.
    pub fn samples(&self, name: &str) -> Vec<u64> {
        self.metrics().get(name).map(|m| m.samples.clone()).unwrap_or_default()
    }
}
