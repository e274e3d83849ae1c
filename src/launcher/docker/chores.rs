//! The container launcher's one background thread: every stats interval it samples
//! all running containers with a single `stats` call, retries removals that failed
//! while the engine was down, and runs a sweep of crashed-run containers still owed.
//!
//! Not for: anything about one module's life (`module.rs`).

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::{kernel, lock, Shared, Wait};

/// Runs until the launcher is dropped (its end of `quit` goes away).
pub(super) fn run(shared: &Shared, quit: &Receiver<()>) {
    // At a fixed rate, not a fixed pause: a `stats` call takes a second and a half,
    // and keepalives at the same interval should each see one sample. A call that
    // overran still leaves the engine half an interval of rest. The interval is
    // looked at again at least every second: the orchestrator may shorten it.
    let mut interval = shared.stats_interval();
    let mut next = Instant::now() + interval;
    loop {
        match quit.recv_deadline(next.min(Instant::now() + Duration::from_secs(1))) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        let current = shared.stats_interval();
        if current != interval {
            next = next.min(now + current);
            interval = current;
        }
        if now < next {
            continue;
        }
        next = (next + interval).max(now + interval / 2);
        // Both skip a tick while a create is under way, rather than hold up stats.
        if !lock(&shared.leftovers).is_empty() {
            shared.remove_leftovers(Wait::No);
        }
        shared.sweep_if_owed(Wait::No);
        sample_stats(shared);
    }
}

/// One `stats` call for every running container. CPU time and network counters come
/// from the kernel where it shows them (`kernel.rs`), else from the engine's figures:
/// its CPU percentage becomes CPU time over the interval, so that the supervisor
/// measures every module over its own intervals alike.
fn sample_stats(shared: &Shared) {
    let names: Vec<String> = lock(&shared.running)
        .values()
        .map(|sampled| sampled.container.clone())
        .collect();
    if names.is_empty() {
        return;
    }
    let answers = match shared.engine.stats(&names) {
        Ok(answers) => answers,
        Err(err) => {
            log::warn!("cannot read container stats: {err}");
            return;
        }
    };

    let now = Instant::now();
    let mut running = lock(&shared.running);
    for answer in answers {
        let Some(sampled) = running
            .values_mut()
            .find(|sampled| sampled.container == answer.name)
        else {
            continue;
        };
        let elapsed = now.saturating_duration_since(sampled.last_sample);
        sampled.last_sample = now;
        let cpu_ns = match &sampled.cpu_usage {
            // A read that fails once adds nothing: the next one counts the time since
            // the last that worked.
            Some(usage) => usage.read().map_or(0, |total| {
                let added = total.saturating_sub(sampled.cpu_counted_ns);
                sampled.cpu_counted_ns = sampled.cpu_counted_ns.max(total);
                added
            }),
            None => (answer.cpu_percent.max(0.0) / 100.0 * elapsed.as_nanos() as f64) as u64,
        };

        let stats = &sampled.stats;
        stats.cpu_time_ns.fetch_add(cpu_ns, Relaxed);
        stats.mem_bytes.store(answer.mem_bytes, Relaxed);
        stats.blk_read_bytes.store(answer.blk_read_bytes, Relaxed);
        stats.blk_write_bytes.store(answer.blk_write_bytes, Relaxed);
        match sampled.pid.and_then(kernel::network) {
            Some(network) => {
                stats.net_rx_bytes.store(network.rx_bytes, Relaxed);
                stats.net_tx_bytes.store(network.tx_bytes, Relaxed);
                stats.net_rx_pkts.store(network.rx_packets, Relaxed);
                stats.net_tx_pkts.store(network.tx_packets, Relaxed);
            }
            None => {
                stats.net_rx_bytes.store(answer.net_rx_bytes, Relaxed);
                stats.net_tx_bytes.store(answer.net_tx_bytes, Relaxed);
            }
        }
        stats.polls.fetch_add(1, Relaxed);
    }
}
