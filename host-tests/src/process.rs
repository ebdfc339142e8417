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
    /// A counter's or gauge's value, by full name.
    pub fn metric(&self, name: &str) -> Option<u64> {
        self.metrics().get(name).map(|m| m.value)
    }
    /// A histogram's recorded values, by full name.
    pub fn samples(&self, name: &str) -> Vec<u64> {
        self.metrics().get(name).map(|m| m.samples.clone()).unwrap_or_default()
    }
}
