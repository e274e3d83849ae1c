//! Python modules through podman instead of docker, end to end with the real binary:
//! the engine chosen by the `SIDELOAD__LAUNCHER__PY__DOCKER__ENGINE` override, argv
//! and stdin/stdout, stderr, exit code, keepalive stats from podman's `stats`, delete,
//! and the orphan sweep reading podman's `ps`.
//!
//! Not for: the docker engine (python_modules.rs, orphans.rs). `make test` installs
//! podman and sets `SIDELOAD_REQUIRE_PODMAN=1`, so these tests fail there when podman
//! cannot run them; run alone (`cargo test`) they skip with a line saying why.

mod common;

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::engine::{with_python, RUNNER_IMAGE};
use common::{
    exit_code_of, start_registered_runtime, unique_realm, Broker, Fixture, Runtime, RuntimeOptions,
    WAIT,
};
use serde_json::{json, Value};

const START: Duration = Duration::from_secs(60);

/// Options every podman create of these tests gets. The ulimits are for hosts without
/// CAP_SYS_RESOURCE (containers, CI sandboxes): podman 4.3 as root asks for
/// nofile=1048576, which the OCI runtime cannot set there ("error setting rlimit").
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=4096:4096",
];

/// OCI runtimes to try, podman's default first. crun 1.8 refuses hosts whose cgroup v1
/// hierarchies sit beside a v2 one with controllers ("cgroups in hybrid mode not
/// supported"), as some VMs have; runc (installed with docker.io) runs there.
const OCI_RUNTIMES: [&[&str]; 2] = [&[], &["--runtime", "runc"]];

/// The extra options under which podman runs a container of the runner image here,
/// probed once: the ulimits plus the first OCI runtime that works. `None` (with the
/// reasons printed) when none does.
fn podman_create_options() -> Option<&'static [String]> {
    static OPTIONS: OnceLock<Option<Vec<String>>> = OnceLock::new();
    OPTIONS
        .get_or_init(|| {
            for runtime in OCI_RUNTIMES {
                let mut options: Vec<String> = ULIMITS.iter().map(|s| s.to_string()).collect();
                options.extend(runtime.iter().map(|s| s.to_string()));
                let out = Command::new("podman")
                    .arg("run")
                    .arg("--rm")
                    .args(&options)
                    .args([RUNNER_IMAGE, "python3", "-c", "print('up')"])
                    .output();
                match out {
                    Ok(out) if out.status.success() && out.stdout == b"up\n" => {
                        return Some(options)
                    }
                    Ok(out) => eprintln!(
                        "podman cannot run a container with {options:?}: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                    Err(err) => eprintln!("podman cannot be run: {err}"),
                }
            }
            None
        })
        .as_deref()
}

/// Settings that make the runtime use podman with the probed create options.
fn podman_appsettings(create_options: &[String]) -> String {
    let quoted: Vec<String> = create_options.iter().map(|o| format!("'{o}'")).collect();
    format!(
        "launcher:
  PY:
    docker:
      extra_args: [{}]
      stop_grace_sec: 1
",
        quoted.join(", ")
    )
}

/// Whether podman can run the tests here; prints why not, or fails when the test
/// command promised podman (`SIDELOAD_REQUIRE_PODMAN=1`).
fn podman_ready() -> bool {
    let ready = podman_usable();
    if !ready && std::env::var("SIDELOAD_REQUIRE_PODMAN").is_ok_and(|v| v == "1") {
        panic!("podman is required here (SIDELOAD_REQUIRE_PODMAN=1) but cannot run the tests");
    }
    ready
}

fn podman_usable() -> bool {
    let Ok(out) = Command::new("podman").args(["--version"]).output() else {
        eprintln!("SKIPPED: podman is not installed");
        return false;
    };
    if !out.status.success() {
        eprintln!("SKIPPED: 'podman --version' failed");
        return false;
    }
    if podman_has_image() {
        return podman_runs_containers();
    }
    // Copy the runner image from docker's storage, as the README says.
    let copied = Command::new("sh")
        .args([
            "-c",
            &format!("docker save {RUNNER_IMAGE}:latest | podman load"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if copied && podman_has_image() {
        return podman_runs_containers();
    }
    eprintln!("SKIPPED: podman has no image '{RUNNER_IMAGE}' and none could be loaded from docker");
    false
}

fn podman_runs_containers() -> bool {
    if podman_create_options().is_some() {
        return true;
    }
    eprintln!("SKIPPED: podman cannot run a container of '{RUNNER_IMAGE}' here");
    false
}

fn podman_has_image() -> bool {
    Command::new("podman")
        .args(["image", "exists", RUNNER_IMAGE])
        .status()
        .is_ok_and(|status| status.success())
}

/// Names of podman's containers, in any state, labelled with `runtime_uuid`.
fn podman_containers_of(runtime_uuid: &str) -> Vec<String> {
    let out = Command::new("podman")
        .args([
            "ps",
            "--all",
            "--filter",
            &format!("label=org.silverline.sideload.runtime={runtime_uuid}"),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .expect("run podman ps");
    assert!(out.status.success(), "podman ps failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

/// Removes the runtime's podman containers however the test ends.
struct PodmanJanitor(String);

impl Drop for PodmanJanitor {
    fn drop(&mut self) {
        for name in podman_containers_of(&self.0) {
            let _ = Command::new("podman")
                .args(["rm", "--force", "--", &name])
                .output();
        }
    }
}

fn podman_options() -> RuntimeOptions {
    let names = ["argv_env", "echo", "exit_code", "stderr_writer", "stubborn"];
    with_python(RuntimeOptions::default(), &names)
        .env("SIDELOAD__LAUNCHER__PY__DOCKER__ENGINE", "podman")
        .appsettings(&podman_appsettings(
            podman_create_options().expect("probed by podman_ready"),
        ))
}

fn args(argv: &[&str]) -> Value {
    json!({"argv": argv, "env": []})
}

fn assert_gone(fx: &Fixture) {
    let left = podman_containers_of(&fx.rt.uuid);
    assert!(left.is_empty(), "podman containers left: {left:?}");
    let files = fx.rt.leftover_module_files(Duration::from_secs(2));
    assert!(
        files.is_empty(),
        "files left in the state folder: {files:?}"
    );
}

#[test]
fn python_modules_run_through_podman_with_stdio_stats_exit_codes_and_delete() {
    if !podman_ready() {
        return;
    }
    let options = podman_options().settings(json!({"runtime": {"ka_interval_sec": 2}}));
    let mut fx = start_registered_runtime(options);
    let _janitor = PodmanJanitor(fx.rt.uuid.clone());

    let echo = fx.create("py/echo/echo.py", args(&[]));
    fx.expect_ok(&echo.object_id, START);
    fx.expect_stdout(&echo.uuid, "ready\n", START);
    assert_eq!(
        podman_containers_of(&fx.rt.uuid),
        vec![format!("sideload-{}", echo.uuid)],
        "the module runs in podman"
    );
    let stdin = fx.rt.topics.stdin(&echo.uuid);
    fx.orch.publish_raw(&stdin, "through podman");
    fx.expect_stdout(&echo.uuid, "echo: through podman\n", WAIT);

    let topic = fx.rt.topics.keepalive();
    let uuid = echo.uuid.clone();
    fx.orch.expect(
        "a keepalive with the module's memory from podman stats",
        |t| t == topic,
        |v| {
            v["data"]["children"].as_array().is_some_and(|children| {
                children
                    .iter()
                    .any(|c| c["uuid"] == uuid.as_str() && c["mem_usage"].as_u64() > Some(0))
            })
        },
        Duration::from_secs(30),
    );

    let env = fx.create(
        "py/argv_env/argv_env.py",
        json!({"argv": ["a b"], "env": ["SL_K=v w ", "SL_PEM=one\ntwo"]}),
    );
    let line = fx.expect_stdout(&env.uuid, "}", START);
    let seen: Value = serde_json::from_str(line.trim()).expect("one JSON line");
    assert_eq!(seen["argv"], json!(["a b"]), "{seen}");
    assert_eq!(seen["env"]["SL_K"], "v w ", "{seen}");
    assert_eq!(seen["env"]["SL_PEM"], "one\ntwo", "{seen}");
    assert_eq!(
        seen["env"]["PROGRAM_OBJECT_ID"],
        env.uuid.as_str(),
        "{seen}"
    );
    fx.expect_exited(&env.uuid, START);

    let stderr = fx.create("py/stderr_writer/stderr_writer.py", args(&[]));
    let stderr_topic = fx.rt.topics.stderr(&stderr.uuid);
    fx.orch.expect_output(&stderr_topic, "to stderr\n", START);
    fx.expect_stdout(&stderr.uuid, "to stdout\n", WAIT);
    fx.expect_exited(&stderr.uuid, START);

    let exit = fx.create("py/exit_code/exit_code.py", args(&["7"]));
    fx.expect_stdout(&exit.uuid, "bye\n", START);
    let exited = fx.expect_exited(&exit.uuid, START);
    assert_eq!(exit_code_of(&exited), Some(7), "{exited}");

    let stubborn = fx.create("py/stubborn/stubborn.py", args(&[]));
    fx.expect_stdout(&stubborn.uuid, "ready\n", START);
    let delete_id = fx.delete(&stubborn.uuid);
    fx.expect_ok(&delete_id, WAIT);
    let exited = fx.expect_exited(&stubborn.uuid, START);
    assert_eq!(
        exit_code_of(&exited),
        Some(137),
        "killed after the grace: {exited}"
    );

    let delete_id = fx.delete(&echo.uuid);
    fx.expect_ok(&delete_id, WAIT);
    fx.expect_exited(&echo.uuid, START);
    assert_gone(&fx);
}

#[test]
fn podman_containers_of_a_killed_runtime_are_swept_at_its_next_start() {
    if !podman_ready() {
        return;
    }
    let state = tempfile::tempdir().expect("shared state folder");
    let uuid = common::new_uuid();
    let options = || {
        podman_options().settings(json!({"runtime": {
            "uuid": uuid,
            "state_dir": state.path().to_string_lossy(),
        }}))
    };
    let _janitor = PodmanJanitor(uuid.clone());

    let mut fx = start_registered_runtime(options());
    let m = fx.create("py/stubborn/stubborn.py", args(&[]));
    fx.expect_ok(&m.object_id, START);
    fx.expect_stdout(&m.uuid, "ready\n", START);
    fx.rt.kill();
    let container = format!("sideload-{}", m.uuid);
    assert_eq!(
        podman_containers_of(&uuid),
        vec![container.clone()],
        "the crash left the container"
    );

    let broker = Broker::start();
    let next = Runtime::start(&broker, &unique_realm(), options());
    next.wait_for_log(
        "the removal of the crashed run's container",
        |log| log.contains(&format!("removing container '{container}'")),
        START,
    );
    next.wait_for_log(
        "the sweep to finish",
        |_| podman_containers_of(&uuid).is_empty(),
        START,
    );
}
