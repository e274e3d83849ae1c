//! The container launcher's one background thread: every stats interval it samples
//! all running containers with a single `stats` call, retries removals that failed
//! while the engine was down, and runs a sweep of crashed-run containers still owed.
//!
//! Not for: anything about one module's life (`module.rs`).

use std::fs;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::{lock, Shared, Wait};

/// Runs until the launcher is dropped (its end of `quit` goes away).
pub(super) fn run(shared: &Shared, quit: &Receiver<()>) {
    let interval = shared.options.stats_interval;
    // At a fixed rate, not a fixed pause: a `stats` call takes a second and a half,
    // and keepalives at the same interval should each see one sample. A call that
    // overran still leaves the engine half an interval of rest.
    let mut next = Instant::now() + interval;
    loop {
        match quit.recv_deadline(next) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        next = (next + interval).max(Instant::now() + interval / 2);
        // Both skip a tick while a create is under way, rather than hold up stats.
        if !lock(&shared.leftovers).is_empty() {
            shared.remove_leftovers(Wait::No);
        }
        shared.sweep_if_owed(Wait::No);
        sample_stats(shared);
    }
}

/// One `stats` call for every running container; CPU percentages become CPU time
/// so that the supervisor measures them over its own intervals like any module's.
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
        let cpu_ns = (answer.cpu_percent.max(0.0) / 100.0 * elapsed.as_nanos() as f64) as u64;
        sampled.last_sample = now;

        let stats = &sampled.stats;
        stats.cpu_time_ns.fetch_add(cpu_ns, Relaxed);
        stats.mem_bytes.store(answer.mem_bytes, Relaxed);
        stats.net_rx_bytes.store(answer.net_rx_bytes, Relaxed);
        stats.net_tx_bytes.store(answer.net_tx_bytes, Relaxed);
        stats.blk_read_bytes.store(answer.blk_read_bytes, Relaxed);
        stats.blk_write_bytes.store(answer.blk_write_bytes, Relaxed);
        if let Some((rx, tx)) = sampled.pid.and_then(network_packets) {
            stats.net_rx_pkts.store(rx, Relaxed);
            stats.net_tx_pkts.store(tx, Relaxed);
        }
        stats.polls.fetch_add(1, Relaxed);
    }
}

/// Packets received and sent on every interface but loopback of the network
/// namespace of process `pid` (`docker stats` counts bytes only). `None` when the
/// process is gone or its namespace is not readable (a rootless engine).
fn network_packets(pid: u32) -> Option<(u64, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    Some(parse_net_dev(&text))
}

/// Sums packet counts from `/proc/net/dev` text: after `iface:`, field 2 is packets
/// received and field 10 packets sent.
fn parse_net_dev(text: &str) -> (u64, u64) {
    let mut rx = 0u64;
    let mut tx = 0u64;
    for line in text.lines().skip(2) {
        let Some((iface, counters)) = line.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        let fields: Vec<u64> = counters
            .split_whitespace()
            .map(|field| field.parse().unwrap_or(0))
            .collect();
        if fields.len() >= 10 {
            rx = rx.saturating_add(fields[1]);
            tx = tx.saturating_add(fields[9]);
        }
    }
    (rx, tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0:   52341     412    0    0    0     0          0         0    12000      97    0    0    0     0       0          0
  eth1:     100       3    0    0    0     0          0         0      200       2    0    0    0     0       0          0
";

    #[test]
    fn packets_are_summed_over_interfaces_other_than_loopback() {
        assert_eq!(parse_net_dev(NET_DEV), (415, 99));
    }

    #[test]
    fn a_garbled_net_dev_reads_as_no_packets() {
        assert_eq!(parse_net_dev("nonsense\n\nfoo: 1 2\n"), (0, 0));
    }

    #[test]
    fn packets_of_this_process_namespace_are_readable() {
        assert!(network_packets(std::process::id()).is_some());
    }
}
