//! WebAssembly modules as the orchestrator sees them: create responses, stdout and
//! stderr topics, argv and env, stdin, exit codes, traps, deletes (of busy, blocked
//! and named modules), duplicate creates, the memory limit.
//!
//! Not for: malformed requests (bad_input.rs) or runtime-wide limits (limits.rs).

mod common;

use std::time::{Duration, Instant};

use common::{exit_code_of, start_registered_runtime, with_programs, Fixture, WAIT};
use serde_json::json;

fn no_args() -> serde_json::Value {
    json!({"argv": [], "env": []})
}

fn fixture() -> Fixture {
    start_registered_runtime(with_programs())
}

#[test]
fn hello_is_answered_ok_prints_its_line_and_is_reported_exited() {
    let mut fx = fixture();
    let m = fx.create("hello.wasm", no_args());

    let ok = fx.expect_ok(&m.object_id, WAIT);
    assert_eq!(ok["action"], "create", "create response: {ok}");
    let out = fx.expect_stdout(&m.uuid, "hello world\n", WAIT);
    assert_eq!(out, "hello world\n");

    let exited = fx.expect_exited(&m.uuid, WAIT);
    assert_eq!(exited["type"], "req", "exited notice: {exited}");
    assert_eq!(exited["data"]["type"], "module", "exited notice: {exited}");
    assert_eq!(
        exited["data"]["status"], "exited",
        "exited notice: {exited}"
    );
    assert!(
        exited["object_id"].as_str().is_some_and(|s| !s.is_empty()),
        "exited notice without object_id: {exited}"
    );
}

#[test]
fn stderr_goes_to_the_stderr_topic() {
    let mut fx = fixture();
    let m = fx.create("stderr.wasm", no_args());

    let topic = fx.rt.topics.stderr(&m.uuid);
    fx.orch.expect_output(&topic, "oops on stderr\n", WAIT);
    fx.expect_exited(&m.uuid, WAIT);

    let stdout = fx.rt.topics.stdout(&m.uuid);
    fx.orch.expect_none(
        "stderr text on the stdout topic",
        |t| t == stdout,
        |_| true,
        Duration::ZERO,
    );
}

#[test]
fn argv_and_env_reach_the_program_without_a_shell() {
    let mut fx = fixture();
    let m = fx.create(
        "args_env.wasm",
        json!({"argv": ["x", "y z", "$HOME"], "env": ["K=V", "GREETING=hello there"]}),
    );

    let out = fx.expect_stdout(&m.uuid, "GREETING=hello there\n", WAIT);
    assert!(out.contains("x\ny z\n$HOME\n"), "argv as given: {out:?}");
    assert!(out.contains("K=V\n"), "env as given: {out:?}");
    fx.expect_exited(&m.uuid, WAIT);
}

#[test]
fn stdin_messages_reach_the_program_as_lines() {
    let mut fx = fixture();
    let m = fx.create("echo.wasm", no_args());
    fx.expect_ok(&m.object_id, WAIT);

    let stdin = fx.rt.topics.stdin(&m.uuid);
    fx.orch.publish_raw(&stdin, "ping");
    fx.expect_stdout(&m.uuid, "ping\n", WAIT);
    fx.orch.publish_raw(&stdin, "pong\n");
    let out = fx.expect_stdout(&m.uuid, "pong\n", WAIT);
    assert_eq!(out, "pong\n", "one newline added only when missing");

    fx.delete(&m.uuid);
    fx.expect_exited(&m.uuid, WAIT);
}

#[test]
fn exit_code_is_reported_in_the_exited_notice() {
    let mut fx = fixture();
    let m = fx.create("exit_code.wasm", no_args());

    let exited = fx.expect_exited(&m.uuid, WAIT);
    assert_eq!(exit_code_of(&exited), Some(3), "exit code 3 in: {exited}");
}

#[test]
fn trap_is_reported_as_exited_and_the_runtime_stays_up() {
    let mut fx = fixture();
    let m = fx.create("trap.wasm", no_args());

    fx.expect_exited(&m.uuid, WAIT);
    fx.assert_hello_still_works();
}

#[test]
fn delete_stops_a_spinning_module_within_two_seconds() {
    let mut fx = fixture();
    let m = fx.create("spin.wasm", no_args());
    fx.expect_ok(&m.object_id, WAIT);

    let asked = Instant::now();
    fx.delete(&m.uuid);
    fx.expect_exited(&m.uuid, Duration::from_secs(5));
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(2), "stopping took {took:?}");
    fx.assert_hello_still_works();
}

#[test]
fn delete_stops_a_module_blocked_on_stdin() {
    let mut fx = fixture();
    let m = fx.create("echo.wasm", no_args());
    fx.expect_ok(&m.object_id, WAIT);

    let asked = Instant::now();
    fx.delete(&m.uuid);
    fx.expect_exited(&m.uuid, Duration::from_secs(5));
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(2), "stopping took {took:?}");
}

#[test]
fn delete_by_name_stops_the_module() {
    let mut fx = fixture();
    let m = fx.create("echo.wasm", no_args());
    fx.expect_ok(&m.object_id, WAIT);

    fx.delete(&m.name);
    fx.expect_exited(&m.uuid, WAIT);
}

#[test]
fn duplicate_create_is_answered_ok_and_runs_one_instance() {
    let mut fx = fixture();
    let m = fx.create("echo.wasm", no_args());
    fx.expect_ok(&m.object_id, WAIT);

    let mut again = m.clone();
    again.object_id = common::new_uuid();
    fx.create_as(&again, "echo.wasm", no_args());
    fx.expect_ok(&again.object_id, WAIT);

    // Two instances would both echo each line.
    let stdin = fx.rt.topics.stdin(&m.uuid);
    fx.orch.publish_raw(&stdin, "one");
    fx.expect_stdout(&m.uuid, "one\n", WAIT);
    fx.orch.publish_raw(&stdin, "two");
    let out = fx.expect_stdout(&m.uuid, "two\n", WAIT);
    assert_eq!(out, "two\n", "only one instance echoes");

    fx.delete(&m.uuid);
    fx.expect_exited(&m.uuid, WAIT);
    let control = fx.rt.topics.control();
    let uuid = m.uuid.clone();
    fx.orch.expect_none(
        "a second exited notice",
        |t| t == control,
        |v| v["action"] == "exited" && v["data"]["uuid"] == uuid.as_str(),
        Duration::from_secs(1),
    );
}

#[test]
fn memory_growth_past_the_limit_fails_cleanly() {
    let mut fx = start_registered_runtime(
        with_programs().settings(json!({"launcher": {"wasm": {"max_memory_bytes": 1048576}}})),
    );
    let m = fx.create("grow_memory.wasm", no_args());

    fx.expect_stdout(&m.uuid, "grow failed\n", WAIT);
    fx.expect_exited(&m.uuid, WAIT);
    fx.assert_hello_still_works();
}
