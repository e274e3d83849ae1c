//! The wire protocol: envelope, dialects, topic templates, parsing of inbound messages
//! and building of outbound ones. Pure functions, no I/O.
//!
//! Not for: deciding what to do with a message (the supervisor does that).
//!
//! CONTRACT: type and function signatures are shared by every component. Parsing
//! lives in `inbound` and `request`, building in `outbound`, topic templates in
//! `topics`, path checks in `paths`.

mod inbound;
mod outbound;
pub mod paths;
mod request;
pub mod topics;

#[cfg(test)]
mod tests_fuzz;
#[cfg(test)]
mod tests_inbound;
#[cfg(test)]
mod tests_outbound;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use paths::safe_relative_path;
pub use request::{DEFAULT_NAMESPACE, DEFAULT_SCENE};

/// One MQTT publication the runtime wants to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// Dialect switches and topic templates, from `dialect:` in `.appsettings.yaml`.
/// Templates use `{realm}`, `{namespace}`, `{runtime_uuid}`, `{runtime_name}`,
/// `{module_uuid}`, `{module_namespace}`, `{module_scene}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DialectConfig {
    /// `silverline`, `arena` or `arts`.
    pub name: String,
    pub req_type: String,
    pub resp_type: String,
    /// Add `"from": <runtime uuid>` to what we send; ignore what carries our own.
    pub send_from: bool,
    /// Publish stdout/stderr as JSON strings instead of raw bytes.
    pub stdio_json: bool,
    /// `exited` (silverline, arts) or `delete` (arena) notice when a module ends.
    pub exit_notice: String,
    /// `envelope` (silverline, arts) or `bare` (`{"desc", "data"}`, arena) errors.
    pub error_format: String,
    pub topics: TopicTemplates,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TopicTemplates {
    /// Registration, unregistration, last will, registration reply.
    pub reg: String,
    /// Filter subscribed for requests.
    pub control: String,
    /// Where create/delete responses go.
    pub response: String,
    /// Where exit notices go.
    pub exited: String,
    pub keepalive: String,
    pub stdout: String,
    pub stderr: String,
    pub stdin: String,
    /// Runtime errors.
    pub log: String,
}

impl Default for DialectConfig {
    fn default() -> Self {
        DialectConfig {
            name: "silverline".into(),
            req_type: "req".into(),
            resp_type: "resp".into(),
            send_from: false,
            stdio_json: false,
            exit_notice: "exited".into(),
            error_format: "envelope".into(),
            topics: TopicTemplates::default(),
        }
    }
}

impl Default for TopicTemplates {
    fn default() -> Self {
        TopicTemplates {
            reg: "{realm}/proc/reg/{runtime_uuid}".into(),
            control: "{realm}/proc/control/{runtime_uuid}".into(),
            response: "{realm}/proc/control/{runtime_uuid}".into(),
            exited: "{realm}/proc/control/{runtime_uuid}".into(),
            keepalive: "{realm}/proc/keepalive/{runtime_uuid}".into(),
            stdout: "{realm}/proc/stdio/{module_uuid}".into(),
            stderr: "{realm}/proc/stdio/{module_uuid}/stderr".into(),
            stdin: "{realm}/proc/stdio/{module_uuid}/stdin".into(),
            log: "{realm}/proc/log/{runtime_uuid}".into(),
        }
    }
}

/// Module program kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FileType {
    /// WebAssembly, run in the embedded interpreter.
    #[serde(rename = "WA")]
    Wasm,
    /// Python, run in a container.
    #[serde(rename = "PY")]
    Python,
}

/// A validated module create request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModuleRequest {
    pub uuid: String,
    pub name: String,
    pub filetype: FileType,
    /// Program path relative to the store, already checked not to leave it.
    pub file: String,
    /// Folder of the store the file lives in, already checked; may be empty.
    pub location: String,
    pub argv: Vec<String>,
    /// `K=V` pairs, in request order.
    pub env: Vec<(String, String)>,
    /// WASI preopen requests (relative names inside the module's work folder).
    pub dirs: Vec<String>,
    pub apis: Vec<String>,
    /// Seconds the module may run; none = unlimited.
    pub limit_sec: Option<f64>,
    /// Arena namespace and scene of the module (for module topics).
    pub namespace: String,
    pub scene: String,
    /// Expected sha256 of program files: name relative to the program's folder ->
    /// lowercase hex. From `data.sha256`, a string (the program file's sum, keyed by
    /// its base name) or an object of names to sums; empty when absent.
    pub sha256: BTreeMap<String, String>,
    /// The request's `data`, as received (arena echoes it in its confirmation).
    pub raw: Value,
}

/// What an inbound message means to the runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    RegistrationReply {
        object_id: String,
        ok: bool,
        details: Value,
    },
    CreateModule {
        object_id: String,
        request: Box<ModuleRequest>,
    },
    /// `target` is a module uuid or name.
    DeleteModule {
        object_id: String,
        target: String,
    },
    DeleteRuntime {
        object_id: String,
    },
    Stdin {
        module_uuid: String,
        data: Vec<u8>,
    },
    /// Our own echo, a response, another runtime's traffic: nothing to do.
    Ignored,
    /// A message meant for us that we cannot act on: answer with an error.
    Invalid {
        object_id: Option<String>,
        error: ProtocolError,
    },
}

/// What is wrong with an inbound message; the text goes on the wire as `desc`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    #[error("payload is not a JSON object: {0}")]
    NotJson(String),
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("missing field '{0}'")]
    MissingField(String),
    /// `expected` also says what was found: "a string, got the number '42'".
    #[error("field '{field}' has the wrong type: expected {expected}")]
    WrongType { field: String, expected: String },
    #[error("unknown action '{0}': expected 'create' or 'delete'")]
    UnknownAction(String),
    #[error("unknown filetype '{0}': expected 'WA' or 'PY'")]
    UnknownFiletype(String),
    #[error("unsafe path '{0}': expected a relative path that stays inside the program store")]
    UnsafePath(String),
    #[error("path '{path}' is too long: the limit is {limit} bytes")]
    PathTooLong { path: String, limit: usize },
    #[error("invalid value for '{field}': {reason}")]
    InvalidValue { field: String, reason: String },
}

/// Characters of a wire value quoted in a message; longer values are cut.
const QUOTE_CHARS: usize = 200;

/// A wire value made safe to quote in a one-line message: control characters are
/// escaped (`\n`, `\u{0}`), everything else is kept, and a long value is cut to
/// `QUOTE_CHARS` characters followed by `...` (a request may be hundreds of kilobytes).
pub(crate) fn printable(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(QUOTE_CHARS * 4));
    for (count, c) in value.chars().enumerate() {
        if count == QUOTE_CHARS {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl ProtocolError {
    /// The offending value or field, for the `data` of an error message.
    pub fn offending_value(&self) -> String {
        match self {
            ProtocolError::NotJson(detail) => detail.clone(),
            ProtocolError::TooLarge { size, .. } => size.to_string(),
            ProtocolError::MissingField(field)
            | ProtocolError::WrongType { field, .. }
            | ProtocolError::InvalidValue { field, .. } => field.clone(),
            ProtocolError::UnknownAction(value)
            | ProtocolError::UnknownFiletype(value)
            | ProtocolError::UnsafePath(value)
            | ProtocolError::PathTooLong { path: value, .. } => value.clone(),
        }
    }
}

/// One running module's entry in a keepalive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChildStats {
    pub uuid: String,
    pub name: String,
    pub file: String,
    pub filetype: FileType,
    pub cpu_usage_percent: f64,
    pub mem_usage: u64,
    pub network_rx_mb: f64,
    pub network_tx_mb: f64,
    pub network_rx_pkts: u64,
    pub network_tx_pkts: u64,
}

/// What the runtime says about itself when registering and in keepalives.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeInfo {
    pub uuid: String,
    pub name: String,
    pub namespace: String,
    pub realm: String,
    pub runtime_type: String,
    pub max_nmodules: usize,
    pub apis: Vec<String>,
}

/// A module's identity, as outbound builders need it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleRef {
    pub uuid: String,
    pub name: String,
    pub namespace: String,
    pub scene: String,
}

/// The protocol of one runtime in one dialect: parses what comes in, builds what goes out.
pub struct Protocol {
    pub dialect: DialectConfig,
    pub runtime: RuntimeInfo,
    pub max_request_bytes: usize,
    /// `metadata` of registrations and keepalives (e.g. `{"host": ...}`); empty by default.
    pub metadata: Map<String, Value>,
}

impl Protocol {
    pub fn new(dialect: DialectConfig, runtime: RuntimeInfo, max_request_bytes: usize) -> Self {
        Protocol {
            dialect,
            runtime,
            max_request_bytes,
            metadata: Map::new(),
        }
    }

    /// Set the `metadata` the runtime reports about itself.
    pub fn with_metadata(mut self, metadata: Map<String, Value>) -> Self {
        self.metadata = metadata;
        self
    }

    /// Topic filters to subscribe to at every connect (control and registration).
    pub fn subscriptions(&self) -> Vec<String> {
        let control = self.control_filter();
        let reg = self.reg_topic();
        if reg == control || topics::filter_matches(&control, &reg) {
            vec![control]
        } else {
            vec![control, reg]
        }
    }

    /// The registration topic (also where replies arrive).
    pub fn reg_topic(&self) -> String {
        topics::expand(&self.dialect.topics.reg, &self.vars(None))
    }

    /// The control topic filter requests arrive on.
    pub fn control_filter(&self) -> String {
        topics::expand(&self.dialect.topics.control, &self.vars(None))
    }

    /// Whether requests arrive on a topic shared with other runtimes (arena): then a
    /// request is ours only when its `parent` names us, and a module delete may name
    /// a module this runtime never ran (answer nothing rather than an error).
    /// Whether a module stopped by a delete request still gets an exit notice:
    /// `exited` notices go out for every exit; arena's `delete` notice only for exits
    /// nobody asked for (the delete's confirmation already says it).
    pub fn notifies_deleted_modules(&self) -> bool {
        self.dialect.exit_notice != "delete"
    }

    pub fn control_is_shared(&self) -> bool {
        topics::is_wildcard(&self.dialect.topics.control)
    }

    /// Stdin topic of a module (subscribed while it runs).
    pub fn stdin_topic(&self, module: &ModuleRef) -> String {
        topics::expand(&self.dialect.topics.stdin, &self.vars(Some(module)))
    }
    pub fn stdout_topic(&self, module: &ModuleRef) -> String {
        topics::expand(&self.dialect.topics.stdout, &self.vars(Some(module)))
    }
    pub fn stderr_topic(&self, module: &ModuleRef) -> String {
        topics::expand(&self.dialect.topics.stderr, &self.vars(Some(module)))
    }

    /// A module's stdout bytes, as the dialect publishes them (raw or a JSON string).
    pub fn stdout_message(&self, module: &ModuleRef, data: &[u8]) -> Message {
        outbound::output(self, self.stdout_topic(module), data)
    }
    /// A module's stderr bytes, as the dialect publishes them (raw or a JSON string).
    pub fn stderr_message(&self, module: &ModuleRef, data: &[u8]) -> Message {
        outbound::output(self, self.stderr_topic(module), data)
    }

    /// Classify and validate one inbound publication. `stdin_modules` maps a stdin
    /// topic to its module uuid for the modules now running.
    pub fn parse_inbound(
        &self,
        topic: &str,
        payload: &[u8],
        stdin_modules: &dyn Fn(&str) -> Option<String>,
    ) -> Inbound {
        inbound::parse(self, topic, payload, stdin_modules)
    }

    /// Registration request; `object_id` is matched against the reply.
    pub fn registration(&self, object_id: &str) -> Message {
        outbound::registration(self, object_id)
    }
    /// Unregistration; also the last will.
    pub fn unregistration(&self) -> Message {
        outbound::unregistration(self)
    }
    pub fn keepalive(&self, children: &[ChildStats]) -> Message {
        outbound::keepalive(self, children)
    }
    /// Positive answer to a create or delete request. In arena, a create is confirmed
    /// with the request's `data` as `details`.
    pub fn response_ok(
        &self,
        object_id: &str,
        action: &str,
        module: &ModuleRef,
        details: Value,
    ) -> Message {
        outbound::response_ok(self, object_id, action, module, details)
    }
    /// Error answer on the error topic: `desc` says what went wrong, `data` is the
    /// offending value. `object_id` is the request's, or a new one when it had none.
    pub fn error(&self, object_id: Option<&str>, desc: &str, data: &str) -> Message {
        outbound::error(self, object_id, desc, data)
    }
    /// Error answer for an `Inbound::Invalid`.
    pub fn invalid(&self, object_id: Option<&str>, error: &ProtocolError) -> Message {
        self.error(object_id, &error.to_string(), &error.offending_value())
    }
    /// Notice that a module ended, for every exit.
    pub fn exited(&self, module: &ModuleRef, exit_code: Option<i32>) -> Message {
        outbound::exited(self, module, exit_code)
    }

    /// Placeholder values for this runtime and, when given, one module.
    fn vars<'a>(&'a self, module: Option<&'a ModuleRef>) -> topics::TopicVars<'a> {
        let runtime = &self.runtime;
        topics::TopicVars {
            realm: &runtime.realm,
            namespace: &runtime.namespace,
            runtime_uuid: &runtime.uuid,
            runtime_name: &runtime.name,
            module_uuid: module.map_or("", |m| m.uuid.as_str()),
            module_namespace: module.map_or("", |m| m.namespace.as_str()),
            module_scene: module.map_or("", |m| m.scene.as_str()),
        }
    }
}
