//! Builders of outbound messages: registration, unregistration (the last will),
//! keepalives, responses, errors, exit notices and module output, each in the
//! dialect's topic and shape. Every control payload is a non-empty JSON object.
//!
//! Not for: deciding when to send them (the supervisor and the mqtt thread do).

use serde_json::{json, Map, Value};

use super::inbound::new_object_id;
use super::topics::expand;
use super::{ChildStats, Message, ModuleRef, Protocol};

/// The envelope `{object_id, action, type, [from], data}`.
fn envelope(protocol: &Protocol, object_id: &str, action: &str, kind: &str, data: Value) -> Value {
    let mut message = Map::new();
    message.insert("object_id".into(), Value::from(object_id));
    message.insert("action".into(), Value::from(action));
    message.insert("type".into(), Value::from(kind));
    if protocol.dialect.send_from {
        message.insert("from".into(), Value::from(protocol.runtime.uuid.as_str()));
    }
    message.insert("data".into(), data);
    Value::Object(message)
}

fn message(topic: String, payload: &Value) -> Message {
    Message {
        topic,
        payload: payload.to_string().into_bytes(),
    }
}

/// What the runtime says about itself in registrations and keepalives.
fn runtime_data(protocol: &Protocol) -> Map<String, Value> {
    let runtime = &protocol.runtime;
    let mut data = Map::new();
    data.insert("type".into(), json!("runtime"));
    data.insert("uuid".into(), json!(runtime.uuid));
    data.insert("name".into(), json!(runtime.name));
    data.insert("namespace".into(), json!(runtime.namespace));
    data.insert("runtime_type".into(), json!(runtime.runtime_type));
    data.insert("max_nmodules".into(), json!(runtime.max_nmodules));
    data.insert("apis".into(), json!(runtime.apis));
    data.insert("platform".into(), json!({}));
    data.insert("metadata".into(), Value::Object(protocol.metadata.clone()));
    data
}

pub(super) fn registration(protocol: &Protocol, object_id: &str) -> Message {
    let data = Value::Object(runtime_data(protocol));
    let payload = envelope(
        protocol,
        object_id,
        "create",
        &protocol.dialect.req_type,
        data,
    );
    message(protocol.reg_topic(), &payload)
}

pub(super) fn unregistration(protocol: &Protocol) -> Message {
    let runtime = &protocol.runtime;
    let data = json!({"type": "runtime", "uuid": runtime.uuid, "name": runtime.name});
    let payload = envelope(
        protocol,
        &new_object_id(),
        "delete",
        &protocol.dialect.req_type,
        data,
    );
    message(protocol.reg_topic(), &payload)
}

pub(super) fn keepalive(protocol: &Protocol, children: &[ChildStats]) -> Message {
    let mut data = runtime_data(protocol);
    data.insert("children".into(), json!(children));
    let payload = envelope(
        protocol,
        &new_object_id(),
        "update",
        &protocol.dialect.req_type,
        Value::Object(data),
    );
    let topic = expand(&protocol.dialect.topics.keepalive, &protocol.vars(None));
    message(topic, &payload)
}

pub(super) fn response_ok(
    protocol: &Protocol,
    object_id: &str,
    action: &str,
    module: &ModuleRef,
    details: Value,
) -> Message {
    let data = json!({"result": "ok", "details": details});
    let payload = envelope(
        protocol,
        object_id,
        action,
        &protocol.dialect.resp_type,
        data,
    );
    let topic = expand(
        &protocol.dialect.topics.response,
        &protocol.vars(Some(module)),
    );
    message(topic, &payload)
}

pub(super) fn error(
    protocol: &Protocol,
    object_id: Option<&str>,
    desc: &str,
    data: &str,
) -> Message {
    let topic = expand(&protocol.dialect.topics.log, &protocol.vars(None));
    if protocol.dialect.error_format == "bare" {
        return message(topic, &json!({"desc": desc, "data": data}));
    }

    let object_id = object_id.map_or_else(new_object_id, str::to_string);
    let details = json!({"result": "error", "details": {"desc": desc, "data": data}});
    let payload = envelope(
        protocol,
        &object_id,
        "error",
        &protocol.dialect.resp_type,
        details,
    );
    message(topic, &payload)
}

pub(super) fn exited(protocol: &Protocol, module: &ModuleRef, exit_code: Option<i32>) -> Message {
    let topic = expand(
        &protocol.dialect.topics.exited,
        &protocol.vars(Some(module)),
    );
    let req_type = &protocol.dialect.req_type;

    // The ARENA applauncher announces an exit as a module delete request.
    if protocol.dialect.exit_notice == "delete" {
        let data = json!({
            "type": "module",
            "uuid": module.uuid,
            "name": module.name,
            "parent": protocol.runtime.uuid,
        });
        let payload = envelope(protocol, &new_object_id(), "delete", req_type, data);
        return message(topic, &payload);
    }

    let mut data = Map::new();
    data.insert("type".into(), json!("module"));
    data.insert("uuid".into(), json!(module.uuid));
    data.insert("status".into(), json!("exited"));
    if let Some(code) = exit_code {
        data.insert("exit_code".into(), json!(code));
    }
    let payload = envelope(
        protocol,
        &new_object_id(),
        "exited",
        req_type,
        Value::Object(data),
    );
    message(topic, &payload)
}

/// Module output: raw bytes, or a JSON string when the dialect wants `stdio_json`
/// (bytes that are not UTF-8 become U+FFFD there).
pub(super) fn output(protocol: &Protocol, topic: String, data: &[u8]) -> Message {
    let payload = if protocol.dialect.stdio_json {
        Value::from(String::from_utf8_lossy(data))
            .to_string()
            .into_bytes()
    } else {
        data.to_vec()
    };
    Message { topic, payload }
}
