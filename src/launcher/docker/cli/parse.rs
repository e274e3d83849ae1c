//! Reading what the engine prints: `inspect` state JSON, `ps` and `stats` lines
//! (docker's and podman's spellings), byte sizes with their units, and error text
//! made fit for a log line.
//!
//! Not for: running commands or deciding what an error means (`cli.rs`).

use serde_json::Value;

use super::{ContainerState, ContainerStats, ContainerSummary};

/// The engines print this start time for a container that never started.
const NEVER_STARTED_PREFIX: &str = "0001-01-01";

/// Longest engine message kept in an error, in characters.
pub(super) const MESSAGE_LIMIT: usize = 300;

/// A container's `{{json .State}}`; missing fields take their defaults.
pub(super) fn state(json: &str) -> Result<ContainerState, String> {
    let value: Value =
        serde_json::from_str(json.trim()).map_err(|error| format!("unreadable state: {error}"))?;
    if !value.is_object() {
        return Err(format!("state is not an object: '{}'", one_line(json)));
    }

    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or("");
    let flag = |key: &str| value.get(key).and_then(Value::as_bool).unwrap_or(false);
    let number = |key: &str| value.get(key).and_then(Value::as_i64);

    let status = text("Status").to_lowercase();
    let running = flag("Running") || status == "running";
    let started_at = text("StartedAt");
    let started = !started_at.is_empty() && !started_at.starts_with(NEVER_STARTED_PREFIX);
    let error = text("Error").to_string();
    let code = number("ExitCode").and_then(|code| i32::try_from(code).ok());
    let exit_code = match code {
        Some(_) if running => None,
        Some(code) if started || code != 0 || !error.is_empty() => Some(code),
        _ => None,
    };
    let pid = number("Pid")
        .and_then(|pid| u32::try_from(pid).ok())
        .filter(|pid| *pid > 0 && running);

    Ok(ContainerState {
        status,
        running,
        started,
        exit_code,
        pid,
        error,
        oom_killed: flag("OOMKilled"),
    })
}

/// The records of a `ps` or `stats` call with `--format '{{json .}}'`: docker prints
/// one JSON object per line, podman 4 one (pretty-printed) JSON array of them. Lines
/// that are no JSON object come back as text, for the log.
pub(super) fn records(stdout: &str) -> (Vec<Value>, Vec<String>) {
    let trimmed = stdout.trim();
    if trimmed.starts_with('[') {
        return match serde_json::from_str::<Value>(trimmed) {
            Ok(Value::Array(items)) => {
                let (objects, others): (Vec<Value>, Vec<Value>) =
                    items.into_iter().partition(Value::is_object);
                let others = others.iter().map(|v| one_line(&v.to_string())).collect();
                (objects, others)
            }
            _ => (Vec::new(), vec![one_line(trimmed)]),
        };
    }
    let mut objects = Vec::new();
    let mut unreadable = Vec::new();
    for line in trimmed
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        match serde_json::from_str::<Value>(line) {
            Ok(value) if value.is_object() => objects.push(value),
            _ => unreadable.push(one_line(line)),
        }
    }
    (objects, unreadable)
}

/// One `ps` record (docker's line or an item of podman's array), whose module label
/// is `module_label`.
pub(super) fn summary(value: &Value, module_label: &str) -> Option<ContainerSummary> {
    let id = first_text(value, &["ID", "Id"])?;
    let name = match value.get("Names") {
        Some(Value::String(names)) => names.split(',').next().unwrap_or("").to_string(),
        // podman prints a list of names.
        Some(Value::Array(names)) => names
            .first()
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    };
    let module = match value.get("Labels") {
        Some(Value::String(labels)) => label_value(labels, module_label),
        // podman prints labels as an object.
        Some(Value::Object(labels)) => labels
            .get(module_label)
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    };
    let status = first_text(value, &["Status", "State"]).unwrap_or_default();
    Some(ContainerSummary {
        id,
        name,
        module,
        status,
    })
}

/// The value of `key` in docker's `k=v,k2=v2` label text; none when the key is
/// missing or appears more than once (a value holding `,key=` could forge it).
pub(super) fn label_value(labels: &str, key: &str) -> Option<String> {
    let mut found = labels.split(',').filter_map(|entry| {
        let (k, v) = entry.split_once('=')?;
        (k == key).then(|| v.to_string())
    });
    let value = found.next()?;
    found.next().is_none().then_some(value)
}

/// One `stats --no-stream --format '{{json .}}'` record: docker's fields (`Name`,
/// `CPUPerc`, `MemUsage`, `NetIO`, `BlockIO`) or podman 4's (`name`, `cpu_percent`,
/// `mem_usage`, `net_io`, `block_io`).
pub(super) fn stats(value: &Value) -> Option<ContainerStats> {
    let name = first_text(value, &["Name", "name", "Container"])?;
    let field = |keys: &[&str]| first_text(value, keys).unwrap_or_default();
    let (mem_bytes, _limit) = size_pair(&field(&["MemUsage", "mem_usage"]));
    let (net_rx_bytes, net_tx_bytes) = size_pair(&field(&["NetIO", "net_io"]));
    let (blk_read_bytes, blk_write_bytes) = size_pair(&field(&["BlockIO", "block_io"]));
    Some(ContainerStats {
        name,
        cpu_percent: percent(&field(&["CPUPerc", "cpu_percent"])),
        mem_bytes,
        net_rx_bytes,
        net_tx_bytes,
        blk_read_bytes,
        blk_write_bytes,
    })
}

/// `"12.34%"` as 12.34; `"--"` (not measured yet) and anything unreadable as 0.
pub(super) fn percent(text: &str) -> f64 {
    text.trim()
        .trim_end_matches('%')
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite() && *value >= 0.0)
        .unwrap_or(0.0)
}

/// `"1.2kB / 648B"` as both byte counts; an unreadable side counts 0.
pub(super) fn size_pair(text: &str) -> (u64, u64) {
    let mut sides = text.splitn(2, '/');
    let first = sides.next().and_then(size).unwrap_or(0);
    let second = sides.next().and_then(size).unwrap_or(0);
    (first, second)
}

/// A size as docker and podman print it: decimal units (`kB`, `MB`, ...) and binary
/// ones (`KiB`, `MiB`, ...), three digits and an exponent past them (`1e+03kB`, Go's
/// `%.3g`); `--` and garbage are none.
pub(super) fn size(text: &str) -> Option<u64> {
    let text = text.trim();
    // The unit is the letters at the end; what comes before must read as a number.
    let split = text
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .len();
    let (number, unit) = text.split_at(split);
    let number = number.trim();
    if !number.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let number: f64 = number.parse().ok()?;
    let multiplier: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "kB" | "KB" | "k" | "K" => 1e3,
        "MB" | "M" => 1e6,
        "GB" | "G" => 1e9,
        "TB" | "T" => 1e12,
        "PB" | "P" => 1e15,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "PiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = (number * multiplier).round();
    // `as` saturates; sizes beyond u64 do not occur.
    bytes.is_finite().then_some(bytes as u64)
}

/// Names that an engine said are gone: docker's `No such container: NAME` and
/// podman's `no container with name or ID "NAME" found`.
pub(super) fn missing_containers(stderr: &str) -> Vec<String> {
    const PODMAN: &str = "no container with name or id \"";
    stderr
        .lines()
        .filter_map(|line| {
            let lower = line.to_lowercase();
            if let Some(at) = lower.find(PODMAN) {
                let rest = line.get(at + PODMAN.len()..)?;
                let name = &rest[..rest.find('"')?];
                return (!name.is_empty()).then(|| name.to_string());
            }
            let at = lower.find("no such container:")? + "no such container:".len();
            let name = line.get(at..)?.trim();
            (!name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

/// Engine output as one trimmed line of at most [`MESSAGE_LIMIT`] characters, without
/// the usage hints and deprecation notes the CLI adds around its errors.
pub(super) fn one_line(text: &str) -> String {
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !is_noise(line))
        .collect::<Vec<_>>()
        .join("; ");
    if joined.chars().count() <= MESSAGE_LIMIT {
        return joined;
    }
    let mut cut: String = joined.chars().take(MESSAGE_LIMIT - 3).collect();
    cut.push_str("...");
    cut
}

fn is_noise(line: &str) -> bool {
    (line.starts_with("Flag --") && line.contains("deprecated"))
        || line.starts_with("Usage:")
        || (line.starts_with("Run '") && line.ends_with("for more information"))
        || line.starts_with("See '")
}

fn first_text(value: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|key| value.get(*key).and_then(Value::as_str))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one record of `text` (a docker line or a podman array).
    fn one_record(text: &str) -> Value {
        let (mut records, unreadable) = records(text);
        assert!(unreadable.is_empty(), "unreadable: {unreadable:?}");
        assert_eq!(records.len(), 1, "{records:?}");
        records.remove(0)
    }

    fn stats_of(text: &str) -> Option<ContainerStats> {
        let (records, _) = records(text);
        records.first().and_then(stats)
    }

    #[test]
    fn sizes_read_decimal_and_binary_units_exactly() {
        assert_eq!(size("0B"), Some(0));
        assert_eq!(size("648B"), Some(648));
        assert_eq!(size("1.2kB"), Some(1_200));
        assert_eq!(size("1.2KB"), Some(1_200));
        assert_eq!(size("4.1kB"), Some(4_100));
        assert_eq!(size("1KiB"), Some(1_024));
        assert_eq!(size("1.5MiB"), Some(1_572_864));
        assert_eq!(size("3.293MiB"), Some(3_452_961));
        assert_eq!(size("2MB"), Some(2_000_000));
        assert_eq!(size("23.54GiB"), Some(25_275_882_537));
        assert_eq!(size("1GB"), Some(1_000_000_000));
        assert_eq!(size("1TiB"), Some(1_099_511_627_776));
        assert_eq!(size("1TB"), Some(1_000_000_000_000));
        assert_eq!(size(" 7 B "), Some(7));
        // Go's `%.3g` just below a unit: docker printed this for 999,700 bytes.
        assert_eq!(size("1e+03kB"), Some(1_000_000));
        assert_eq!(size("1E+03MiB"), Some(1_048_576_000));
        assert_eq!(size("2.5e3B"), Some(2_500));
    }

    #[test]
    fn sizes_that_are_not_sizes_are_none() {
        assert_eq!(size("--"), None);
        assert_eq!(size(""), None);
        assert_eq!(size("12 parsecs"), None);
        assert_eq!(size("1.2.3kB"), None);
        assert_eq!(size("e3kB"), None);
        assert_eq!(size("1e+kB"), None);
        assert_eq!(size("1EB"), None);
    }

    #[test]
    fn percent_reads_cpu_text_and_dashes_as_zero() {
        assert_eq!(percent("12.34%"), 12.34);
        assert_eq!(percent("0.00%"), 0.0);
        assert_eq!(percent("250.5%"), 250.5);
        assert_eq!(percent("--"), 0.0);
        assert_eq!(percent(""), 0.0);
    }

    #[test]
    fn docker_stats_line_gives_bytes_and_cpu() {
        let line = r#"{"BlockIO":"0B / 4.1kB","CPUPerc":"12.34%","Container":"m1","ID":"0b7888500531","MemPerc":"0.01%","MemUsage":"1.5MiB / 23.4GiB","Name":"m1","NetIO":"1.2kB / 648B","PIDs":"1"}"#;
        let stats = stats_of(line).expect("stats line");
        assert_eq!(
            stats,
            ContainerStats {
                name: "m1".into(),
                cpu_percent: 12.34,
                mem_bytes: 1_572_864,
                net_rx_bytes: 1_200,
                net_tx_bytes: 648,
                blk_read_bytes: 0,
                blk_write_bytes: 4_100,
            }
        );
    }

    #[test]
    fn stats_line_of_a_container_not_measured_yet_is_zeros() {
        let line =
            r#"{"BlockIO":"--","CPUPerc":"--","MemUsage":"-- / --","Name":"m2","NetIO":"--"}"#;
        let stats = stats_of(line).expect("stats line");
        assert_eq!(stats.name, "m2");
        assert_eq!(stats.cpu_percent, 0.0);
        assert_eq!(stats.mem_bytes, 0);
        assert_eq!(stats.net_rx_bytes, 0);
    }

    #[test]
    fn stats_lines_without_a_name_or_json_are_skipped() {
        assert_eq!(stats_of(r#"{"CPUPerc":"1%"}"#), None);
        assert_eq!(stats_of("CONTAINER CPU %"), None);
        assert_eq!(stats_of(""), None);
    }

    #[test]
    fn docker_state_of_a_created_container_has_not_started() {
        let json = r#"{"Status":"created","Running":false,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":0,"ExitCode":0,"Error":"","StartedAt":"0001-01-01T00:00:00Z","FinishedAt":"0001-01-01T00:00:00Z"}"#;
        let state = state(json).expect("state");
        assert_eq!(
            state,
            ContainerState {
                status: "created".into(),
                ..ContainerState::default()
            }
        );
    }

    #[test]
    fn docker_state_of_a_running_container_has_its_pid() {
        let json = r#"{"Status":"running","Running":true,"OOMKilled":false,"Pid":12178,"ExitCode":0,"Error":"","StartedAt":"2026-12-03T19:04:36.254956547Z","FinishedAt":"0001-01-01T00:00:00Z"}"#;
        let state = state(json).expect("state");
        assert!(state.running && state.started);
        assert_eq!(state.pid, Some(12178));
        assert_eq!(state.exit_code, None);
    }

    #[test]
    fn docker_state_of_an_exited_container_has_its_code() {
        let json = r#"{"Status":"exited","Running":false,"OOMKilled":true,"Pid":0,"ExitCode":137,"Error":"","StartedAt":"2026-12-03T19:04:36.254956547Z","FinishedAt":"2026-12-03T19:04:38.40211785Z"}"#;
        let state = state(json).expect("state");
        assert_eq!(state.status, "exited");
        assert!(!state.running && state.started && state.oom_killed);
        assert_eq!(state.exit_code, Some(137));
        assert_eq!(state.pid, None);
    }

    #[test]
    fn docker_state_of_a_failed_start_carries_the_error() {
        let json = r#"{"Status":"created","Running":false,"Pid":0,"ExitCode":127,"Error":"OCI runtime create failed: exec: \"nope\": executable file not found in $PATH","StartedAt":"0001-01-01T00:00:00Z"}"#;
        let state = state(json).expect("state");
        assert!(!state.started);
        assert_eq!(state.exit_code, Some(127));
        assert!(state.error.contains("executable file not found"));
    }

    #[test]
    fn podman_state_with_its_own_fields_and_gaps_is_read() {
        let json = r#"{"OciVersion":"1.1.0","Status":"running","Running":true,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":4242,"ConmonPid":4240,"ExitCode":0,"Error":"","StartedAt":"2024-02-01T10:00:00.123456789+01:00","FinishedAt":"0001-01-01T00:00:00Z","Health":{"Status":""},"CheckpointedAt":"0001-01-01T00:00:00Z"}"#;
        let podman = state(json).expect("state");
        assert!(podman.running && podman.started);
        assert_eq!(podman.pid, Some(4242));

        let sparse = state(r#"{"Status":"configured"}"#).expect("state");
        assert_eq!(sparse.status, "configured");
        assert!(!sparse.running && !sparse.started);
        assert_eq!(sparse.exit_code, None);
    }

    #[test]
    fn state_that_is_not_json_is_an_error() {
        assert!(state("").is_err());
        assert!(state("[]").is_err());
        assert!(state("<no value>").is_err());
    }

    #[test]
    fn docker_ps_line_gives_id_name_module_and_status() {
        let line = r#"{"Command":"\"python3 -c 'x'\"","ID":"d7c8ff8180af","Image":"img","Labels":"a=b,org.silverline.sideload.module=m1,org.silverline.sideload.module-name=pinger","Names":"sideload-m1","State":"exited","Status":"Exited (0) 2 minutes ago"}"#;
        let summary =
            summary(&one_record(line), "org.silverline.sideload.module").expect("ps line");
        assert_eq!(
            summary,
            ContainerSummary {
                id: "d7c8ff8180af".into(),
                name: "sideload-m1".into(),
                module: Some("m1".into()),
                status: "Exited (0) 2 minutes ago".into(),
            }
        );
    }

    #[test]
    fn podman_ps_line_with_lists_and_maps_is_read() {
        let line = r#"{"Id":"abc123","Names":["sideload-m2"],"Labels":{"org.silverline.sideload.module":"m2"},"State":"running","Status":"Up 3 minutes"}"#;
        let summary =
            summary(&one_record(line), "org.silverline.sideload.module").expect("ps line");
        assert_eq!(summary.id, "abc123");
        assert_eq!(summary.name, "sideload-m2");
        assert_eq!(summary.module.as_deref(), Some("m2"));
        assert_eq!(summary.status, "Up 3 minutes");
    }

    #[test]
    fn label_forged_inside_another_label_value_is_not_trusted() {
        let key = "org.silverline.sideload.module";
        assert_eq!(
            label_value("a=b,org.silverline.sideload.module=m1", key).as_deref(),
            Some("m1")
        );
        assert_eq!(
            label_value(
                "org.silverline.sideload.module=m1,org.silverline.sideload.module-name=x,org.silverline.sideload.module=evil",
                key
            ),
            None
        );
        assert_eq!(
            label_value("org.silverline.sideload.module-name=m1", key),
            None
        );
        assert_eq!(label_value("", key), None);
    }

    #[test]
    fn missing_containers_are_read_from_engine_errors() {
        let stderr = "Error response from daemon: No such container: gone1\nError: no such container: gone2\nsomething else\n";
        assert_eq!(missing_containers(stderr), vec!["gone1", "gone2"]);
    }

    /// Real output of `podman 4.3.1 ps --all --no-trunc --filter label=... --format
    /// '{{json .}}'` (Debian 12): one pretty-printed array, lists and maps inside.
    const PODMAN_PS: &str = r#"[
  {
    "AutoRemove": false,
    "Command": [
      "python3",
      "-u",
      "echo.py"
    ],
    "CreatedAt": "Less than a second ago",
    "Exited": false,
    "ExitedAt": -62135596800,
    "ExitCode": 0,
    "Id": "613f925975369d0cf272cd8f9fcce6ee44bc4a06ff6a612658f90dd2f221ee22",
    "Image": "localhost/slframework/slruntime-python-runner:latest",
    "ImageID": "13cd27b00cea007dc45077aca64e46ef03047a634e18390f5cfcc3ee6b53343a",
    "IsInfra": false,
    "Labels": {
      "org.silverline.sideload.module": "m1",
      "org.silverline.sideload.module-name": "echo",
      "org.silverline.sideload.runtime": "rt1"
    },
    "Mounts": [
      "/usr/src/app"
    ],
    "Names": [
      "podman-c1"
    ],
    "Namespaces": {
      
    },
    "Networks": [
      "podman"
    ],
    "Pid": 0,
    "Pod": "",
    "PodName": "",
    "Ports": null,
    "Size": null,
    "StartedAt": -62135596800,
    "State": "exited",
    "Status": "Exited (3) 8 seconds ago",
    "Created": 1796325572
  }
]
"#;

    #[test]
    fn podman_ps_array_gives_id_name_module_and_status() {
        let summary =
            summary(&one_record(PODMAN_PS), "org.silverline.sideload.module").expect("ps item");
        assert_eq!(
            summary,
            ContainerSummary {
                id: "613f925975369d0cf272cd8f9fcce6ee44bc4a06ff6a612658f90dd2f221ee22".into(),
                name: "podman-c1".into(),
                module: Some("m1".into()),
                status: "Exited (3) 8 seconds ago".into(),
            }
        );
    }

    #[test]
    fn podman_ps_of_no_containers_is_an_empty_array() {
        assert_eq!(records("[]\n"), (Vec::new(), Vec::new()));
        assert_eq!(records(""), (Vec::new(), Vec::new()));
    }

    #[test]
    fn records_of_docker_lines_keep_objects_and_report_the_rest() {
        let (objects, unreadable) = records("{\"ID\":\"a\"}\n\nnot json\n{\"ID\":\"b\"}\n");
        assert_eq!(objects.len(), 2);
        assert_eq!(unreadable, vec!["not json"]);
        let (objects, unreadable) = records("[{\"Id\":\"a\"}, 3]");
        assert_eq!(objects.len(), 1);
        assert_eq!(unreadable, vec!["3"]);
        let (objects, unreadable) = records("[{\"Id\":\"a\"}");
        assert!(objects.is_empty());
        assert_eq!(unreadable.len(), 1);
    }

    /// Real output of `podman 4.3.1 stats --no-stream --format '{{json .}}' -- NAME`
    /// for a running container: an array with podman's own field names.
    const PODMAN_STATS: &str = r#"[
 {
  "id": "613f92597536",
  "name": "podman-c1",
  "cpu_time": "46.533073ms",
  "cpu_percent": "1.59%",
  "avg_cpu": "1.59%",
  "mem_usage": "2.998MB / 25.28GB",
  "mem_percent": "0.01%",
  "net_io": "516B / 1.44kB",
  "block_io": "0B / 0B",
  "pids": "1"
 }
]
"#;

    #[test]
    fn podman_stats_array_gives_bytes_and_cpu() {
        assert_eq!(
            stats_of(PODMAN_STATS),
            Some(ContainerStats {
                name: "podman-c1".into(),
                cpu_percent: 1.59,
                mem_bytes: 2_998_000,
                net_rx_bytes: 516,
                net_tx_bytes: 1_440,
                blk_read_bytes: 0,
                blk_write_bytes: 0,
            })
        );
    }

    #[test]
    fn podman_stats_of_a_container_not_running_are_zeros() {
        let text = r#"[
 {
  "id": "ad233c954111",
  "name": "podman-c3",
  "cpu_time": "0s",
  "cpu_percent": "0.00%",
  "avg_cpu": "0.00%",
  "mem_usage": "0B / 0B",
  "mem_percent": "0.00%",
  "net_io": "0B / 0B",
  "block_io": "0B / 0B",
  "pids": "0"
 }
]"#;
        let stats = stats_of(text).expect("stats");
        assert_eq!(
            stats,
            ContainerStats {
                name: "podman-c3".into(),
                ..ContainerStats::default()
            }
        );
    }

    /// Real `podman 4.3.1 inspect --type container --format '{{json .State}}'` output.
    #[test]
    fn podman_states_of_created_running_and_exited_containers_are_read() {
        let created = r#"{"OciVersion":"1.0.2-dev","Status":"created","Running":false,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":0,"ExitCode":0,"Error":"","StartedAt":"0001-01-01T00:00:00Z","FinishedAt":"0001-01-01T00:00:00Z","Health":{"Status":"","FailingStreak":0,"Log":null},"CheckpointedAt":"0001-01-01T00:00:00Z","RestoredAt":"0001-01-01T00:00:00Z"}"#;
        assert_eq!(
            state(created).expect("state"),
            ContainerState {
                status: "created".into(),
                ..ContainerState::default()
            }
        );

        let running = r#"{"OciVersion":"1.0.2-dev","Status":"running","Running":true,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":32306,"ConmonPid":32275,"ExitCode":0,"Error":"","StartedAt":"2026-12-03T19:19:35.975241668Z","FinishedAt":"0001-01-01T00:00:00Z","Health":{"Status":"","FailingStreak":0,"Log":null},"CgroupPath":"/libpod_parent/libpod-613f925975369d0cf272cd8f9fcce6ee44bc4a06ff6a612658f90dd2f221ee22","CheckpointedAt":"0001-01-01T00:00:00Z","RestoredAt":"0001-01-01T00:00:00Z"}"#;
        let running = state(running).expect("state");
        assert!(running.running && running.started);
        assert_eq!(running.pid, Some(32306));
        assert_eq!(running.exit_code, None);

        let exited = r#"{"OciVersion":"1.0.2-dev","Status":"exited","Running":false,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":0,"ExitCode":3,"Error":"","StartedAt":"2026-12-03T19:19:35.975241668Z","FinishedAt":"2026-12-03T19:19:40.144855024Z","Health":{"Status":"","FailingStreak":0,"Log":null},"CheckpointedAt":"0001-01-01T00:00:00Z","RestoredAt":"0001-01-01T00:00:00Z"}"#;
        let exited = state(exited).expect("state");
        assert!(!exited.running && exited.started);
        assert_eq!(exited.exit_code, Some(3));
    }

    #[test]
    fn podman_missing_container_errors_name_the_container() {
        let stats = "Error: unable to get list of containers: unable to look up container nonexist: no container with name or ID \"nonexist\" found: no such container\n";
        assert_eq!(missing_containers(stats), vec!["nonexist"]);
        let stop = "Error: no container with name or ID \"podman-c1\" found: no such container";
        assert_eq!(missing_containers(stop), vec!["podman-c1"]);
        assert!(missing_containers("Error: no container with name or ID \"").is_empty());
    }

    #[test]
    fn one_line_drops_cli_noise_and_bounds_length() {
        let text = "Flag --time has been deprecated, use --timeout instead\n  Error response from daemon: boom  \n\nUsage:  docker create [OPTIONS] IMAGE\n\nRun 'docker create --help' for more information\n";
        assert_eq!(one_line(text), "Error response from daemon: boom");

        let long = "é".repeat(1000);
        let bounded = one_line(&long);
        assert_eq!(bounded.chars().count(), MESSAGE_LIMIT);
        assert!(bounded.ends_with("..."));
    }
}
