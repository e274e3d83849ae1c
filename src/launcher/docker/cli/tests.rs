//! Tests of the engine wrapper: command lines, error paths against a scripted fake
//! engine (a shell script per test), and the real engine on this machine.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;

const REAL_IMAGE: &str = "slframework/slruntime-python-runner:latest";

fn spec_in(dir: &Path) -> ContainerSpec {
    ContainerSpec {
        name: "sideload-m1".into(),
        image: "runner:latest".into(),
        mount_source: dir.to_path_buf(),
        workdir: "/usr/src/app".into(),
        env: vec!["PROGRAM_OBJECT_ID=m1".into(), "TOKEN=s3cr3t-value".into()],
        labels: vec![(LABEL_MODULE.into(), "m1".into())],
        command: vec!["/entrypoint.sh".into(), "main.py".into(), "--flag".into()],
        pull: "never".into(),
        ..ContainerSpec::default()
    }
}

// ---- create_args ----

#[test]
fn create_args_put_options_before_image_and_command_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().canonicalize().expect("canonical");
    let spec = ContainerSpec {
        cpu_shares: 512,
        memory: Some("256m".into()),
        pids_limit: 64,
        network: Some("none".into()),
        extra_args: vec!["--read-only".into()],
        ..spec_in(dir.path())
    };
    let args = create_args(&spec, None).expect("args");
    let expected: Vec<String> = [
        "--interactive",
        "--name",
        "sideload-m1",
        "--label",
        "org.silverline.sideload.module=m1",
        "--env",
        "PROGRAM_OBJECT_ID=m1",
        "--env",
        "TOKEN=s3cr3t-value",
        "--volume",
        &format!("{}:/usr/src/app", source.display()),
        "--workdir",
        "/usr/src/app",
        "--pull",
        "never",
        "--cpu-shares",
        "512",
        "--memory",
        "256m",
        "--pids-limit",
        "64",
        "--network",
        "none",
        "--read-only",
        "runner:latest",
        "/entrypoint.sh",
        "main.py",
        "--flag",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    assert_eq!(args, expected);
}

#[test]
fn create_args_read_env_from_the_env_file_except_what_one_cannot_carry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = spec_in(dir.path());
    let kept = [
        "PEM=line one\nline two",
        "#HASH=x",
        "CR=ends in\r",
        "\u{feff}BOM=x",
        &format!("BIG={}", "x".repeat(70 * 1024)),
    ];
    spec.env.extend(kept.iter().map(|entry| entry.to_string()));
    let env_file = dir.path().join("m1.env");

    let args = create_args(&spec, Some(&env_file)).expect("args");

    let env_args: Vec<&str> = args
        .windows(2)
        .filter(|pair| pair[0] == "--env" || pair[0] == "--env-file")
        .map(|pair| pair[1].as_str())
        .collect();
    let mut expected = vec![env_file.to_str().expect("utf-8")];
    expected.extend(kept);
    assert_eq!(env_args, expected);
    assert!(!args.iter().any(|arg| arg.contains("s3cr3t")), "{args:?}");
    for entry in [
        "PROGRAM_OBJECT_ID=m1",
        "TOKEN=s3cr3t-value",
        "A=b c",
        "my.key-2=x=y",
        "URL=https://u:p@h/x?q=1",
    ] {
        assert!(fits_env_file(entry), "{entry}");
    }
    // Read otherwise by some engine (podman 5 reads env files as dotenv).
    let odd = [
        "=x",
        "NOEQUALS",
        "A B=c",
        " A=b",
        "A=b c ",
        "A= b",
        "E=",
        "Q='x",
        "Q=\"x\"",
        "Q=`x`",
        "C=red#blue",
        "K@Y=x",
        "K:Y=x",
        ".K=x",
    ];
    for entry in kept.iter().chain(&odd) {
        assert!(!fits_env_file(entry), "{entry}");
    }
}

#[test]
fn create_args_leave_out_unset_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = create_args(&spec_in(dir.path()), None).expect("args");
    for flag in ["--cpu-shares", "--memory", "--pids-limit", "--network"] {
        assert!(!args.contains(&flag.to_string()), "{flag} in {args:?}");
    }
}

#[test]
fn create_args_make_a_relative_mount_source_absolute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = std::env::current_dir().expect("cwd");
    let relative = pathdiff(dir.path(), &cwd);
    let args = create_args(&spec_in(&relative), None).expect("args");
    let volume = &args[args.iter().position(|a| a == "--volume").expect("volume") + 1];
    assert!(volume.starts_with('/'), "{volume}");
    assert_eq!(
        volume,
        &format!(
            "{}:/usr/src/app",
            dir.path().canonicalize().expect("c").display()
        )
    );
}

/// `target` relative to `base` with `..` steps (both absolute).
fn pathdiff(target: &Path, base: &Path) -> PathBuf {
    let mut relative = PathBuf::new();
    for _ in base.components().skip(1) {
        relative.push("..");
    }
    relative.join(target.strip_prefix("/").expect("absolute"))
}

#[test]
fn create_args_refuse_mount_paths_that_would_split() {
    let dir = tempfile::tempdir().expect("tempdir");
    for odd in ["a:b", "a,b"] {
        let source = dir.path().join(odd);
        fs::create_dir(&source).expect("mkdir");
        let error = create_args(&spec_in(&source), None).expect_err("refused");
        assert!(
            matches!(&error, EngineError::InvalidSpec { reason, .. } if reason.contains(odd)),
            "{error}"
        );
    }
}

#[test]
fn create_args_refuse_a_missing_mount_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let error = create_args(&spec_in(&dir.path().join("gone")), None).expect_err("refused");
    assert!(matches!(error, EngineError::InvalidSpec { .. }), "{error}");
}

#[test]
fn create_args_refuse_env_entries_that_would_inherit_without_naming_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in ["SECRET_ONLY_KEY", "=hidden-value"] {
        let mut spec = spec_in(dir.path());
        spec.env.push(entry.into());
        let error = create_args(&spec, None).expect_err("refused");
        let text = error.to_string();
        assert!(text.contains("env entry 3"), "{text}");
        assert!(!text.contains(entry), "{text}");
    }
}

#[test]
fn create_args_refuse_values_that_read_as_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = spec_in(dir.path());
    spec.image = "--privileged".into();
    assert!(create_args(&spec, None).is_err());

    let mut spec = spec_in(dir.path());
    spec.workdir = "relative".into();
    assert!(create_args(&spec, None).is_err());

    let mut spec = spec_in(dir.path());
    spec.pull = "sometimes".into();
    assert!(create_args(&spec, None).is_err());

    let mut spec = spec_in(dir.path());
    spec.labels.push(("".into(), "x".into()));
    assert!(create_args(&spec, None).is_err());
}

// ---- scripted fake engine ----

/// A fake engine: `body` is the shell script after `#!/bin/sh`, `$1` the subcommand.
struct FakeEngine {
    _dir: tempfile::TempDir,
    engine: Engine,
}

fn fake(body: &str, timeout: Duration) -> FakeEngine {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("docker");
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    let engine = Engine::new(path.to_str().expect("utf-8"), timeout);
    FakeEngine { _dir: dir, engine }
}

const DAEMON_DOWN: &str = r#"echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1"#;

#[test]
fn engine_binary_that_does_not_exist_is_not_installed() {
    let engine = Engine::new("/nonexistent/sideload/docker", Duration::from_secs(5));
    assert_eq!(
        engine.ping(),
        Err(EngineError::NotInstalled {
            binary: "/nonexistent/sideload/docker".into()
        })
    );
    assert!(matches!(
        engine.remove("x"),
        Err(EngineError::NotInstalled { .. })
    ));
}

#[test]
fn daemon_down_is_unreachable_with_the_engines_message() {
    let fake = fake(DAEMON_DOWN, Duration::from_secs(5));
    let dir = tempfile::tempdir().expect("tempdir");
    for result in [
        fake.engine.ping().map(|_| ()),
        fake.engine.create(&spec_in(dir.path())).map(|_| ()),
        fake.engine.inspect("m1").map(|_| ()),
        fake.engine.stop("m1", Duration::from_secs(1)),
        fake.engine.remove("m1"),
        fake.engine.list_labelled("k", "v").map(|_| ()),
        fake.engine.stats(&["m1".into()]).map(|_| ()),
    ] {
        match result {
            Err(EngineError::Unreachable { message, .. }) => {
                assert_eq!(
                    message,
                    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
                );
            }
            other => panic!("expected unreachable, got {other:?}"),
        }
    }
}

#[test]
fn podman_socket_down_is_unreachable() {
    let fake = fake(
        r#"echo 'Error: unable to connect to Podman socket: Get "http://d/v4.0.0/libpod/_ping": dial unix /run/podman/podman.sock: connect: no such file or directory' >&2; exit 125"#,
        Duration::from_secs(5),
    );
    assert!(matches!(
        fake.engine.ping(),
        Err(EngineError::Unreachable { .. })
    ));
}

#[test]
fn create_of_a_missing_image_is_no_such_image() {
    let fake = fake(
        r#"echo "Unable to find image 'runner:latest' locally" >&2
echo "Error response from daemon: pull access denied for runner, repository does not exist or may require 'docker login'" >&2
exit 125"#,
        Duration::from_secs(5),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    match fake.engine.create(&spec_in(dir.path())) {
        Err(EngineError::NoSuchImage { image, message }) => {
            assert_eq!(image, "runner:latest");
            assert!(message.contains("pull access denied"), "{message}");
        }
        other => panic!("expected no such image, got {other:?}"),
    }
}

#[test]
fn create_failure_never_shows_env_values() {
    // Like docker for a bad option: the offending arguments echoed on stderr.
    let fake = fake(
        r#"echo "invalid argument: $*" >&2; exit 125"#,
        Duration::from_secs(5),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let error = fake
        .engine
        .create(&spec_in(dir.path()))
        .expect_err("failed");
    let EngineError::Failed { command, message } = &error else {
        panic!("expected failed, got {error:?}");
    };
    assert_eq!(command, &format!("{} create", fake.engine.binary()));
    assert!(message.starts_with("invalid argument: create"), "{message}");
    assert!(!error.to_string().contains("s3cr3t-value"), "{error}");
}

#[test]
fn create_returns_the_trimmed_id() {
    let fake = fake(
        r#"[ "$1" = create ] || exit 3; printf '  abc123def  \n'"#,
        Duration::from_secs(5),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        fake.engine.create(&spec_in(dir.path())).as_deref(),
        Ok("abc123def")
    );
}

#[test]
fn hanging_engine_times_out_within_bounded_time() {
    // Not `exec sleep`: the sleeping grandchild holds the pipes and must die too.
    let fake = fake("sleep 30; echo late", Duration::from_millis(300));
    let started = Instant::now();
    let result = fake.engine.inspect("m1");
    assert_eq!(
        result,
        Err(EngineError::TimedOut {
            command: format!("{} inspect", fake.engine.binary()),
            seconds: 1
        })
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn inspect_of_a_missing_container_is_no_such_container() {
    let fake = fake(
        r#"echo; echo "Error response from daemon: No such container: m1" >&2; exit 1"#,
        Duration::from_secs(5),
    );
    assert_eq!(
        fake.engine.inspect("m1"),
        Err(EngineError::NoSuchContainer { name: "m1".into() })
    );
}

#[test]
fn stop_and_remove_of_a_gone_container_succeed() {
    let fake = fake(
        r#"echo "Flag --time has been deprecated, use --timeout instead" >&2
echo "Error response from daemon: No such container: m1" >&2; exit 1"#,
        Duration::from_secs(5),
    );
    assert_eq!(fake.engine.stop("m1", Duration::from_millis(1500)), Ok(()));
    assert_eq!(fake.engine.remove("m1"), Ok(()));
}

#[test]
fn stop_rounds_the_grace_period_up_to_whole_seconds() {
    let fake = fake(
        r#"[ "$*" = "stop --time 2 -- m1" ] && exit 0; echo "got: $*" >&2; exit 1"#,
        Duration::from_secs(5),
    );
    assert_eq!(fake.engine.stop("m1", Duration::from_millis(1500)), Ok(()));
}

#[test]
fn other_failures_carry_command_and_engine_message() {
    let fake = fake(
        r#"echo "Error response from daemon: something broke" >&2; exit 1"#,
        Duration::from_secs(5),
    );
    assert_eq!(
        fake.engine.remove("m1"),
        Err(EngineError::Failed {
            command: format!("{} rm", fake.engine.binary()),
            message: "Error response from daemon: something broke".into()
        })
    );
}

#[test]
fn stats_of_no_names_runs_nothing() {
    let engine = Engine::new("/nonexistent/sideload/docker", Duration::from_secs(5));
    assert_eq!(engine.stats(&[]), Ok(Vec::new()));
}

/// Like docker 28: any missing name makes it print nothing and fail.
const STATS_WITH_GONE: &str = r#"[ "$1" = stats ] || exit 3
shift 5
for n in "$@"; do
  case "$n" in gone*) echo "Error response from daemon: No such container: $n" >&2; bad=1;; esac
done
[ -n "$bad" ] && exit 1
for n in "$@"; do
  echo "{\"BlockIO\":\"0B / 4.1kB\",\"CPUPerc\":\"1.50%\",\"MemUsage\":\"2MiB / 1GiB\",\"Name\":\"$n\",\"NetIO\":\"1kB / 2kB\"}"
done"#;

#[test]
fn stats_leave_out_containers_that_are_gone() {
    let fake = fake(STATS_WITH_GONE, Duration::from_secs(5));
    let names: Vec<String> = ["m1", "gone1", "m2"]
        .iter()
        .map(|n| n.to_string())
        .collect();
    let stats = fake.engine.stats(&names).expect("stats");
    let got: Vec<(&str, u64)> = stats
        .iter()
        .map(|s| (s.name.as_str(), s.mem_bytes))
        .collect();
    assert_eq!(got, vec![("m1", 2 * 1024 * 1024), ("m2", 2 * 1024 * 1024)]);
    assert_eq!(stats[0].net_tx_bytes, 2_000);
}

#[test]
fn stats_of_only_gone_containers_are_empty() {
    let fake = fake(STATS_WITH_GONE, Duration::from_secs(5));
    assert_eq!(fake.engine.stats(&["gone1".into()]), Ok(Vec::new()));
}

#[test]
fn list_labelled_reads_one_container_per_line() {
    let fake = fake(
        r#"[ "$*" = "ps --all --no-trunc --filter label=rt=r1 --format {{json .}}" ] || { echo "got: $*" >&2; exit 1; }
echo '{"ID":"aaa","Names":"c1","Labels":"rt=r1,org.silverline.sideload.module=m1","Status":"Up 1 second"}'
echo '{"ID":"bbb","Names":"c2","Labels":"rt=r1","Status":"Created"}'"#,
        Duration::from_secs(5),
    );
    let found = fake.engine.list_labelled("rt", "r1").expect("list");
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].module.as_deref(), Some("m1"));
    assert_eq!(found[1].name, "c2");
    assert_eq!(found[1].module, None);
}

/// Like podman 4.3: the records come as one JSON array with podman's field names,
/// and any missing name makes it print nothing and fail with its own wording.
const PODMAN_STATS_WITH_GONE: &str = r#"[ "$1" = stats ] || exit 3
shift 5
for n in "$@"; do
  case "$n" in gone*) echo "Error: unable to get list of containers: unable to look up container $n: no container with name or ID \"$n\" found: no such container" >&2; exit 125;; esac
done
echo "["
sep=""
for n in "$@"; do
  printf '%s {\n  "id": "613f92597536",\n  "name": "%s",\n  "cpu_percent": "1.59%%",\n  "mem_usage": "2.998MB / 25.28GB",\n  "net_io": "516B / 1.44kB",\n  "block_io": "0B / 0B",\n  "pids": "1"\n }\n' "$sep" "$n"
  sep=","
done
echo "]""#;

#[test]
fn podman_stats_leave_out_containers_that_are_gone() {
    let fake = fake(PODMAN_STATS_WITH_GONE, Duration::from_secs(5));
    let names: Vec<String> = ["m1", "gone1", "m2"]
        .iter()
        .map(|n| n.to_string())
        .collect();
    let stats = fake.engine.stats(&names).expect("stats");
    let got: Vec<(&str, u64, u64)> = stats
        .iter()
        .map(|s| (s.name.as_str(), s.mem_bytes, s.net_tx_bytes))
        .collect();
    assert_eq!(
        got,
        vec![("m1", 2_998_000, 1_440), ("m2", 2_998_000, 1_440)]
    );
    assert_eq!(stats[0].cpu_percent, 1.59);
    assert_eq!(fake.engine.stats(&["gone1".into()]), Ok(Vec::new()));
}

#[test]
fn list_labelled_reads_podmans_array() {
    let fake = fake(
        r#"[ "$*" = "ps --all --no-trunc --filter label=rt=r1 --format {{json .}}" ] || { echo "got: $*" >&2; exit 1; }
cat <<'END'
[
  {
    "Id": "613f925975369d0cf272cd8f9fcce6ee44bc4a06ff6a612658f90dd2f221ee22",
    "Labels": {
      "org.silverline.sideload.module": "m1",
      "rt": "r1"
    },
    "Names": [
      "c1"
    ],
    "State": "running",
    "Status": "Up 2 seconds"
  },
  {
    "Id": "bbb",
    "Labels": {
      "rt": "r1"
    },
    "Names": [
      "c2"
    ],
    "State": "created",
    "Status": "Created"
  }
]
END"#,
        Duration::from_secs(5),
    );
    let found = fake.engine.list_labelled("rt", "r1").expect("list");
    let got: Vec<(&str, Option<&str>)> = found
        .iter()
        .map(|c| (c.name.as_str(), c.module.as_deref()))
        .collect();
    assert_eq!(got, vec![("c1", Some("m1")), ("c2", None)]);
}

#[test]
fn podman_stop_of_a_gone_container_succeeds_and_inspect_names_it() {
    let fake = fake(
        r#"case "$1" in
  stop) echo 'Error: no container with name or ID "m1" found: no such container' >&2;;
  inspect) echo 'Error: inspecting object: no such container m1' >&2;;
esac
exit 125"#,
        Duration::from_secs(5),
    );
    assert_eq!(fake.engine.stop("m1", Duration::from_secs(1)), Ok(()));
    assert_eq!(
        fake.engine.inspect("m1"),
        Err(EngineError::NoSuchContainer { name: "m1".into() })
    );
}

#[test]
fn podman_create_of_an_unresolvable_short_name_is_no_such_image() {
    let fake = fake(
        r#"echo 'Error: short-name "runner:latest" did not resolve to an alias and no unqualified-search registries are defined in "/etc/containers/registries.conf"' >&2; exit 125"#,
        Duration::from_secs(5),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        fake.engine.create(&spec_in(dir.path())),
        Err(EngineError::NoSuchImage { .. })
    ));
}

#[test]
fn ping_of_an_answering_engine_is_ok() {
    let fake = fake(
        r#"[ "$*" = "version --format {{.Server.Version}}" ] && echo 20.10.24"#,
        Duration::from_secs(5),
    );
    assert_eq!(fake.engine.ping(), Ok(()));
}

// ---- the real engine ----

/// Removes the named container when dropped, whether the test passed or not.
struct ContainerGuard {
    name: String,
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "--force", "--volumes", &self.name])
            .output();
    }
}

fn real_engine() -> Engine {
    Engine::new("docker", Duration::from_secs(60))
}

fn unique_name() -> String {
    format!("engine-cli-test-{}", uuid::Uuid::new_v4().simple())
}

fn sleeper_spec(dir: &Path, name: &str, labels: Vec<(String, String)>) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        image: REAL_IMAGE.into(),
        mount_source: dir.to_path_buf(),
        workdir: "/usr/src/app".into(),
        env: vec!["PROGRAM_OBJECT_ID=test".into()],
        labels,
        command: vec![
            "python3".into(),
            "-c".into(),
            "import time; time.sleep(60)".into(),
        ],
        pull: "never".into(),
        // No bridge needed: these tests must not depend on the host's docker0.
        network: Some("none".into()),
        ..ContainerSpec::default()
    }
}

fn start(name: &str) {
    let status = Command::new("docker")
        .args(["start", name])
        .output()
        .expect("docker start");
    assert!(status.status.success(), "{status:?}");
}

#[test]
fn real_engine_answers_ping() {
    assert_eq!(real_engine().ping(), Ok(()));
}

#[test]
fn real_engine_creates_inspects_stops_and_removes_a_container() {
    let engine = real_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique_name();
    let _guard = ContainerGuard { name: name.clone() };

    let id = engine
        .create(&sleeper_spec(dir.path(), &name, Vec::new()))
        .expect("create");
    assert_eq!(id.len(), 64, "{id}");

    let created = engine.inspect(&name).expect("inspect created");
    assert_eq!(created.status, "created");
    assert!(!created.started && !created.running);
    assert_eq!(created.exit_code, None);

    start(&name);
    let running = engine.inspect(&name).expect("inspect running");
    assert!(running.running && running.started);
    assert!(running.pid.is_some());

    engine.stop(&name, Duration::from_secs(1)).expect("stop");
    let stopped = engine.inspect(&name).expect("inspect stopped");
    assert_eq!(stopped.status, "exited");
    assert!(!stopped.running);
    // python3 as pid 1 ignores SIGTERM, so the grace period ends in SIGKILL.
    assert_eq!(stopped.exit_code, Some(137));

    engine
        .stop(&name, Duration::from_secs(1))
        .expect("stop again");
    engine.remove(&name).expect("remove");
    assert_eq!(
        engine.inspect(&name),
        Err(EngineError::NoSuchContainer { name: name.clone() })
    );
    engine.remove(&name).expect("remove again");
    engine
        .stop(&name, Duration::from_secs(1))
        .expect("stop gone");
}

#[test]
fn real_engine_stats_of_a_running_container_have_memory() {
    let engine = real_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique_name();
    let _guard = ContainerGuard { name: name.clone() };
    engine
        .create(&sleeper_spec(dir.path(), &name, Vec::new()))
        .expect("create");
    start(&name);

    let gone = unique_name();
    let stats = engine.stats(&[gone, name.clone()]).expect("stats");
    assert_eq!(stats.len(), 1, "{stats:?}");
    assert_eq!(stats[0].name, name);
    assert!(stats[0].mem_bytes > 0, "{stats:?}");
    assert!(stats[0].cpu_percent >= 0.0);
}

#[test]
fn real_engine_lists_containers_by_label_value() {
    let engine = real_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let value = uuid::Uuid::new_v4().to_string();
    let other_value = uuid::Uuid::new_v4().to_string();
    let ours = unique_name();
    let theirs = unique_name();
    let _guards = [
        ContainerGuard { name: ours.clone() },
        ContainerGuard {
            name: theirs.clone(),
        },
    ];
    let labels = |runtime: &str| {
        vec![
            (LABEL_RUNTIME.to_string(), runtime.to_string()),
            (LABEL_MODULE.to_string(), "module-1".to_string()),
            (LABEL_MODULE_NAME.to_string(), "pinger".to_string()),
        ]
    };
    let id = engine
        .create(&sleeper_spec(dir.path(), &ours, labels(&value)))
        .expect("create ours");
    engine
        .create(&sleeper_spec(dir.path(), &theirs, labels(&other_value)))
        .expect("create theirs");

    let found = engine.list_labelled(LABEL_RUNTIME, &value).expect("list");
    assert_eq!(
        found,
        vec![ContainerSummary {
            id,
            name: ours,
            module: Some("module-1".into()),
            status: "Created".into(),
        }]
    );
}

#[test]
fn real_engine_create_with_a_missing_image_is_no_such_image() {
    let engine = real_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique_name();
    let _guard = ContainerGuard { name: name.clone() };
    let spec = ContainerSpec {
        image: "sideload-no-such-image:none".into(),
        ..sleeper_spec(dir.path(), &name, Vec::new())
    };
    match engine.create(&spec) {
        Err(EngineError::NoSuchImage { image, message }) => {
            assert_eq!(image, "sideload-no-such-image:none");
            assert!(message.contains("No such image"), "{message}");
        }
        other => panic!("expected no such image, got {other:?}"),
    }
}

#[test]
fn attach_start_command_ends_options_before_the_name() {
    let engine = Engine::new("podman", Duration::from_secs(5));
    let command = engine.attach_start_command("-odd-name");
    let args: Vec<_> = command.get_args().collect();
    assert_eq!(command.get_program(), "podman");
    assert_eq!(
        args,
        ["start", "--attach", "--interactive", "--", "-odd-name"]
    );
}

#[test]
fn attached_start_runs_in_a_process_group_of_its_own() {
    let engine = Engine::new("sleep", Duration::from_secs(5));
    let mut command = engine.attach_start_command("x");
    // `sleep start --attach ...` fails at once; only its process group matters.
    let child = command
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: getpgid(2) on a child of this test that has not been waited for.
    let group = unsafe { libc::getpgid(pid) };
    let mut child = child;
    let _ = child.wait();
    assert_eq!(group, pid);
}
