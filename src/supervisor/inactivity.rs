//! Idleness of one module: compares its counters between inactivity checks and says
//! when it has stayed under every threshold for the inactivity timeout. Pure
//! arithmetic over samples and instants, so that tests need no clock.
//!
//! Not for: reading counters off a running program (launchers fill `ModuleStats`) or
//! deleting the module (the supervisor acts on the verdict).

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::stats::{cpu_percent, ModuleStats};

/// When a module counts as idle, and for how long it may stay idle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InactivitySettings {
    /// Idle time after which a module is deleted; zero turns inactivity deletion off.
    pub timeout: Duration,
    /// Time between two checks of every running module.
    pub check_interval: Duration,
    /// Most average CPU, in percent of one core, of an idle module.
    pub cpu_percent: f64,
    /// Most network traffic (received plus sent), in bytes a second.
    pub net_bytes_sec: f64,
    /// Most block I/O (read plus written), in bytes a second.
    pub blk_bytes_sec: f64,
}

impl InactivitySettings {
    /// No inactivity deletion.
    pub fn off() -> Self {
        InactivitySettings {
            timeout: Duration::ZERO,
            check_interval: Duration::from_secs(30),
            cpu_percent: 0.0,
            net_bytes_sec: 0.0,
            blk_bytes_sec: 0.0,
        }
    }

    pub fn is_on(&self) -> bool {
        !self.timeout.is_zero() && !self.check_interval.is_zero()
    }
}

/// The cumulative counters of one module at one check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    pub cpu_time_ns: u64,
    /// Network bytes received plus sent.
    pub net_bytes: u64,
    /// Block bytes read plus written.
    pub blk_bytes: u64,
    /// For counters a poller fills, how many polls answered so far.
    pub polls: Option<u64>,
}

impl Sample {
    pub fn read(stats: &ModuleStats) -> Self {
        Sample {
            cpu_time_ns: stats.cpu_time_ns.load(Relaxed),
            net_bytes: stats
                .net_rx_bytes
                .load(Relaxed)
                .saturating_add(stats.net_tx_bytes.load(Relaxed)),
            blk_bytes: stats
                .blk_read_bytes
                .load(Relaxed)
                .saturating_add(stats.blk_write_bytes.load(Relaxed)),
            polls: stats
                .polled
                .load(Relaxed)
                .then(|| stats.polls.load(Relaxed)),
        }
    }

    /// Whether any counter is below the one of `earlier`.
    fn went_back_from(&self, earlier: &Sample) -> bool {
        self.cpu_time_ns < earlier.cpu_time_ns
            || self.net_bytes < earlier.net_bytes
            || self.blk_bytes < earlier.blk_bytes
    }
}

/// What one check concluded about a module.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// No interval to judge: the first check, counters that went backwards, no time
    /// passed since the previous check, or no poll answered since then (a failing or
    /// slow engine is no proof of idleness; the next answer covers the whole span).
    Baseline,
    /// Above a threshold over the interval: idle time is back to zero.
    Active,
    /// Idle for this long so far, less than the timeout.
    Idle(Duration),
    /// Idle for at least the timeout, this long: the module is to be deleted.
    Expired(Duration),
}

/// Idle time of one module, from check to check.
#[derive(Debug, Clone)]
pub struct IdleTracker {
    settings: InactivitySettings,
    last: Option<(Sample, Instant)>,
    idle: Duration,
}

impl IdleTracker {
    pub fn new(settings: InactivitySettings) -> Self {
        IdleTracker {
            settings,
            last: None,
            idle: Duration::ZERO,
        }
    }

    /// Judge the interval since the previous check and remember this one.
    pub fn observe(&mut self, sample: Sample, now: Instant) -> Verdict {
        let Some((last, last_at)) = self.last else {
            self.last = Some((sample, now));
            return Verdict::Baseline;
        };
        let wall = now.saturating_duration_since(last_at);
        if wall.is_zero() || (sample.polls.is_some() && sample.polls == last.polls) {
            return Verdict::Baseline;
        }
        self.last = Some((sample, now));

        // Counters restarted (or a poller reported nonsense): what happened over the
        // interval is unknown, so it does not count as idle.
        if sample.went_back_from(&last) {
            self.idle = Duration::ZERO;
            return Verdict::Baseline;
        }

        if !self.idle_over(&last, &sample, wall) {
            self.idle = Duration::ZERO;
            return Verdict::Active;
        }
        self.idle = self.idle.saturating_add(wall);
        if self.idle >= self.settings.timeout {
            Verdict::Expired(self.idle)
        } else {
            Verdict::Idle(self.idle)
        }
    }

    fn idle_over(&self, last: &Sample, sample: &Sample, wall: Duration) -> bool {
        let s = &self.settings;
        let secs = wall.as_secs_f64();
        let cpu = cpu_percent(sample.cpu_time_ns - last.cpu_time_ns, wall);
        let net = (sample.net_bytes - last.net_bytes) as f64 / secs;
        let blk = (sample.blk_bytes - last.blk_bytes) as f64 / secs;
        cpu <= s.cpu_percent && net <= s.net_bytes_sec && blk <= s.blk_bytes_sec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn settings() -> InactivitySettings {
        InactivitySettings {
            timeout: Duration::from_secs(3),
            check_interval: SEC,
            cpu_percent: 1.0,
            net_bytes_sec: 100.0,
            blk_bytes_sec: 1000.0,
        }
    }

    fn sample(cpu_time_ns: u64, net_bytes: u64, blk_bytes: u64) -> Sample {
        Sample {
            cpu_time_ns,
            net_bytes,
            blk_bytes,
            polls: None,
        }
    }

    /// Counters a poller filled, after `polls` answers.
    fn polled(polls: u64, cpu_time_ns: u64) -> Sample {
        Sample {
            polls: Some(polls),
            ..sample(cpu_time_ns, 0, 0)
        }
    }

    /// A tracker whose baseline is all zeros at `start`.
    fn tracker(start: Instant) -> IdleTracker {
        let mut tracker = IdleTracker::new(settings());
        assert_eq!(tracker.observe(Sample::default(), start), Verdict::Baseline);
        tracker
    }

    #[test]
    fn the_first_check_only_sets_the_baseline() {
        let start = Instant::now();
        let mut tracker = IdleTracker::new(settings());

        assert_eq!(tracker.observe(sample(5, 5, 5), start), Verdict::Baseline);
        assert_eq!(
            tracker.observe(sample(5, 5, 5), start + SEC),
            Verdict::Idle(SEC)
        );
    }

    #[test]
    fn idle_time_accumulates_over_quiet_intervals() {
        let start = Instant::now();
        let mut tracker = tracker(start);

        assert_eq!(
            tracker.observe(Sample::default(), start + SEC),
            Verdict::Idle(SEC)
        );
        assert_eq!(
            tracker.observe(Sample::default(), start + 2 * SEC),
            Verdict::Idle(2 * SEC)
        );
    }

    #[test]
    fn the_timeout_is_reached_after_timeout_over_interval_quiet_checks() {
        let start = Instant::now();
        let mut tracker = tracker(start);

        let verdicts: Vec<Verdict> = (1..=3)
            .map(|i| tracker.observe(Sample::default(), start + i * SEC))
            .collect();

        assert_eq!(
            verdicts,
            [
                Verdict::Idle(SEC),
                Verdict::Idle(2 * SEC),
                Verdict::Expired(3 * SEC)
            ]
        );
    }

    #[test]
    fn half_second_checks_reach_a_two_second_timeout_on_the_fourth_quiet_interval() {
        let start = Instant::now();
        let half = Duration::from_millis(500);
        let mut tracker = IdleTracker::new(InactivitySettings {
            timeout: 2 * SEC,
            check_interval: half,
            ..settings()
        });
        tracker.observe(Sample::default(), start);

        let verdicts: Vec<Verdict> = (1..=4)
            .map(|i| tracker.observe(Sample::default(), start + i * half))
            .collect();

        assert!(matches!(verdicts[2], Verdict::Idle(_)), "{verdicts:?}");
        assert_eq!(verdicts[3], Verdict::Expired(2 * SEC));
    }

    #[test]
    fn cpu_use_above_the_threshold_resets_idle_time() {
        let start = Instant::now();
        let mut tracker = tracker(start);
        tracker.observe(Sample::default(), start + SEC);

        // 2% of one second.
        let busy = sample(20_000_000, 0, 0);
        assert_eq!(tracker.observe(busy, start + 2 * SEC), Verdict::Active);
        assert_eq!(tracker.observe(busy, start + 3 * SEC), Verdict::Idle(SEC));
    }

    #[test]
    fn network_traffic_above_the_threshold_resets_idle_time() {
        let start = Instant::now();
        let mut tracker = tracker(start);
        tracker.observe(Sample::default(), start + SEC);

        assert_eq!(
            tracker.observe(sample(0, 101, 0), start + 2 * SEC),
            Verdict::Active
        );
    }

    #[test]
    fn block_io_above_the_threshold_resets_idle_time() {
        let start = Instant::now();
        let mut tracker = tracker(start);
        tracker.observe(Sample::default(), start + SEC);

        assert_eq!(
            tracker.observe(sample(0, 0, 2_001), start + 2 * SEC),
            Verdict::Active
        );
    }

    #[test]
    fn use_exactly_at_every_threshold_counts_as_idle() {
        let start = Instant::now();
        let mut tracker = tracker(start);

        // 1% of one second, 100 bytes and 1000 bytes in one second.
        let at_thresholds = sample(10_000_000, 100, 1000);
        assert_eq!(
            tracker.observe(at_thresholds, start + SEC),
            Verdict::Idle(SEC)
        );
    }

    #[test]
    fn rates_are_averaged_over_the_whole_interval() {
        let start = Instant::now();
        let mut tracker = tracker(start);

        // 300 bytes over 4 seconds is 75 bytes a second.
        assert_eq!(
            tracker.observe(sample(0, 300, 0), start + 4 * SEC),
            Verdict::Expired(4 * SEC)
        );
    }

    #[test]
    fn counters_going_backwards_restart_the_baseline_without_panicking() {
        let start = Instant::now();
        let mut tracker = IdleTracker::new(settings());
        tracker.observe(sample(1_000_000, 500, 500), start);
        tracker.observe(sample(1_000_000, 500, 500), start + SEC);

        assert_eq!(
            tracker.observe(sample(0, 0, 0), start + 2 * SEC),
            Verdict::Baseline
        );
        assert_eq!(
            tracker.observe(sample(0, 0, 0), start + 3 * SEC),
            Verdict::Idle(SEC)
        );
    }

    #[test]
    fn a_check_at_the_same_instant_changes_nothing() {
        let start = Instant::now();
        let mut tracker = tracker(start);
        tracker.observe(Sample::default(), start + SEC);

        assert_eq!(
            tracker.observe(sample(u64::MAX, u64::MAX, u64::MAX), start + SEC),
            Verdict::Baseline
        );
        assert_eq!(
            tracker.observe(Sample::default(), start + 2 * SEC),
            Verdict::Idle(2 * SEC)
        );
    }

    #[test]
    fn a_clock_going_backwards_changes_nothing() {
        let start = Instant::now() + SEC;
        let mut tracker = tracker(start);

        assert_eq!(
            tracker.observe(Sample::default(), start - SEC),
            Verdict::Baseline
        );
    }

    #[test]
    fn polled_counters_that_no_poll_answered_since_the_last_check_are_no_proof_of_idleness() {
        let start = Instant::now();
        let mut tracker = IdleTracker::new(settings());
        assert_eq!(tracker.observe(polled(1, 0), start), Verdict::Baseline);

        // The engine's stats stopped answering: the counters stand still for longer
        // than the timeout, and the module is not deleted.
        for i in 1..=5 {
            assert_eq!(
                tracker.observe(polled(1, 0), start + i * SEC),
                Verdict::Baseline
            );
        }

        // The next answer covers the whole span since the last one: 3 s of CPU over 6 s.
        let busy = 3 * SEC.as_nanos() as u64;
        assert_eq!(
            tracker.observe(polled(2, busy), start + 6 * SEC),
            Verdict::Active
        );
        assert_eq!(
            tracker.observe(polled(3, busy), start + 7 * SEC),
            Verdict::Idle(SEC)
        );
    }

    #[test]
    fn a_polled_module_reads_its_poll_count() {
        let stats = ModuleStats::default();
        assert_eq!(Sample::read(&stats).polls, None, "live counters");
        stats.polled.store(true, Relaxed);
        stats.polls.store(4, Relaxed);
        assert_eq!(Sample::read(&stats).polls, Some(4));
    }

    #[test]
    fn sample_adds_received_and_sent_and_read_and_written() {
        let stats = ModuleStats::default();
        stats.cpu_time_ns.store(7, Relaxed);
        stats.net_rx_bytes.store(1, Relaxed);
        stats.net_tx_bytes.store(2, Relaxed);
        stats.blk_read_bytes.store(u64::MAX, Relaxed);
        stats.blk_write_bytes.store(4, Relaxed);

        assert_eq!(Sample::read(&stats), sample(7, 3, u64::MAX));
    }
}
