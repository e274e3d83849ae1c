//! Clean shutdown, on SIGTERM and on a runtime delete request: running modules are
//! stopped and reported exited, the runtime unregisters and exits with code 0 within
//! five seconds, leaving no module files behind.
//!
//! Not for: the last will of a killed runtime (registration.rs).

mod common;

use std::time::{Duration, Instant};

use common::{start_registered_runtime, with_programs, Fixture, Module, WAIT};
use serde_json::json;

fn with_two_running_modules() -> (Fixture, Module, Module) {
    let mut fx = start_registered_runtime(with_programs());
    let busy = fx.create("spin.wasm", json!({"argv": [], "env": []}));
    let blocked = fx.create("echo.wasm", json!({"argv": [], "env": []}));
    fx.expect_ok(&busy.object_id, WAIT);
    fx.expect_ok(&blocked.object_id, WAIT);
    (fx, busy, blocked)
}

fn assert_clean_exit(fx: &mut Fixture, busy: &Module, blocked: &Module, asked: Instant) {
    let five = Duration::from_secs(5);
    fx.expect_unregistration(five);
    // Every exit went out before the unregistration, as the protocol's runtime delete
    // asks: stop all modules, then unregister.
    let control = fx.rt.topics.control();
    for module in [busy, blocked] {
        let exited = |msg: &common::Msg| {
            msg.topic == control
                && msg.json().is_some_and(|v| {
                    v["action"] == "exited" && v["data"]["uuid"] == module.uuid.as_str()
                })
        };
        assert!(
            fx.orch.has_received(exited),
            "no exited for {} before the unregistration",
            module.uuid
        );
    }
    fx.expect_exited(&busy.uuid, five);
    fx.expect_exited(&blocked.uuid, five);

    let left = five.saturating_sub(asked.elapsed());
    let status = fx.rt.wait_exit(left);
    assert!(
        status.is_some(),
        "runtime still running {:?} after the request",
        asked.elapsed()
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit status {status:?}"
    );

    let files = fx.rt.leftover_module_files(Duration::ZERO);
    assert!(
        files.is_empty(),
        "files left in state_dir/modules: {files:?}"
    );
}

#[test]
fn sigterm_stops_modules_unregisters_and_exits_zero() {
    let (mut fx, busy, blocked) = with_two_running_modules();

    let asked = Instant::now();
    fx.rt.terminate();
    assert_clean_exit(&mut fx, &busy, &blocked, asked);
}

#[test]
fn runtime_delete_request_stops_modules_unregisters_and_exits_zero() {
    let (mut fx, busy, blocked) = with_two_running_modules();

    let asked = Instant::now();
    fx.send_runtime_delete();
    assert_clean_exit(&mut fx, &busy, &blocked, asked);
}
