//! Per-module stats for keepalives and inactivity: counters written by module
//! threads (or a stats poller), read by the supervisor.
//!
//! CONTRACT (skeleton): filled in by the wasm work.

use std::sync::atomic::AtomicU64;

/// Live counters of one module. All totals since start.
#[derive(Debug, Default)]
pub struct ModuleStats {
    /// CPU time the module used, in nanoseconds.
    pub cpu_time_ns: AtomicU64,
    /// Memory in use now, in bytes.
    pub mem_bytes: AtomicU64,
    pub net_rx_bytes: AtomicU64,
    pub net_tx_bytes: AtomicU64,
    pub net_rx_pkts: AtomicU64,
    pub net_tx_pkts: AtomicU64,
}

/// Placeholder until the stats work lands.
pub struct CpuMeter {
    last_ns: u64,
    last_at: std::time::Instant,
}

impl CpuMeter {
    pub fn new(now: std::time::Instant) -> Self {
        CpuMeter { last_ns: 0, last_at: now }
    }
    pub fn sample(&mut self, cpu_ns: u64, now: std::time::Instant) -> f64 {
        let wall = now.duration_since(self.last_at).as_nanos() as f64;
        let used = cpu_ns.saturating_sub(self.last_ns) as f64;
        self.last_ns = cpu_ns;
        self.last_at = now;
        if wall > 0.0 { 100.0 * used / wall } else { 0.0 }
    }
}
