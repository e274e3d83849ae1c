//! Malformed and hostile requests on the control topic: each is answered with an error
//! on the runtime's log topic that carries the request's object_id and says what is
//! wrong, and afterwards the runtime still runs modules and has left no files behind.
//!
//! Not for: well-formed requests the runtime refuses by policy (limits.rs).

mod common;

use common::{error_text, new_uuid, start_registered_runtime, with_programs, Fixture, WAIT};
use serde_json::{json, Value};

fn fixture() -> Fixture {
    start_registered_runtime(with_programs())
}

/// A create request for hello with `edit` applied.
fn create_with(object_id: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut req = common::create_request(object_id, &new_uuid(), "bad", "hello.wasm", json!({}));
    edit(&mut req);
    req
}

/// Send `req`, expect an error for it naming `needle`, then check the runtime still works.
fn assert_refused(fx: &mut Fixture, req: &Value, needle: &str) {
    let object_id = req["object_id"].as_str().unwrap_or_default().to_string();
    fx.send(req);

    let err = fx.expect_error(WAIT);
    assert_eq!(
        err["object_id"],
        object_id.as_str(),
        "error carries the request id: {err}"
    );
    assert!(
        error_text(&err).contains(&needle.to_lowercase()),
        "error names '{needle}': {err}"
    );

    fx.assert_hello_still_works();
    fx.assert_no_ok_so_far(&object_id);
}

#[test]
fn payload_that_is_not_json_is_refused() {
    let mut fx = fixture();
    fx.send_raw("this is {not json");

    let err = fx.expect_error(WAIT);
    assert!(
        err["object_id"].as_str().is_some_and(|s| !s.is_empty()),
        "error gets an object_id of its own: {err}"
    );
    assert!(
        error_text(&err).contains("json"),
        "error says it is not JSON: {err}"
    );
    fx.assert_hello_still_works();
}

#[test]
fn json_array_is_refused() {
    let mut fx = fixture();
    fx.send_raw(r#"[{"action": "create"}]"#);

    let err = fx.expect_error(WAIT);
    let text = error_text(&err);
    assert!(
        text.contains("object") || text.contains("json"),
        "error says an object was expected: {err}"
    );
    fx.assert_hello_still_works();
}

#[test]
fn create_without_module_uuid_is_refused() {
    let mut fx = fixture();
    let req = create_with(&new_uuid(), |r| {
        r["data"].as_object_mut().map(|d| d.remove("uuid"));
    });
    assert_refused(&mut fx, &req, "uuid");
}

#[test]
fn create_with_a_uuid_of_the_wrong_type_is_refused() {
    let mut fx = fixture();
    let req = create_with(&new_uuid(), |r| r["data"]["uuid"] = json!(42));
    assert_refused(&mut fx, &req, "uuid");
}

#[test]
fn unknown_action_is_refused() {
    let mut fx = fixture();
    let req = create_with(&new_uuid(), |r| r["action"] = json!("frobnicate"));
    assert_refused(&mut fx, &req, "frobnicate");
}

#[test]
fn unknown_filetype_is_refused() {
    let mut fx = fixture();
    let req = create_with(&new_uuid(), |r| r["data"]["filetype"] = json!("XX"));
    assert_refused(&mut fx, &req, "'XX'");
}

#[test]
fn file_outside_the_program_store_is_refused() {
    let mut fx = fixture();
    let req = create_with(&new_uuid(), |r| {
        r["data"]["file"] = json!("../../etc/passwd");
        r["data"]["filetype"] = json!("WA");
    });
    assert_refused(&mut fx, &req, "../../etc/passwd");
}

#[test]
fn file_that_is_not_webassembly_is_refused() {
    let mut fx = fixture();
    let object_id = new_uuid();
    let req = create_with(&object_id, |r| r["data"]["file"] = json!("not_wasm.wasm"));
    fx.send(&req);

    let err = fx.expect_error(WAIT);
    assert_eq!(
        err["object_id"],
        object_id.as_str(),
        "error carries the request id: {err}"
    );
    let text = error_text(&err);
    assert!(
        text.contains("not_wasm.wasm") || text.contains("webassembly"),
        "error names the file or the format: {err}"
    );
    fx.assert_hello_still_works();
    fx.assert_no_ok_so_far(&object_id);
}

#[test]
fn payload_over_max_request_bytes_is_refused() {
    let mut fx = start_registered_runtime(
        with_programs().settings(json!({"mqtt": {"max_request_bytes": 4096}})),
    );
    let object_id = new_uuid();
    let req = create_with(&object_id, |r| {
        r["data"]["padding"] = json!("p".repeat(8192))
    });
    assert!(req.to_string().len() > 8192);
    fx.send(&req);

    let err = fx.expect_error(WAIT);
    assert!(
        error_text(&err).contains("4096"),
        "error names the limit: {err}"
    );
    assert_eq!(
        err["object_id"],
        object_id.as_str(),
        "error carries the request id: {err}"
    );
    fx.assert_hello_still_works();
    fx.assert_no_ok_so_far(&object_id);
}

#[test]
fn payload_over_the_outgoing_packet_size_is_refused_and_the_connection_kept() {
    let mut fx = fixture();
    let object_id = new_uuid();
    // Over mqtt.max_packet_bytes (1 MiB), the bound of what the runtime sends.
    let req = create_with(&object_id, |r| {
        r["data"]["padding"] = json!("p".repeat(2 * 1024 * 1024))
    });
    fx.send(&req);

    let err = fx.expect_error(WAIT);
    assert!(
        error_text(&err).contains("262144"),
        "error names the limit: {err}"
    );
    // Had the client library dropped the connection, the broker would have published
    // the last will: the runtime's delete, which makes the orchestrator forget it.
    let reg = fx.rt.topics.reg();
    fx.orch.expect_none(
        "the runtime's last will",
        |topic| topic == reg,
        |v| v["action"] == "delete",
        std::time::Duration::ZERO,
    );
    fx.assert_hello_still_works();
    fx.assert_no_ok_so_far(&object_id);
}

#[test]
fn delete_of_an_unknown_module_is_refused() {
    let mut fx = fixture();
    let target = new_uuid();
    let req = json!({
        "object_id": new_uuid(),
        "action": "delete",
        "type": "req",
        "data": {"type": "module", "uuid": target}
    });
    assert_refused(&mut fx, &req, &target);
}

#[test]
fn a_flood_of_bad_messages_gets_a_bounded_number_of_replies_and_a_count() {
    let mut fx = fixture();
    let flood = 200;
    for n in 0..flood {
        fx.send_raw(format!("not json {n}"));
    }

    // The runtime is still responsive after the flood, and by the time hello has run
    // every reply to the flood has been published.
    fx.assert_hello_still_works();
    let log_topic = fx.rt.topics.log();
    let replies = fx
        .orch
        .history()
        .iter()
        .filter(|line| line.starts_with(&format!("{log_topic} ")))
        .count();
    assert!(
        (20..flood / 2).contains(&replies),
        "{replies} error replies to {flood} bad messages"
    );

    // The next error reply after the budget refills says how many were left out.
    let summary = fx.orch.expect(
        "a count of the errors not reported",
        |t| t == log_topic,
        |v| error_text(v).contains("not reported"),
        WAIT,
    );
    assert!(error_text(&summary).contains("more errors"), "{summary}");
}
