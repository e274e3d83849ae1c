//! Reliability on flaky networks, as a user would check it with the real binary and
//! a real mosquitto: a runtime started before its broker, module output and exit
//! notices written during a broker outage, keepalives and creates after reconnecting.
//!
//! Not for: registration details (registration.rs) or module behaviour with a steady
//! connection (wasm_modules.rs).
//!
//! Outages: the runtime reaches the broker through a `Gate` (a TCP forwarder). An
//! outage closes the gate and stops the broker; the broker is restarted and the
//! orchestrator resubscribed before the gate opens again, so everything the runtime
//! publishes after reconnecting has a subscriber and what the orchestrator misses is
//! the runtime's doing, not a race between two reconnecting clients.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{programs, Broker, Fixture, Gate, Msg, Orchestrator, Runtime, RuntimeOptions, WAIT};
use serde_json::{json, Value};

/// Backoff that keeps a reconnect within about a second of the broker coming back.
const FAST_RECONNECT: &str = "mqtt:\n  reconnect_min_sec: 0.2\n  reconnect_max_sec: 1\n";

/// Wait until the runtime's log contains `needle` at least `count` times.
fn wait_for_log(rt: &Runtime, needle: &str, count: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if rt.log().matches(needle).count() >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "runtime log did not show '{needle}' {count} times within {timeout:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Broker, orchestrator, a gate to the broker and a runtime behind the gate, registered.
fn start_behind_gate(options: RuntimeOptions, ka_interval_sec: f64) -> (Fixture, Gate) {
    let broker = Broker::start();
    let gate = Gate::start(broker.port);
    let realm = common::unique_realm();
    let mut orch = Orchestrator::connect(&broker, &realm);
    orch.ka_interval_sec = ka_interval_sec;
    let options = options
        .appsettings(FAST_RECONNECT)
        .settings(json!({"mqtt": {"port": gate.port}}));
    let rt = Runtime::start(&broker, &realm, options);
    let mut fx = Fixture { rt, orch, broker };
    let req = fx.expect_registration(WAIT);
    fx.orch.register_reply_ok(&req);
    (fx, gate)
}

/// Cut the runtime off (gate closed, broker stopped) and return once it noticed.
fn begin_outage(fx: &mut Fixture, gate: &Gate) {
    gate.close();
    fx.broker.stop();
    wait_for_log(&fx.rt, "disconnected from the broker", 1, WAIT);
}

/// Restart the broker, resubscribe the orchestrator, then let the runtime through;
/// returns its registration request (not answered yet).
fn end_outage(fx: &mut Fixture, gate: &Gate) -> Value {
    fx.broker.restart();
    fx.orch.wait_subscribed(WAIT);
    gate.open();
    fx.expect_registration(WAIT)
}

/// Stdout payloads of `module` in arrival order, up to its exited notice; returns the
/// text and the notice.
fn stdout_until_exited(fx: &mut Fixture, module: &str, timeout: Duration) -> (String, Value) {
    let stdout = fx.rt.topics.stdout(module);
    let control = fx.rt.topics.control();
    let is_exited = |m: &Msg| {
        m.topic == control
            && m.json()
                .is_some_and(|v| v["action"] == "exited" && v["data"]["uuid"] == module)
    };
    let deadline = Instant::now() + timeout;
    let mut text = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match fx
            .orch
            .wait_for(&|m: &Msg| m.topic == stdout || is_exited(m), left)
        {
            Some(msg) if msg.topic == stdout => text.push_str(&msg.text()),
            Some(msg) => return (text, msg.json().unwrap_or(Value::Null)),
            None => panic!(
                "no exited notice for '{module}' within {timeout:?}; stdout so far {text:?}; \
                 messages seen:\n{}",
                fx.orch.history().join("\n")
            ),
        }
    }
}

/// The numbers of `count N` lines, in order; panics on any other line.
fn counts(text: &str) -> Vec<u32> {
    text.lines()
        .map(|line| {
            line.strip_prefix("count ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected stdout line {line:?} in {text:?}"))
        })
        .collect()
}

#[test]
fn runtime_started_before_the_broker_connects_and_registers_once_it_is_up() {
    let mut broker = Broker::unstarted();
    let realm = common::unique_realm();
    let rt = Runtime::start(
        &broker,
        &realm,
        RuntimeOptions::default().appsettings(FAST_RECONNECT),
    );

    // Four failed attempts: uncapped doubling from 0.2 s would now wait 1.6 s or more.
    wait_for_log(&rt, "cannot connect to mqtt broker", 1, WAIT);
    wait_for_log(&rt, "mqtt connection attempt failed", 3, WAIT);
    let mut rt = rt;
    assert!(rt.is_running(), "runtime exited while the broker was down");

    broker.launch();
    let up = Instant::now();
    let orch = Orchestrator::connect(&broker, &realm);
    let mut fx = Fixture { rt, orch, broker };
    // reconnect_max_sec (1) + connect + a registration retry (reg_timeout_seconds 1)
    // in case the first request went out before the orchestrator subscribed.
    let req = fx.expect_registration(Duration::from_secs(4));
    eprintln!("registered {:?} after the broker came up", up.elapsed());
    assert_eq!(req["data"]["uuid"], fx.rt.uuid.as_str());
    fx.orch.register_reply_ok(&req);
    assert!(fx.rt.is_running(), "runtime exited after registering");
}

#[test]
fn module_output_written_during_a_broker_outage_arrives_after_reconnect() {
    const LINES: u32 = 40;
    let (mut fx, gate) = start_behind_gate(
        RuntimeOptions::default().program("ticker.wasm", programs::ticker(LINES, 100)),
        60.0,
    );
    let m = fx.create("ticker.wasm", json!({"argv": [], "env": []}));
    fx.expect_ok(&m.object_id, WAIT);
    let mut text = fx.expect_stdout(&m.uuid, "count 10\n", WAIT);

    begin_outage(&mut fx, &gate);
    // The outage itself (not a synchronisation): the module writes ~10 lines meanwhile.
    thread::sleep(Duration::from_secs(1));
    let ended = format!("module '{}' ('{}') exited", m.uuid, m.name);
    assert!(
        !fx.rt.log().contains(&ended),
        "the module should still run when the outage ends"
    );
    let req = end_outage(&mut fx, &gate);
    fx.orch.register_reply_ok(&req);

    let (rest, exited) = stdout_until_exited(&mut fx, &m.uuid, WAIT);
    text.push_str(&rest);
    assert_eq!(
        common::exit_code_of(&exited),
        Some(0),
        "exit notice: {exited}"
    );

    let seen = counts(&text);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "lines out of order or repeated: {seen:?}"
    );
    let missing: Vec<u32> = (1..=LINES).filter(|n| !seen.contains(n)).collect();
    eprintln!("lines missing after the outage: {missing:?}");
    assert_eq!(
        seen.last(),
        Some(&LINES),
        "last line did not arrive: {seen:?}"
    );
    // README: output written while disconnected is buffered (max_buffered_bytes is far
    // above 40 short lines); only a line in flight when the link broke may be lost.
    assert!(
        missing.len() <= 1,
        "lost more than the one line in flight at the disconnect: missing {missing:?}"
    );
}

#[test]
fn exited_notice_for_a_module_that_ended_during_an_outage_arrives_after_reconnect() {
    const LINES: u32 = 10;
    let (mut fx, gate) = start_behind_gate(
        RuntimeOptions::default().program("ticker.wasm", programs::ticker(LINES, 100)),
        60.0,
    );
    let m = fx.create("ticker.wasm", json!({"argv": [], "env": []}));
    fx.expect_ok(&m.object_id, WAIT);
    let mut text = fx.expect_stdout(&m.uuid, "count 1\n", WAIT);

    begin_outage(&mut fx, &gate);
    let ended = format!("module '{}' ('{}') exited", m.uuid, m.name);
    wait_for_log(&fx.rt, &ended, 1, WAIT);
    let req = end_outage(&mut fx, &gate);
    fx.orch.register_reply_ok(&req);

    let (rest, exited) = stdout_until_exited(&mut fx, &m.uuid, WAIT);
    text.push_str(&rest);
    assert_eq!(
        common::exit_code_of(&exited),
        Some(0),
        "exit notice: {exited}"
    );
    let seen = counts(&text);
    assert_eq!(
        seen.last(),
        Some(&LINES),
        "the module's last line should come before its exit notice: {seen:?}"
    );
    fx.orch.assert_control_topics_clean();
}

#[test]
fn keepalives_resume_after_reconnect() {
    let (mut fx, gate) = start_behind_gate(RuntimeOptions::default(), 1.0);
    let topic = fx.rt.topics.keepalive();
    let uuid = fx.rt.uuid.clone();
    let is_ka = |v: &Value| v["action"] == "update" && v["data"]["uuid"] == uuid.as_str();
    fx.orch
        .expect("a keepalive", |t| t == topic, is_ka, Duration::from_secs(3));

    begin_outage(&mut fx, &gate);
    let req = end_outage(&mut fx, &gate);
    // Forget keepalives from before the outage, then register: new ones must follow.
    while fx
        .orch
        .wait_for(&|m: &Msg| m.topic == topic, Duration::ZERO)
        .is_some()
    {}
    fx.orch.register_reply_ok(&req);

    // At most one keepalive queued before the outage may be resent; two are new.
    for n in 1..=2 {
        fx.orch.expect(
            &format!("keepalive {n} after re-registering"),
            |t| t == topic,
            is_ka,
            Duration::from_secs(3),
        );
    }
    assert!(fx.rt.is_running(), "runtime exited");
}

#[test]
fn create_sent_while_runtime_reconnects_is_handled_after_reregistration() {
    let (mut fx, gate) = start_behind_gate(
        RuntimeOptions::default().program("hello.wasm", programs::hello()),
        60.0,
    );
    begin_outage(&mut fx, &gate);
    // The runtime is back on the broker and subscribed (it registers only then), but
    // not registered yet: a create now must not be lost.
    let req = end_outage(&mut fx, &gate);
    let m = fx.create("hello.wasm", json!({"argv": [], "env": []}));
    fx.orch.register_reply_ok(&req);

    fx.expect_ok(&m.object_id, WAIT);
    fx.expect_stdout(&m.uuid, "hello world\n", WAIT);
    fx.expect_exited(&m.uuid, WAIT);
}
