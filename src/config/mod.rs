//! Layered settings: built-in defaults, then `.appsettings.yaml`, `settings.yaml`,
//! `.secrets.yaml` from one config folder, then `SIDELOAD__*` environment overrides.
//! Validation with errors naming the file, the key and the problem; resolution of
//! relative paths, of the program store and of the runtime uuid (generated once and
//! kept in `state_dir`); the masked view shown by `--check-config`.
//!
//! This file holds the public face (`Settings::load`, `ConfigError`); the structs are
//! in `settings`, layering in `layers`, checks in `validate`, paths in `paths`, the
//! uuid in `runtime_uuid`.
//!
//! Not for: interpreting settings (topics are expanded in `protocol`, launchers read
//! their own sections).

use std::io;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

mod layers;
mod paths;
mod runtime_uuid;
mod settings;
#[cfg(test)]
mod tests;
mod validate;

use layers::{env_layers, read_file, Layers, Origins};
use paths::parse_store;
use validate::{parse_level, Checker};

pub use crate::program_files::Store;
pub use settings::{
    ContainerSettings, LauncherEntry, LauncherKind, LauncherSettings, MqttSettings, OutputSettings,
    RepositorySettings, RuntimeSettings, Settings, WasmSettings,
};

/// Settings files of a config folder, lowest precedence first, and whether each is required.
const FILES: [(&str, bool); 3] = [
    (".appsettings.yaml", false),
    ("settings.yaml", true),
    (".secrets.yaml", false),
];
const MASK: &str = "********";
/// A key whose name contains one of these holds a secret: masked when shown.
const SECRET_WORDS: [&str; 3] = ["password", "token", "secret"];

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
