//! The `arena` and `arts` wire dialects as a peer sees them, with the `dialect:` block
//! of the shipped `conf/arena` and `conf/arts` folders: registration and its reply,
//! keepalives, creates, confirmations, module output and input, exit notices, errors,
//! and requests meant for another runtime on a shared topic.
//!
//! Not for: the default `silverline` dialect (the other integration tests) or the
//! dialect switches one by one (unit tests in src/protocol).

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{new_uuid, programs, start_runtime, str_of, Fixture, Msg, RuntimeOptions, WAIT};
use serde_json::{json, Value};

/// Long enough for a message the runtime would send at once, short enough to keep the
/// tests fast: used only to check that something does *not* happen.
const QUIET: Duration = Duration::from_millis(1500);

/// The `dialect:` block of a shipped config folder, as an `.appsettings.yaml`.
fn shipped_dialect(folder: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conf")
        .join(folder)
        .join(".appsettings.yaml");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read '{}': {e}", path.display()));
    let all: Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse '{}': {e}", path.display()));
    let dialect = all
        .get("dialect")
        .unwrap_or_else(|| panic!("no 'dialect:' block in '{}'", path.display()));
    assert_eq!(
        dialect["name"],
        folder,
        "dialect name in '{}'",
        path.display()
    );
    serde_yaml::to_string(&json!({ "dialect": dialect })).expect("dialect as yaml")
}

fn options(dialect: &str) -> RuntimeOptions {
    let hello = programs::print(1, "hello from wasm\n");
    RuntimeOptions::default()
        .appsettings(&shipped_dialect(dialect))
        .program("hello.wasm", hello.clone())
        .program("echo.wasm", programs::echo())
        .program("exit_code.wasm", programs::exit_code(3))
        .program("apps/hello.wasm", hello)
        .program("apps/echo.wasm", programs::echo())
}

fn short_name() -> String {
    format!("mod-{}", &new_uuid()[..8])
}

/// A registration reply as the orchestrator sends it.
fn reg_reply(object_id: &str, resp_type: &str, uuid: &str, name: &str, ka_sec: f64) -> Value {
    json!({
        "object_id": object_id,
        "type": resp_type,
        "data": {
            "result": "ok",
            "details": {"uuid": uuid, "name": name, "ka_interval_sec": ka_sec, "status": "A"}
        }
    })
}

// ---------------------------------------------------------------------------------
// arts

fn arts_reg_topic(fx: &Fixture) -> String {
    format!("{}/proc/reg", fx.rt.realm)
}

fn arts_control(fx: &Fixture) -> String {
    format!("{}/proc/control/{}", fx.rt.realm, fx.rt.uuid)
}

/// Where responses and exit notices go: the control topic without the uuid.
fn arts_shared_control(fx: &Fixture) -> String {
    format!("{}/proc/control", fx.rt.realm)
}

fn arts_expect_registration(fx: &mut Fixture, timeout: Duration) -> Value {
    let topic = arts_reg_topic(fx);
    let uuid = fx.rt.uuid.clone();
    fx.orch.expect(
        "an arts registration request",
        |t| t == topic,
        |v| {
            v["action"] == "create"
                && v["type"] == "arts_req"
                && v["data"]["type"] == "runtime"
                && v["data"]["uuid"] == uuid.as_str()
        },
        timeout,
    )
}

fn arts_registered(ka_sec: f64) -> Fixture {
    let mut fx = start_runtime(options("arts"));
    let req = arts_expect_registration(&mut fx, WAIT);
    let reply = reg_reply(
        str_of(&req, "/object_id"),
        "arts_resp",
        &fx.rt.uuid,
        &fx.rt.name,
        ka_sec,
    );
    fx.orch.publish_json(&arts_reg_topic(&fx), &reply);
    fx
}

/// An arts create: `filename` instead of `file`, type `arts_req`. Returns
/// `(object_id, module_uuid)`.
fn arts_create(fx: &Fixture, filename: &str) -> (String, String) {
    let object_id = new_uuid();
    let module = new_uuid();
    let req = json!({
        "object_id": object_id,
        "action": "create",
        "type": "arts_req",
        "data": {
            "type": "module",
            "uuid": module,
            "name": short_name(),
            "filename": filename,
            "filetype": "WA",
            "args": [],
            "env": [],
            "apis": ["wasm", "wasi"],
            "channels": [],
        }
    });
    fx.orch.publish_json(&arts_control(fx), &req);
    (object_id, module)
}

fn arts_expect_ok(fx: &mut Fixture, object_id: &str) -> Value {
    let topic = arts_shared_control(fx);
    let ok = fx.orch.expect(
        &format!("an arts_resp ok to '{object_id}'"),
        |t| t == topic,
        |v| v["object_id"] == object_id && v["data"]["result"] == "ok",
        WAIT,
    );
    assert_eq!(ok["type"], "arts_resp", "arts response: {ok}");
    assert_eq!(ok["action"], "create", "arts response: {ok}");
    ok
}

fn arts_expect_exited(fx: &mut Fixture, module: &str) -> Value {
    let topic = arts_shared_control(fx);
    let exited = fx.orch.expect(
        &format!("an exited notice for '{module}'"),
        |t| t == topic,
        |v| v["action"] == "exited" && v["data"]["uuid"] == module,
        WAIT,
    );
    assert_eq!(exited["type"], "arts_req", "exited notice: {exited}");
    assert_eq!(exited["data"]["type"], "module", "exited notice: {exited}");
    assert_eq!(
        exited["data"]["status"], "exited",
        "exited notice: {exited}"
    );
    exited
}

#[test]
fn arts_registration_reply_for_another_object_id_is_not_taken() {
    let mut fx = start_runtime(options("arts"));
    let req = arts_expect_registration(&mut fx, WAIT);
    assert_eq!(
        req["data"]["name"],
        fx.rt.name.as_str(),
        "registration: {req}"
    );
    assert!(req.get("from").is_none(), "arts sends no 'from': {req}");
    let object_id = str_of(&req, "/object_id").to_string();
    assert!(
        !object_id.is_empty(),
        "registration without object_id: {req}"
    );

    // Another runtime's reply on the shared topic: were it taken, a keepalive would
    // follow within a second and the retries would stop.
    let other = new_uuid();
    let stray = reg_reply(&new_uuid(), "arts_resp", &other, "other-runtime", 1.0);
    fx.orch.publish_json(&arts_reg_topic(&fx), &stray);

    let retry = arts_expect_registration(&mut fx, Duration::from_secs(4));
    assert_eq!(
        retry["object_id"], object_id,
        "a retry keeps its object_id: {retry}"
    );
    let keepalive = format!("{}/proc/keepalive/{}", fx.rt.realm, fx.rt.uuid);
    fx.orch.expect_none(
        "a keepalive before our own registration reply",
        |t| t == keepalive,
        |_| true,
        Duration::from_secs(1),
    );

    let reply = reg_reply(&object_id, "arts_resp", &fx.rt.uuid, &fx.rt.name, 1.0);
    fx.orch.publish_json(&arts_reg_topic(&fx), &reply);
    let ka = fx.orch.expect(
        "a keepalive after registration",
        |t| t == keepalive,
        |v| v["action"] == "update",
        Duration::from_secs(4),
    );
    assert_eq!(ka["type"], "arts_req", "keepalive: {ka}");
    assert_eq!(ka["data"]["uuid"], fx.rt.uuid.as_str(), "keepalive: {ka}");
}

#[test]
fn arts_create_with_filename_is_answered_prints_and_is_reported_exited() {
    let mut fx = arts_registered(60.0);
    let (object_id, module) = arts_create(&fx, "hello.wasm");

    arts_expect_ok(&mut fx, &object_id);
    let stdout = format!("{}/proc/stdio/{module}", fx.rt.realm);
    let out = fx.orch.expect_output(&stdout, "hello from wasm\n", WAIT);
    assert_eq!(out, "hello from wasm\n", "raw stdout, no envelope");
    arts_expect_exited(&mut fx, &module);
    fx.orch.assert_control_topics_clean();
}

#[test]
fn arts_exit_code_is_reported_on_the_shared_control_topic() {
    let mut fx = arts_registered(60.0);
    let (_, module) = arts_create(&fx, "exit_code.wasm");

    let exited = arts_expect_exited(&mut fx, &module);
    assert_eq!(
        common::exit_code_of(&exited),
        Some(3),
        "exit code in: {exited}"
    );
}

#[test]
fn arts_stdin_reaches_the_program_raw() {
    let mut fx = arts_registered(60.0);
    let (object_id, module) = arts_create(&fx, "echo.wasm");
    arts_expect_ok(&mut fx, &object_id);

    let realm = fx.rt.realm.clone();
    fx.orch
        .publish_raw(&format!("{realm}/proc/stdio/{module}/stdin"), "ping");
    let out = fx
        .orch
        .expect_output(&format!("{realm}/proc/stdio/{module}"), "ping\n", WAIT);
    assert_eq!(out, "ping\n");
}

#[test]
fn arts_bad_request_is_answered_with_an_error_and_the_runtime_stays_up() {
    let mut fx = arts_registered(60.0);
    let (object_id, _) = arts_create(&fx, "../../etc/passwd");

    let log = format!("{}/proc/log/{}", fx.rt.realm, fx.rt.uuid);
    let err = fx.orch.expect(
        "an error on the log topic",
        |t| t == log,
        |v| v["object_id"] == object_id.as_str(),
        WAIT,
    );
    assert_eq!(err["action"], "error", "error: {err}");
    assert_eq!(err["type"], "arts_resp", "error: {err}");
    assert_eq!(err["data"]["result"], "error", "error: {err}");
    assert!(
        !str_of(&err, "/data/details/desc").is_empty(),
        "error without desc: {err}"
    );
    assert!(
        common::error_text(&err).contains("../../etc/passwd"),
        "error names the path: {err}"
    );

    let (object_id, module) = arts_create(&fx, "hello.wasm");
    arts_expect_ok(&mut fx, &object_id);
    arts_expect_exited(&mut fx, &module);
}

// ---------------------------------------------------------------------------------
// arena

const NS: &str = "lab";
const SCENE: &str = "demo";

/// The runtime's own topic: registration, keepalives, errors.
fn arena_rt_topic(fx: &Fixture) -> String {
    format!("{}/g/public/p/{}", fx.rt.realm, fx.rt.uuid)
}

/// Where confirmations and exit notices of a module go.
fn arena_module_topic(fx: &Fixture, module: &str) -> String {
    format!("{}/s/{NS}/{SCENE}/p/{module}", fx.rt.realm)
}

fn arena_expect_registration(fx: &mut Fixture) -> Value {
    let topic = arena_rt_topic(fx);
    let uuid = fx.rt.uuid.clone();
    let req = fx.orch.expect(
        "an arena registration request",
        |t| t == topic,
        |v| v["action"] == "create" && v["type"] == "req" && v["data"]["type"] == "runtime",
        WAIT,
    );
    assert_eq!(req["from"], uuid.as_str(), "registration 'from': {req}");
    assert_eq!(req["data"]["uuid"], uuid.as_str(), "registration: {req}");
    req
}

fn arena_registered(ka_sec: f64) -> Fixture {
    let mut fx = start_runtime(options("arena"));
    let req = arena_expect_registration(&mut fx);
    let mut reply = reg_reply(
        str_of(&req, "/object_id"),
        "resp",
        &fx.rt.uuid,
        &fx.rt.name,
        ka_sec,
    );
    reply["from"] = json!(new_uuid());
    fx.orch.publish_json(&arena_rt_topic(&fx), &reply);
    fx
}

/// Create data as the ARENA orchestrator sends it.
fn arena_create_data(module: &str, file: &str, parent: &str) -> Value {
    json!({
        "type": "module",
        "uuid": module,
        "name": short_name(),
        "file": file,
        "location": "apps",
        "filetype": "WA",
        "parent": parent,
        "scene": format!("{NS}/{SCENE}"),
        "args": [],
        "env": [],
        "channels": [],
        "apis": ["wasm", "wasi"],
    })
}

/// Publish a create on the request topic `{realm}/s/ns/scene/p/{runtime}/{module}`,
/// as addressed to `to` (a runtime uuid). Returns the object_id.
fn arena_send(fx: &Fixture, to: &str, action: &str, data: &Value) -> String {
    let object_id = new_uuid();
    let module = str_of(data, "/uuid");
    let topic = format!("{}/s/{NS}/{SCENE}/p/{to}/{module}", fx.rt.realm);
    let req = json!({
        "object_id": object_id,
        "action": action,
        "type": "req",
        "from": new_uuid(),
        "data": data,
    });
    fx.orch.publish_json(&topic, &req);
    object_id
}

fn arena_expect_confirmation(fx: &mut Fixture, object_id: &str, module: &str) -> Value {
    let topic = arena_module_topic(fx, module);
    let ok = fx.orch.expect(
        &format!("a confirmation of '{object_id}'"),
        |t| t == topic,
        |v| v["object_id"] == object_id && v["type"] == "resp",
        WAIT,
    );
    assert_eq!(ok["action"], "create", "confirmation: {ok}");
    assert_eq!(ok["from"], fx.rt.uuid.as_str(), "confirmation: {ok}");
    assert_eq!(ok["data"]["result"], "ok", "confirmation: {ok}");
    ok
}

/// Collect a module's JSON-string output on `topic` until it contains `needle`.
fn arena_expect_output(fx: &mut Fixture, topic: &str, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    let mut collected = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(msg) = fx.orch.wait_for(&|m: &Msg| m.topic == topic, left) else {
            panic!(
                "expected {needle:?} on '{topic}', collected {collected:?}; seen:\n{}",
                fx.orch.history().join("\n")
            );
        };
        match msg.json() {
            Some(Value::String(piece)) => collected.push_str(&piece),
            _ => panic!("output on '{topic}' is not a JSON string: {:?}", msg.text()),
        }
        if collected.contains(needle) {
            return collected;
        }
    }
}

#[test]
fn arena_registers_and_keeps_alive_on_the_runtime_topic_with_from() {
    let mut fx = arena_registered(1.0);
    let topic = arena_rt_topic(&fx);
    let ka = fx.orch.expect(
        "a keepalive",
        |t| t == topic,
        |v| v["action"] == "update",
        Duration::from_secs(4),
    );
    assert_eq!(ka["type"], "req", "keepalive: {ka}");
    assert_eq!(ka["from"], fx.rt.uuid.as_str(), "keepalive: {ka}");
    assert_eq!(ka["data"]["uuid"], fx.rt.uuid.as_str(), "keepalive: {ka}");
    assert!(ka["data"]["children"].is_array(), "keepalive: {ka}");
}

#[test]
fn arena_create_is_confirmed_with_its_data_prints_json_and_announces_its_exit_as_delete() {
    let mut fx = arena_registered(60.0);
    let module = new_uuid();
    let data = arena_create_data(&module, "hello.wasm", &fx.rt.uuid.clone());
    let object_id = arena_send(&fx, &fx.rt.uuid.clone(), "create", &data);

    let ok = arena_expect_confirmation(&mut fx, &object_id, &module);
    assert_eq!(ok["data"]["details"], data, "details echo the request data");

    let stdout = format!("{}/-/stdout", arena_module_topic(&fx, &module));
    let msg = fx
        .orch
        .expect_msg("hello on stdout", |m: &Msg| m.topic == stdout, WAIT);
    assert_eq!(
        msg.text(),
        "\"hello from wasm\\n\"",
        "stdout is a JSON string"
    );

    let topic = arena_module_topic(&fx, &module);
    let notice = fx.orch.expect(
        "a delete request announcing the exit",
        |t| t == topic,
        |v| v["action"] == "delete",
        WAIT,
    );
    assert_eq!(notice["type"], "req", "exit notice: {notice}");
    assert_eq!(notice["from"], fx.rt.uuid.as_str(), "exit notice: {notice}");
    assert_eq!(
        notice["data"],
        json!({"type": "module", "uuid": module, "name": data["name"], "parent": fx.rt.uuid}),
        "exit notice data"
    );
    assert!(
        !str_of(&notice, "/object_id").is_empty(),
        "exit notice without object_id: {notice}"
    );
}

#[test]
fn arena_stdin_arrives_raw_and_output_goes_out_as_json_strings() {
    let mut fx = arena_registered(60.0);
    let module = new_uuid();
    let rt = fx.rt.uuid.clone();
    let data = arena_create_data(&module, "echo.wasm", &rt);
    let object_id = arena_send(&fx, &rt, "create", &data);
    arena_expect_confirmation(&mut fx, &object_id, &module);

    let base = arena_module_topic(&fx, &module);
    fx.orch.publish_raw(&format!("{base}/-/stdin"), "ping");
    let out = arena_expect_output(&mut fx, &format!("{base}/-/stdout"), "ping\n");
    assert_eq!(out, "ping\n");
    fx.orch
        .publish_raw(&format!("{base}/-/stdin"), "say \"hi\"\n");
    let out = arena_expect_output(&mut fx, &format!("{base}/-/stdout"), "hi\"\n");
    assert_eq!(out, "say \"hi\"\n");
}

#[test]
fn arena_create_for_another_runtime_is_ignored_and_ours_still_works() {
    let mut fx = arena_registered(1.0);
    let rt_topic = arena_rt_topic(&fx);
    let rt = fx.rt.uuid.clone();

    let other_runtime = new_uuid();
    let theirs = new_uuid();
    let data = arena_create_data(&theirs, "echo.wasm", &other_runtime);
    arena_send(&fx, &other_runtime, "create", &data);

    let their_topic = arena_module_topic(&fx, &theirs);
    fx.orch.expect_none(
        "anything about another runtime's module",
        |t| t.starts_with(&their_topic),
        |_| true,
        QUIET,
    );
    fx.orch.expect_none(
        "an error about another runtime's request",
        |t| t == rt_topic,
        |v| v.get("desc").is_some(),
        Duration::ZERO,
    );

    let ours = new_uuid();
    let data = arena_create_data(&ours, "echo.wasm", &rt);
    let object_id = arena_send(&fx, &rt, "create", &data);
    arena_expect_confirmation(&mut fx, &object_id, &ours);

    // The next keepalive lists our module and not theirs.
    let ka = fx.orch.expect(
        "a keepalive listing our module",
        |t| t == rt_topic,
        |v| {
            v["action"] == "update"
                && v["data"]["children"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|m| m["uuid"] == ours.as_str()))
        },
        Duration::from_secs(4),
    );
    let children = ka["data"]["children"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !children.iter().any(|m| m["uuid"] == theirs.as_str()),
        "another runtime's module runs here: {ka}"
    );
    fx.orch.expect_none(
        "anything about another runtime's module",
        |t| t.starts_with(&their_topic),
        |_| true,
        Duration::ZERO,
    );
}

#[test]
fn arena_parent_given_as_the_runtime_name_is_accepted() {
    let mut fx = arena_registered(60.0);
    let module = new_uuid();
    let name = fx.rt.name.clone();
    let data = arena_create_data(&module, "hello.wasm", &name);
    let object_id = arena_send(&fx, &fx.rt.uuid.clone(), "create", &data);

    arena_expect_confirmation(&mut fx, &object_id, &module);
    let stdout = format!("{}/-/stdout", arena_module_topic(&fx, &module));
    arena_expect_output(&mut fx, &stdout, "hello from wasm\n");
}

#[test]
fn arena_bad_request_gets_a_bare_error_on_the_runtime_topic() {
    let mut fx = arena_registered(60.0);
    let module = new_uuid();
    let rt = fx.rt.uuid.clone();
    let data = arena_create_data(&module, "../../etc/passwd", &rt);
    arena_send(&fx, &rt, "create", &data);

    let topic = arena_rt_topic(&fx);
    let err = fx.orch.expect(
        "a bare error on the runtime topic",
        |t| t == topic,
        |v| v.get("desc").is_some(),
        WAIT,
    );
    assert!(
        !str_of(&err, "/desc").is_empty(),
        "error without desc: {err}"
    );
    assert!(
        err["data"]
            .as_str()
            .is_some_and(|d| d.contains("../../etc/passwd")),
        "error data names the path: {err}"
    );
    let module_topic = arena_module_topic(&fx, &module);
    fx.orch.expect_none(
        "a confirmation of a bad request",
        |t| t == module_topic,
        |_| true,
        Duration::ZERO,
    );
}

#[test]
fn arena_delete_request_is_confirmed_and_not_announced_again_as_a_delete() {
    let mut fx = arena_registered(60.0);
    let rt = fx.rt.uuid.clone();
    let module = new_uuid();
    let data = arena_create_data(&module, "echo.wasm", &rt);
    let object_id = arena_send(&fx, &rt, "create", &data);
    arena_expect_confirmation(&mut fx, &object_id, &module);

    let delete = json!({"type": "module", "uuid": module, "parent": rt});
    let delete_id = arena_send(&fx, &rt, "delete", &delete);
    let topic = arena_module_topic(&fx, &module);
    let ok = fx.orch.expect(
        "the delete confirmation",
        |t| t == topic,
        |v| v["object_id"] == delete_id.as_str() && v["type"] == "resp",
        WAIT,
    );
    assert_eq!(ok["data"]["result"], "ok", "delete confirmation: {ok}");

    // A later module's exit notice marks the point by which any notice for the
    // deleted module would have been published.
    let later = new_uuid();
    let data = arena_create_data(&later, "hello.wasm", &rt);
    let later_id = arena_send(&fx, &rt, "create", &data);
    arena_expect_confirmation(&mut fx, &later_id, &later);
    let later_topic = arena_module_topic(&fx, &later);
    fx.orch.expect(
        "the later module's exit notice",
        |t| t == later_topic,
        |v| v["action"] == "delete" && v["type"] == "req",
        WAIT,
    );
    let notices: Vec<&String> = fx
        .orch
        .history()
        .iter()
        .filter(|line| {
            let Some((line_topic, payload)) = line.split_once(' ') else {
                return false;
            };
            let payload: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
            line_topic == topic && payload["action"] == "delete" && payload["type"] == "req"
        })
        .collect();
    assert!(
        notices.is_empty(),
        "a deleted module was announced as deleted again: {notices:?}"
    );
}

#[test]
fn arena_python_module_from_a_location_gets_its_args_and_env_and_announces_its_exit() {
    let options = common::engine::with_python(options("arena"), &["argv_env"]);
    let mut fx = start_runtime(options);
    let _janitor = common::engine::Janitor {
        runtime_uuid: fx.rt.uuid.clone(),
        host: None,
    };
    let req = arena_expect_registration(&mut fx);
    let mut reply = reg_reply(
        str_of(&req, "/object_id"),
        "resp",
        &fx.rt.uuid,
        &fx.rt.name,
        60.0,
    );
    reply["from"] = json!(new_uuid());
    fx.orch.publish_json(&arena_rt_topic(&fx), &reply);

    let module = new_uuid();
    let rt = fx.rt.uuid.clone();
    let mut data = arena_create_data(&module, "argv_env.py", &rt);
    data["location"] = json!("py/argv_env");
    data["filetype"] = json!("PY");
    data["args"] = json!(["one", "two words"]);
    data["env"] = json!(["SL_SCENE_KEY=value"]);
    data["apis"] = json!([]);
    let object_id = arena_send(&fx, &rt, "create", &data);
    arena_expect_confirmation(&mut fx, &object_id, &module);

    let base = arena_module_topic(&fx, &module);
    let out = arena_expect_output(&mut fx, &format!("{base}/-/stdout"), "}\n");
    let seen: Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(seen["argv"], json!(["one", "two words"]), "{seen}");
    assert_eq!(seen["env"]["SL_SCENE_KEY"], "value", "{seen}");
    assert_eq!(seen["env"]["PROGRAM_OBJECT_ID"], module.as_str(), "{seen}");

    let notice = fx.orch.expect(
        "a delete request announcing the exit",
        |t| t == base,
        |v| v["action"] == "delete",
        Duration::from_secs(30),
    );
    assert_eq!(notice["data"]["uuid"], module.as_str(), "{notice}");
    common::engine::assert_no_containers_left(&fx.rt.uuid);
}
