//! Outbound messages per dialect: exact topics and JSON shapes the orchestrator, its
//! client and the ARENA applauncher expect.

use serde_json::{json, Value};

use super::tests_inbound::{protocol, MOD, RT};
use super::*;

fn module() -> ModuleRef {
    ModuleRef {
        uuid: MOD.into(),
        name: "mod1".into(),
        namespace: "alice".into(),
        scene: "lab".into(),
    }
}

fn json_of(message: &Message) -> Value {
    serde_json::from_slice(&message.payload).unwrap()
}

/// The payload with its generated `object_id` checked to be a uuid and replaced.
fn with_generated_id(message: &Message) -> Value {
    let mut value = json_of(message);
    let id = value["object_id"].as_str().unwrap();
    assert!(
        uuid::Uuid::parse_str(id).is_ok(),
        "object_id {id} is a uuid"
    );
    value["object_id"] = json!("<new>");
    value
}

fn registration_data() -> Value {
    json!({"type": "runtime", "uuid": RT, "name": "node1", "namespace": "public",
           "runtime_type": "linux/sideload", "max_nmodules": 4, "apis": ["wasm", "wasi"],
           "platform": {}, "metadata": {}})
}

#[test]
fn silverline_registration_has_the_orchestrator_fields() {
    let mut metadata = serde_json::Map::new();
    metadata.insert("host".into(), json!("vm"));
    let p = protocol("silverline").with_metadata(metadata);
    let message = p.registration("e85da1fc");
    assert_eq!(message.topic, format!("realm/proc/reg/{RT}"));
    let mut data = registration_data();
    data["metadata"] = json!({"host": "vm"});
    assert_eq!(
        json_of(&message),
        json!({"object_id": "e85da1fc", "action": "create", "type": "req", "data": data})
    );
}

#[test]
fn arena_registration_adds_from() {
    let message = protocol("arena").registration("r1");
    assert_eq!(message.topic, format!("realm/g/public/p/{RT}"));
    assert_eq!(
        json_of(&message),
        json!({"object_id": "r1", "action": "create", "type": "req", "from": RT,
               "data": registration_data()})
    );
}

#[test]
fn arts_registration_uses_arts_types_on_the_shared_topic() {
    let message = protocol("arts").registration("r1");
    assert_eq!(message.topic, "realm/proc/reg");
    assert_eq!(json_of(&message)["type"], "arts_req");
}

#[test]
fn unregistration_is_a_runtime_delete_on_the_registration_topic() {
    let message = protocol("silverline").unregistration();
    assert_eq!(message.topic, format!("realm/proc/reg/{RT}"));
    assert_eq!(
        with_generated_id(&message),
        json!({"object_id": "<new>", "action": "delete", "type": "req",
               "data": {"type": "runtime", "uuid": RT, "name": "node1"}})
    );
}

#[test]
fn keepalive_is_registration_data_plus_children() {
    let child = ChildStats {
        uuid: MOD.into(),
        name: "mod1".into(),
        file: "hello.wasm".into(),
        filetype: FileType::Wasm,
        cpu_usage_percent: 12.5,
        mem_usage: 2048,
        network_rx_mb: 0.0,
        network_tx_mb: 0.5,
        network_rx_pkts: 0,
        network_tx_pkts: 7,
    };
    let message = protocol("silverline").keepalive(&[child]);
    assert_eq!(message.topic, format!("realm/proc/keepalive/{RT}"));
    let mut data = registration_data();
    data["children"] = json!([{"uuid": MOD, "name": "mod1", "file": "hello.wasm",
        "filetype": "WA", "cpu_usage_percent": 12.5, "mem_usage": 2048,
        "network_rx_mb": 0.0, "network_tx_mb": 0.5, "network_rx_pkts": 0,
        "network_tx_pkts": 7}]);
    assert_eq!(
        with_generated_id(&message),
        json!({"object_id": "<new>", "action": "update", "type": "req", "data": data})
    );
}

#[test]
fn silverline_response_echoes_object_id_and_action() {
    let message =
        protocol("silverline").response_ok("7acce783", "delete", &module(), json!({"uuid": MOD}));
    assert_eq!(message.topic, format!("realm/proc/control/{RT}"));
    assert_eq!(
        json_of(&message),
        json!({"object_id": "7acce783", "action": "delete", "type": "resp",
               "data": {"result": "ok", "details": {"uuid": MOD}}})
    );
}

#[test]
fn arena_create_confirmation_carries_the_request_data_on_the_module_topic() {
    let request_data = json!({"type": "module", "uuid": MOD, "name": "mod1", "parent": "node1"});
    let message = protocol("arena").response_ok("c1", "create", &module(), request_data.clone());
    assert_eq!(message.topic, format!("realm/s/alice/lab/p/{MOD}"));
    assert_eq!(
        json_of(&message),
        json!({"object_id": "c1", "action": "create", "type": "resp", "from": RT,
               "data": {"result": "ok", "details": request_data}})
    );
}

#[test]
fn envelope_errors_go_to_the_log_topic() {
    let message = protocol("silverline").error(Some("7acce783"), "unknown filetype 'XX'", "XX");
    assert_eq!(message.topic, format!("realm/proc/log/{RT}"));
    assert_eq!(
        json_of(&message),
        json!({"object_id": "7acce783", "action": "error", "type": "resp",
               "data": {"result": "error",
                        "details": {"desc": "unknown filetype 'XX'", "data": "XX"}}})
    );
    let arts = protocol("arts").error(None, "bad", "x");
    let value = with_generated_id(&arts);
    assert_eq!(value["type"], "arts_resp");
    assert_eq!(
        value["data"]["details"],
        json!({"desc": "bad", "data": "x"})
    );
}

#[test]
fn arena_errors_are_bare() {
    let message = protocol("arena").error(Some("c1"), "bad", "x");
    assert_eq!(message.topic, format!("realm/g/public/p/{RT}"));
    assert_eq!(json_of(&message), json!({"desc": "bad", "data": "x"}));
}

#[test]
fn invalid_answers_name_the_problem_and_the_value() {
    let p = protocol("silverline");
    let error = ProtocolError::UnsafePath("../x".into());
    let details = json_of(&p.invalid(Some("i1"), &error))["data"]["details"].clone();
    assert_eq!(
        details,
        json!({"desc": "unsafe path '../x': expected a relative path that stays inside the program store",
               "data": "../x"})
    );
}

#[test]
fn silverline_exit_notice_is_exited_with_the_code() {
    let message = protocol("silverline").exited(&module(), Some(3));
    assert_eq!(message.topic, format!("realm/proc/control/{RT}"));
    assert_eq!(
        with_generated_id(&message),
        json!({"object_id": "<new>", "action": "exited", "type": "req",
               "data": {"type": "module", "uuid": MOD, "status": "exited", "exit_code": 3}})
    );
    let killed = protocol("silverline").exited(&module(), None);
    assert!(json_of(&killed)["data"].get("exit_code").is_none());
}

#[test]
fn arts_exit_notice_goes_to_the_shared_control_topic() {
    let message = protocol("arts").exited(&module(), Some(0));
    assert_eq!(message.topic, "realm/proc/control");
    assert_eq!(json_of(&message)["type"], "arts_req");
}

#[test]
fn arena_exit_notice_is_a_module_delete_on_the_module_topic() {
    let message = protocol("arena").exited(&module(), Some(0));
    assert_eq!(message.topic, format!("realm/s/alice/lab/p/{MOD}"));
    assert_eq!(
        with_generated_id(&message),
        json!({"object_id": "<new>", "action": "delete", "type": "req", "from": RT,
               "data": {"type": "module", "uuid": MOD, "name": "mod1", "parent": RT}})
    );
}

#[test]
fn subscriptions_cover_control_and_registration() {
    assert_eq!(
        protocol("silverline").subscriptions(),
        [
            format!("realm/proc/control/{RT}"),
            format!("realm/proc/reg/{RT}")
        ]
    );
    assert_eq!(
        protocol("arena").subscriptions(),
        [
            "realm/s/+/+/p/+/+".to_string(),
            format!("realm/g/public/p/{RT}")
        ]
    );
    assert_eq!(
        protocol("arts").subscriptions(),
        [
            format!("realm/proc/control/{RT}"),
            "realm/proc/reg".to_string()
        ]
    );
}

#[test]
fn stdio_topics_follow_the_dialect() {
    let silverline = protocol("silverline");
    assert_eq!(
        silverline.stdout_topic(&module()),
        format!("realm/proc/stdio/{MOD}")
    );
    assert_eq!(
        silverline.stderr_topic(&module()),
        format!("realm/proc/stdio/{MOD}/stderr")
    );
    assert_eq!(
        silverline.stdin_topic(&module()),
        format!("realm/proc/stdio/{MOD}/stdin")
    );
    let arena = protocol("arena");
    assert_eq!(
        arena.stdin_topic(&module()),
        format!("realm/s/alice/lab/p/{MOD}/-/stdin")
    );
    assert_eq!(
        arena.stderr_topic(&module()),
        format!("realm/s/alice/lab/p/{MOD}/-/stderr")
    );
}

#[test]
fn output_is_raw_or_a_json_string_per_dialect() {
    let raw = protocol("silverline").stdout_message(&module(), b"line\n");
    assert_eq!(raw.payload, b"line\n");
    let arena = protocol("arena");
    let encoded = arena.stdout_message(&module(), b"line \"q\"\n");
    assert_eq!(encoded.payload, br#""line \"q\"\n""#);
    assert_eq!(encoded.topic, format!("realm/s/alice/lab/p/{MOD}/-/stdout"));
    let err = arena.stderr_message(&module(), b"\xffoops");
    assert_eq!(
        serde_json::from_slice::<String>(&err.payload).unwrap(),
        "\u{fffd}oops"
    );
}

#[test]
fn every_control_payload_is_a_non_empty_json_object() {
    for dialect in ["silverline", "arena", "arts"] {
        let p = protocol(dialect);
        let messages = [
            p.registration("r"),
            p.unregistration(),
            p.keepalive(&[]),
            p.response_ok("o", "create", &module(), Value::Null),
            p.error(None, "", ""),
            p.exited(&module(), None),
        ];
        for message in messages {
            assert!(!message.payload.is_empty());
            assert!(
                json_of(&message).is_object(),
                "{dialect}: {}",
                message.topic
            );
        }
    }
}
