//! Checks of the test harness itself: the broker starts and restarts on its port, the
//! orchestrator client sees what is published, and the WAT test programs do what the
//! other tests assume when run in wasmi directly.
//!
//! Not for: behaviour of the runtime (the other test files).

mod common;

use std::time::Duration;

use common::{programs, Broker, Orchestrator, WAIT};
use serde_json::json;
use wasmi::{Engine, Linker, Module, Store};
use wasmi_wasi::wasi_common::pipe::{ReadPipe, WritePipe};
use wasmi_wasi::{WasiCtx, WasiCtxBuilder};

#[test]
fn broker_round_trips_json_and_raw_payloads_to_the_orchestrator() {
    let broker = Broker::start();
    let realm = common::unique_realm();
    let mut orch = Orchestrator::connect(&broker, &realm);

    let topic = format!("{realm}/proc/control/x");
    orch.publish_json(&topic, &json!({"object_id": "1", "hello": "world"}));
    orch.publish_raw(&format!("{realm}/raw"), "not json");

    let raw = orch.expect_msg("raw payload", |m| m.topic.ends_with("/raw"), WAIT);
    assert_eq!(raw.text(), "not json");
    let v = orch.expect(
        "json payload",
        |t| t == topic,
        |v| v["object_id"] == "1",
        WAIT,
    );
    assert_eq!(v["hello"], "world");
    orch.expect_none(
        "anything else",
        |_| true,
        |_| true,
        Duration::from_millis(200),
    );
}

#[test]
fn orchestrator_carries_payloads_larger_than_rumqttc_default_limit() {
    let broker = Broker::start();
    let realm = common::unique_realm();
    let mut orch = Orchestrator::connect(&broker, &realm);

    let big = "x".repeat(64 * 1024);
    orch.publish_raw(&format!("{realm}/big"), big.clone());
    let got = orch.expect_msg("big payload", |m| m.topic.ends_with("/big"), WAIT);
    assert_eq!(got.payload.len(), big.len());
}

#[test]
fn broker_restart_keeps_its_port_and_the_orchestrator_resubscribes() {
    let mut broker = Broker::start();
    let realm = common::unique_realm();
    let mut orch = Orchestrator::connect(&broker, &realm);
    let port = broker.port;

    broker.restart();
    assert_eq!(broker.port, port);
    orch.wait_subscribed(WAIT);

    orch.publish_raw(&format!("{realm}/after"), "again");
    let got = orch.expect_msg(
        "message after restart",
        |m| m.topic.ends_with("/after"),
        WAIT,
    );
    assert_eq!(got.text(), "again");
}

struct Ran {
    stdout: String,
    stderr: String,
    exit: Result<(), String>,
}

fn run(bytes: &[u8], args: &[&str], env: &[(&str, &str)], stdin: &str) -> Ran {
    run_limited(bytes, args, env, stdin, None)
}

fn run_limited(
    bytes: &[u8],
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
    max_memory: Option<usize>,
) -> Ran {
    struct State {
        wasi: WasiCtx,
        limits: wasmi::StoreLimits,
    }
    let engine = Engine::default();
    // SAFETY: the test programs come from `wat`, which emits valid modules; the
    // crate builds wasmi without its `validate` feature.
    let module = unsafe { Module::new_unchecked(&engine, bytes) }.expect("valid module");
    let mut linker = <Linker<State>>::new(&engine);
    wasmi_wasi::add_to_linker(&mut linker, |s: &mut State| &mut s.wasi).expect("link wasi");

    let stdout = WritePipe::new_in_memory();
    let stderr = WritePipe::new_in_memory();
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdin(Box::new(ReadPipe::from(stdin.to_string())))
        .stdout(Box::new(stdout.clone()))
        .stderr(Box::new(stderr.clone()));
    for a in args {
        builder.arg(a).expect("arg");
    }
    for (k, v) in env {
        builder.env(k, v).expect("env");
    }
    let mut limits = wasmi::StoreLimitsBuilder::new();
    if let Some(bytes) = max_memory {
        limits = limits.memory_size(bytes);
    }
    let state = State {
        wasi: builder.build(),
        limits: limits.build(),
    };
    let mut store = Store::new(&engine, state);
    store.limiter(|s| &mut s.limits);

    let instance = linker
        .instantiate_and_start(&mut store, &module)
        .expect("instantiate");
    let start = instance
        .get_typed_func::<(), ()>(&store, "_start")
        .expect("_start");
    let exit = start
        .call(&mut store, ())
        .map_err(|e| match e.i32_exit_status() {
            Some(code) => format!("exit {code}"),
            None => format!("trap: {e}"),
        });
    drop(store);

    let take = |p: WritePipe<std::io::Cursor<Vec<u8>>>| {
        String::from_utf8(p.try_into_inner().expect("pipe released").into_inner()).expect("utf8")
    };
    Ran {
        stdout: take(stdout),
        stderr: take(stderr),
        exit,
    }
}

#[test]
fn test_programs_behave_as_the_runtime_tests_assume() {
    let hello = run(&programs::hello(), &["hello.wasm"], &[], "");
    assert_eq!(hello.stdout, "hello world\n");
    assert_eq!(hello.exit, Ok(()));

    let err = run(&programs::stderr(), &["stderr.wasm"], &[], "");
    assert_eq!(err.stderr, "oops on stderr\n");
    assert_eq!(err.stdout, "");

    let args = run(
        &programs::args_env(),
        &["prog", "x", "y"],
        &[("K", "V")],
        "",
    );
    assert_eq!(args.stdout, "prog\nx\ny\nK=V\n");

    let echo = run(&programs::echo(), &["echo"], &[], "ping\npong\n");
    assert_eq!(echo.stdout, "ping\npong\n");
    assert_eq!(echo.exit, Ok(()));

    assert_eq!(
        run(&programs::exit_code(3), &[], &[], "").exit,
        Err("exit 3".into())
    );
    assert!(run(&programs::trap(), &[], &[], "")
        .exit
        .is_err_and(|e| e.starts_with("trap")));

    let grow = run_limited(&programs::grow_memory(100), &[], &[], "", Some(1024 * 1024));
    assert_eq!(grow.stdout, "grow failed\n");
    let grow = run(&programs::grow_memory(2), &[], &[], "");
    assert_eq!(grow.stdout, "grow ok\n");

    assert!(!programs::not_wasm().starts_with(b"\0asm"));
    assert!(wat::parse_bytes(&programs::spin()).is_ok());
}

#[test]
fn non_json_on_a_control_topic_is_flagged_unless_the_orchestrator_sent_it() {
    let broker = Broker::start();
    let realm = common::unique_realm();
    let mut orch = Orchestrator::connect(&broker, &realm);
    let other = Orchestrator::connect(&broker, &realm);
    let control = format!("{realm}/proc/control/rt");

    orch.publish_raw(&control, "ours, not json");
    orch.expect_msg("own echo", |m| m.text() == "ours, not json", WAIT);
    orch.assert_control_topics_clean();

    other.publish_raw(&control, "");
    orch.expect_msg("empty payload", |m| m.payload.is_empty(), WAIT);
    let flagged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        orch.assert_control_topics_clean()
    }));
    assert!(
        flagged.is_err(),
        "an empty payload from someone else is flagged"
    );
}
