//! Layered settings: built-in defaults, then `.appsettings.yaml`, `settings.yaml`,
//! `.secrets.yaml` from one config folder, then `SIDELOAD__*` environment overrides.
//! Validation with errors naming the file, the key and the problem; resolution of
//! relative paths, of the program store and of the runtime uuid (generated once and
//! kept in `state_dir`); the masked view shown by `--check-config`.
//!
//! Not for: interpreting settings (topics are expanded in `protocol`, launchers read
//! their own sections).
//!
//! CONTRACT: the struct shapes below are shared by every component.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use crate::protocol::DialectConfig;

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
    /// Largest MQTT packet sent or received.
    pub max_packet_bytes: usize,
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
    pub timeout_sec: f64,
    pub max_file_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LauncherSettings {
    /// Publish module stdout/stderr on MQTT (else log them).
    pub pipe_stdout: bool,
    pub output: OutputSettings,
    pub wasm: WasmSettings,
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
            runtime_type: "linux/sideload".into(),
            apis: vec![
                "wasm".into(),
                "wasi".into(),
                "stdio:in".into(),
                "stdio:out".into(),
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
            keepalive_sec: 30,
            max_packet_bytes: 1024 * 1024,
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
            max_file_bytes: 64 * 1024 * 1024,
        }
    }
}

impl Default for LauncherSettings {
    fn default() -> Self {
        LauncherSettings {
            pipe_stdout: true,
            output: OutputSettings::default(),
            wasm: WasmSettings::default(),
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
            .field("max_request_bytes", &self.max_request_bytes)
            .field("reconnect_min_sec", &self.reconnect_min_sec)
            .field("reconnect_max_sec", &self.reconnect_max_sec)
            .finish()
    }
}

/// Settings files of a config folder, lowest precedence first, and whether each is required.
const FILES: [(&str, bool); 3] = [
    (".appsettings.yaml", false),
    ("settings.yaml", true),
    (".secrets.yaml", false),
];
/// Prefix of environment overrides; `__` separates the levels of the key.
const ENV_PREFIX: &str = "SIDELOAD__";
/// File in `state_dir` keeping the generated runtime uuid.
const UUID_FILE: &str = "runtime-uuid";
const MASK: &str = "********";
/// A key whose name contains one of these holds a secret: masked when shown.
const SECRET_WORDS: [&str; 3] = ["password", "token", "secret"];
const ORIGIN_DEFAULTS: &str = "built-in defaults";

/// What is wrong with a config folder or the environment overrides.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config folder '{}' does not exist or is not a folder", .0.display())]
    NoFolder(PathBuf),
    #[error("{}: not found (every config folder needs a settings.yaml)", .0.display())]
    MissingSettings(PathBuf),
    #[error("{}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// `origin` is a file or an environment variable.
    #[error("{origin}: invalid YAML: {problem}")]
    Syntax { origin: String, problem: String },
    /// A value of the wrong type or out of range; `origin` is the file or environment
    /// variable that set it.
    #[error("{origin}: '{key}': {problem}")]
    Invalid {
        origin: String,
        key: String,
        problem: String,
    },
    #[error("cannot {action} runtime uuid file '{}': {source}", path.display())]
    State {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

pub use crate::program_files::Store;

/// Which layer set each key (dotted path), for error messages.
type Origins = BTreeMap<String, String>;

impl Settings {
    /// Load the config folder with overrides from the process environment.
    pub fn load(config_dir: &Path) -> Result<Settings, ConfigError> {
        let env = std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        });
        Self::load_with_env(config_dir, env)
    }

    /// Load the config folder with the given environment overrides (`SIDELOAD__*`;
    /// other variables are ignored). Relative paths come back resolved against the
    /// folder.
    pub fn load_with_env<I>(config_dir: &Path, env: I) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        if !config_dir.is_dir() {
            return Err(ConfigError::NoFolder(config_dir.to_path_buf()));
        }

        let mut layers = Layers::new();
        for (name, required) in FILES {
            let path = config_dir.join(name);
            if let Some(value) = read_file(&path, required)? {
                layers.add(&path.display().to_string(), value)?;
            }
        }
        for (origin, value) in env_layers(&layers.schema, env, &mut layers.warnings)? {
            layers.add(&origin, value)?;
        }

        layers.finish(config_dir)
    }

    /// Check the settings as they are now (load does it already); errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let checker = Checker {
            origins: &Origins::new(),
            fallback: "settings",
        };
        self.check(&checker).map(|_| ())
    }

    /// The program store, with a `file://` folder resolved: `file://relative/path` is
    /// relative to the config folder, `file:///abs` absolute. An url that is neither
    /// (only possible when set after loading) comes back as `Http` and fails when
    /// fetched.
    pub fn repository_base(&self) -> Store {
        parse_store(&self.repository.url, &self.config_dir)
            .unwrap_or_else(|_| Store::Http(self.repository.url.clone()))
    }

    /// The runtime uuid: the fixed `runtime.uuid`, else the one kept in
    /// `{state_dir}/runtime-uuid`, else a new one written there so that restarts keep
    /// the same identity. Sets `runtime.uuid`.
    pub fn resolve_runtime_uuid(&mut self) -> Result<String, ConfigError> {
        if let Some(uuid) = &self.runtime.uuid {
            return Ok(uuid.clone());
        }

        let path = self.runtime.state_dir.join(UUID_FILE);
        let uuid = match read_uuid_file(&path)? {
            Some(uuid) => uuid,
            None => {
                let uuid = uuid::Uuid::new_v4().to_string();
                write_atomically(&path, &format!("{uuid}\n"))?;
                log::info!(
                    "generated runtime uuid '{uuid}', kept in '{}'",
                    path.display()
                );
                uuid
            }
        };

        self.runtime.uuid = Some(uuid.clone());
        Ok(uuid)
    }

    /// The effective settings as YAML, secrets (`mqtt.password`, any password, token or
    /// secret) masked; for `sideload --check-config`.
    pub fn masked_yaml(&self) -> String {
        let header = format!("# config folder: '{}'\n", self.config_dir.display());
        let body = serde_yaml::to_value(self).and_then(|mut value| {
            mask_secrets(&mut value);
            serde_yaml::to_string(&value)
        });
        match body {
            Ok(body) => header + &body,
            Err(e) => format!("{header}# cannot show the settings: {e}\n"),
        }
    }

    /// `loglevel` as a `log` filter (`CRITICAL` maps to `Error`: `log` has no higher level).
    pub fn log_level_filter(&self) -> log::LevelFilter {
        parse_level(&self.loglevel)
            .map(|(_, filter)| filter)
            .unwrap_or(log::LevelFilter::Info)
    }

    /// Validate; returns the warnings (problems that do not stop the runtime).
    fn check(&self, c: &Checker) -> Result<Vec<String>, ConfigError> {
        c.ensure(parse_level(&self.loglevel).is_some(), "loglevel", || {
            format!(
                "'{}' is not a log level (CRITICAL, ERROR, WARNING, INFO, DEBUG)",
                self.loglevel
            )
        })?;
        self.check_runtime(c)?;
        self.check_mqtt(c)?;
        self.check_limits(c)?;
        self.check_dialect(c)?;

        let mut warnings = Vec::new();
        if !self.mqtt.ssl && self.mqtt.ca_file.is_some() {
            warnings.push("'mqtt.ca_file' is set but 'mqtt.ssl' is false: not used".into());
        }
        if !self.mqtt.ssl && self.mqtt.insecure {
            warnings.push("'mqtt.insecure' is set but 'mqtt.ssl' is false: not used".into());
        }
        Ok(warnings)
    }

    fn check_runtime(&self, c: &Checker) -> Result<(), ConfigError> {
        let r = &self.runtime;
        c.not_empty(&r.name, "runtime.name")?;
        c.not_empty(&r.realm, "runtime.realm")?;
        if let Some(uuid) = &r.uuid {
            let ok = uuid::Uuid::parse_str(uuid).is_ok();
            c.ensure(ok, "runtime.uuid", || format!("'{uuid}' is not a uuid"))?;
        }
        c.ensure(r.reg_attempts >= -1, "runtime.reg_attempts", || {
            format!(
                "'{}' must be -1 (do not register), 0 (keep trying) or a number of attempts",
                r.reg_attempts
            )
        })?;
        c.positive(r.reg_timeout_seconds, "runtime.reg_timeout_seconds")?;
        c.positive(r.ka_interval_sec, "runtime.ka_interval_sec")?;
        c.non_negative(r.inactivity_timeout_sec, "runtime.inactivity_timeout_sec")?;
        let interval = "runtime.inactivity_check_interval_sec";
        c.non_negative(r.inactivity_check_interval_sec, interval)?;
        if r.inactivity_timeout_sec > 0.0 {
            c.positive(r.inactivity_check_interval_sec, interval)?;
        }
        Ok(())
    }

    fn check_mqtt(&self, c: &Checker) -> Result<(), ConfigError> {
        let m = &self.mqtt;
        c.not_empty(&m.host, "mqtt.host")?;
        c.non_zero(u64::from(m.port), "mqtt.port")?;
        c.positive(m.reconnect_min_sec, "mqtt.reconnect_min_sec")?;
        let ordered = m.reconnect_min_sec <= m.reconnect_max_sec;
        c.ensure(ordered, "mqtt.reconnect_max_sec", || {
            format!(
                "'{}' is less than mqtt.reconnect_min_sec '{}'",
                m.reconnect_max_sec, m.reconnect_min_sec
            )
        })?;

        if let Err(problem) = parse_store(&self.repository.url, &self.config_dir) {
            return Err(c.invalid("repository.url", problem));
        }
        c.positive(self.repository.timeout_sec, "repository.timeout_sec")
    }

    /// Sizes and counts: none may be 0, and each piece must fit what carries it.
    fn check_limits(&self, c: &Checker) -> Result<(), ConfigError> {
        let m = &self.mqtt;
        let o = &self.launcher.output;
        let w = &self.launcher.wasm;
        let sizes = [
            (self.runtime.max_nmodules, "runtime.max_nmodules"),
            (m.max_packet_bytes, "mqtt.max_packet_bytes"),
            (m.max_request_bytes, "mqtt.max_request_bytes"),
            (o.max_line_bytes, "launcher.output.max_line_bytes"),
            (o.max_batch_bytes, "launcher.output.max_batch_bytes"),
            (o.max_buffered_bytes, "launcher.output.max_buffered_bytes"),
            (w.max_memory_bytes, "launcher.wasm.max_memory_bytes"),
        ];
        for (value, key) in sizes {
            c.non_zero(value as u64, key)?;
        }
        c.non_zero(self.repository.max_file_bytes, "repository.max_file_bytes")?;
        c.non_zero(w.fuel_slice, "launcher.wasm.fuel_slice")?;

        let fits = [
            (
                m.max_request_bytes,
                "mqtt.max_request_bytes",
                m.max_packet_bytes,
                "mqtt.max_packet_bytes",
            ),
            (
                o.max_batch_bytes,
                "launcher.output.max_batch_bytes",
                m.max_packet_bytes,
                "mqtt.max_packet_bytes",
            ),
            (
                o.max_line_bytes,
                "launcher.output.max_line_bytes",
                o.max_batch_bytes,
                "launcher.output.max_batch_bytes",
            ),
        ];
        for (value, key, limit, limit_key) in fits {
            c.ensure(value <= limit, key, || {
                format!("'{value}' exceeds {limit_key} '{limit}'")
            })?;
        }
        Ok(())
    }

    fn check_dialect(&self, c: &Checker) -> Result<(), ConfigError> {
        let d = &self.dialect;
        c.one_of(&d.name, "dialect.name", &["silverline", "arena", "arts"])?;
        c.one_of(&d.exit_notice, "dialect.exit_notice", &["exited", "delete"])?;
        c.one_of(
            &d.error_format,
            "dialect.error_format",
            &["envelope", "bare"],
        )?;
        c.not_empty(&d.req_type, "dialect.req_type")?;
        c.not_empty(&d.resp_type, "dialect.resp_type")?;

        let t = &d.topics;
        let topics = [
            ("reg", &t.reg),
            ("control", &t.control),
            ("response", &t.response),
            ("exited", &t.exited),
            ("keepalive", &t.keepalive),
            ("stdout", &t.stdout),
            ("stderr", &t.stderr),
            ("stdin", &t.stdin),
            ("log", &t.log),
        ];
        for (name, topic) in topics {
            c.not_empty(topic, &format!("dialect.topics.{name}"))?;
        }
        Ok(())
    }

    /// Make `state_dir`, `mqtt.ca_file` and a `file://` store absolute, relative to the
    /// config folder; then check that the files they name are there.
    fn resolve_paths(&mut self, c: &Checker) -> Result<Vec<String>, ConfigError> {
        let dir = self.config_dir.clone();
        self.runtime.state_dir = resolve(&dir, &self.runtime.state_dir);
        self.mqtt.ca_file = self.mqtt.ca_file.as_deref().map(|path| resolve(&dir, path));
        if let Store::File(folder) = self.repository_base() {
            self.repository.url = format!("file://{}", folder.display());
        }

        let mut warnings = Vec::new();
        if let (true, Some(ca_file)) = (self.mqtt.ssl, &self.mqtt.ca_file) {
            if !ca_file.is_file() {
                let problem = format!("'{}' is not a file", ca_file.display());
                return Err(c.invalid("mqtt.ca_file", problem));
            }
        }
        if let Store::File(folder) = self.repository_base() {
            if !folder.is_dir() {
                warnings.push(format!(
                    "'repository.url': program store folder '{}' does not exist",
                    folder.display()
                ));
            }
        }
        Ok(warnings)
    }
}

/// Builds the merged settings value one layer at a time.
struct Layers {
    /// The defaults as a YAML value: the keys and value kinds known.
    schema: Value,
    merged: Value,
    origins: Origins,
    warnings: Vec<String>,
}

impl Layers {
    fn new() -> Layers {
        let schema = serde_yaml::to_value(Settings::default()).unwrap_or(Value::Null);
        Layers {
            merged: schema.clone(),
            schema,
            origins: Origins::new(),
            warnings: Vec::new(),
        }
    }

    /// Clean one layer (unknown keys, blanks), check its types on its own so that an
    /// error names its origin, and merge it over the layers below.
    fn add(&mut self, origin: &str, value: Value) -> Result<(), ConfigError> {
        let layer = match (value, &self.schema) {
            (Value::Null, _) => return Ok(()),
            (Value::Mapping(map), Value::Mapping(schema)) => {
                clean_mapping(map, schema, "", origin, &mut self.warnings)
            }
            (other, _) => {
                return Err(ConfigError::Syntax {
                    origin: origin.to_string(),
                    problem: format!(
                        "expected a mapping of settings at the top level, found {}",
                        kind(&other)
                    ),
                })
            }
        };
        let layer = Value::Mapping(layer);

        deserialize(layer.clone(), |_| origin.to_string())?;
        merge(&mut self.merged, layer, "", origin, &mut self.origins);
        Ok(())
    }

    fn finish(self, config_dir: &Path) -> Result<Settings, ConfigError> {
        let origins = self.origins;
        let mut settings =
            deserialize(self.merged, |key| origin_of(&origins, key, ORIGIN_DEFAULTS))?;
        settings.config_dir = config_dir.to_path_buf();
        settings.warnings = self.warnings;

        let checker = Checker {
            origins: &origins,
            fallback: ORIGIN_DEFAULTS,
        };
        let mut later = settings.check(&checker)?;
        later.extend(settings.resolve_paths(&checker)?);
        for warning in later {
            log::warn!("{warning}");
            settings.warnings.push(warning);
        }
        if let Some((name, _)) = parse_level(&settings.loglevel) {
            settings.loglevel = name.to_string();
        }
        Ok(settings)
    }
}

/// Error constructors of validation, naming the key and the layer that set it.
struct Checker<'a> {
    origins: &'a Origins,
    /// Origin of keys no layer set.
    fallback: &'a str,
}

impl Checker<'_> {
    fn invalid(&self, key: &str, problem: String) -> ConfigError {
        ConfigError::Invalid {
            origin: origin_of(self.origins, key, self.fallback),
            key: key.to_string(),
            problem,
        }
    }

    fn ensure(
        &self,
        ok: bool,
        key: &str,
        problem: impl FnOnce() -> String,
    ) -> Result<(), ConfigError> {
        if ok {
            Ok(())
        } else {
            Err(self.invalid(key, problem()))
        }
    }

    fn positive(&self, value: f64, key: &str) -> Result<(), ConfigError> {
        self.ensure(value.is_finite() && value > 0.0, key, || {
            format!("'{value}' must be a number greater than 0")
        })
    }

    fn non_negative(&self, value: f64, key: &str) -> Result<(), ConfigError> {
        self.ensure(value.is_finite() && value >= 0.0, key, || {
            format!("'{value}' must be 0 (off) or a positive number")
        })
    }

    fn non_zero(&self, value: u64, key: &str) -> Result<(), ConfigError> {
        self.ensure(value != 0, key, || "'0' must be at least 1".to_string())
    }

    fn not_empty(&self, value: &str, key: &str) -> Result<(), ConfigError> {
        self.ensure(!value.trim().is_empty(), key, || {
            "must not be empty".to_string()
        })
    }

    fn one_of(&self, value: &str, key: &str, allowed: &[&str]) -> Result<(), ConfigError> {
        self.ensure(allowed.contains(&value), key, || {
            format!("'{value}' is not one of {}", allowed.join(", "))
        })
    }
}

/// Read and parse one settings file; `None` when an optional file is absent.
fn read_file(path: &Path, required: bool) -> Result<Option<Value>, ConfigError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound && required => {
            return Err(ConfigError::MissingSettings(path.to_path_buf()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };

    let syntax = |e: serde_yaml::Error| ConfigError::Syntax {
        origin: path.display().to_string(),
        problem: e.to_string(),
    };
    let mut value: Value = serde_yaml::from_str(&text).map_err(syntax)?;
    value.apply_merge().map_err(syntax)?;
    Ok(Some(value))
}

/// One layer per `SIDELOAD__*` variable, in name order, each named by its variable.
fn env_layers<I>(
    schema: &Value,
    env: I,
    warnings: &mut Vec<String>,
) -> Result<Vec<(String, Value)>, ConfigError>
where
    I: IntoIterator<Item = (String, String)>,
{
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| {
            name.get(..ENV_PREFIX.len())
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(ENV_PREFIX))
        })
        .collect();
    vars.sort();

    let mut layers = Vec::new();
    for (name, raw) in vars {
        let origin = format!("environment variable '{name}'");
        let keys: Vec<String> = name[ENV_PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        if keys.iter().any(String::is_empty) {
            warn(
                warnings,
                format!("{origin}: no key path in the name, ignored"),
            );
            continue;
        }

        // Text keys take the value as written, so that '007' or 'realm/#' stay text.
        let is_text = matches!(
            schema_at(schema, &keys),
            Some(Value::String(_) | Value::Null)
        );
        let value = if raw.is_empty() {
            Value::Null
        } else if is_text {
            Value::String(raw)
        } else {
            serde_yaml::from_str(&raw).map_err(|e| ConfigError::Syntax {
                origin: origin.clone(),
                problem: e.to_string(),
            })?
        };

        let layer = keys.iter().rev().fold(value, |inner, key| {
            let mut map = Mapping::new();
            map.insert(Value::String(key.clone()), inner);
            Value::Mapping(map)
        });
        layers.push((origin, layer));
    }
    Ok(layers)
}

fn schema_at<'a>(schema: &'a Value, keys: &[String]) -> Option<&'a Value> {
    keys.iter()
        .try_fold(schema, |value, key| value.get(key.as_str()))
}

/// Keep the keys the schema knows (matched case-insensitively, as dynaconf does);
/// warn about the others. A blank value unsets an optional key and is ignored for
/// the others. Scalars are coerced where YAML 1.1 files (PyYAML) read differently:
/// `yes`/`no`/`on`/`off` booleans, numbers in text keys.
fn clean_mapping(
    map: Mapping,
    schema: &Mapping,
    prefix: &str,
    origin: &str,
    warnings: &mut Vec<String>,
) -> Mapping {
    let mut out = Mapping::new();
    for (key, value) in map {
        let Some(name) = key.as_str().map(str::to_ascii_lowercase) else {
            let shown = serde_yaml::to_string(&key).unwrap_or_default();
            let place = if prefix.is_empty() {
                "top level"
            } else {
                prefix
            };
            let problem = format!("key '{}' in '{place}' is not text, ignored", shown.trim());
            warn(warnings, format!("{origin}: {problem}"));
            continue;
        };
        if name.starts_with("dynaconf_") {
            continue;
        }
        let path = join_key(prefix, &name);
        let Some(expected) = schema.get(name.as_str()) else {
            warn(warnings, format!("{origin}: unknown key '{path}' ignored"));
            continue;
        };

        let value = match (expected, value) {
            // Only optional keys default to null, and all of them hold text.
            (Value::Null, value) => coerce_text(value),
            (expected, Value::Null) => {
                if !expected.is_mapping() {
                    warn(warnings, format!("{origin}: '{path}' is blank, ignored"));
                }
                continue;
            }
            (Value::Mapping(schema), Value::Mapping(map)) => {
                Value::Mapping(clean_mapping(map, schema, &path, origin, warnings))
            }
            (Value::String(_), value) => coerce_text(value),
            (Value::Bool(_), value) => coerce_bool(value),
            (_, value) => value,
        };
        out.insert(Value::String(name), value);
    }
    out
}

fn coerce_text(value: Value) -> Value {
    match value {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        other => other,
    }
}

fn coerce_bool(value: Value) -> Value {
    let Value::String(text) = &value else {
        return value;
    };
    match text.to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" => Value::Bool(true),
        "no" | "off" | "false" => Value::Bool(false),
        _ => value,
    }
}

/// Deep merge of `layer` over `base`, recording the origin of every key set.
fn merge(base: &mut Value, layer: Value, prefix: &str, origin: &str, origins: &mut Origins) {
    match (base, layer) {
        (Value::Mapping(base), Value::Mapping(layer)) => {
            for (key, value) in layer {
                let path = join_key(prefix, key.as_str().unwrap_or_default());
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value, &path, origin, origins),
                    None => {
                        origins.insert(path, origin.to_string());
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, layer) => {
            *base = layer;
            origins.insert(prefix.to_string(), origin.to_string());
        }
    }
}

fn deserialize(value: Value, origin_of: impl Fn(&str) -> String) -> Result<Settings, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let key = e.path().to_string();
        ConfigError::Invalid {
            origin: origin_of(&key),
            problem: e.into_inner().to_string(),
            key,
        }
    })
}

/// The layer that set `key` or the nearest section above it.
fn origin_of(origins: &Origins, key: &str, fallback: &str) -> String {
    let mut key = key;
    loop {
        if let Some(origin) = origins.get(key) {
            return origin.clone();
        }
        match key.rfind(['.', '[']) {
            Some(end) => key = &key[..end],
            None => return fallback.to_string(),
        }
    }
}

fn join_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn warn(warnings: &mut Vec<String>, warning: String) {
    log::warn!("{warning}");
    warnings.push(warning);
}

/// Logzero level names (and `WARN`), case-insensitive, to the canonical name and filter.
fn parse_level(name: &str) -> Option<(&'static str, log::LevelFilter)> {
    use log::LevelFilter;
    match name.trim().to_ascii_uppercase().as_str() {
        "CRITICAL" => Some(("CRITICAL", LevelFilter::Error)),
        "ERROR" => Some(("ERROR", LevelFilter::Error)),
        "WARNING" | "WARN" => Some(("WARNING", LevelFilter::Warn)),
        "INFO" => Some(("INFO", LevelFilter::Info)),
        "DEBUG" => Some(("DEBUG", LevelFilter::Debug)),
        _ => None,
    }
}

fn parse_store(url: &str, config_dir: &Path) -> Result<Store, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "'{url}' must start with http://, https:// or file://"
        ));
    };

    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" if !rest.trim_matches('/').is_empty() => {
            Ok(Store::Http(url.trim_end_matches('/').to_string()))
        }
        "http" | "https" => Err(format!("'{url}' has no host")),
        "file" => {
            let rest = rest
                .strip_prefix("localhost/")
                .map_or(rest, |_| &rest["localhost".len()..]);
            if rest.is_empty() {
                return Err(format!("'{url}' has no path"));
            }
            Ok(Store::File(resolve(config_dir, Path::new(rest))))
        }
        _ => Err(format!(
            "'{url}' must start with http://, https:// or file://"
        )),
    }
}

/// `path` made absolute against `base` when relative.
fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let joined = base.join(path);
    std::path::absolute(&joined).unwrap_or(joined)
}

fn mask_secrets(value: &mut Value) {
    let Value::Mapping(map) = value else {
        return;
    };
    for (key, value) in map.iter_mut() {
        let secret = key
            .as_str()
            .is_some_and(|key| SECRET_WORDS.iter().any(|word| key.contains(word)));
        if secret && !value.is_null() {
            *value = Value::String(MASK.to_string());
        } else {
            mask_secrets(value);
        }
    }
}

/// The uuid kept in `path`; `None` when absent or unusable (then a new one is made).
fn read_uuid_file(path: &Path) -> Result<Option<String>, ConfigError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::State {
                action: "read",
                path: path.to_path_buf(),
                source,
            })
        }
    };

    let uuid = text.trim();
    if uuid::Uuid::parse_str(uuid).is_ok() {
        Ok(Some(uuid.to_string()))
    } else {
        log::warn!(
            "runtime uuid file '{}' holds '{uuid}', not a uuid: generating a new one",
            path.display()
        );
        Ok(None)
    }
}

/// Write through a temporary file and a rename, so that a crash leaves the old
/// content or the new, never a part; the temporary file is removed on failure.
fn write_atomically(path: &Path, text: &str) -> Result<(), ConfigError> {
    let state = |action, source| ConfigError::State {
        action,
        path: path.to_path_buf(),
        source,
    };
    let folder = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(folder).map_err(|e| state("create the folder of", e))?;

    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = fs::File::create(&temp)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(state("write", e));
    }

    // Make the rename itself durable; not all filesystems allow syncing a folder.
    let _ = fs::File::open(folder).and_then(|dir| dir.sync_all());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example settings.yaml of the Python runtime's README, as written there.
    const PYTHON_SEED: &str = "\
# logzero log level: CRITICAL (fewer messages), ERROR, WARNING, INFO, DEBUG (more messages)
loglevel: INFO 

# runtime settings
runtime:
  name: aruntime # runtime name
  #uuid: # leave blank to generate a new uuid; or set a fixed uuid value
  reg_attempts: 0 # 0 = infinite; keeps trying to register
  reg_timeout_seconds: 5 # interval between register attempts
  max_nmodules: 100 # maximum number of modules we support
  realm: realm # realm topic used

# mqtt settings (NOTE: username and password in conf/.secrets.yaml)
mqtt:
  host: broker.com # broker host
  port: 1883 # broker port
  ssl: true # use ssl connection (true/false)

# where/how we keep program files
repository:
  url: https://filestore-host/store # base url where to get download program files

# launcher config; what starts modules 
launcher:
  pipe_stdout: true # stdout/err piped to pubsub (true/false)
";

    const MINIMAL: &str = "runtime:\n  name: pi7\n";

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(files: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = folder(files);
        Settings::load_with_env(dir.path(), no_env())
    }

    fn load_err(files: &[(&str, &str)]) -> String {
        let dir = folder(files);
        let err = Settings::load_with_env(dir.path(), no_env()).unwrap_err();
        // Messages name files relative to the temp folder, so tests compare from there.
        err.to_string()
            .replace(&format!("{}/", dir.path().display()), "")
    }

    #[test]
    fn python_runtime_settings_yaml_loads_unchanged() {
        let s = load(&[("settings.yaml", PYTHON_SEED)]).unwrap();

        assert_eq!(s.loglevel, "INFO");
        assert_eq!(s.runtime.name, "aruntime");
        assert_eq!(s.runtime.uuid, None);
        assert_eq!(s.runtime.reg_attempts, 0);
        assert_eq!(s.runtime.reg_timeout_seconds, 5.0);
        assert_eq!(s.runtime.max_nmodules, 100);
        assert_eq!(s.runtime.realm, "realm");
        assert_eq!(s.mqtt.host, "broker.com");
        assert_eq!(s.mqtt.port, 1883);
        assert!(s.mqtt.ssl);
        assert!(s.launcher.pipe_stdout);
        assert_eq!(
            s.repository_base(),
            Store::Http("https://filestore-host/store".into())
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn later_layers_win_and_sections_merge_deeply() {
        let s = load(&[
            (
                ".appsettings.yaml",
                "runtime: {name: app, realm: apprealm}\nmqtt: {host: apphost, port: 1}\n",
            ),
            ("settings.yaml", "runtime: {name: user}\nmqtt: {port: 2}\n"),
            (
                ".secrets.yaml",
                "dynaconf_merge: true\nruntime: {name: secret}\nmqtt: {username: u, password: p}\n",
            ),
        ])
        .unwrap();

        assert_eq!(s.runtime.name, "secret");
        assert_eq!(s.runtime.realm, "apprealm");
        assert_eq!(s.mqtt.host, "apphost");
        assert_eq!(s.mqtt.port, 2);
        assert_eq!(s.mqtt.username.as_deref(), Some("u"));
        assert_eq!(s.mqtt.password.as_deref(), Some("p"));
        assert_eq!(
            s.runtime.ka_interval_sec, 60.0,
            "untouched keys keep defaults"
        );
        assert!(
            !s.warnings.iter().any(|w| w.contains("key")),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn environment_overrides_nested_keys_numbers_text_and_lists() {
        let dir = folder(&[("settings.yaml", MINIMAL)]);
        let vars = env(&[
            ("SIDELOAD__MQTT__PORT", "1884"),
            ("sideload__Runtime__Name", "007"),
            ("SIDELOAD__DIALECT__TOPICS__LOG", "x/{realm}/#"),
            ("SIDELOAD__RUNTIME__APIS", "[wasm, wasi]"),
            ("SIDELOAD__MQTT__SSL", "true"),
            ("SIDELOAD__MQTT__PASSWORD", "123456"),
            ("PATH", "/usr/bin"),
        ]);
        let s = Settings::load_with_env(dir.path(), vars).unwrap();

        assert_eq!(s.mqtt.port, 1884);
        assert_eq!(s.runtime.name, "007");
        assert_eq!(s.dialect.topics.log, "x/{realm}/#");
        assert_eq!(s.runtime.apis, vec!["wasm".to_string(), "wasi".to_string()]);
        assert!(s.mqtt.ssl);
        assert_eq!(s.mqtt.password.as_deref(), Some("123456"));
    }

    #[test]
    fn bad_environment_override_names_the_variable_and_key() {
        let dir = folder(&[("settings.yaml", MINIMAL)]);
        let vars = env(&[("SIDELOAD__MQTT__PORT", "many")]);
        let err = Settings::load_with_env(dir.path(), vars).unwrap_err();

        assert_eq!(
            err.to_string(),
            "environment variable 'SIDELOAD__MQTT__PORT': 'mqtt.port': invalid type: string \"many\", expected u16"
        );
    }

    #[test]
    fn environment_override_of_unknown_key_warns() {
        let dir = folder(&[("settings.yaml", MINIMAL)]);
        let vars = env(&[("SIDELOAD__MQTT__PORTT", "1"), ("SIDELOAD__", "x")]);
        let s = Settings::load_with_env(dir.path(), vars).unwrap();

        assert!(s.warnings.iter().any(|w| w
            == "environment variable 'SIDELOAD__MQTT__PORTT': unknown key 'mqtt.portt' ignored"));
        assert!(s.warnings.iter().any(|w| w.contains("'SIDELOAD__'")));
    }

    #[test]
    fn mistyped_value_names_file_and_key() {
        let err = load_err(&[("settings.yaml", "runtime:\n  max_nmodules: ten\n")]);

        assert_eq!(
            err,
            "settings.yaml: 'runtime.max_nmodules': invalid type: string \"ten\", expected usize"
        );
    }

    #[test]
    fn mistyped_value_in_a_lower_layer_is_reported_even_when_overridden() {
        let err = load_err(&[
            (".appsettings.yaml", "mqtt:\n  port: [1]\n"),
            ("settings.yaml", "mqtt:\n  port: 1883\n"),
        ]);

        assert!(
            err.starts_with(".appsettings.yaml: 'mqtt.port': invalid type: sequence"),
            "{err}"
        );
    }

    #[test]
    fn invalid_yaml_names_the_file() {
        let err = load_err(&[("settings.yaml", "runtime: [\n")]);

        assert!(err.starts_with("settings.yaml: invalid YAML: "), "{err}");
    }

    #[test]
    fn missing_settings_yaml_is_an_error_naming_it() {
        let err = load_err(&[(".appsettings.yaml", "loglevel: INFO\n")]);

        assert_eq!(
            err,
            "settings.yaml: not found (every config folder needs a settings.yaml)"
        );
    }

    #[test]
    fn missing_config_folder_is_an_error_naming_it() {
        let err = Settings::load_with_env(Path::new("/nonexistent/conf"), no_env()).unwrap_err();

        assert_eq!(
            err.to_string(),
            "config folder '/nonexistent/conf' does not exist or is not a folder"
        );
    }

    #[test]
    fn invalid_loglevel_names_file_key_and_value() {
        let err = load_err(&[("settings.yaml", "loglevel: LOUD\n")]);

        assert_eq!(
            err,
            "settings.yaml: 'loglevel': 'LOUD' is not a log level (CRITICAL, ERROR, WARNING, INFO, DEBUG)"
        );
    }

    #[test]
    fn loglevel_is_case_insensitive_and_accepts_warn() {
        let s = load(&[("settings.yaml", "loglevel: warn\n")]).unwrap();
        assert_eq!(s.loglevel, "WARNING");
        assert_eq!(s.log_level_filter(), log::LevelFilter::Warn);

        let s = load(&[("settings.yaml", "loglevel: Critical\n")]).unwrap();
        assert_eq!(s.log_level_filter(), log::LevelFilter::Error);

        let s = load(&[("settings.yaml", "loglevel: DEBUG\n")]).unwrap();
        assert_eq!(s.log_level_filter(), log::LevelFilter::Debug);
    }

    #[test]
    fn out_of_range_values_are_rejected_naming_key_and_value() {
        let cases = [
            ("mqtt: {port: 0}", "'mqtt.port': '0' must be at least 1"),
            (
                "runtime: {reg_attempts: -2}",
                "'runtime.reg_attempts': '-2' must be -1",
            ),
            (
                "runtime: {reg_timeout_seconds: 0}",
                "'runtime.reg_timeout_seconds': '0' must be a number greater than 0",
            ),
            (
                "runtime: {ka_interval_sec: -1}",
                "'runtime.ka_interval_sec': '-1'",
            ),
            ("runtime: {max_nmodules: 0}", "'runtime.max_nmodules': '0'"),
            (
                "runtime: {inactivity_timeout_sec: -5}",
                "'runtime.inactivity_timeout_sec': '-5' must be 0 (off)",
            ),
            (
                "repository: {url: 'ftp://host/x'}",
                "'repository.url': 'ftp://host/x' must start with http://, https:// or file://",
            ),
            (
                "dialect: {name: mqtt}",
                "'dialect.name': 'mqtt' is not one of silverline, arena, arts",
            ),
            (
                "dialect: {exit_notice: gone}",
                "'dialect.exit_notice': 'gone' is not one of exited, delete",
            ),
            (
                "dialect: {error_format: xml}",
                "'dialect.error_format': 'xml' is not one of envelope, bare",
            ),
            (
                "runtime: {uuid: not-a-uuid}",
                "'runtime.uuid': 'not-a-uuid' is not a uuid",
            ),
            (
                "launcher: {output: {max_buffered_bytes: 0}}",
                "'launcher.output.max_buffered_bytes': '0' must be at least 1",
            ),
            (
                "mqtt: {reconnect_min_sec: 10, reconnect_max_sec: 5}",
                "'mqtt.reconnect_max_sec': '5' is less than mqtt.reconnect_min_sec '10'",
            ),
            (
                "runtime: {reg_timeout_seconds: .nan}",
                "'runtime.reg_timeout_seconds'",
            ),
        ];
        for (yaml, expected) in cases {
            let err = load_err(&[("settings.yaml", yaml)]);
            assert!(
                err.starts_with(&format!("settings.yaml: {expected}")),
                "{yaml}: {err}"
            );
        }
    }

    #[test]
    fn validation_error_names_the_layer_that_set_the_value() {
        let err = load_err(&[
            ("settings.yaml", MINIMAL),
            (".secrets.yaml", "mqtt: {port: 0}\n"),
        ]);

        assert!(err.starts_with(".secrets.yaml: 'mqtt.port'"), "{err}");
    }

    #[test]
    fn unknown_keys_warn_naming_file_and_key_without_failing() {
        let dir = folder(&[(
            "settings.yaml",
            "runtime: {name: x, colour: blue}\nlauncher:\n  docker: {image: py}\n",
        )]);
        let s = Settings::load_with_env(dir.path(), no_env()).unwrap();
        let file = dir.path().join("settings.yaml").display().to_string();

        assert!(s
            .warnings
            .contains(&format!("{file}: unknown key 'runtime.colour' ignored")));
        assert!(s
            .warnings
            .contains(&format!("{file}: unknown key 'launcher.docker' ignored")));
        assert_eq!(s.runtime.name, "x");
    }

    #[test]
    fn blank_values_mean_unset() {
        let s = load(&[
            (
                ".appsettings.yaml",
                "runtime:\n  uuid: 1b4e28ba-2fa1-11d2-883f-0016d3cca427\n",
            ),
            (
                "settings.yaml",
                "runtime:\n  uuid:\n  name:\nmqtt:\n# host: x\n",
            ),
        ])
        .unwrap();

        assert_eq!(s.runtime.uuid, None);
        assert_eq!(s.runtime.name, "sideload");
        assert_eq!(s.mqtt.host, "localhost");
    }

    #[test]
    fn python_style_values_are_accepted() {
        let s = load(&[(
            "settings.yaml",
            "MQTT: {ssl: yes, username: 42}\nlauncher: {pipe_stdout: off}\n",
        )])
        .unwrap();

        assert!(s.mqtt.ssl);
        assert_eq!(s.mqtt.username.as_deref(), Some("42"));
        assert!(!s.launcher.pipe_stdout);
    }

    #[test]
    fn relative_paths_resolve_against_the_config_folder() {
        let dir = folder(&[(
            "settings.yaml",
            "runtime: {state_dir: state}\nmqtt: {ca_file: ca.pem}\nrepository: {url: 'file://store'}\n",
        )]);
        let s = Settings::load_with_env(dir.path(), no_env()).unwrap();

        assert_eq!(s.config_dir, dir.path());
        assert_eq!(s.runtime.state_dir, dir.path().join("state"));
        assert_eq!(s.mqtt.ca_file, Some(dir.path().join("ca.pem")));
        assert_eq!(s.repository_base(), Store::File(dir.path().join("store")));
        assert!(s
            .warnings
            .iter()
            .any(|w| w.contains("'mqtt.ca_file' is set")));
        assert!(s.warnings.iter().any(|w| w.contains("does not exist")));
    }

    #[test]
    fn absolute_file_store_and_trailing_slash_of_http_store() {
        let s = load(&[(
            "settings.yaml",
            "repository: {url: 'file:///srv/programs'}\n",
        )])
        .unwrap();
        assert_eq!(
            s.repository_base(),
            Store::File(PathBuf::from("/srv/programs"))
        );

        let s = load(&[(
            "settings.yaml",
            "repository: {url: 'http://h:8000/store/'}\n",
        )])
        .unwrap();
        assert_eq!(
            s.repository_base(),
            Store::Http("http://h:8000/store".into())
        );
    }

    #[test]
    fn missing_ca_file_with_ssl_is_an_error() {
        let err = load_err(&[("settings.yaml", "mqtt: {ssl: true, ca_file: ca.pem}\n")]);

        assert!(err.starts_with("settings.yaml: 'mqtt.ca_file': '"), "{err}");
        assert!(err.ends_with("ca.pem' is not a file"), "{err}");
    }

    #[test]
    fn generated_runtime_uuid_is_kept_across_restarts() {
        let dir = folder(&[("settings.yaml", "runtime: {state_dir: state}\n")]);

        let mut first = Settings::load_with_env(dir.path(), no_env()).unwrap();
        let uuid = first.resolve_runtime_uuid().unwrap();
        let mut second = Settings::load_with_env(dir.path(), no_env()).unwrap();
        let again = second.resolve_runtime_uuid().unwrap();

        assert!(uuid::Uuid::parse_str(&uuid).is_ok());
        assert_eq!(uuid, again);
        assert_eq!(first.runtime.uuid.as_deref(), Some(uuid.as_str()));
        let files: Vec<_> = fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(files, vec![std::ffi::OsString::from(UUID_FILE)]);
    }

    #[test]
    fn fixed_runtime_uuid_is_honoured_and_nothing_written() {
        let fixed = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
        let dir = folder(&[(
            "settings.yaml",
            &format!("runtime: {{uuid: {fixed}, state_dir: state}}\n"),
        )]);
        let mut s = Settings::load_with_env(dir.path(), no_env()).unwrap();

        assert_eq!(s.resolve_runtime_uuid().unwrap(), fixed);
        assert!(!dir.path().join("state").exists());
    }

    #[test]
    fn unusable_runtime_uuid_file_is_replaced() {
        let dir = folder(&[("settings.yaml", "runtime: {state_dir: .}\n")]);
        fs::write(dir.path().join(UUID_FILE), "garbage").unwrap();
        let mut s = Settings::load_with_env(dir.path(), no_env()).unwrap();

        let uuid = s.resolve_runtime_uuid().unwrap();

        assert!(uuid::Uuid::parse_str(&uuid).is_ok());
        let kept = fs::read_to_string(dir.path().join(UUID_FILE)).unwrap();
        assert_eq!(kept.trim(), uuid);
    }

    #[test]
    fn masked_output_never_shows_the_password() {
        let s = load(&[
            ("settings.yaml", MINIMAL),
            (
                ".secrets.yaml",
                "mqtt: {username: alice, password: hunter2}\n",
            ),
        ])
        .unwrap();

        let shown = s.masked_yaml();

        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("password: '********'"), "{shown}");
        assert!(shown.contains("username: alice"), "{shown}");
        assert!(shown.contains("name: pi7"), "{shown}");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn masked_output_shows_unset_password_as_null() {
        let s = load(&[("settings.yaml", MINIMAL)]).unwrap();

        assert!(s.masked_yaml().contains("password: null"));
    }

    #[test]
    fn validate_checks_settings_changed_after_loading() {
        let mut s = load(&[("settings.yaml", MINIMAL)]).unwrap();
        assert!(s.validate().is_ok());

        s.mqtt.port = 0;

        assert_eq!(
            s.validate().unwrap_err().to_string(),
            "settings: 'mqtt.port': '0' must be at least 1"
        );
    }

    #[test]
    fn non_text_keys_warn_and_are_ignored() {
        let s = load(&[(
            "settings.yaml",
            "1: x
mqtt: {true: y}
",
        )])
        .unwrap();

        assert!(s
            .warnings
            .iter()
            .any(|w| w.ends_with("key '1' in 'top level' is not text, ignored")));
        assert!(s
            .warnings
            .iter()
            .any(|w| w.ends_with("key 'true' in 'mqtt' is not text, ignored")));
    }

    #[test]
    fn optional_keys_all_hold_text() {
        // Blank and env handling treat every null default as text; a new optional
        // key of another type needs its own handling.
        fn nulls(value: &Value, prefix: &str, out: &mut Vec<String>) {
            if let Value::Mapping(map) = value {
                for (k, v) in map {
                    let path = join_key(prefix, k.as_str().unwrap());
                    if v.is_null() {
                        out.push(path);
                    } else {
                        nulls(v, &path, out);
                    }
                }
            }
        }
        let mut found = Vec::new();
        nulls(&Layers::new().schema, "", &mut found);

        assert_eq!(
            found,
            [
                "runtime.uuid",
                "mqtt.username",
                "mqtt.password",
                "mqtt.ca_file"
            ]
        );
    }

    #[test]
    fn shipped_config_folders_load_and_validate() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for (folder, dialect) in [
            ("conf", "silverline"),
            ("conf/arena", "arena"),
            ("conf/arts", "arts"),
        ] {
            let s = Settings::load_with_env(&root.join(folder), no_env())
                .unwrap_or_else(|e| panic!("{folder}: {e}"));

            assert_eq!(s.dialect.name, dialect);
            assert!(
                !s.warnings.iter().any(|w| w.contains("unknown key")),
                "{folder}: {:?}",
                s.warnings
            );
            assert!(s.runtime.state_dir.ends_with(".state"));
            assert!(s.repository.url.starts_with("file:///"));
        }
    }
}
