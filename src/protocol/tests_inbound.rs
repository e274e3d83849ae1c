//! Inbound parsing per dialect, against the three shipped configurations: what the
//! orchestrator, its client and the ARENA applauncher send, and what must be ignored
//! or refused.

use serde_json::{json, Value};

use super::*;

pub(super) const RT: &str = "90de2120-0000-4000-8000-000000000001";
pub(super) const MOD: &str = "a758ac2a-0000-4000-8000-000000000002";

/// The `dialect:` section of a shipped configuration.
pub(super) fn dialect(name: &str) -> DialectConfig {
    let text = match name {
        "silverline" => include_str!("../../conf/.appsettings.yaml"),
        "arena" => include_str!("../../conf/arena/.appsettings.yaml"),
        "arts" => include_str!("../../conf/arts/.appsettings.yaml"),
        other => panic!("no shipped dialect {other}"),
    };
    let settings: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    serde_yaml::from_value(settings["dialect"].clone()).unwrap()
}

pub(super) fn protocol(name: &str) -> Protocol {
    let runtime = RuntimeInfo {
        uuid: RT.into(),
        name: "node1".into(),
        namespace: "public".into(),
        realm: "realm".into(),
        runtime_type: "linux/sideload".into(),
        max_nmodules: 4,
        apis: vec!["wasm".into(), "wasi".into()],
    };
    Protocol::new(dialect(name), runtime, 4096)
}

fn no_stdin(_: &str) -> Option<String> {
    None
}

fn parse_bytes(protocol: &Protocol, topic: &str, payload: &[u8]) -> Inbound {
    protocol.parse_inbound(topic, payload, &no_stdin)
}

fn parse(protocol: &Protocol, topic: &str, payload: Value) -> Inbound {
    parse_bytes(protocol, topic, payload.to_string().as_bytes())
}

const SL_CONTROL: &str = "realm/proc/control/90de2120-0000-4000-8000-000000000001";
const SL_REG: &str = "realm/proc/reg/90de2120-0000-4000-8000-000000000001";
const ARENA_CONTROL: &str = "realm/s/alice/lab/p/client1/90de2120";
const ARENA_REG: &str = "realm/g/public/p/90de2120-0000-4000-8000-000000000001";

fn silverline_create() -> Value {
    json!({"object_id": "7acce783", "action": "create", "type": "req",
        "data": {"type": "module", "index": 1, "uuid": MOD, "name": "mod1",
                 "parent": RT, "file": "helloworld.wasm", "apis": ["wasm", "wasi"],
                 "args": {"argv": ["x", "y"], "env": ["K=V"], "limit": 60.0},
                 "channels": [], "status": "A"}})
}

fn silverline_create_with(key: &str, value: Value) -> Value {
    let mut message = silverline_create();
    message["data"][key] = value;
    message
}

fn invalid(inbound: Inbound) -> (Option<String>, ProtocolError) {
    match inbound {
        Inbound::Invalid { object_id, error } => (object_id, error),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn created(inbound: Inbound) -> (String, ModuleRequest) {
    match inbound {
        Inbound::CreateModule { object_id, request } => (object_id, *request),
        other => panic!("expected CreateModule, got {other:?}"),
    }
}

// ---- silverline ----

#[test]
fn silverline_create_example_from_the_protocol_parses() {
    let p = protocol("silverline");
    let (object_id, request) = created(parse(&p, SL_CONTROL, silverline_create()));
    assert_eq!(object_id, "7acce783");
    assert_eq!(request.uuid, MOD);
    assert_eq!(request.name, "mod1");
    assert_eq!(request.file, "helloworld.wasm");
    assert_eq!(request.filetype, FileType::Wasm);
    assert_eq!(request.argv, ["x", "y"]);
    assert_eq!(request.env, [("K".to_string(), "V".to_string())]);
    assert_eq!(request.limit_sec, Some(60.0));
    assert_eq!(request.apis, ["wasm", "wasi"]);
    assert_eq!(request.raw, silverline_create()["data"]);
    assert_eq!(
        (request.namespace.as_str(), request.scene.as_str()),
        ("public", "default")
    );
}

#[test]
fn silverline_registration_reply_is_matched_by_object_id() {
    let p = protocol("silverline");
    let reply = json!({"object_id": "e85da1fc", "type": "resp",
        "data": {"result": "ok", "details": {"uuid": RT, "ka_interval_sec": 60}}});
    assert_eq!(
        parse(&p, SL_REG, reply),
        Inbound::RegistrationReply {
            object_id: "e85da1fc".into(),
            ok: true,
            details: json!({"uuid": RT, "ka_interval_sec": 60}),
        }
    );
    let refused = json!({"object_id": "e85da1fc", "type": "resp",
        "data": {"result": "error", "details": "no"}});
    assert!(matches!(
        parse(&p, SL_REG, refused),
        Inbound::RegistrationReply { ok: false, .. }
    ));
}

#[test]
fn own_registration_traffic_is_ignored() {
    let p = protocol("silverline");
    let echo = p.registration("e85da1fc");
    assert_eq!(
        parse_bytes(&p, &echo.topic, &echo.payload),
        Inbound::Ignored
    );
    let will = p.unregistration();
    assert_eq!(
        parse_bytes(&p, &will.topic, &will.payload),
        Inbound::Ignored
    );
}

#[test]
fn own_responses_and_exit_notices_on_the_control_topic_are_ignored() {
    let p = protocol("silverline");
    let module = ModuleRef {
        uuid: MOD.into(),
        name: "mod1".into(),
        namespace: "public".into(),
        scene: "default".into(),
    };
    let response = p.response_ok("7acce783", "create", &module, json!({}));
    assert_eq!(response.topic, SL_CONTROL);
    assert_eq!(
        parse_bytes(&p, &response.topic, &response.payload),
        Inbound::Ignored
    );
    let exited = p.exited(&module, Some(0));
    assert_eq!(exited.topic, SL_CONTROL);
    assert_eq!(
        parse_bytes(&p, &exited.topic, &exited.payload),
        Inbound::Ignored
    );
    let orchestrator_response = json!({"object_id": "x", "type": "resp", "data": {"result": "ok"}});
    assert_eq!(
        parse(&p, SL_CONTROL, orchestrator_response),
        Inbound::Ignored
    );
}

#[test]
fn messages_on_other_topics_are_ignored() {
    let p = protocol("silverline");
    assert_eq!(
        parse(&p, "realm/proc/control/other-runtime", silverline_create()),
        Inbound::Ignored
    );
    assert_eq!(
        parse_bytes(&p, "realm/proc/log/x", b"not json"),
        Inbound::Ignored
    );
}

#[test]
fn module_delete_targets_uuid_or_name() {
    let p = protocol("silverline");
    let by_uuid = json!({"object_id": "d1", "action": "delete", "type": "req",
        "data": {"type": "module", "uuid": MOD}});
    assert_eq!(
        parse(&p, SL_CONTROL, by_uuid),
        Inbound::DeleteModule {
            object_id: "d1".into(),
            target: MOD.into()
        }
    );
    let by_name = json!({"object_id": "d2", "action": "delete", "type": "req",
        "data": {"type": "module", "name": "mod1"}});
    assert_eq!(
        parse(&p, SL_CONTROL, by_name),
        Inbound::DeleteModule {
            object_id: "d2".into(),
            target: "mod1".into()
        }
    );
    let neither = json!({"object_id": "d3", "action": "delete", "type": "req",
        "data": {"type": "module"}});
    assert_eq!(
        invalid(parse(&p, SL_CONTROL, neither)),
        (
            Some("d3".into()),
            ProtocolError::MissingField("data.uuid".into())
        )
    );
}

#[test]
fn runtime_delete_stops_this_runtime_only() {
    let p = protocol("silverline");
    let ours = json!({"object_id": "r1", "action": "delete", "type": "req",
        "data": {"type": "runtime", "uuid": RT}});
    assert_eq!(
        parse(&p, SL_CONTROL, ours),
        Inbound::DeleteRuntime {
            object_id: "r1".into()
        }
    );
    let unnamed = json!({"object_id": "r2", "action": "delete", "data": {"type": "runtime"}});
    assert_eq!(
        parse(&p, SL_CONTROL, unnamed),
        Inbound::DeleteRuntime {
            object_id: "r2".into()
        }
    );
    let other = json!({"object_id": "r3", "action": "delete", "type": "req",
        "data": {"type": "runtime", "uuid": "someone-else"}});
    assert_eq!(parse(&p, SL_CONTROL, other), Inbound::Ignored);
}

#[test]
fn request_without_object_id_gets_a_new_one() {
    let p = protocol("silverline");
    let mut message = silverline_create();
    message.as_object_mut().unwrap().remove("object_id");
    let (object_id, _) = created(parse(&p, SL_CONTROL, message));
    assert!(uuid::Uuid::parse_str(&object_id).is_ok(), "{object_id}");

    let mut bad = silverline_create_with("filetype", json!("XX"));
    bad.as_object_mut().unwrap().remove("object_id");
    assert_eq!(
        invalid(parse(&p, SL_CONTROL, bad)),
        (None, ProtocolError::UnknownFiletype("XX".into()))
    );
}

#[test]
fn payloads_that_are_not_json_objects_are_invalid() {
    let p = protocol("silverline");
    for payload in [&b"not json"[..], b"", b"[1, 2]", b"\"text\"", b"\xff\xfe"] {
        let (object_id, error) = invalid(parse_bytes(&p, SL_CONTROL, payload));
        assert_eq!(object_id, None);
        assert!(
            matches!(error, ProtocolError::NotJson(_)),
            "{payload:?}: {error}"
        );
    }
    let (_, error) = invalid(parse_bytes(&p, SL_CONTROL, b"[1]"));
    assert_eq!(
        error.to_string(),
        "payload is not a JSON object: expected an object, got a list"
    );
}

#[test]
fn bad_module_fields_are_invalid_with_the_request_object_id() {
    let p = protocol("silverline");
    let id = Some("7acce783".to_string());
    let mut no_uuid = silverline_create();
    no_uuid["data"].as_object_mut().unwrap().remove("uuid");

    let cases = [
        (no_uuid, ProtocolError::MissingField("data.uuid".into())),
        (
            silverline_create_with("uuid", json!(42)),
            ProtocolError::WrongType {
                field: "data.uuid".into(),
                expected: "a string, got the number '42'".into(),
            },
        ),
        (
            silverline_create_with("filetype", json!("XX")),
            ProtocolError::UnknownFiletype("XX".into()),
        ),
        (
            silverline_create_with("file", json!("../../etc/passwd")),
            ProtocolError::UnsafePath("../../etc/passwd".into()),
        ),
        (
            silverline_create_with("file", json!("/abs")),
            ProtocolError::UnsafePath("/abs".into()),
        ),
        (
            silverline_create_with("file", json!("%2e%2e/x")),
            ProtocolError::UnsafePath("%2e%2e/x".into()),
        ),
        (
            silverline_create_with("file", json!("a\\b")),
            ProtocolError::UnsafePath("a\\b".into()),
        ),
        (
            silverline_create_with("location", json!("../up")),
            ProtocolError::UnsafePath("../up".into()),
        ),
    ];
    for (message, expected) in cases {
        assert_eq!(
            invalid(parse(&p, SL_CONTROL, message)),
            (id.clone(), expected)
        );
    }
}

#[test]
fn unknown_and_unsupported_actions_are_invalid() {
    let p = protocol("silverline");
    let restart = json!({"object_id": "a1", "action": "restart", "type": "req", "data": {}});
    assert_eq!(
        invalid(parse(&p, SL_CONTROL, restart)),
        (
            Some("a1".into()),
            ProtocolError::UnknownAction("restart".into())
        )
    );
    let update = json!({"object_id": "a2", "action": "update", "type": "req", "data": {}});
    let (_, error) = invalid(parse(&p, SL_CONTROL, update));
    assert!(error.to_string().contains("'update'"), "{error}");
    let no_action = json!({"object_id": "a3", "type": "req", "data": {}});
    assert_eq!(
        invalid(parse(&p, SL_CONTROL, no_action)),
        (
            Some("a3".into()),
            ProtocolError::MissingField("action".into())
        )
    );
    let no_data = json!({"object_id": "a4", "action": "create", "type": "req"});
    assert_eq!(
        invalid(parse(&p, SL_CONTROL, no_data)),
        (
            Some("a4".into()),
            ProtocolError::MissingField("data".into())
        )
    );
}

#[test]
fn creating_anything_but_a_module_is_invalid() {
    let p = protocol("silverline");
    let (_, error) = invalid(parse(
        &p,
        SL_CONTROL,
        silverline_create_with("type", json!("runtime")),
    ));
    assert!(matches!(error, ProtocolError::InvalidValue { ref field, .. } if field == "data.type"));
}

#[test]
fn oversized_requests_are_refused_with_their_object_id() {
    let p = protocol("silverline");
    let big = silverline_create_with("padding", json!("x".repeat(5000)));
    let payload = big.to_string();
    assert_eq!(
        invalid(parse_bytes(&p, SL_CONTROL, payload.as_bytes())),
        (
            Some("7acce783".into()),
            ProtocolError::TooLarge {
                size: payload.len(),
                limit: 4096
            }
        )
    );
    let garbage = vec![b'x'; 5000];
    assert_eq!(
        invalid(parse_bytes(&p, SL_CONTROL, &garbage)),
        (
            None,
            ProtocolError::TooLarge {
                size: 5000,
                limit: 4096
            }
        )
    );
}

#[test]
fn stdin_is_raw_bytes_with_a_newline_appended_when_missing() {
    for dialect in ["silverline", "arena", "arts"] {
        let p = protocol(dialect);
        let stdin = |topic: &str| (topic == "in").then(|| MOD.to_string());
        let line = |payload: &[u8]| p.parse_inbound("in", payload, &stdin);
        let expect = |data: &[u8]| Inbound::Stdin {
            module_uuid: MOD.into(),
            data: data.to_vec(),
        };
        assert_eq!(line(b"hello"), expect(b"hello\n"));
        assert_eq!(line(b"hello\n"), expect(b"hello\n"));
        assert_eq!(
            line(b"{\"not\": \"parsed\"}"),
            expect(b"{\"not\": \"parsed\"}\n")
        );
        assert_eq!(line(b""), expect(b"\n"));
        assert_eq!(
            invalid(line(&[b'a'; 5000])),
            (
                None,
                ProtocolError::TooLarge {
                    size: 5000,
                    limit: 4096
                }
            )
        );
    }
}

// ---- arts ----

#[test]
fn arts_create_with_filename_and_arts_types_parses() {
    let p = protocol("arts");
    let message = json!({"object_id": "f9f33440", "action": "create", "type": "arts_req",
        "data": {"type": "module", "uuid": MOD, "name": "npereira/pytest", "parent": {"uuid": RT},
                 "filename": "test.py", "fileid": "na", "filetype": "PY",
                 "args": "", "env": "ENV_VAR1=1 ENV_VAR2=2", "channels": ""}});
    let (object_id, request) = created(parse(&p, SL_CONTROL, message));
    assert_eq!(object_id, "f9f33440");
    assert_eq!(request.file, "test.py");
    assert_eq!(request.filetype, FileType::Python);
    assert!(request.argv.is_empty());
    assert_eq!(
        request.env,
        [
            ("ENV_VAR1".to_string(), "1".to_string()),
            ("ENV_VAR2".into(), "2".into())
        ]
    );
}

#[test]
fn arts_registration_reply_and_shared_reg_traffic() {
    let p = protocol("arts");
    let reply = json!({"object_id": "e85da1fc", "type": "arts_resp", "data": {"result": "ok", "details": {}}});
    assert!(matches!(
        parse(&p, "realm/proc/reg", reply),
        Inbound::RegistrationReply { ok: true, .. }
    ));
    let other_runtime = json!({"object_id": "o1", "action": "create", "type": "arts_req",
        "data": {"type": "runtime", "uuid": "other", "name": "other"}});
    assert_eq!(parse(&p, "realm/proc/reg", other_runtime), Inbound::Ignored);
    assert_eq!(
        parse_bytes(&p, "realm/proc/reg", b"garbage"),
        Inbound::Ignored
    );
}

#[test]
fn arts_client_deletes_are_understood() {
    let p = protocol("arts");
    let module =
        json!({"uuid": "x", "type": "arts_req", "action": "delete", "data": {"uuid": MOD}});
    assert!(matches!(
        parse(&p, SL_CONTROL, module),
        Inbound::DeleteModule { target, .. } if target == MOD
    ));
    let runtime = json!({"object_id": "r", "action": "delete", "type": "arts_req",
        "data": {"type": "runtime", "uuid": RT, "name": "test"}});
    assert_eq!(
        parse(&p, SL_CONTROL, runtime),
        Inbound::DeleteRuntime {
            object_id: "r".into()
        }
    );
}

// ---- arena ----

fn arena_create(parent: Value) -> Value {
    json!({"object_id": "c1", "action": "create", "type": "req", "from": "web-client",
        "data": {"type": "module", "uuid": MOD, "name": "wiselab/robot", "parent": parent,
                 "file": "robot.py", "location": "wiselab/programs/robot", "filetype": "PY",
                 "scene": "alice/lab", "env": {"ROBOT": "1"}, "args": ["--fast"],
                 "channels": [], "peripherals": [], "resources": null}})
}

#[test]
fn arena_create_for_this_runtime_by_name_parses() {
    let p = protocol("arena");
    let (object_id, request) = created(parse(&p, ARENA_CONTROL, arena_create(json!("node1"))));
    assert_eq!(object_id, "c1");
    assert_eq!(
        (request.namespace.as_str(), request.scene.as_str()),
        ("alice", "lab")
    );
    assert_eq!(request.env, [("ROBOT".to_string(), "1".to_string())]);
    assert_eq!(request.argv, ["--fast"]);
    assert_eq!(request.location, "wiselab/programs/robot");
    assert_eq!(
        p.stdout_topic(&request.module_ref()),
        format!("realm/s/alice/lab/p/{MOD}/-/stdout")
    );
    assert!(matches!(
        parse(&p, ARENA_CONTROL, arena_create(json!(RT))),
        Inbound::CreateModule { .. }
    ));
}

#[test]
fn arena_requests_for_other_runtimes_are_ignored() {
    let p = protocol("arena");
    assert_eq!(
        parse(&p, ARENA_CONTROL, arena_create(json!("other-node"))),
        Inbound::Ignored
    );
    assert_eq!(
        parse(&p, ARENA_CONTROL, arena_create(Value::Null)),
        Inbound::Ignored
    );
    let mut bad_for_other = arena_create(json!("other-node"));
    bad_for_other["data"]["file"] = json!("../../etc/passwd");
    assert_eq!(parse(&p, ARENA_CONTROL, bad_for_other), Inbound::Ignored);
    let delete_other = json!({"object_id": "d", "action": "delete", "type": "req",
        "data": {"type": "module", "uuid": MOD, "parent": "other-node"}});
    assert_eq!(parse(&p, ARENA_CONTROL, delete_other), Inbound::Ignored);
    let stop_other = json!({"object_id": "d", "action": "delete", "type": "req",
        "data": {"type": "runtime"}});
    assert_eq!(parse(&p, ARENA_CONTROL, stop_other), Inbound::Ignored);

    // Malformed input that does not name this runtime: every runtime in the realm
    // reads the topic, and none may answer it.
    for unowned in [
        &b"garbage"[..],
        br#"[1, 2]"#,
        br#"{"object_id": "u", "action": "create", "type": "req", "data": "str"}"#,
        br#"{"object_id": "u", "action": "update", "type": "req", "data": {"uuid": "x"}}"#,
        br#"{"object_id": "u", "type": "req", "data": {"parent": "other-node"}}"#,
    ] {
        assert_eq!(
            parse_bytes(&p, ARENA_CONTROL, unowned),
            Inbound::Ignored,
            "{}",
            String::from_utf8_lossy(unowned)
        );
    }
    let ours = json!({"object_id": "u", "action": "update", "type": "req",
        "data": {"uuid": "x", "parent": RT}});
    assert!(matches!(
        parse(&p, ARENA_CONTROL, ours),
        Inbound::Invalid { object_id: Some(id), .. } if id == "u"
    ));
}

#[test]
fn arena_delete_without_parent_is_accepted() {
    let p = protocol("arena");
    let delete = json!({"object_id": "d", "action": "delete", "type": "req",
        "data": {"type": "module", "uuid": MOD}});
    assert_eq!(
        parse(&p, ARENA_CONTROL, delete),
        Inbound::DeleteModule {
            object_id: "d".into(),
            target: MOD.into()
        }
    );
}

#[test]
fn arena_own_messages_are_ignored() {
    let p = protocol("arena");
    let module = ModuleRef {
        uuid: MOD.into(),
        name: "robot".into(),
        namespace: "alice".into(),
        scene: "lab".into(),
    };
    let notice = p.exited(&module, Some(1));
    assert_eq!(
        parse_bytes(&p, ARENA_CONTROL, &notice.payload),
        Inbound::Ignored
    );
    for own in [
        p.keepalive(&[]),
        p.error(Some("x"), "bad", "data"),
        p.registration("r"),
    ] {
        assert_eq!(own.topic, ARENA_REG);
        assert_eq!(parse_bytes(&p, &own.topic, &own.payload), Inbound::Ignored);
    }
}

#[test]
fn arena_bad_request_for_this_runtime_is_invalid() {
    let p = protocol("arena");
    let mut bad = arena_create(json!(RT));
    bad["data"]["file"] = json!("/etc/passwd");
    assert_eq!(
        invalid(parse(&p, ARENA_CONTROL, bad)),
        (
            Some("c1".into()),
            ProtocolError::UnsafePath("/etc/passwd".into())
        )
    );
    let mut bad_scene = arena_create(json!(RT));
    bad_scene["data"]["scene"] = json!("alice/lab+1");
    let (_, error) = invalid(parse(&p, ARENA_CONTROL, bad_scene));
    assert!(
        matches!(error, ProtocolError::InvalidValue { ref field, .. } if field == "data.scene")
    );
}

#[test]
fn arena_unanswerable_requests_for_other_runtimes_get_no_error() {
    let p = protocol("arena");
    let update_other = json!({"object_id": "u", "action": "update", "type": "req",
        "data": {"type": "module", "uuid": MOD, "parent": "other-node"}});
    assert_eq!(parse(&p, ARENA_CONTROL, update_other), Inbound::Ignored);
    let update_ours = json!({"object_id": "u", "action": "update", "type": "req",
        "data": {"type": "module", "uuid": MOD, "parent": "node1"}});
    assert!(matches!(
        parse(&p, ARENA_CONTROL, update_ours),
        Inbound::Invalid { .. }
    ));
}

#[test]
fn control_characters_in_errors_are_escaped_for_one_line_logs() {
    let p = protocol("silverline");
    let (_, error) = invalid(parse(
        &p,
        SL_CONTROL,
        silverline_create_with("file", json!("a\nb")),
    ));
    assert_eq!(error, ProtocolError::UnsafePath("a\\nb".into()));
    assert!(!error.to_string().contains('\n'));
}

#[test]
fn offending_values_are_quoted_short_and_on_one_line() {
    let p = protocol("silverline");
    let p = Protocol {
        max_request_bytes: 1 << 20,
        ..p
    };
    let long = format!("x\nWARN forged log line\r{}", "y".repeat(100_000));
    let mut env = serde_json::Map::new();
    env.insert(long.clone(), json!({}));
    let messages = [
        json!({"action": long, "type": "req", "data": {}}),
        json!({"action": "create", "type": long, "data": {}}),
        json!({"action": "create", "type": "req", "data": {"type": long}}),
        json!({"action": "delete", "type": "req", "data": {"type": long}}),
        silverline_create_with("filetype", json!(long)),
        silverline_create_with("uuid", json!(long)),
        silverline_create_with("env", Value::Object(env)),
        silverline_create_with("args", json!([format!("{long}\u{0}")])),
        silverline_create_with("file", json!(format!("/{long}"))),
    ];
    for message in messages {
        let (_, error) = invalid(parse(&p, SL_CONTROL, message));
        for text in [error.to_string(), error.offending_value()] {
            let start: String = text.chars().take(120).collect();
            assert!(text.len() < 1000, "{} bytes: {start}", text.len());
            assert!(!text.contains(['\n', '\r']), "{start}");
        }
        assert!(error.to_string().contains("forged log line"), "{error}");
    }
}
