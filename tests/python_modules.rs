//! Python modules in containers, against a real Docker engine and the offline runner
//! image: argv and env, the program folder, stdin and stdout, stderr, exit codes, a
//! fast printer, ten modules at once, deletes (also of a program that ignores
//! SIGTERM), and that no container or work folder is left behind.
//!
//! Not for: engine faults (engine_faults.rs) or the orphan sweep (orphans.rs).

mod common;

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use common::engine::{assert_no_containers_left, with_python, Janitor};
use common::{exit_code_of, start_registered_runtime, Fixture, RuntimeOptions, WAIT};
use serde_json::{json, Value};

/// Container starts are slower than WebAssembly ones, more so on a loaded machine.
const START: Duration = Duration::from_secs(30);

fn python_programs() -> RuntimeOptions {
    let names = [
        "argv_env",
        "echo",
        "exit_code",
        "printer",
        "stubborn",
        "stderr_writer",
        "folder",
    ];
    with_python(RuntimeOptions::default(), &names)
        .program("py/argv_env/lib/extra.txt", b"extra\n".to_vec())
}

/// A registered runtime whose containers are removed however the test ends.
struct PyFixture {
    fx: Fixture,
    _janitor: Janitor,
}

impl Deref for PyFixture {
    type Target = Fixture;
    fn deref(&self) -> &Fixture {
        &self.fx
    }
}

impl DerefMut for PyFixture {
    fn deref_mut(&mut self) -> &mut Fixture {
        &mut self.fx
    }
}

fn fixture_with(options: RuntimeOptions) -> PyFixture {
    let fx = start_registered_runtime(options);
    let janitor = Janitor {
        runtime_uuid: fx.rt.uuid.clone(),
        host: None,
    };
    PyFixture {
        fx,
        _janitor: janitor,
    }
}

fn fixture() -> PyFixture {
    fixture_with(python_programs())
}

fn args(argv: &[&str], env: &[&str]) -> Value {
    json!({"argv": argv, "env": env})
}

/// The module's create is answered, its exit reported, and nothing of it is left.
fn assert_ran_and_cleaned(fx: &mut PyFixture, uuid: &str) -> Value {
    let exited = fx.expect_exited(uuid, START);
    assert_no_containers_left(&fx.rt.uuid);
    let left = fx.rt.leftover_module_files(Duration::from_secs(2));
    assert!(left.is_empty(), "files left in the state folder: {left:?}");
    exited
}

#[test]
fn python_module_gets_argv_env_its_program_folder_and_the_mqtt_credentials() {
    let options =
        python_programs().secrets("mqtt:\n  username: pyuser\n  password: s3cret-token\n");
    let mut fx = fixture_with(options);
    let m = fx.create(
        "py/argv_env/argv_env.py",
        args(
            &["x", "y z", "$HOME"],
            &[
                "SL_K=V",
                "SL_GREETING=hello there",
                "SL_BLANKS= both ends ",
                "SL_EMPTY=",
                "SL_PEM=line one\nline two",
            ],
        ),
    );

    fx.expect_ok(&m.object_id, START);
    let line = fx.expect_stdout(&m.uuid, "}", START);
    let seen: Value = serde_json::from_str(line.trim()).expect("one JSON line");
    assert_eq!(seen["argv"], json!(["x", "y z", "$HOME"]), "{seen}");
    assert_eq!(seen["env"]["SL_K"], "V", "{seen}");
    assert_eq!(seen["env"]["SL_GREETING"], "hello there", "{seen}");
    // Through the engine's env file, and (with a line break) its command line.
    assert_eq!(seen["env"]["SL_BLANKS"], " both ends ", "{seen}");
    assert_eq!(seen["env"]["SL_EMPTY"], "", "{seen}");
    assert_eq!(seen["env"]["SL_PEM"], "line one\nline two", "{seen}");
    assert_eq!(seen["env"]["PROGRAM_OBJECT_ID"], m.uuid.as_str(), "{seen}");
    let files = seen["files"].as_array().expect("files").clone();
    assert!(files.contains(&json!("argv_env.py")), "{seen}");
    assert!(
        files.contains(&json!("lib/extra.txt")),
        "sub-folder fetched: {seen}"
    );
    assert_eq!(seen["auth_user"], "pyuser", "{seen}");
    assert_eq!(seen["auth_token_set"], true, "{seen}");

    let exited = assert_ran_and_cleaned(&mut fx, &m.uuid);
    assert_eq!(exit_code_of(&exited), Some(0), "{exited}");
}

#[test]
fn python_module_imports_from_its_sub_folders() {
    let mut fx = fixture();
    let m = fx.create("py/folder/folder.py", args(&[], &[]));
    fx.expect_ok(&m.object_id, START);
    // No `__pycache__` after the import: the container's root would leave files in
    // the work folder that a runtime which is not root cannot remove.
    fx.expect_stdout(
        &m.uuid,
        "helper says hello from a sub-folder\nlib holds __init__.py helper.py\n",
        START,
    );
    assert_ran_and_cleaned(&mut fx, &m.uuid);
}

#[test]
fn stdin_lines_reach_a_python_module_until_it_is_deleted() {
    let mut fx = fixture();
    let m = fx.create("py/echo/echo.py", args(&[], &[]));
    fx.expect_ok(&m.object_id, START);
    fx.expect_stdout(&m.uuid, "ready\n", START);

    let stdin = fx.rt.topics.stdin(&m.uuid);
    fx.orch.publish_raw(&stdin, "first line");
    fx.expect_stdout(&m.uuid, "echo: first line\n", WAIT);
    fx.orch.publish_raw(&stdin, "second line\n");
    fx.expect_stdout(&m.uuid, "echo: second line\n", WAIT);

    let delete_id = fx.delete(&m.uuid);
    fx.expect_ok(&delete_id, WAIT);
    assert_ran_and_cleaned(&mut fx, &m.uuid);
}

#[test]
fn stderr_of_a_python_module_goes_to_the_stderr_topic() {
    let mut fx = fixture();
    let m = fx.create("py/stderr_writer/stderr_writer.py", args(&[], &[]));
    let topic = fx.rt.topics.stderr(&m.uuid);
    fx.orch.expect_output(&topic, "to stderr\n", START);
    fx.expect_stdout(&m.uuid, "to stdout\n", WAIT);
    assert_ran_and_cleaned(&mut fx, &m.uuid);
}

#[test]
fn exit_code_of_a_python_module_is_reported() {
    let mut fx = fixture();
    let m = fx.create("py/exit_code/exit_code.py", args(&["7"], &[]));
    fx.expect_stdout(&m.uuid, "bye\n", START);
    let exited = assert_ran_and_cleaned(&mut fx, &m.uuid);
    assert_eq!(exit_code_of(&exited), Some(7), "{exited}");
}

#[test]
fn twenty_thousand_lines_of_a_fast_printer_all_arrive_in_order() {
    let mut fx = fixture();
    let m = fx.create("py/printer/printer.py", args(&["20000"], &[]));
    fx.expect_ok(&m.object_id, START);
    let topic = fx.rt.topics.stdout(&m.uuid);
    let text = fx.orch.expect_output(&topic, "line 19999\n", START);
    let exited = assert_ran_and_cleaned(&mut fx, &m.uuid);
    assert_eq!(exit_code_of(&exited), Some(0), "{exited}");

    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 20_000, "lines received");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(*line, format!("line {i}"), "line {i} out of order");
    }
}

#[test]
fn ten_python_modules_run_at_once_and_report_stats_in_keepalives() {
    let options = python_programs().settings(json!({"runtime": {"ka_interval_sec": 2}}));
    let mut fx = fixture_with(options);
    let modules: Vec<_> = (0..10)
        .map(|_| fx.create("py/echo/echo.py", args(&[], &[])))
        .collect();
    for m in &modules {
        fx.expect_ok(&m.object_id, Duration::from_secs(60));
        fx.expect_stdout(&m.uuid, "ready\n", START);
    }
    for (i, m) in modules.iter().enumerate() {
        let stdin = fx.rt.topics.stdin(&m.uuid);
        fx.orch.publish_raw(&stdin, format!("to module {i}"));
    }
    for (i, m) in modules.iter().enumerate() {
        fx.expect_stdout(&m.uuid, &format!("echo: to module {i}\n"), WAIT);
    }

    let topic = fx.rt.topics.keepalive();
    let keepalive = fx.orch.expect(
        "a keepalive with ten modules and their memory",
        |t| t == topic,
        |v| {
            v["data"]["children"].as_array().is_some_and(|children| {
                children.len() == 10
                    && children
                        .iter()
                        .all(|c| c["mem_usage"].as_u64().unwrap_or(0) > 0)
            })
        },
        Duration::from_secs(30),
    );
    for child in keepalive["data"]["children"].as_array().unwrap() {
        assert_eq!(child["filetype"], "PY", "{child}");
        assert!(child["cpu_usage_percent"].as_f64().is_some(), "{child}");
        assert!(child["network_rx_mb"].as_f64().is_some(), "{child}");
        assert!(child["network_tx_pkts"].as_u64().is_some(), "{child}");
    }

    let deletes: Vec<String> = modules.iter().map(|m| fx.delete(&m.uuid)).collect();
    for (m, delete_id) in modules.iter().zip(&deletes) {
        fx.expect_ok(delete_id, WAIT);
        fx.expect_exited(&m.uuid, START);
    }
    assert_no_containers_left(&fx.rt.uuid);
}

#[test]
fn delete_of_a_module_that_ignores_sigterm_kills_it_after_the_grace_period() {
    let appsettings = "launcher:\n  PY:\n    docker:\n      stop_grace_sec: 1\n";
    let mut fx = fixture_with(python_programs().appsettings(appsettings));
    let m = fx.create("py/stubborn/stubborn.py", args(&[], &[]));
    fx.expect_ok(&m.object_id, START);
    fx.expect_stdout(&m.uuid, "ready\n", START);

    let delete_id = fx.delete(&m.uuid);
    fx.expect_ok(&delete_id, WAIT);
    let exited = assert_ran_and_cleaned(&mut fx, &m.uuid);
    assert_eq!(
        exit_code_of(&exited),
        Some(137),
        "killed by SIGKILL: {exited}"
    );
}

#[test]
fn runtime_shutdown_removes_its_containers() {
    let mut fx = fixture();
    let m = fx.create("py/stubborn/stubborn.py", args(&[], &[]));
    fx.expect_stdout(&m.uuid, "ready\n", START);

    fx.rt.terminate();
    fx.expect_exited(&m.uuid, WAIT);
    let status = fx.rt.wait_exit(WAIT).expect("runtime exits");
    assert!(status.success(), "exit status {status}");
    assert_no_containers_left(&fx.rt.uuid);
}

#[test]
fn a_ctrl_c_on_the_runtime_reaches_its_modules_only_as_the_orderly_stop() {
    let mut fx = fixture_with(with_python(RuntimeOptions::default(), &["idle"]));
    let m = fx.create("py/idle/idle.py", args(&[], &[]));
    fx.expect_stdout(&m.uuid, "ready\n", START);

    fx.rt.interrupt_group();
    let exited = fx.expect_exited(&m.uuid, WAIT);
    let status = fx.rt.wait_exit(WAIT).expect("runtime exits");
    assert!(status.success(), "exit status {status}");
    assert_no_containers_left(&fx.rt.uuid);

    // Had the engine's command line passed the SIGINT on, Python would have printed
    // a KeyboardInterrupt traceback and ended with 130 before the stop.
    let stderr = fx.rt.topics.stderr(&m.uuid);
    let printed = fx.orch.wait_for(&|msg| msg.topic == stderr, Duration::ZERO);
    assert!(printed.is_none(), "{:?}", printed.map(|msg| msg.text()));
    assert_ne!(exit_code_of(&exited), Some(130), "{exited}");
}

#[test]
fn a_python_module_is_stopped_at_its_time_limit() {
    let mut fx = fixture_with(with_python(RuntimeOptions::default(), &["idle"]));
    let m = fx.create(
        "py/idle/idle.py",
        json!({"argv": [], "env": [], "limit": 1.0}),
    );
    fx.expect_stdout(&m.uuid, "ready\n", START);

    let exited = assert_ran_and_cleaned(&mut fx, &m.uuid);
    assert_eq!(
        exit_code_of(&exited),
        Some(143),
        "stopped by SIGTERM: {exited}"
    );
    let log = fx.rt.log();
    assert!(log.contains("reached its time limit of 1 s"), "{log}");
}
