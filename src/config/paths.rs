//! Paths in settings: the program store url parsed into a `Store`, and relative
//! paths (`runtime.state_dir`, `mqtt.ca_file`, a `file://` store) made absolute
//! against the config folder, with a check that the files they name are there.
//!
//! Not for: reading or writing those files.

use std::path::{Path, PathBuf};

use super::validate::Checker;
use super::{ConfigError, Settings, Store};

impl Settings {
    /// Make `state_dir`, `mqtt.ca_file` and a `file://` store absolute, relative to the
    /// config folder; then check that the files they name are there.
    pub(super) fn resolve_paths(&mut self, c: &Checker) -> Result<Vec<String>, ConfigError> {
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

pub(super) fn parse_store(url: &str, config_dir: &Path) -> Result<Store, String> {
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
    let joined = base.join(path);
    let absolute = std::path::absolute(&joined).unwrap_or(joined);
    lexically_normal(&absolute)
}

/// `a/b/../c` as `a/c`: folders named in settings read as the user wrote them, and
/// module work folders under them never carry a `..` (the launcher refuses those).
fn lexically_normal(path: &Path) -> PathBuf {
    use std::path::Component;

    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}
