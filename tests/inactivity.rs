//! Inactivity deletion as the orchestrator sees it: a module idle for
//! `inactivity_timeout_sec` is reported exited without any delete request, while a
//! busy one keeps running and stays listed in keepalives.
//!
//! Not for: the idle arithmetic (unit tests in `src/supervisor/inactivity.rs`) or
//! deletes the orchestrator asks for (wasm_modules.rs).

mod common;

use std::time::{Duration, Instant};

use common::{start_registered_runtime, with_programs, Fixture, WAIT};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(2);

fn no_args() -> Value {
    json!({"argv": [], "env": []})
}

/// Idle means no CPU, network or disk use for 2 s, checked every half second;
/// keepalives every second.
fn fixture() -> Fixture {
    start_registered_runtime(with_programs().settings(json!({
        "runtime": {
            "ka_interval_sec": 1,
            "inactivity_timeout_sec": 2,
            "inactivity_check_interval_sec": 0.5,
        }
    })))
}

fn child<'a>(keepalive: &'a Value, uuid: &str) -> Option<&'a Value> {
    keepalive["data"]["children"]
        .as_array()?
        .iter()
        .find(|c| c["uuid"] == uuid)
}

#[test]
fn a_module_idle_for_the_timeout_is_reported_exited_without_a_delete_request() {
    let mut fx = fixture();
    let asked = Instant::now();
    let m = fx.create("echo.wasm", no_args());
    fx.expect_ok(&m.object_id, WAIT);

    let exited = fx.expect_exited(&m.uuid, WAIT);

    let after = asked.elapsed();
    assert!(after >= TIMEOUT, "deleted after only {after:?}: {exited}");
    assert_eq!(
        exited["data"]["status"], "exited",
        "exited notice: {exited}"
    );
    let log = fx.rt.log();
    let line = format!("module '{}' ('{}') idle for", m.uuid, m.name);
    assert!(log.contains(&line), "no '{line}' in the log:\n{log}");
    let left = fx.rt.leftover_module_files(Duration::from_secs(2));
    assert!(left.is_empty(), "files left in state_dir/modules: {left:?}");
}

#[test]
fn a_busy_module_keeps_running_past_the_timeout_while_an_idle_one_is_deleted() {
    let mut fx = fixture();
    let idle = fx.create("echo.wasm", no_args());
    let busy = fx.create("spin.wasm", no_args());
    fx.expect_ok(&idle.object_id, WAIT);
    fx.expect_ok(&busy.object_id, WAIT);
    let running = Instant::now();

    fx.expect_exited(&idle.uuid, WAIT);

    // Keepalives listing the busy module without the idle one, until one comes well
    // after the busy module would have been deleted had it been idle.
    let topic = fx.rt.topics.keepalive();
    let past_timeout = TIMEOUT + Duration::from_secs(2);
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ka = fx.orch.expect(
            "a keepalive listing the busy module alone",
            |t| t == topic,
            |v| child(v, &busy.uuid).is_some() && child(v, &idle.uuid).is_none(),
            left,
        );
        if running.elapsed() >= past_timeout {
            let entry = child(&ka, &busy.uuid).cloned().unwrap_or_default();
            let cpu = entry["cpu_usage_percent"].as_f64().unwrap_or(0.0);
            assert!(cpu > 1.0, "busy module reported idle: {entry}");
            break;
        }
    }
    let control = fx.rt.topics.control();
    let busy_uuid = busy.uuid.clone();
    fx.orch.expect_none(
        "an exited notice for the busy module",
        |t| t == control,
        |v| v["action"] == "exited" && v["data"]["uuid"] == busy_uuid.as_str(),
        Duration::ZERO,
    );

    fx.delete(&busy.uuid);
    fx.expect_exited(&busy.uuid, WAIT);
}

/// Container stats come from one `docker stats` call a second at best (each takes
/// about a second and a half), so containers get a timeout well above that.
const CONTAINER_TIMEOUT: Duration = Duration::from_secs(8);

#[test]
fn an_idle_python_module_is_deleted_while_a_busy_one_keeps_running() {
    let options = common::engine::with_python(with_programs(), &["idle", "busy"]).settings(json!({
        "runtime": {
            "ka_interval_sec": 1,
            "inactivity_timeout_sec": CONTAINER_TIMEOUT.as_secs(),
            "inactivity_check_interval_sec": 1,
        }
    }));
    let mut fx = start_registered_runtime(options);
    let _janitor = common::engine::Janitor {
        runtime_uuid: fx.rt.uuid.clone(),
        host: None,
    };
    let start = Duration::from_secs(30);
    // Idle time counts from the module's start at the earliest: before the create.
    let created = Instant::now();
    let idle = fx.create("py/idle/idle.py", no_args());
    let busy = fx.create("py/busy/busy.py", no_args());
    fx.expect_stdout(&idle.uuid, "ready\n", start);
    fx.expect_stdout(&busy.uuid, "ready\n", start);
    let running = Instant::now();

    fx.expect_exited(&idle.uuid, CONTAINER_TIMEOUT + start);
    assert!(
        created.elapsed() >= CONTAINER_TIMEOUT,
        "deleted after {:?}, before the timeout of {CONTAINER_TIMEOUT:?}",
        created.elapsed()
    );
    common::engine::assert_no_containers_left_but(&fx.rt.uuid, &busy.uuid);

    // Container stats arrive every few seconds, so single keepalives may show no CPU
    // use; over the keepalives until well past the timeout, the busy one shows some.
    let topic = fx.rt.topics.keepalive();
    let past_timeout = CONTAINER_TIMEOUT + Duration::from_secs(4);
    let busy_cpu = |ka: &Value| {
        let entry = child(ka, &busy.uuid).cloned().unwrap_or_default();
        entry["cpu_usage_percent"].as_f64().unwrap_or(0.0)
    };
    let mut most_cpu = 0.0f64;
    let listed = |m: &common::Msg| {
        m.topic == topic && m.json().is_some_and(|v| child(&v, &busy.uuid).is_some())
    };
    while let Some(msg) = fx.orch.wait_for(&listed, Duration::ZERO) {
        most_cpu = most_cpu.max(busy_cpu(&msg.json().unwrap_or_default()));
    }
    loop {
        let ka = fx.orch.expect(
            "a keepalive listing the busy module",
            |t| t == topic,
            |v| child(v, &busy.uuid).is_some(),
            WAIT,
        );
        most_cpu = most_cpu.max(busy_cpu(&ka));
        if running.elapsed() >= past_timeout {
            break;
        }
    }
    assert!(
        most_cpu > 10.0,
        "busy container never reported busy: {most_cpu}%"
    );
    let control = fx.rt.topics.control();
    let busy_uuid = busy.uuid.clone();
    fx.orch.expect_none(
        "an exited notice for the busy module",
        |t| t == control,
        |v| v["action"] == "exited" && v["data"]["uuid"] == busy_uuid.as_str(),
        Duration::ZERO,
    );
    fx.delete(&busy.uuid);
    fx.expect_exited(&busy.uuid, WAIT);
    common::engine::assert_no_containers_left(&fx.rt.uuid);
}
