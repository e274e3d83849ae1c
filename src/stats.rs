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
