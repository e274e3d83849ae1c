//! Exact counters of a container from the kernel, read through the host pid of its
//! first process: CPU time from its cgroup, network bytes and packets from its network
//! namespace. `docker stats` gives a CPU percentage over about one second (podman's
//! is an average since the start) and sizes rounded to three digits, too coarse for
//! keepalives and the idleness check; it stays the source of memory, block I/O and
//! of whatever the kernel does not show us (a rootless engine, another PID namespace).
//!
//! Not for: calling the engine (`cli.rs`) or deciding what to sample (`chores.rs`).

use std::fs;
use std::path::{Path, PathBuf};

/// Where the cumulative CPU time of a container's cgroup can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CpuUsage {
    /// cgroup v1 `cpuacct.usage`: nanoseconds.
    V1(PathBuf),
    /// cgroup v2 `cpu.stat`: its `usage_usec` line.
    V2(PathBuf),
}

impl CpuUsage {
    /// The CPU-time file of the cgroup of process `pid`, if the host shows it.
    pub(super) fn of_process(pid: u32) -> Option<CpuUsage> {
        let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
        let usage = locate(&cgroups, &mounts)?;
        usage.read().is_some().then_some(usage)
    }

    /// CPU time used so far by every process of the cgroup, in nanoseconds.
    pub(super) fn read(&self) -> Option<u64> {
        match self {
            CpuUsage::V1(file) => fs::read_to_string(file).ok()?.trim().parse().ok(),
            CpuUsage::V2(file) => {
                let text = fs::read_to_string(file).ok()?;
                let usec: u64 = text
                    .lines()
                    .find_map(|line| line.strip_prefix("usage_usec "))?
                    .trim()
                    .parse()
                    .ok()?;
                usec.checked_mul(1000)
            }
        }
    }
}

/// From `/proc/<pid>/cgroup` and `/proc/self/mountinfo`: the v1 `cpuacct` file when
/// that controller is mounted (hybrid hosts), else the v2 `cpu.stat`.
fn locate(cgroups: &str, mountinfo: &str) -> Option<CpuUsage> {
    let mut v1 = None;
    let mut v2 = None;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            v2 = Some(path);
        } else if controllers.split(',').any(|name| name == "cpuacct") {
            v1 = Some(path);
        }
    }

    let mut v1_mount = None;
    let mut v2_mount = None;
    for line in mountinfo.lines() {
        // id parent major:minor root mount-point options [optional...] - type source super-options
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = before.split(' ').collect();
        let theirs: Vec<&str> = after.split(' ').collect();
        let (Some(root), Some(point), Some(kind)) = (fields.get(3), fields.get(4), theirs.first())
        else {
            continue;
        };
        let options = theirs.get(2).copied().unwrap_or_default();
        match *kind {
            "cgroup" if options.split(',').any(|option| option == "cpuacct") => {
                v1_mount.get_or_insert((*root, *point));
            }
            "cgroup2" => {
                v2_mount.get_or_insert((*root, *point));
            }
            _ => {}
        }
    }

    if let (Some(path), Some((root, point))) = (v1, v1_mount) {
        return Some(CpuUsage::V1(
            under(point, root, path)?.join("cpuacct.usage"),
        ));
    }
    let (path, (root, point)) = (v2?, v2_mount?);
    Some(CpuUsage::V2(under(point, root, path)?.join("cpu.stat")))
}

/// Cgroup `path` (relative to its hierarchy) as a path under the mount `point`, whose
/// `root` is the part of the hierarchy it shows. Octal escapes (`\040`) are kept: a
/// path with them is not found and the caller falls back.
fn under(point: &str, root: &str, path: &str) -> Option<PathBuf> {
    let relative = if root == "/" {
        path
    } else {
        path.strip_prefix(root)?
    };
    if relative.split('/').any(|part| part == "..") {
        return None;
    }
    Some(Path::new(point).join(relative.trim_start_matches('/')))
}

/// Network counters of every interface but loopback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Network {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
}

/// The network counters of the namespace of process `pid`; `None` when the process
/// is gone or its namespace is not readable (a rootless engine).
pub(super) fn network(pid: u32) -> Option<Network> {
    let text = fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    Some(parse_net_dev(&text))
}

/// Sums `/proc/net/dev` text: after `iface:`, fields 1 and 2 are bytes and packets
/// received, fields 9 and 10 bytes and packets sent.
fn parse_net_dev(text: &str) -> Network {
    let mut total = Network::default();
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
            total.rx_bytes = total.rx_bytes.saturating_add(fields[0]);
            total.rx_packets = total.rx_packets.saturating_add(fields[1]);
            total.tx_bytes = total.tx_bytes.saturating_add(fields[8]);
            total.tx_packets = total.tx_packets.saturating_add(fields[9]);
        }
    }
    total
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
    fn network_counters_are_summed_over_interfaces_other_than_loopback() {
        assert_eq!(
            parse_net_dev(NET_DEV),
            Network {
                rx_bytes: 52441,
                tx_bytes: 12200,
                rx_packets: 415,
                tx_packets: 99
            }
        );
    }

    #[test]
    fn a_garbled_net_dev_reads_as_nothing() {
        assert_eq!(parse_net_dev("nonsense\n\nfoo: 1 2\n"), Network::default());
    }

    #[test]
    fn the_network_of_this_process_is_readable() {
        assert!(network(std::process::id()).is_some());
    }

    const HYBRID_CGROUPS: &str = "\
9:name=systemd:/docker/abc
2:cpuacct:/docker/abc
1:cpu:/docker/abc
0::/docker/abc
";
    const HYBRID_MOUNTS: &str = "\
30 25 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:14 - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
";
    const UNIFIED_CGROUPS: &str = "0::/system.slice/docker-abc.scope\n";
    const UNIFIED_MOUNTS: &str = "\
29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn cpu_time_is_found_in_cgroup_v1_on_hybrid_hosts_and_v2_elsewhere() {
        assert_eq!(
            locate(HYBRID_CGROUPS, HYBRID_MOUNTS),
            Some(CpuUsage::V1(PathBuf::from(
                "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpuacct.usage"
            )))
        );
        assert_eq!(
            locate(UNIFIED_CGROUPS, UNIFIED_MOUNTS),
            Some(CpuUsage::V2(PathBuf::from(
                "/sys/fs/cgroup/system.slice/docker-abc.scope/cpu.stat"
            )))
        );
        let mounted_below = UNIFIED_MOUNTS.replace(" / /sys/fs/cgroup ", " /system.slice /cg ");
        assert_eq!(
            locate(UNIFIED_CGROUPS, &mounted_below),
            Some(CpuUsage::V2(PathBuf::from("/cg/docker-abc.scope/cpu.stat")))
        );
        assert_eq!(locate("0::/../x\n", UNIFIED_MOUNTS), None);
        assert_eq!(locate(UNIFIED_CGROUPS, ""), None);
        assert_eq!(locate("garbage", UNIFIED_MOUNTS), None);
    }

    #[test]
    fn cpu_time_files_of_both_versions_are_read_in_nanoseconds() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = dir.path().join("cpuacct.usage");
        fs::write(&v1, "123456789\n").unwrap();
        assert_eq!(CpuUsage::V1(v1).read(), Some(123_456_789));
        let v2 = dir.path().join("cpu.stat");
        fs::write(&v2, "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n").unwrap();
        assert_eq!(CpuUsage::V2(v2).read(), Some(2_500_000));
        assert_eq!(CpuUsage::V1(dir.path().join("gone")).read(), None);
    }

    /// A real container busy in a loop: its cgroup's CPU time is found from its pid
    /// and grows by about the wall time it runs.
    #[test]
    fn cpu_time_of_a_real_busy_container_grows() {
        use std::process::Command;
        use std::time::{Duration, Instant};

        let name = format!("kernel-test-{}", uuid::Uuid::new_v4().simple());
        let run = Command::new("docker")
            .args(["run", "-d", "--rm", "--network", "none", "--name", &name])
            .args([
                "slframework/slruntime-python-runner:latest",
                "python3",
                "-c",
            ])
            .arg("while True: pass")
            .output()
            .expect("docker run");
        assert!(run.status.success(), "{run:?}");
        let inspect = Command::new("docker")
            .args(["inspect", "--format", "{{.State.Pid}}", &name])
            .output()
            .expect("docker inspect");
        let pid: u32 = String::from_utf8_lossy(&inspect.stdout)
            .trim()
            .parse()
            .unwrap_or(0);

        let usage = CpuUsage::of_process(pid);
        let first = usage.as_ref().and_then(CpuUsage::read);
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(500));
        let second = usage.as_ref().and_then(CpuUsage::read);
        let wall = started.elapsed().as_nanos() as u64;
        let network = network(pid);
        let _ = Command::new("docker")
            .args(["rm", "--force", &name])
            .output();

        let (first, second) = (first.expect("cpu time"), second.expect("cpu time"));
        // A core busy half a second; scheduling on a loaded machine may give less.
        assert!(
            second - first > wall / 4,
            "{first} -> {second} over {wall} ns"
        );
        assert_eq!(network, Some(Network::default()), "--network none");
    }

    #[test]
    fn cpu_time_of_this_process_cgroup_is_readable() {
        let usage = CpuUsage::of_process(std::process::id()).expect("a cgroup CPU file");
        assert!(usage.read().is_some_and(|ns| ns > 0), "{usage:?}");
    }
}
