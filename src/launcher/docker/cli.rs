//! The one wrapper around the container engine's command line (`docker`, or `podman`
//! as a drop-in): builds every command line, runs it with a time bound, and turns
//! what the engine printed into typed results and errors that name what failed.
//!
//! Not for: module life cycles (`docker/mod.rs`) or deciding when to call the engine.
//!
//! CONTRACT (lead): the signatures below are what the container launcher calls.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Label naming the runtime that started a container.
pub const LABEL_RUNTIME: &str = "org.silverline.sideload.runtime";
/// Label naming the module a container runs.
pub const LABEL_MODULE: &str = "org.silverline.sideload.module";
/// Label holding the module's name (for people reading `docker ps`).
pub const LABEL_MODULE_NAME: &str = "org.silverline.sideload.module-name";

/// Why an engine command failed; the text goes to the log and to the orchestrator.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("container engine '{binary}' is not installed (not found on PATH)")]
    NotInstalled { binary: String },
    #[error("container engine '{binary}' is not reachable: {message}")]
    Unreachable { binary: String, message: String },
    #[error("image '{image}' is not available: {message}")]
    NoSuchImage { image: String, message: String },
    #[error("no container '{name}'")]
    NoSuchContainer { name: String },
    #[error("'{command}' failed: {message}")]
    Failed { command: String, message: String },
    #[error("'{command}' did not finish within {seconds} s")]
    TimedOut { command: String, seconds: u64 },
}

/// Everything `create` needs for one module's container.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerSpec {
    /// Container name, unique on the host.
    pub name: String,
    pub image: String,
    /// Host folder mounted read-write at `workdir`, which is also the working folder.
    pub mount_source: PathBuf,
    pub workdir: String,
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    /// `(key, value)` labels.
    pub labels: Vec<(String, String)>,
    /// The command and its arguments (no shell).
    pub command: Vec<String>,
    /// `missing`, `never` or `always`.
    pub pull: String,
    pub cpu_shares: u64,
    pub memory: Option<String>,
    pub pids_limit: i64,
    pub network: Option<String>,
    pub extra_args: Vec<String>,
}

/// What `inspect` tells about a container's state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerState {
    /// `created`, `running`, `exited`, `dead`, ...
    pub status: String,
    pub running: bool,
    /// False while the container never started (still `created`).
    pub started: bool,
    pub exit_code: Option<i32>,
    /// Host pid of the container's first process while it runs.
    pub pid: Option<u32>,
    /// The engine's error text when the start failed ("" otherwise).
    pub error: String,
    /// Killed by the kernel's OOM killer.
    pub oom_killed: bool,
}

/// One container found by label.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerSummary {
    pub id: String,
    pub name: String,
    /// The module label's value, when present.
    pub module: Option<String>,
    /// The engine's status text ("Up 3 minutes", "Exited (0) ...").
    pub status: String,
}

/// One container's line of `stats --no-stream`; byte counts are totals since start.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerStats {
    pub name: String,
    pub cpu_percent: f64,
    pub mem_bytes: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    pub blk_read_bytes: u64,
    pub blk_write_bytes: u64,
}

/// The engine's command line.
#[derive(Debug, Clone)]
pub struct Engine {
    binary: String,
    timeout: Duration,
}

impl Engine {
    /// An engine run as `binary`, each command bounded by `timeout`.
    pub fn new(binary: impl Into<String>, timeout: Duration) -> Self {
        Engine {
            binary: binary.into(),
            timeout,
        }
    }

    pub fn binary(&self) -> &str {
        &self.binary
    }

    /// A bare command for the engine binary, for the launcher's long-lived
    /// `start --attach --interactive` child (whose stdio it pipes itself).
    pub fn command(&self) -> Command {
        Command::new(&self.binary)
    }

    /// `start -a -i <name>` as a command ready to get piped stdio.
    pub fn attach_start_command(&self, name: &str) -> Command {
        let mut command = self.command();
        command.args(["start", "--attach", "--interactive", name]);
        command
    }

    /// Check that the engine answers (`version`); the error says what is wrong.
    pub fn ping(&self) -> Result<(), EngineError> {
        todo_body()
    }

    /// `create` a container from `spec`; returns its id. The error carries the
    /// engine's own message (image missing, bad option, daemon down).
    pub fn create(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        let _ = create_args(spec);
        todo_body()
    }

    /// `inspect` one container's state.
    pub fn inspect(&self, name: &str) -> Result<ContainerState, EngineError> {
        let _ = name;
        todo_body()
    }

    /// `stop --time <grace>`: SIGTERM, then SIGKILL after `grace`. A container that
    /// is gone or not running is not an error.
    pub fn stop(&self, name: &str, grace: Duration) -> Result<(), EngineError> {
        let _ = (name, grace);
        todo_body()
    }

    /// `rm --force`: remove in any state (killing it if it runs). A container that
    /// is already gone is not an error.
    pub fn remove(&self, name: &str) -> Result<(), EngineError> {
        let _ = name;
        todo_body()
    }

    /// Every container, running or not, with label `key=value`.
    pub fn list_labelled(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let _ = (key, value);
        todo_body()
    }

    /// One `stats --no-stream` call for all `names`; containers that are gone are
    /// left out of the answer rather than failing it.
    pub fn stats(&self, names: &[String]) -> Result<Vec<ContainerStats>, EngineError> {
        let _ = names;
        todo_body()
    }
}

/// The arguments of `create` for `spec` (after the binary name), without a shell.
pub fn create_args(spec: &ContainerSpec) -> Vec<String> {
    let _ = spec;
    Vec::new()
}

fn todo_body<T>() -> Result<T, EngineError> {
    Err(EngineError::Failed {
        command: "engine".into(),
        message: "not implemented yet".into(),
    })
}
