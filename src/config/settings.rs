//! The settings structs shared by every component, their built-in defaults, and the
//! `Debug` of `MqttSettings` that masks the password.
//!
//! Not for: loading (`layers`), checking (`validate`) or resolving paths (`paths`).
//!
//! CONTRACT: the struct shapes below are shared by every component.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::MASK;
use crate::protocol::{DialectConfig, FileType};

/// Everything the runtime reads from its config folder, after layering.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `CRITICAL`, `ERROR`, `WARNING`, `INFO`, `DEBUG` (logzero names, as the Python runtime).
    pub loglevel: String,
    pub runtime: RuntimeSettings,
    pub mqtt: MqttSettings,
    pub repository: RepositorySettings,
    pub launcher: LauncherSettings,
    pub dialect: DialectConfig,
    /// Folder the settings came from; relative paths in settings resolve against it.
    #[serde(skip)]
    pub config_dir: PathBuf,
    /// What loading recovered from (unknown keys, blank values, inconsistent TLS
    /// settings). Already logged by `load`; kept for a caller that installs its
    /// logger only after loading.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeSettings {
    pub name: String,
    /// Fixed uuid; when absent one is generated once and kept in `state_dir`.
    pub uuid: Option<String>,
    pub namespace: String,
    pub realm: String,
    /// -1: do not register; 0: forever; N: N attempts.
    pub reg_attempts: i64,
    pub reg_timeout_seconds: f64,
    /// Exit non-zero when registration fails after all attempts (else run unregistered).
    pub reg_fail_error: bool,
    pub max_nmodules: usize,
    pub ka_interval_sec: f64,
    /// 0 = off.
    pub inactivity_timeout_sec: f64,
    pub inactivity_check_interval_sec: f64,
    /// A module counts as idle over a check interval when its average CPU stayed
    /// under this percentage ...
    pub inactivity_cpu_percent: f64,
    /// ... its network traffic (received plus sent) under this many bytes a second ...
    pub inactivity_net_bytes_sec: f64,
    /// ... and its block I/O (read plus written) under this many bytes a second.
    pub inactivity_blk_bytes_sec: f64,
    pub runtime_type: String,
    pub apis: Vec<String>,
    /// Folder for state kept across restarts (the generated uuid) and module work
    /// folders. Relative to the config folder.
    pub state_dir: PathBuf,
}

/// `Debug` masks the password.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    pub ssl: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    /// PEM file of the CA that signs the broker's certificate; system roots when absent.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (logged as a warning at start).
    pub insecure: bool,
    pub keepalive_sec: u64,
    /// Largest MQTT packet sent.
    pub max_packet_bytes: usize,
    /// Largest MQTT packet received. The client library drops the connection on a
    /// larger one (and the broker then publishes the last will), so this is well
    /// above `max_request_bytes`: what lies between gets an error reply instead.
    pub max_incoming_packet_bytes: usize,
    /// Largest control or stdin payload accepted; larger ones get an error reply.
    pub max_request_bytes: usize,
    /// Reconnect backoff, capped and jittered.
    pub reconnect_min_sec: f64,
    pub reconnect_max_sec: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RepositorySettings {
    /// `http://`, `https://` or `file://` base of the program store.
    pub url: String,
    /// Connecting, each read and each request to the store.
    pub timeout_sec: f64,
    /// All requests for one module's program files together.
    pub total_timeout_sec: f64,
    pub max_file_bytes: u64,
    /// Most files one module's program folder may hold (sub-folders included).
    pub max_files: usize,
    /// Most bytes one module's program folder may hold in all.
    pub max_total_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LauncherSettings {
    /// Publish module stdout/stderr on MQTT (else log them).
    pub pipe_stdout: bool,
    pub output: OutputSettings,
    pub wasm: WasmSettings,
    /// The launcher table, keyed by filetype as in the Python runtime
    /// (`launcher.PY`, `launcher.WA`; keys match case-insensitively).
    pub py: LauncherEntry,
    pub wa: LauncherEntry,
}

/// Which launcher starts one filetype, and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LauncherEntry {
    /// `container`, `wasm` or `disabled`. The Python runtime's class names
    /// (`launcher.python_launcher.PythonLauncher`) mean `container`.
    pub class: String,
    /// Container launcher: the command run in the container, before the program's
    /// file name and arguments.
    pub cmd: String,
    /// Container launcher: image and run options.
    pub docker: ContainerSettings,
}

/// What kind of launcher an entry of the launcher table names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LauncherKind {
    Container,
    Wasm,
    Disabled,
}

impl LauncherEntry {
    /// The kind `class` names, or `None` for a class the runtime does not know.
    pub fn kind(&self) -> Option<LauncherKind> {
        let class = self.class.trim();
        let lower = class.to_ascii_lowercase();
        match lower.as_str() {
            "container" | "docker" => Some(LauncherKind::Container),
            "wasm" => Some(LauncherKind::Wasm),
            "disabled" | "none" | "off" => Some(LauncherKind::Disabled),
            _ if class.ends_with("PythonLauncher") => Some(LauncherKind::Container),
            _ => None,
        }
    }
}

impl Settings {
    /// Seconds between two samples of container stats: often enough for keepalives
    /// and idleness checks, never more than once a second (one sample costs the
    /// engine about a second and a half).
    pub fn container_stats_interval_sec(&self) -> f64 {
        let runtime = &self.runtime;
        let mut interval = runtime.ka_interval_sec;
        if runtime.inactivity_timeout_sec > 0.0 {
            interval = interval.min(runtime.inactivity_check_interval_sec);
        }
        interval.max(1.0)
    }
}

impl LauncherSettings {
    /// The table's entry for a filetype.
    pub fn entry(&self, filetype: FileType) -> &LauncherEntry {
        match filetype {
            FileType::Python => &self.py,
            FileType::Wasm => &self.wa,
        }
    }
}

/// How the container launcher runs containers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerSettings {
    /// The engine's command line: `docker`, or `podman` (a name on PATH or a path).
    pub engine: String,
    pub image: String,
    /// Where the module's work folder is mounted in the container.
    pub workdir: String,
    /// `missing` (pull when the image is not there), `never` or `always`.
    pub pull: String,
    /// Relative CPU weight (`--cpu-shares`); 0 = engine default.
    pub cpu_shares: u64,
    /// Memory limit (`--memory`, e.g. `256m`); unset = none.
    pub memory: Option<String>,
    /// Most processes in a container (`--pids-limit`); 0 = engine default.
    pub pids_limit: i64,
    /// Run an init process as the container's PID 1 (`--init`): without it the
    /// program is PID 1, which ignores SIGTERM unless it handles it, so every
    /// delete waits out `stop_grace_sec`.
    pub init: bool,
    /// Network of the container (`--network`); unset = engine default.
    pub network: Option<String>,
    /// Extra options passed to `create` as they are (e.g. `["--read-only"]`).
    pub extra_args: Vec<String>,
    /// Seconds a stopping container gets between SIGTERM and SIGKILL.
    pub stop_grace_sec: f64,
    /// Longest wait for one engine command (create, start, inspect, stats, rm).
    pub engine_timeout_sec: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct OutputSettings {
    /// A line longer than this is published in pieces.
    pub max_line_bytes: usize,
    /// Most bytes one published batch carries.
    pub max_batch_bytes: usize,
    /// Most bytes of unpublished output kept per module; beyond, output is dropped and
    /// counted.
    pub max_buffered_bytes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WasmSettings {
    /// Fuel per slice between checks of the stop flag.
    pub fuel_slice: u64,
    /// Total fuel a module may burn; 0 = unlimited.
    pub max_fuel: u64,
    /// Largest linear memory of one module.
    pub max_memory_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            loglevel: "INFO".into(),
            runtime: RuntimeSettings::default(),
            mqtt: MqttSettings::default(),
            repository: RepositorySettings::default(),
            launcher: LauncherSettings::default(),
            dialect: DialectConfig::default(),
            config_dir: PathBuf::from("conf"),
            warnings: Vec::new(),
        }
    }
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            name: "sideload".into(),
            uuid: None,
            namespace: "public".into(),
            realm: "realm".into(),
            reg_attempts: 0,
            reg_timeout_seconds: 5.0,
            reg_fail_error: false,
            max_nmodules: 100,
            ka_interval_sec: 60.0,
            inactivity_timeout_sec: 0.0,
            inactivity_check_interval_sec: 30.0,
            inactivity_cpu_percent: 1.0,
            inactivity_net_bytes_sec: 100.0,
            inactivity_blk_bytes_sec: 1000.0,
            runtime_type: "linux/sideload".into(),
            apis: vec![
                "wasm".into(),
                "wasi".into(),
                "stdio:in".into(),
                "stdio:out".into(),
                "python:python3".into(),
            ],
            state_dir: PathBuf::from(".state"),
        }
    }
}

impl Default for MqttSettings {
    fn default() -> Self {
        MqttSettings {
            host: "localhost".into(),
            port: 1883,
            ssl: false,
            username: None,
            password: None,
            ca_file: None,
            insecure: false,
            keepalive_sec: 10,
            max_packet_bytes: 1024 * 1024,
            max_incoming_packet_bytes: 16 * 1024 * 1024,
            max_request_bytes: 256 * 1024,
            reconnect_min_sec: 0.5,
            reconnect_max_sec: 30.0,
        }
    }
}

impl Default for RepositorySettings {
    fn default() -> Self {
        RepositorySettings {
            url: "file://programs".into(),
            timeout_sec: 30.0,
            total_timeout_sec: 300.0,
            max_file_bytes: 64 * 1024 * 1024,
            max_files: 1000,
            max_total_bytes: 256 * 1024 * 1024,
        }
    }
}

impl Default for LauncherSettings {
    fn default() -> Self {
        LauncherSettings {
            pipe_stdout: true,
            output: OutputSettings::default(),
            wasm: WasmSettings::default(),
            py: LauncherEntry {
                class: "container".into(),
                cmd: "/entrypoint.sh".into(),
                docker: ContainerSettings::default(),
            },
            wa: LauncherEntry {
                class: "wasm".into(),
                cmd: String::new(),
                docker: ContainerSettings::default(),
            },
        }
    }
}

impl Default for LauncherEntry {
    fn default() -> Self {
        LauncherEntry {
            class: "disabled".into(),
            cmd: String::new(),
            docker: ContainerSettings::default(),
        }
    }
}

impl Default for ContainerSettings {
    fn default() -> Self {
        ContainerSettings {
            engine: "docker".into(),
            image: "slframework/slruntime-python-runner".into(),
            workdir: "/usr/src/app".into(),
            pull: "missing".into(),
            cpu_shares: 0,
            memory: None,
            pids_limit: 0,
            init: true,
            network: None,
            extra_args: Vec::new(),
            stop_grace_sec: 3.0,
            engine_timeout_sec: 60.0,
        }
    }
}

impl Default for OutputSettings {
    fn default() -> Self {
        OutputSettings {
            max_line_bytes: 16 * 1024,
            max_batch_bytes: 64 * 1024,
            max_buffered_bytes: 1024 * 1024,
        }
    }
}

impl Default for WasmSettings {
    fn default() -> Self {
        WasmSettings {
            fuel_slice: 10_000_000,
            max_fuel: 0,
            max_memory_bytes: 64 * 1024 * 1024,
        }
    }
}

impl fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("ssl", &self.ssl)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| MASK))
            .field("ca_file", &self.ca_file)
            .field("insecure", &self.insecure)
            .field("keepalive_sec", &self.keepalive_sec)
            .field("max_packet_bytes", &self.max_packet_bytes)
            .field("max_incoming_packet_bytes", &self.max_incoming_packet_bytes)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("reconnect_min_sec", &self.reconnect_min_sec)
            .field("reconnect_max_sec", &self.reconnect_max_sec)
            .finish()
    }
}
