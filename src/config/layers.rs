//! Layering of settings: each file of the config folder and each `SIDELOAD__*`
//! environment variable becomes one layer, cleaned (unknown keys, blanks, YAML 1.1
//! scalars), type-checked on its own and merged over the layers below, remembering
//! which layer set each key so that errors can name it.
//!
//! Not for: the meaning of values (`validate`) or path resolution (`paths`).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::validate::{parse_level, Checker};
use super::{ConfigError, Settings};

/// Prefix of environment overrides; `__` separates the levels of the key.
const ENV_PREFIX: &str = "SIDELOAD__";
/// Origin named for keys no layer set.
const ORIGIN_DEFAULTS: &str = "built-in defaults";

/// Which layer set each key (dotted path), for error messages.
pub(super) type Origins = BTreeMap<String, String>;

/// Builds the merged settings value one layer at a time.
pub(super) struct Layers {
    /// The defaults as a YAML value: the keys and value kinds known.
    pub(super) schema: Value,
    merged: Value,
    origins: Origins,
    pub(super) warnings: Vec<String>,
}

impl Layers {
    pub(super) fn new() -> Layers {
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
    pub(super) fn add(&mut self, origin: &str, value: Value) -> Result<(), ConfigError> {
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

    pub(super) fn finish(self, config_dir: &Path) -> Result<Settings, ConfigError> {
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

/// Read and parse one settings file; `None` when an optional file is absent.
pub(super) fn read_file(path: &Path, required: bool) -> Result<Option<Value>, ConfigError> {
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
pub(super) fn env_layers<I>(
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
pub(super) fn origin_of(origins: &Origins, key: &str, fallback: &str) -> String {
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

pub(super) fn join_key(prefix: &str, key: &str) -> String {
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
