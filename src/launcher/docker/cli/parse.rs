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

/// One `ps --format '{{json .}}'` line, whose module label is `module_label`.
pub(super) fn summary(line: &str, module_label: &str) -> Option<ContainerSummary> {
    let value: Value = serde_json::from_str(line.trim()).ok()?;
    let id = first_text(&value, &["ID", "Id"])?;
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
    let status = first_text(&value, &["Status", "State"]).unwrap_or_default();
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

/// One `stats --no-stream --format '{{json .}}'` line.
pub(super) fn stats(line: &str) -> Option<ContainerStats> {
    let value: Value = serde_json::from_str(line.trim()).ok()?;
    let name = first_text(&value, &["Name", "Container"])?;
    let field = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or("");
    let (mem_bytes, _limit) = size_pair(field("MemUsage"));
    let (net_rx_bytes, net_tx_bytes) = size_pair(field("NetIO"));
    let (blk_read_bytes, blk_write_bytes) = size_pair(field("BlockIO"));
    Some(ContainerStats {
        name,
        cpu_percent: percent(field("CPUPerc")),
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
/// ones (`KiB`, `MiB`, ...); `--` and garbage are none.
pub(super) fn size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
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

/// Names that an engine said are gone, from its `No such container: NAME` lines.
pub(super) fn missing_containers(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|line| {
            let lower = line.to_lowercase();
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
    }

    #[test]
    fn sizes_that_are_not_sizes_are_none() {
        assert_eq!(size("--"), None);
        assert_eq!(size(""), None);
        assert_eq!(size("12 parsecs"), None);
        assert_eq!(size("1.2.3kB"), None);
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
        let stats = stats(line).expect("stats line");
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
        let stats = stats(line).expect("stats line");
        assert_eq!(stats.name, "m2");
        assert_eq!(stats.cpu_percent, 0.0);
        assert_eq!(stats.mem_bytes, 0);
        assert_eq!(stats.net_rx_bytes, 0);
    }

    #[test]
    fn stats_lines_without_a_name_or_json_are_skipped() {
        assert_eq!(stats(r#"{"CPUPerc":"1%"}"#), None);
        assert_eq!(stats("CONTAINER CPU %"), None);
        assert_eq!(stats(""), None);
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
        let summary = summary(line, "org.silverline.sideload.module").expect("ps line");
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
        let summary = summary(line, "org.silverline.sideload.module").expect("ps line");
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
