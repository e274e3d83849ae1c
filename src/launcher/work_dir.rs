//! A module's work folder: created afresh for each module under the runtime's state
//! folder, removed with everything in it when the module ends.
//!
//! Not for: what goes into the folder (`program_files`, launchers).

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The module's work folder; removed with everything in it when dropped.
pub(crate) struct WorkDir(PathBuf);

impl WorkDir {
    /// Creates the folder afresh (a leftover from a crash is removed first). Refuses a
    /// path that names a folder other than a module's own (`..` anywhere, or a final
    /// `.`), since whatever it names is removed.
    pub(crate) fn create(path: &Path) -> io::Result<Self> {
        let parent_step = path.components().any(|part| part == Component::ParentDir);
        if parent_step || path.file_name().is_none() || path.as_os_str().as_bytes().ends_with(b"/.")
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a folder of the module's own",
            ));
        }
        match fs::remove_dir_all(path) {
            Ok(()) => log::warn!("removed leftover module folder '{}'", path.display()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        fs::create_dir_all(path)?;
        Ok(WorkDir(path.to_path_buf()))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(err) = fs::remove_dir_all(&self.0) {
            if err.kind() != io::ErrorKind::NotFound {
                log::error!("cannot remove module folder '{}': {err}", self.0.display());
            }
        }
    }
}
