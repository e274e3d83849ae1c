//! The runtime uuid: the fixed `runtime.uuid`, or one generated once and kept in
//! `{state_dir}/runtime-uuid`, written atomically.
//!
//! Not for: checking a fixed uuid's format (`validate`).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use super::{ConfigError, Settings};

/// File in `state_dir` keeping the generated runtime uuid.
pub(super) const UUID_FILE: &str = "runtime-uuid";

impl Settings {
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

    /// The runtime uuid as `resolve_runtime_uuid` would find it, without writing
    /// anything (`--check-config`): `None` when a first start would generate one.
    pub fn peek_runtime_uuid(&mut self) -> Result<Option<String>, ConfigError> {
        if let Some(uuid) = &self.runtime.uuid {
            return Ok(Some(uuid.clone()));
        }
        let path = self.runtime.state_dir.join(UUID_FILE);
        let uuid = read_uuid_file(&path)?;
        match &uuid {
            Some(_) => self.runtime.uuid = uuid.clone(),
            None => log::info!(
                "no runtime uuid yet: the first start generates one and keeps it in '{}'",
                path.display()
            ),
        }
        Ok(uuid)
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
