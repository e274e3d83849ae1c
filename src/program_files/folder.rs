//! Program folders: everything in the folder that holds a Python module's program,
//! sub-folders included, fetched from the store into the module's work folder with
//! the same layout, within bounds on files, sizes, depth and time, checked against
//! the sha256 sums of the request and of `SHA256SUMS` lists in the store. Also the
//! `.arena_mqtt_auth` file Python modules read their MQTT credentials from.
//!
//! Files land in a hidden staging folder first and move into the work folder only
//! once all of them are fetched and checked: a failed fetch leaves nothing behind.
//! In `file://` stores, links are followed while they stay inside the store and
//! refused when they leave it; FIFOs, sockets and devices are skipped.
//!
//! Not for: single WebAssembly files (`fetch_program` in `mod.rs`), reading index
//! pages (`listing.rs`) or removing the work folder (the launcher owns it).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::checksum::{self, SUMS_FILE};
use super::listing::{self, Entry, FolderUrl};
use super::{
    copy_bounded, http_agent, http_error, http_get, human_size, open_regular,
    percent_encode_path, store_relative_path, too_large, CopyError, FetchError, FetchLimits,
    Store,
};
use crate::protocol::printable;

/// What a folder fetch brought into the work folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedFolder {
    /// The program file, relative to the work folder: its base name.
    pub program: PathBuf,
    /// Files fetched (folders not counted).
    pub files: usize,
    /// Bytes fetched in all.
    pub bytes: u64,
}

/// Deepest sub-folder followed below the program's folder.
const MAX_DEPTH: usize = 16;
/// Largest directory index page read.
const MAX_LISTING_BYTES: u64 = 4 * 1024 * 1024;
/// Name of the credentials file in a Python module's work folder.
const MQTT_AUTH_FILE: &str = ".arena_mqtt_auth";

/// Fetch the folder holding `location/file` (everything in it, sub-folders too)
/// into `dest_dir`, which must exist. The program file `file`'s base name must be
/// among the files; `checksums` (names relative to the program's folder, lowercase
/// hex sha256) must all match, and so must every `SHA256SUMS` list in the folder.
/// On error nothing of the folder is left in `dest_dir`.
pub fn fetch_program_folder(
    store: &Store,
    location: &str,
    file: &str,
    dest_dir: &Path,
    limits: &FetchLimits,
    checksums: &BTreeMap<String, String>,
) -> Result<FetchedFolder, FetchError> {
    let relative = store_relative_path(location, file)?;
    let program = relative
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .ok_or_else(|| FetchError::UnsafeName(file.to_string()))?;
    let folder = relative
        .parent()
        .map(|parent| parent.to_string_lossy().into_owned())
        .unwrap_or_default();

    let staging = dest_dir.join(format!(".fetching-{}", uuid::Uuid::new_v4().simple()));
    fs::create_dir(&staging).map_err(|source| write_error(dest_dir, source))?;
    let mut fetch = Fetch {
        limits,
        staging: &staging,
        prefix: folder.clone(),
        entries: 0,
        bytes: 0,
        sums: BTreeMap::new(),
    };

    let result = match store {
        Store::File(root) => walk_store_folder(root, &folder, &mut fetch),
        Store::Http(base) => crawl_index(base, &folder, &mut fetch),
    }
    .and_then(|()| fetch.check(&program, checksums))
    .and_then(|()| move_into_place(&staging, dest_dir));
    let _ = fs::remove_dir_all(&staging);
    result?;

    log::debug!(
        "fetched program folder '{}': {} files, {} bytes",
        fetch.shown_folder(""),
        fetch.sums.len(),
        fetch.bytes
    );
    Ok(FetchedFolder {
        program: PathBuf::from(program),
        files: fetch.sums.len(),
        bytes: fetch.bytes,
    })
}

/// Writes `.arena_mqtt_auth` (`{"username": ..., "token": ...}`, `null` for what is
/// unset) into `dest_dir`, readable by its owner only; replaces any file of that name.
pub fn write_mqtt_auth(
    dest_dir: &Path,
    username: Option<&str>,
    token: Option<&str>,
) -> Result<(), FetchError> {
    use std::os::unix::fs::OpenOptionsExt;

    let path = dest_dir.join(MQTT_AUTH_FILE);
    let content = serde_json::json!({ "username": username, "token": token }).to_string();
    match fs::remove_file(&path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            return Err(write_error(dest_dir, err));
        }
        _ => {}
    }
    let mut output = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|source| write_error(dest_dir, source))?;
    output
        .write_all(content.as_bytes())
        .and_then(|()| output.sync_all())
        .map_err(|source| write_error(dest_dir, source))
}

/// One folder fetch in progress: what is staged so far, against the bounds.
struct Fetch<'a> {
    limits: &'a FetchLimits,
    staging: &'a Path,
    /// The program's folder relative to the store, for messages.
    prefix: String,
    /// Files and folders met so far.
    entries: usize,
    bytes: u64,
    /// Sums of the staged files, by path relative to the program's folder.
    sums: BTreeMap<String, String>,
}

impl Fetch<'_> {
    /// A path relative to the program's folder as the store knows it.
    fn shown(&self, relative: &str) -> String {
        match (self.prefix.is_empty(), relative.is_empty()) {
            (true, _) => relative.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{relative}", self.prefix),
        }
    }

    fn shown_folder(&self, dir: &str) -> String {
        let shown = self.shown(dir.trim_end_matches('/'));
        if shown.is_empty() {
            "./".to_string()
        } else {
            format!("{shown}/")
        }
    }

    fn count_entry(&mut self) -> Result<(), FetchError> {
        self.entries += 1;
        if self.entries > self.limits.max_files {
            return Err(FetchError::TooManyFiles {
                folder: self.shown_folder(""),
                limit: self.limits.max_files,
            });
        }
        Ok(())
    }

    /// Creates the staging copy of sub-folder `dir` (ending in `/`) at `depth`.
    fn enter(&mut self, dir: &str, depth: usize) -> Result<(), FetchError> {
        self.count_entry()?;
        if depth > MAX_DEPTH {
            return Err(FetchError::TooDeep {
                folder: self.shown_folder(""),
                at: self.shown_folder(dir),
                limit: MAX_DEPTH,
            });
        }
        let path = self.staging.join(dir);
        fs::create_dir(&path).map_err(|source| write_error(self.staging, source))
    }

    /// A file of known `size` must fit both the file and the total bound.
    fn check_size(&self, relative: &str, size: u64) -> Result<(), FetchError> {
        if size > self.limits.max_file_bytes {
            return Err(too_large(&self.shown(relative), size, self.limits.max_file_bytes));
        }
        if size > self.remaining() {
            return Err(self.total_too_large());
        }
        Ok(())
    }

    fn remaining(&self) -> u64 {
        self.limits.max_total_bytes.saturating_sub(self.bytes)
    }

    fn total_too_large(&self) -> FetchError {
        FetchError::TotalTooLarge {
            folder: self.shown_folder(""),
            limit: human_size(self.limits.max_total_bytes),
        }
    }

    /// Copies `input` into the staging copy of `relative`, within the bounds.
    fn stage(
        &mut self,
        relative: &str,
        input: impl Read,
        read_error: impl FnOnce(io::Error) -> FetchError,
    ) -> Result<(), FetchError> {
        let max = self.limits.max_file_bytes.min(self.remaining());
        let target = self.staging.join(relative);
        let copied = copy_bounded(input, &target, max).map_err(|err| match err {
            CopyError::Read(source) => read_error(source),
            CopyError::OverLimit if max < self.limits.max_file_bytes => self.total_too_large(),
            other => other.into_fetch_error(&self.shown(relative), &target, max),
        })?;
        self.bytes += copied.bytes;
        self.sums.insert(relative.to_string(), copied.sha256);
        Ok(())
    }

    /// The program must be there, and every sum from the request and the store's
    /// `SHA256SUMS` lists must match.
    fn check(&self, program: &str, checksums: &BTreeMap<String, String>) -> Result<(), FetchError> {
        if !self.sums.contains_key(program) {
            return Err(FetchError::NotFound(self.shown(program)));
        }

        let requested = checksums.iter().map(|(name, sum)| (name.as_str(), sum.as_str()));
        checksum::verify_all(&self.sums, requested, "the request", |name| self.shown(name))?;

        let lists = self
            .sums
            .keys()
            .filter(|name| *name == SUMS_FILE || name.ends_with(&format!("/{SUMS_FILE}")));
        for list in lists {
            let dir = &list[..list.len() - SUMS_FILE.len()];
            let shown = self.shown(list);
            let text = fs::read(self.staging.join(list)).map_err(|source| FetchError::Read {
                file: shown.clone(),
                source,
            })?;
            let mut expected = Vec::new();
            for (name, sum) in checksum::parse_sums(&String::from_utf8_lossy(&text), &shown)? {
                if !super::is_safe_relative(&name, false) {
                    return Err(FetchError::UnsafeEntry {
                        folder: self.shown_folder(dir),
                        name: printable(&name),
                    });
                }
                expected.push((format!("{dir}{}", normalise(&name)), sum));
            }
            let expected = expected.iter().map(|(name, sum)| (name.as_str(), sum.as_str()));
            checksum::verify_all(&self.sums, expected, &format!("'{shown}'"), |name| {
                self.shown(name)
            })?;
        }
        Ok(())
    }
}

/// `a//./b` as `a/b`.
fn normalise(name: &str) -> String {
    name.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Copies a `file://` store's folder `folder` (relative to `root`) into staging.
fn walk_store_folder(root: &Path, folder: &str, fetch: &mut Fetch) -> Result<(), FetchError> {
    let root = root
        .canonicalize()
        .map_err(|_| FetchError::StoreMissing(root.display().to_string()))?;
    let start = match root.join(folder).canonicalize() {
        Ok(path) if !path.starts_with(&root) => {
            return Err(FetchError::LinkLeavesStore(fetch.shown_folder("")))
        }
        Ok(path) if path.is_dir() => path,
        Ok(_) => return Err(FetchError::NotFound(fetch.shown_folder(""))),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(FetchError::NotFound(fetch.shown_folder("")))
        }
        Err(source) => {
            return Err(FetchError::Read {
                file: fetch.shown_folder(""),
                source,
            })
        }
    };

    let mut pending = vec![(start, String::new(), 0)];
    while let Some((path, dir, depth)) = pending.pop() {
        let read_error = |source| FetchError::Read {
            file: fetch.shown_folder(&dir),
            source,
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(&path).map_err(read_error)? {
            names.push(entry.map_err(read_error)?.file_name());
        }
        names.sort();

        for os_name in names {
            let name = os_name
                .to_str()
                .filter(|name| listing::is_safe_entry_name(name))
                .ok_or_else(|| FetchError::UnsafeEntry {
                    folder: fetch.shown_folder(&dir),
                    name: printable(&os_name.to_string_lossy()),
                })?;
            let relative = format!("{dir}{name}");
            let shown = fetch.shown(&relative);
            let read_error = |source| FetchError::Read {
                file: shown.clone(),
                source,
            };
            let source = path.join(name);
            let source = if source.symlink_metadata().map_err(read_error)?.is_symlink() {
                let target = source.canonicalize().map_err(read_error)?;
                if !target.starts_with(&root) {
                    return Err(FetchError::LinkLeavesStore(shown));
                }
                target
            } else {
                source
            };

            let meta = fs::metadata(&source).map_err(read_error)?;
            if meta.is_dir() {
                let sub = format!("{relative}/");
                fetch.enter(&sub, depth + 1)?;
                pending.push((source, sub, depth + 1));
            } else if meta.is_file() {
                fetch.count_entry()?;
                let (input, len) = open_regular(&source, &shown)?;
                fetch.check_size(&relative, len)?;
                fetch.stage(&relative, input, read_error)?;
            } else {
                log::debug!("skipping '{shown}' in the program store: not a file or folder");
            }
        }
    }
    Ok(())
}

/// Downloads what the directory index at `base/folder/` lists, sub-folders too.
fn crawl_index(base: &str, folder: &str, fetch: &mut Fetch) -> Result<(), FetchError> {
    let agent = http_agent(fetch.limits);
    let top = if folder.is_empty() {
        format!("{}/", base.trim_end_matches('/'))
    } else {
        format!(
            "{}/{}/",
            base.trim_end_matches('/'),
            percent_encode_path(folder)
        )
    };

    let mut pending = vec![(String::new(), 0)];
    while let Some((dir, depth)) = pending.pop() {
        let url = format!("{top}{}", percent_encode_path(&dir));
        let page = read_index(&agent, &url)?;
        let entries = listing::entries(&page, &FolderUrl::parse(&url)).map_err(|name| {
            FetchError::UnsafeEntry {
                folder: fetch.shown_folder(&dir),
                name,
            }
        })?;

        for entry in entries {
            match entry {
                Entry::Folder(name) => {
                    let sub = format!("{dir}{name}/");
                    fetch.enter(&sub, depth + 1)?;
                    pending.push((sub, depth + 1));
                }
                Entry::File(name) => {
                    fetch.count_entry()?;
                    let relative = format!("{dir}{name}");
                    let file_url = format!("{top}{}", percent_encode_path(&relative));
                    let body = http_get(&agent, &file_url)?;
                    if let Some(size) = body.content_length() {
                        fetch.check_size(&relative, size)?;
                    }
                    fetch.stage(&relative, body.into_reader(), |source| {
                        http_error(&file_url, source.to_string())
                    })?;
                }
            }
        }
    }
    Ok(())
}

/// The directory index page at `url`, at most `MAX_LISTING_BYTES`.
fn read_index(agent: &ureq::Agent, url: &str) -> Result<String, FetchError> {
    let too_long = || {
        http_error(
            url,
            format!(
                "directory index over the limit of {}",
                human_size(MAX_LISTING_BYTES)
            ),
        )
    };
    let body = http_get(agent, url)?;
    if body.content_length().is_some_and(|size| size > MAX_LISTING_BYTES) {
        return Err(too_long());
    }
    let mut page = Vec::new();
    body.into_reader()
        .take(MAX_LISTING_BYTES + 1)
        .read_to_end(&mut page)
        .map_err(|err| http_error(url, err.to_string()))?;
    if page.len() as u64 > MAX_LISTING_BYTES {
        return Err(too_long());
    }
    Ok(String::from_utf8_lossy(&page).into_owned())
}

/// Moves everything staged into `dest_dir`; on failure takes back what it moved.
fn move_into_place(staging: &Path, dest_dir: &Path) -> Result<(), FetchError> {
    let mut moved = Vec::new();
    let result = (|| {
        for entry in fs::read_dir(staging).map_err(|source| write_error(dest_dir, source))? {
            let entry = entry.map_err(|source| write_error(dest_dir, source))?;
            let target = dest_dir.join(entry.file_name());
            if target.symlink_metadata().is_ok() {
                let taken = io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("'{}' is there already", printable(&entry.file_name().to_string_lossy())),
                );
                return Err(write_error(dest_dir, taken));
            }
            fs::rename(entry.path(), &target).map_err(|source| write_error(dest_dir, source))?;
            moved.push(target);
        }
        Ok(())
    })();
    if result.is_err() {
        for path in moved {
            let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
        }
    }
    result
}

fn write_error(dir: &Path, source: io::Error) -> FetchError {
    FetchError::Write {
        dir: dir.display().to_string(),
        source,
    }
}
