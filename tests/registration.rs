//! Registration with the orchestrator as seen on the wire: the request's fields,
//! retries and reply matching, control subscription before registering, registering
//! again after a broker restart, `reg_attempts: -1`, last will, keepalives.
//!
//! Not for: module behaviour (wasm_modules.rs) or shutdown (shutdown.rs).

mod common;

use std::time::Duration;

use common::{is_registration, is_unregistration, start_registered_runtime, start_runtime};
use common::{with_programs, RuntimeOptions, WAIT};
use serde_json::{json, Value};

#[test]
fn registers_with_expected_fields() {
    let mut fx = start_runtime(RuntimeOptions::default());
    let req = fx.expect_registration(WAIT);

    assert!(
        req["object_id"].as_str().is_some_and(|s| !s.is_empty()),
        "object_id missing: {req}"
    );
    let data = &req["data"];
    assert_eq!(data["type"], "runtime");
    assert_eq!(data["uuid"], fx.rt.uuid.as_str());
    assert_eq!(data["name"], fx.rt.name.as_str());
    assert_eq!(data["max_nmodules"], 10);
    assert!(
        data["runtime_type"].as_str().is_some_and(|s| !s.is_empty()),
        "runtime_type missing: {req}"
    );
    let apis: Vec<&str> = data["apis"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for api in ["wasm", "wasi", "stdio:in", "stdio:out", "python:python3"] {
        assert!(apis.contains(&api), "api '{api}' not offered: {req}");
    }
}

#[test]
fn retries_registration_until_a_reply_with_its_object_id_arrives() {
    let mut fx = start_runtime(RuntimeOptions::default());

    let first = fx.expect_registration(WAIT);
    let mut wrong = first.clone();
    wrong["object_id"] = json!(common::new_uuid());
    fx.orch.register_reply_ok(&wrong);

    // A reply with someone else's object_id is not accepted: the runtime tries again.
    let second = fx.expect_registration(Duration::from_secs(5));
    fx.orch.register_reply_ok(&second);

    let topic = fx.rt.topics.reg();
    fx.orch.expect_none(
        "a registration after the ok reply",
        |t| t == topic,
        is_registration,
        Duration::from_millis(2500),
    );
}

#[test]
fn create_sent_right_after_the_ok_reply_is_handled() {
    let mut fx = start_runtime(with_programs());
    let req = fx.expect_registration(WAIT);
    fx.orch.register_reply_ok(&req);
    let m = fx.create("hello.wasm", json!({"argv": [], "env": []}));

    fx.expect_ok(&m.object_id, WAIT);
    fx.expect_stdout(&m.uuid, "hello world\n", WAIT);
}

#[test]
fn registers_again_after_a_broker_restart() {
    let mut fx = start_registered_runtime(
        with_programs()
            .settings(json!({"mqtt": {"reconnect_min_sec": 0.2, "reconnect_max_sec": 1}})),
    );

    fx.broker.restart();
    fx.orch.wait_subscribed(WAIT);

    let again = fx.expect_registration(Duration::from_secs(15));
    fx.orch.register_reply_ok(&again);
    fx.assert_hello_still_works();
}

#[test]
fn reg_attempts_minus_one_never_registers_but_runs_modules() {
    let mut fx = start_runtime(with_programs().settings(json!({"runtime": {"reg_attempts": -1}})));

    let m = fx.create_until_ok("hello.wasm", json!({"argv": [], "env": []}), WAIT);
    fx.expect_stdout(&m.uuid, "hello world\n", WAIT);

    let topic = fx.rt.topics.reg();
    fx.orch.expect_none(
        "a registration",
        |t| t == topic,
        is_registration,
        Duration::from_secs(2),
    );
}

#[test]
fn last_will_unregisters_a_killed_runtime() {
    let mut fx = start_registered_runtime(RuntimeOptions::default());
    // SIGKILL: only the broker can tell the orchestrator, through the last will.
    fx.rt.kill();

    let topic = fx.rt.topics.reg();
    let uuid = fx.rt.uuid.clone();
    let will = fx.orch.expect(
        "the last will",
        |t| t == topic,
        |v| is_unregistration(v) && v["data"]["uuid"] == uuid.as_str(),
        WAIT,
    );
    assert_eq!(will["data"]["type"], "runtime");
}

#[test]
fn keepalive_carries_a_child_entry_per_module() {
    let mut fx = start_registered_runtime(
        with_programs().settings(json!({"runtime": {"ka_interval_sec": 1}})),
    );
    let a = fx.create("echo.wasm", json!({"argv": [], "env": []}));
    let b = fx.create("echo.wasm", json!({"argv": [], "env": []}));
    fx.expect_ok(&a.object_id, WAIT);
    fx.expect_ok(&b.object_id, WAIT);

    let topic = fx.rt.topics.keepalive();
    let has_child = |v: &Value, uuid: &str| {
        v["data"]["children"]
            .as_array()
            .is_some_and(|c| c.iter().any(|e| e["uuid"] == uuid))
    };
    let ka = fx.orch.expect(
        "a keepalive listing both modules",
        |t| t == topic,
        |v| has_child(v, &a.uuid) && has_child(v, &b.uuid),
        Duration::from_secs(5),
    );
    assert_eq!(ka["action"], "update");
    assert_eq!(ka["data"]["uuid"], fx.rt.uuid.as_str());
    let children = ka["data"]["children"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(children.len(), 2, "one entry per module: {ka}");
    let entry = children
        .iter()
        .find(|e| e["uuid"] == a.uuid.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(entry["name"], a.name.as_str());
    assert_eq!(entry["file"], "echo.wasm");
    assert_eq!(entry["filetype"], "WA");
    for key in [
        "cpu_usage_percent",
        "mem_usage",
        "network_rx_mb",
        "network_tx_mb",
        "network_rx_pkts",
        "network_tx_pkts",
    ] {
        assert!(entry[key].is_number(), "child entry lacks '{key}': {entry}");
    }

    fx.delete(&a.uuid);
    fx.delete(&b.uuid);
    fx.expect_exited(&a.uuid, WAIT);
    fx.expect_exited(&b.uuid, WAIT);
    fx.orch.expect(
        "a keepalive with no children",
        |t| t == topic,
        |v| {
            v["data"]["children"]
                .as_array()
                .is_some_and(|c| c.is_empty())
        },
        Duration::from_secs(5),
    );
}
