//! The wire protocol: envelope, dialects, topic templates, parsing of inbound messages
//! and building of outbound ones. Pure functions, no I/O.
//!
//! Not for: deciding what to do with a message (the supervisor does that).
//!
//! CONTRACT (skeleton): type and function signatures are shared by every component;
//! bodies are filled in by the protocol work.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    #[error("payload is not valid JSON: {0}")]
    NotJson(String),
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("missing field '{0}'")]
    MissingField(String),
    #[error("field '{field}' has the wrong type: expected {expected}")]
    WrongType { field: String, expected: String },
    #[error("unknown action '{0}'")]
    UnknownAction(String),
    #[error("unknown filetype '{0}'")]
    UnknownFiletype(String),
    #[error("file name '{0}' leaves the program store")]
    UnsafePath(String),
    #[error("invalid value for '{field}': {reason}")]
    InvalidValue { field: String, reason: String },
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
}

#[allow(unused_variables)]
impl Protocol {
    pub fn new(dialect: DialectConfig, runtime: RuntimeInfo, max_request_bytes: usize) -> Self {
        Protocol {
            dialect,
            runtime,
            max_request_bytes,
        }
    }

    /// Topic filters to subscribe to at every connect (control and registration).
    pub fn subscriptions(&self) -> Vec<String> {
        unimplemented!()
    }

    /// Stdin topic of a module (subscribed while it runs).
    pub fn stdin_topic(&self, module: &ModuleRef) -> String {
        unimplemented!()
    }
    pub fn stdout_topic(&self, module: &ModuleRef) -> String {
        unimplemented!()
    }
    pub fn stderr_topic(&self, module: &ModuleRef) -> String {
        unimplemented!()
    }

    /// Classify and validate one inbound publication. `stdin_modules` maps a stdin
    /// topic to its module uuid for the modules now running.
    pub fn parse_inbound(
        &self,
        topic: &str,
        payload: &[u8],
        stdin_modules: &dyn Fn(&str) -> Option<String>,
    ) -> Inbound {
        unimplemented!()
    }

    /// Registration request; `object_id` is matched against the reply.
    pub fn registration(&self, object_id: &str) -> Message {
        unimplemented!()
    }
    /// Unregistration; also the last will.
    pub fn unregistration(&self) -> Message {
        unimplemented!()
    }
    pub fn keepalive(&self, children: &[ChildStats]) -> Message {
        unimplemented!()
    }
    /// Positive answer to a create or delete request.
    pub fn response_ok(
        &self,
        object_id: &str,
        action: &str,
        module: &ModuleRef,
        details: Value,
    ) -> Message {
        unimplemented!()
    }
    /// Error answer on the error topic: `desc` says what went wrong, `data` is the
    /// offending value. `object_id` is the request's, or a new one when it had none.
    pub fn error(&self, object_id: Option<&str>, desc: &str, data: &str) -> Message {
        unimplemented!()
    }
    /// Notice that a module ended, for every exit.
    pub fn exited(&self, module: &ModuleRef, exit_code: Option<i32>) -> Message {
        unimplemented!()
    }
}
