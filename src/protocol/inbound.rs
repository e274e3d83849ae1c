//! Classification of inbound publications: stdin lines, registration replies, module
//! and runtime requests, and everything the runtime must ignore (its own echoes,
//! responses, other runtimes' traffic).
//!
//! Not for: acting on a request (the supervisor) or building answers (`outbound`).

use serde_json::{Map, Value};

use super::request::{module_request, optional_str, present, wrong_type};
use super::topics::{filter_matches, MODULE_PLACEHOLDERS};
use super::{printable, Inbound, Protocol, ProtocolError};

/// What a control message asks for, before its `object_id` is attached.
enum Request {
    Create(Box<super::ModuleRequest>),
    DeleteModule(String),
    DeleteRuntime,
    /// Not for this runtime, or nothing to answer.
    Ignore,
}

pub(super) fn parse(
    protocol: &Protocol,
    topic: &str,
    payload: &[u8],
    stdin_modules: &dyn Fn(&str) -> Option<String>,
) -> Inbound {
    if let Some(module_uuid) = stdin_modules(topic) {
        return stdin(protocol, module_uuid, payload);
    }

    let is_reg = topic == protocol.reg_topic();
    let is_control = filter_matches(&protocol.control_filter(), topic);
    if !is_reg && !is_control {
        log::debug!("ignoring message on unexpected topic '{topic}'");
        return Inbound::Ignored;
    }

    // On a control topic shared with other runtimes and programs, input that does not
    // name this runtime as its `parent` is not ours to answer, even when malformed.
    let shared = is_control && protocol.control_is_shared();
    let too_large = payload.len() > protocol.max_request_bytes;
    let envelope = match parse_object(payload) {
        Ok(envelope) => envelope,
        Err(_) if !is_control => return Inbound::Ignored,
        Err(error) if shared => {
            log::debug!("ignoring unreadable message on shared topic '{topic}': {error}");
            return Inbound::Ignored;
        }
        Err(error) => {
            let error = if too_large {
                too_large_error(protocol, payload)
            } else {
                error
            };
            return Inbound::Invalid {
                object_id: None,
                error,
            };
        }
    };

    let object_id = object_id(&envelope);
    let from = envelope.get("from").and_then(Value::as_str);
    if from == Some(protocol.runtime.uuid.as_str()) {
        return Inbound::Ignored;
    }

    if is_reg {
        if is_response(protocol, &envelope) {
            if let Some(object_id) = object_id {
                return registration_reply(object_id, &envelope);
            }
        }
        if !is_control || is_runtime_registration(&envelope) {
            return Inbound::Ignored;
        }
    }

    if is_response(protocol, &envelope) {
        return Inbound::Ignored;
    }
    if let Some("exited" | "error") = envelope.get("action").and_then(Value::as_str) {
        return Inbound::Ignored;
    }

    match request(protocol, &envelope) {
        Ok(Request::Ignore) => Inbound::Ignored,
        Ok(_) if too_large => Inbound::Invalid {
            object_id,
            error: too_large_error(protocol, payload),
        },
        Ok(request) => {
            let object_id = object_id.unwrap_or_else(new_object_id);
            match request {
                Request::Create(request) => Inbound::CreateModule { object_id, request },
                Request::DeleteModule(target) => Inbound::DeleteModule { object_id, target },
                Request::DeleteRuntime => Inbound::DeleteRuntime { object_id },
                Request::Ignore => Inbound::Ignored,
            }
        }
        Err(error) if shared && !names_us_as_parent(protocol, &envelope) => {
            log::debug!(
                "ignoring request on shared topic '{topic}' not naming this runtime: {error}"
            );
            Inbound::Ignored
        }
        Err(error) => Inbound::Invalid {
            object_id,
            error: if too_large {
                too_large_error(protocol, payload)
            } else {
                error
            },
        },
    }
}

fn names_us_as_parent(protocol: &Protocol, envelope: &Map<String, Value>) -> bool {
    envelope
        .get("data")
        .and_then(Value::as_object)
        .and_then(|data| parent(protocol, data))
        == Some(true)
}

/// A fresh `object_id` for a request that came without one.
pub(super) fn new_object_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// One line of input for a module: raw bytes in every dialect, newline-terminated.
fn stdin(protocol: &Protocol, module_uuid: String, payload: &[u8]) -> Inbound {
    if payload.len() > protocol.max_request_bytes {
        return Inbound::Invalid {
            object_id: None,
            error: too_large_error(protocol, payload),
        };
    }
    let mut data = Vec::with_capacity(payload.len() + 1);
    data.extend_from_slice(payload);
    if !data.ends_with(b"\n") {
        data.push(b'\n');
    }
    Inbound::Stdin { module_uuid, data }
}

fn too_large_error(protocol: &Protocol, payload: &[u8]) -> ProtocolError {
    ProtocolError::TooLarge {
        size: payload.len(),
        limit: protocol.max_request_bytes,
    }
}

fn parse_object(payload: &[u8]) -> Result<Map<String, Value>, ProtocolError> {
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(ProtocolError::NotJson(format!(
            "expected an object, got {}",
            super::request::describe(&other)
        ))),
        Err(error) => Err(ProtocolError::NotJson(error.to_string())),
    }
}

/// The request's `object_id`: a string, or a number written out.
fn object_id(envelope: &Map<String, Value>) -> Option<String> {
    match envelope.get("object_id") {
        Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
        Some(Value::Number(id)) => Some(id.to_string()),
        _ => None,
    }
}

/// `resp` in the dialect's spelling; any `*resp` spelling counts, so that a response
/// is never mistaken for a request.
fn is_response(protocol: &Protocol, envelope: &Map<String, Value>) -> bool {
    match envelope.get("type").and_then(Value::as_str) {
        Some(kind) => kind == protocol.dialect.resp_type || kind.ends_with("resp"),
        None => false,
    }
}

fn is_request_type(protocol: &Protocol, kind: &str) -> bool {
    kind == protocol.dialect.req_type || kind.ends_with("req")
}

/// A runtime's own registration (ours echoed, or another runtime's on a shared topic).
fn is_runtime_registration(envelope: &Map<String, Value>) -> bool {
    let data_type = envelope
        .get("data")
        .and_then(|data| data.get("type"))
        .and_then(Value::as_str);
    data_type == Some("runtime")
}

fn registration_reply(object_id: String, envelope: &Map<String, Value>) -> Inbound {
    let data = envelope.get("data");
    let ok = data
        .and_then(|data| data.get("result"))
        .and_then(Value::as_str)
        == Some("ok");
    let details = data
        .and_then(|data| data.get("details"))
        .cloned()
        .unwrap_or(Value::Null);
    Inbound::RegistrationReply {
        object_id,
        ok,
        details,
    }
}

fn request(protocol: &Protocol, envelope: &Map<String, Value>) -> Result<Request, ProtocolError> {
    match envelope.get("type") {
        None | Some(Value::Null) => {}
        Some(Value::String(kind)) if is_request_type(protocol, kind) => {}
        Some(Value::String(kind)) => {
            return Err(ProtocolError::InvalidValue {
                field: "type".into(),
                reason: format!(
                    "expected '{}', got '{}'",
                    protocol.dialect.req_type,
                    printable(kind)
                ),
            })
        }
        Some(other) => return Err(wrong_type("type", "a string", other)),
    }

    // On a shared control topic, `parent` is the only sign that a request is ours;
    // one that names another runtime gets no answer, not even an error.
    if protocol.control_is_shared() {
        let data = envelope.get("data").and_then(Value::as_object);
        if data.and_then(|data| parent(protocol, data)) == Some(false) {
            return Ok(Request::Ignore);
        }
    }

    let action = optional_str(envelope, "action", "action")?
        .ok_or_else(|| ProtocolError::MissingField("action".into()))?;
    match action {
        "create" => create(protocol, data(envelope)?),
        "delete" => delete(protocol, data(envelope)?),
        "update" => Err(ProtocolError::InvalidValue {
            field: "action".into(),
            reason: "'update' requests are not supported by this runtime".into(),
        }),
        other => Err(ProtocolError::UnknownAction(printable(other))),
    }
}

fn data(envelope: &Map<String, Value>) -> Result<&Map<String, Value>, ProtocolError> {
    match present(envelope, "data") {
        None => Err(ProtocolError::MissingField("data".into())),
        Some(Value::Object(data)) => Ok(data),
        Some(other) => Err(wrong_type("data", "an object", other)),
    }
}

fn create(protocol: &Protocol, data: &Map<String, Value>) -> Result<Request, ProtocolError> {
    match optional_str(data, "type", "data.type")? {
        None | Some("module") => {}
        Some(other) => {
            return Err(ProtocolError::InvalidValue {
                field: "data.type".into(),
                reason: format!("only modules can be created, got '{}'", printable(other)),
            })
        }
    }

    // A create on a shared topic must name its runtime.
    if protocol.control_is_shared() && parent(protocol, data) != Some(true) {
        return Ok(Request::Ignore);
    }

    let check_scene = module_topics_use_scene(protocol);
    let request = module_request(data, check_scene)?;
    Ok(Request::Create(Box::new(request)))
}

fn delete(protocol: &Protocol, data: &Map<String, Value>) -> Result<Request, ProtocolError> {
    match optional_str(data, "type", "data.type")? {
        None | Some("module") => delete_module(data),
        Some("runtime") => delete_runtime(protocol, data),
        Some(other) => Err(ProtocolError::InvalidValue {
            field: "data.type".into(),
            reason: format!("expected 'module' or 'runtime', got '{}'", printable(other)),
        }),
    }
}

/// A module delete names the module by uuid, or by name (in `uuid` or `name`).
fn delete_module(data: &Map<String, Value>) -> Result<Request, ProtocolError> {
    let uuid = optional_str(data, "uuid", "data.uuid")?.filter(|uuid| !uuid.is_empty());
    let target = match uuid {
        Some(uuid) => uuid,
        None => optional_str(data, "name", "data.name")?
            .filter(|name| !name.is_empty())
            .ok_or_else(|| ProtocolError::MissingField("data.uuid".into()))?,
    };
    Ok(Request::DeleteModule(target.to_string()))
}

/// A runtime delete names this runtime by uuid (or name); without either, it is ours
/// only when it came on a topic that is ours alone.
fn delete_runtime(
    protocol: &Protocol,
    data: &Map<String, Value>,
) -> Result<Request, ProtocolError> {
    let runtime = &protocol.runtime;
    let uuid = optional_str(data, "uuid", "data.uuid")?;
    let name = optional_str(data, "name", "data.name")?;
    let ours = match (uuid, name) {
        (Some(uuid), _) => uuid == runtime.uuid || uuid == runtime.name,
        (None, Some(name)) => name == runtime.name,
        (None, None) => !protocol.control_is_shared(),
    };
    if ours {
        Ok(Request::DeleteRuntime)
    } else {
        log::debug!(
            "ignoring delete of another runtime '{}'",
            uuid.or(name).unwrap_or("")
        );
        Ok(Request::Ignore)
    }
}

/// Does `data.parent` (a uuid or name, or an object with either) name this runtime?
/// `None` when there is no usable parent.
fn parent(protocol: &Protocol, data: &Map<String, Value>) -> Option<bool> {
    let runtime = &protocol.runtime;
    let names_us = |value: &str| value == runtime.uuid || value == runtime.name;
    match data.get("parent")? {
        Value::String(parent) => Some(names_us(parent)),
        Value::Object(parent) => {
            let ids: Vec<&str> = ["uuid", "name"]
                .iter()
                .filter_map(|key| parent.get(*key).and_then(Value::as_str))
                .collect();
            if ids.is_empty() {
                None
            } else {
                Some(ids.into_iter().any(names_us))
            }
        }
        _ => None,
    }
}

/// Module namespace and scene must be valid topic levels only when topics use them.
fn module_topics_use_scene(protocol: &Protocol) -> bool {
    let t = &protocol.dialect.topics;
    [&t.response, &t.exited, &t.stdout, &t.stderr, &t.stdin]
        .iter()
        .any(|template| {
            MODULE_PLACEHOLDERS[1..]
                .iter()
                .any(|placeholder| template.contains(placeholder))
        })
}
