//! Limits the runtime enforces itself because the orchestrator does not: the number of
//! modules (`max_nmodules`) and the apis a module asks for.
//!
//! Not for: malformed requests (bad_input.rs) or per-module memory (wasm_modules.rs).

mod common;

use common::{error_text, start_registered_runtime, with_programs, WAIT};
use serde_json::json;

#[test]
fn max_nmodules_is_enforced_with_an_error_and_a_freed_slot_is_reused() {
    let mut fx =
        start_registered_runtime(with_programs().settings(json!({"runtime": {"max_nmodules": 1}})));
    let first = fx.create("echo.wasm", json!({"argv": [], "env": []}));
    fx.expect_ok(&first.object_id, WAIT);

    let second = fx.create("echo.wasm", json!({"argv": [], "env": []}));
    let err = fx.expect_error(WAIT);
    assert_eq!(err["object_id"], second.object_id.as_str(), "error: {err}");
    let text = error_text(&err);
    assert!(
        text.contains("max_nmodules") || text.contains('1'),
        "error names the limit: {err}"
    );

    fx.delete(&first.uuid);
    fx.expect_exited(&first.uuid, WAIT);
    fx.assert_no_ok_so_far(&second.object_id);
    fx.assert_hello_still_works();
}

#[test]
fn every_create_refused_for_capacity_is_answered_even_past_the_bad_input_budget() {
    let mut fx =
        start_registered_runtime(with_programs().settings(json!({"runtime": {"max_nmodules": 1}})));
    let first = fx.create("echo.wasm", json!({"argv": [], "env": []}));
    fx.expect_ok(&first.object_id, WAIT);

    // More than the burst of 20 answers that bad input gets.
    let refused: Vec<common::Module> = (0..30)
        .map(|_| fx.create("echo.wasm", json!({"argv": [], "env": []})))
        .collect();

    let log_topic = fx.rt.topics.log();
    for m in &refused {
        let err = fx.orch.expect(
            "the refusal of a create over max_nmodules",
            |t| t == log_topic,
            |v| v["object_id"] == m.object_id.as_str(),
            WAIT,
        );
        assert!(error_text(&err).contains("max_nmodules"), "{err}");
    }
}

#[test]
fn create_asking_for_an_api_not_offered_is_refused() {
    let mut fx = start_registered_runtime(with_programs());
    let m = common::Module {
        uuid: common::new_uuid(),
        name: "needs-gpu".into(),
        object_id: common::new_uuid(),
    };
    let mut req = common::create_request(&m.object_id, &m.uuid, &m.name, "hello.wasm", json!({}));
    req["data"]["apis"] = json!(["wasm", "wasi", "gpu:cuda"]);
    fx.send(&req);

    let err = fx.expect_error(WAIT);
    assert_eq!(err["object_id"], m.object_id.as_str(), "error: {err}");
    assert!(
        error_text(&err).contains("gpu:cuda"),
        "error names the api: {err}"
    );

    fx.assert_hello_still_works();
    fx.assert_no_ok_so_far(&m.object_id);
}
