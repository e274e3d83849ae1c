//! Per-module stats for keepalives and inactivity: counters written by module
//! threads (or a stats poller), read by the supervisor, and the arithmetic that turns
//! two CPU time samples into a CPU percentage.
//!
//! Not for: measuring anything (launchers sample their own modules) or building
//! keepalive messages (`protocol` does that).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Live counters of one module. All totals since start, except `mem_bytes`.
#[derive(Debug, Default)]
pub struct ModuleStats {
    /// CPU time the module used, in nanoseconds.
    pub cpu_time_ns: AtomicU64,
    /// Memory in use now, in bytes (linear memory for WebAssembly).
    pub mem_bytes: AtomicU64,
    pub net_rx_bytes: AtomicU64,
    pub net_tx_bytes: AtomicU64,
    pub net_rx_pkts: AtomicU64,
    pub net_tx_pkts: AtomicU64,
    /// Block I/O read and written (containers).
    pub blk_read_bytes: AtomicU64,
    pub blk_write_bytes: AtomicU64,
    /// WebAssembly fuel burnt so far (0 for other launchers).
    pub fuel_consumed: AtomicU64,
    /// Set when a poller (the container engine's `stats`) fills these counters now and
    /// then, instead of the module's own thread keeping them live.
    pub polled: AtomicBool,
    /// How many polls answered for this module so far: counters that did not move
    /// between two looks with the same count are no news, not an idle module.
    pub polls: AtomicU64,
}

impl ModuleStats {
    /// CPU time used so far.
    pub fn cpu_time(&self) -> Duration {
        Duration::from_nanos(self.cpu_time_ns.load(Ordering::Relaxed))
    }

    /// Memory in use now, in bytes.
    pub fn mem_bytes(&self) -> u64 {
        self.mem_bytes.load(Ordering::Relaxed)
    }
}

/// CPU percentage of one module between keepalives: remembers the last CPU time
/// sample and when it was taken.
#[derive(Debug, Clone)]
pub struct CpuMeter {
    last_cpu_ns: u64,
    last_at: Instant,
}

impl CpuMeter {
    /// Starts measuring from a first sample (usually 0 at module start).
    pub fn new(cpu_time_ns: u64, now: Instant) -> Self {
        CpuMeter {
            last_cpu_ns: cpu_time_ns,
            last_at: now,
        }
    }

    /// CPU percent used since the previous sample (100 = one core busy all the time),
    /// and remembers this sample for the next call.
    pub fn percent(&mut self, cpu_time_ns: u64, now: Instant) -> f64 {
        let cpu = cpu_time_ns.saturating_sub(self.last_cpu_ns);
        let wall = now.saturating_duration_since(self.last_at);
        self.last_cpu_ns = self.last_cpu_ns.max(cpu_time_ns);
        self.last_at = self.last_at.max(now);
        cpu_percent(cpu, wall)
    }
}

/// CPU time the calling thread has used, in nanoseconds (0 if the clock is missing).
pub fn thread_cpu_time_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes into the timespec it is given, which lives
    // on this stack frame for the whole call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if rc != 0 {
        return 0;
    }
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}

/// CPU percent of `cpu_ns` nanoseconds of CPU time used over `wall` of wall time; 0
/// when no wall time passed.
pub fn cpu_percent(cpu_ns: u64, wall: Duration) -> f64 {
    let wall_ns = wall.as_nanos();
    if wall_ns == 0 {
        return 0.0;
    }
    cpu_ns as f64 * 100.0 / wall_ns as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_a_second_of_cpu_in_one_second_is_fifty_percent() {
        let start = Instant::now();
        let mut meter = CpuMeter::new(0, start);
        let percent = meter.percent(500_000_000, start + Duration::from_secs(1));
        assert!((percent - 50.0).abs() < 1e-9, "{percent}");
    }

    #[test]
    fn each_reading_covers_only_the_time_since_the_previous_one() {
        let start = Instant::now();
        let mut meter = CpuMeter::new(1_000_000_000, start);
        let first = meter.percent(2_000_000_000, start + Duration::from_secs(1));
        let second = meter.percent(2_250_000_000, start + Duration::from_secs(2));
        assert!((first - 100.0).abs() < 1e-9, "{first}");
        assert!((second - 25.0).abs() < 1e-9, "{second}");
    }

    #[test]
    fn no_wall_time_reads_as_zero_percent() {
        let start = Instant::now();
        let mut meter = CpuMeter::new(0, start);
        assert_eq!(meter.percent(1_000, start), 0.0);
    }

    #[test]
    fn a_cpu_sample_going_backwards_reads_as_zero_percent() {
        let start = Instant::now();
        let mut meter = CpuMeter::new(5_000, start);
        assert_eq!(meter.percent(1_000, start + Duration::from_secs(1)), 0.0);
    }

    #[test]
    fn several_busy_cores_read_above_one_hundred_percent() {
        assert!((cpu_percent(3_000_000_000, Duration::from_secs(1)) - 300.0).abs() < 1e-9);
    }

    #[test]
    fn thread_cpu_time_grows_while_the_thread_computes() {
        let before = thread_cpu_time_ns();
        let started = Instant::now();
        let mut x = 0u64;
        while thread_cpu_time_ns() < before + 5_000_000 && started.elapsed().as_secs() < 5 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(thread_cpu_time_ns() >= before + 5_000_000);
    }

    #[test]
    fn stats_read_back_what_was_stored() {
        let stats = ModuleStats::default();
        stats.cpu_time_ns.store(1_500_000, Ordering::Relaxed);
        stats.mem_bytes.store(65_536, Ordering::Relaxed);
        assert_eq!(stats.cpu_time(), Duration::from_micros(1_500));
        assert_eq!(stats.mem_bytes(), 65_536);
    }
}
