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
use super::http::{http_error, StoreClient};
use super::listing::{self, Entry, FolderUrl};
use super::{
    copy_bounded, human_size, open_regular, percent_encode_path, program_path, too_large,
    CopyError, FetchError, FetchLimits, Store,
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
/// `abandon` is asked before every file and folder: once it says yes, the fetch
/// stops. On error nothing of the folder is left in `dest_dir`.
pub fn fetch_program_folder(
    store: &Store,
    location: &str,
    file: &str,
    dest_dir: &Path,
    limits: &FetchLimits,
    checksums: &BTreeMap<String, String>,
    abandon: &dyn Fn() -> bool,
) -> Result<FetchedFolder, FetchError> {
    let (relative, program) = program_path(location, file)?;
    let folder = relative
        .parent()
        .map(|parent| parent.to_string_lossy().into_owned())
        .unwrap_or_default();

    let staging = dest_dir.join(format!(".fetching-{}", uuid::Uuid::new_v4().simple()));
    fs::create_dir(&staging).map_err(|source| write_error(dest_dir, source))?;
    let mut fetch = Fetch {
        limits,
        abandon,
        staging: &staging,
        prefix: folder.clone(),
        entries: 0,
        bytes: 0,
        index_bytes: 0,
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
    /// Whether to stop before the next file or folder (the module was deleted).
    abandon: &'a dyn Fn() -> bool,
    staging: &'a Path,
    /// The program's folder relative to the store, for messages.
    prefix: String,
    /// Files and folders met so far.
    entries: usize,
    /// Bytes of the files staged.
    bytes: u64,
    /// Bytes of the directory index pages read; they count against the total too.
    index_bytes: u64,
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
        if (self.abandon)() {
            return Err(FetchError::Abandoned(self.shown_folder("")));
        }
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
            return Err(too_large(
                &self.shown(relative),
                size,
                self.limits.max_file_bytes,
            ));
        }
        if size > self.remaining() {
            return Err(self.total_too_large());
        }
        Ok(())
    }

    fn remaining(&self) -> u64 {
        self.limits
            .max_total_bytes
            .saturating_sub(self.bytes + self.index_bytes)
    }

    /// Whether a top-level entry is the credentials file's name, which the runtime
    /// writes itself: such an entry is skipped, not fetched.
    fn is_reserved(&self, dir: &str, name: &str) -> bool {
        let reserved = dir.is_empty() && name == MQTT_AUTH_FILE;
        if reserved {
            log::warn!(
                "skipping '{}' in the program store: the runtime writes the module's own",
                self.shown(name)
            );
        }
        reserved
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

        // The credentials file is the runtime's, never fetched: no sum can match it.
        let fetched = |name: &str| name != MQTT_AUTH_FILE;
        let requested = checksums
            .iter()
            .filter(|(name, _)| fetched(&normalise(name)))
            .map(|(name, sum)| (name.as_str(), sum.as_str()));
        checksum::verify_all(&self.sums, requested, "the request", |name| {
            self.shown(name)
        })?;

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
                let name = format!("{dir}{}", normalise(&name));
                if fetched(&name) {
                    expected.push((name, sum));
                }
            }
            let expected = expected
                .iter()
                .map(|(name, sum)| (name.as_str(), sum.as_str()));
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
        Ok(_) => return Err(FetchError::FolderNotFound(fetch.shown_folder(""))),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(FetchError::FolderNotFound(fetch.shown_folder("")))
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
            if fetch.is_reserved(&dir, name) {
                continue;
            }
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
                let (input, len) = open_regular(&root, &source, &shown)?;
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
    let client = StoreClient::new(base, fetch.limits);
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
        let page = read_index(&client, &url, fetch)?;
        let entries = listing::entries(&page, &FolderUrl::parse(&url)).map_err(|name| {
            FetchError::UnsafeEntry {
                folder: fetch.shown_folder(&dir),
                name,
            }
        })?;

        for entry in entries {
            let (Entry::Folder(name) | Entry::File(name)) = &entry;
            if fetch.is_reserved(&dir, name) {
                continue;
            }
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
                    let body = client.get(&file_url)?;
                    if let Some(size) = body.content_length() {
                        fetch.check_size(&relative, size)?;
                    }
                    fetch.stage(&relative, body.into_reader(), |source| {
                        client.error(&file_url, source.to_string())
                    })?;
                }
            }
        }
    }
    Ok(())
}

/// The directory index page at `url`, at most `MAX_LISTING_BYTES` and what is left
/// of the folder's total bound, which it counts against.
fn read_index(client: &StoreClient, url: &str, fetch: &mut Fetch) -> Result<String, FetchError> {
    let too_long = || {
        http_error(
            url,
            format!(
                "directory index over the limit of {}",
                human_size(MAX_LISTING_BYTES)
            ),
        )
    };
    let body = client.get(url)?;
    let max = MAX_LISTING_BYTES.min(fetch.remaining());
    let over = |size: u64| {
        if size > MAX_LISTING_BYTES {
            too_long()
        } else {
            fetch.total_too_large()
        }
    };
    if let Some(size) = body.content_length().filter(|&size| size > max) {
        return Err(over(size));
    }
    let mut page = Vec::new();
    body.into_reader()
        .take(max + 1)
        .read_to_end(&mut page)
        .map_err(|err| client.error(url, err.to_string()))?;
    if page.len() as u64 > max {
        return Err(over(page.len() as u64));
    }
    fetch.index_bytes += page.len() as u64;
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
                    format!(
                        "'{}' is there already",
                        printable(&entry.file_name().to_string_lossy())
                    ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program_files::checksum::sha256_of;
    use std::net::TcpListener;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;
    use std::thread;
    use std::time::{Duration, Instant};

    fn limits() -> FetchLimits {
        FetchLimits {
            timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(60),
            max_file_bytes: 1024,
            max_files: 20,
            max_total_bytes: 4096,
        }
    }

    fn no_sums() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    /// A store with `apps/prog.py`, `apps/requirements.txt`, `apps/lib/util.py`,
    /// `apps/lib/data/table.csv` and a sibling folder that must not be fetched.
    fn store() -> tempfile::TempDir {
        let store = tempfile::tempdir().unwrap();
        let apps = store.path().join("apps");
        fs::create_dir_all(apps.join("lib/data")).unwrap();
        fs::create_dir_all(store.path().join("other")).unwrap();
        fs::write(apps.join("prog.py"), b"print('hi')\n").unwrap();
        fs::write(apps.join("requirements.txt"), b"paho-mqtt\n").unwrap();
        fs::write(apps.join("lib/util.py"), b"X = 1\n").unwrap();
        fs::write(apps.join("lib/data/table.csv"), b"a,b\n1,2\n").unwrap();
        fs::write(store.path().join("other/secret.py"), b"no").unwrap();
        store
    }

    /// Every file under `dir`, relative, sorted.
    fn files_in(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(path) = pending.pop() {
            for entry in fs::read_dir(path).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let relative = path.strip_prefix(dir).unwrap();
                    found.push(relative.to_string_lossy().into_owned());
                }
            }
        }
        found.sort();
        found
    }

    fn is_empty(dir: &Path) -> bool {
        fs::read_dir(dir).unwrap().next().is_none()
    }

    fn fetch_file_store(
        store: &Path,
        file: &str,
        limits: &FetchLimits,
        sums: &BTreeMap<String, String>,
    ) -> (tempfile::TempDir, Result<FetchedFolder, FetchError>) {
        let dest = tempfile::tempdir().unwrap();
        let store = Store::File(store.to_path_buf());
        let result = fetch_program_folder(&store, "", file, dest.path(), limits, sums, &never);
        (dest, result)
    }

    fn never() -> bool {
        false
    }

    /// `apps/prog.py`'s folder from the file store at `store`.
    fn fetch_apps_prog(
        store: &Path,
        abandon: &dyn Fn() -> bool,
    ) -> (tempfile::TempDir, Result<FetchedFolder, FetchError>) {
        let dest = tempfile::tempdir().unwrap();
        let store = Store::File(store.to_path_buf());
        let limits = limits();
        let result = fetch_program_folder(
            &store,
            "apps",
            "prog.py",
            dest.path(),
            &limits,
            &no_sums(),
            abandon,
        );
        (dest, result)
    }

    #[test]
    fn a_fetch_stops_before_the_next_file_once_abandoned_and_leaves_nothing() {
        let store = store();
        let looks = std::cell::Cell::new(0);
        let after_two = || {
            looks.set(looks.get() + 1);
            looks.get() > 2
        };

        let (dest, result) = fetch_apps_prog(store.path(), &after_two);

        assert_eq!(
            result.unwrap_err().to_string(),
            "fetching program folder 'apps/' was given up: the module is being deleted"
        );
        assert_eq!(looks.get(), 3);
        assert!(is_empty(dest.path()));
    }

    const FETCHED: [&str; 4] = [
        "lib/data/table.csv",
        "lib/util.py",
        "prog.py",
        "requirements.txt",
    ];

    #[test]
    fn file_store_folder_lands_in_the_work_folder_with_its_layout() {
        let store = store();
        let (dest, result) = fetch_apps_prog(store.path(), &never);
        let fetched = result.unwrap();

        assert_eq!(files_in(dest.path()), FETCHED);
        assert_eq!(
            fs::read(dest.path().join("lib/util.py")).unwrap(),
            b"X = 1\n"
        );
        assert_eq!(
            fetched,
            FetchedFolder {
                program: PathBuf::from("prog.py"),
                files: 4,
                bytes: 12 + 10 + 6 + 8,
            }
        );
    }

    #[test]
    fn program_path_with_folders_lists_the_folder_that_holds_it() {
        let store = store();
        let (dest, fetched) =
            fetch_file_store(store.path(), "apps/lib/util.py", &limits(), &no_sums());
        assert_eq!(fetched.unwrap().program, PathBuf::from("util.py"));
        assert_eq!(files_in(dest.path()), ["data/table.csv", "util.py"]);
    }

    #[test]
    fn a_folder_without_the_program_file_is_an_error_naming_it() {
        let store = store();
        let (dest, result) = fetch_file_store(store.path(), "apps/main.py", &limits(), &no_sums());
        assert_eq!(
            result.unwrap_err().to_string(),
            "program file 'apps/main.py' not found in the store"
        );
        assert!(is_empty(dest.path()));

        let (_, result) = fetch_file_store(store.path(), "nope/main.py", &limits(), &no_sums());
        assert_eq!(
            result.unwrap_err().to_string(),
            "program folder 'nope/' not found in the store"
        );
    }

    #[test]
    fn file_store_refuses_links_that_leave_the_store_and_follows_those_inside() {
        let store = store();
        let apps = store.path().join("apps");
        std::os::unix::fs::symlink("../other/secret.py", apps.join("shared.py")).unwrap();
        let (dest, result) = fetch_file_store(store.path(), "apps/prog.py", &limits(), &no_sums());
        assert_eq!(
            result.unwrap().files,
            5,
            "a link inside the store is followed"
        );
        assert_eq!(fs::read(dest.path().join("shared.py")).unwrap(), b"no");

        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("key"), b"secret").unwrap();
        std::os::unix::fs::symlink(outside.path(), apps.join("lib/escape")).unwrap();
        let (dest, result) = fetch_file_store(store.path(), "apps/prog.py", &limits(), &no_sums());
        assert_eq!(
            result.unwrap_err().to_string(),
            "'apps/lib/escape' in the program store is a link that leaves the store"
        );
        assert!(is_empty(dest.path()));
    }

    #[test]
    fn file_store_skips_fifos_without_blocking_on_them() {
        let store = store();
        let fifo = store.path().join("apps/pipe");
        let path = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
        let (dest, result) = fetch_file_store(store.path(), "apps/prog.py", &limits(), &no_sums());
        assert_eq!(result.unwrap().files, 4);
        assert_eq!(files_in(dest.path()), FETCHED);
    }

    #[test]
    fn file_store_refuses_names_with_backslashes() {
        let store = store();
        fs::write(store.path().join("apps/a\\b.py"), b"x").unwrap();
        let (dest, result) = fetch_file_store(store.path(), "apps/prog.py", &limits(), &no_sums());
        assert_eq!(
            result.unwrap_err().to_string(),
            "program folder 'apps/' lists 'a\\b.py', which would leave the work folder"
        );
        assert!(is_empty(dest.path()));
    }

    #[test]
    fn too_many_files_too_large_a_file_or_too_many_bytes_leave_nothing_behind() {
        let store = store();
        let cases = [
            (
                FetchLimits {
                    max_files: 4,
                    ..limits()
                },
                "program folder 'apps/' holds more than 4 files and folders",
            ),
            (
                FetchLimits {
                    max_file_bytes: 11,
                    ..limits()
                },
                "program file 'apps/prog.py' is 12 bytes, over the limit of 11 bytes",
            ),
            (
                FetchLimits {
                    max_total_bytes: 30,
                    ..limits()
                },
                "program folder 'apps/' is over the limit of 30 bytes in all",
            ),
        ];
        for (limits, expected) in cases {
            let (dest, result) =
                fetch_file_store(store.path(), "apps/prog.py", &limits, &no_sums());
            assert_eq!(result.unwrap_err().to_string(), expected);
            assert!(is_empty(dest.path()), "{expected}");
        }
    }

    #[test]
    fn folders_nested_deeper_than_the_bound_are_refused() {
        let store = tempfile::tempdir().unwrap();
        let deep: PathBuf = (0..=MAX_DEPTH).map(|level| format!("d{level}")).collect();
        fs::create_dir_all(store.path().join(&deep)).unwrap();
        fs::write(store.path().join("prog.py"), b"x").unwrap();
        let (dest, result) = fetch_file_store(store.path(), "prog.py", &limits(), &no_sums());
        let shown = result.unwrap_err().to_string();
        assert!(
            shown.starts_with("program folder './' nests deeper than 16 folders at 'd0/d1/"),
            "{shown}"
        );
        assert!(is_empty(dest.path()));
    }

    #[test]
    fn request_sums_are_checked_and_a_mismatch_names_the_file() {
        let store = store();
        let good = BTreeMap::from([
            ("prog.py".to_string(), sha256_of(b"print('hi')\n")),
            ("lib/util.py".to_string(), sha256_of(b"X = 1\n")),
        ]);
        let (_, result) = fetch_file_store(store.path(), "apps/prog.py", &limits(), &good);
        assert!(result.is_ok());

        let bad = BTreeMap::from([("lib/util.py".to_string(), sha256_of(b"X = 2\n"))]);
        let (dest, result) = fetch_file_store(store.path(), "apps/prog.py", &limits(), &bad);
        assert_eq!(
            result.unwrap_err().to_string(),
            format!(
                "program file 'apps/lib/util.py' has sha256 '{}...', but the request gives '{}...'",
                &sha256_of(b"X = 1\n")[..12],
                &sha256_of(b"X = 2\n")[..12]
            )
        );
        assert!(is_empty(dest.path()));

        let missing = BTreeMap::from([("gone.py".to_string(), sha256_of(b""))]);
        let (_, result) = fetch_file_store(store.path(), "apps/prog.py", &limits(), &missing);
        assert_eq!(
            result.unwrap_err().to_string(),
            "the request gives a sha256 for 'apps/gone.py', which the program folder does not hold"
        );
    }

    #[test]
    fn sha256sums_in_the_store_are_checked() {
        let store = store();
        let prog_line = format!("{}  prog.py\n", sha256_of(b"print('hi')\n"));
        let table_line = format!("{} *./data/table.csv\n", sha256_of(b"a,b\n1,2\n"));
        let top_list = store.path().join("apps/SHA256SUMS");

        // Names are relative to the list's own folder: 'data/' is under 'lib/'.
        fs::write(&top_list, format!("{prog_line}{table_line}")).unwrap();
        let (_, result) = fetch_file_store(store.path(), "apps/prog.py", &limits(), &no_sums());
        assert_eq!(
            result.unwrap_err().to_string(),
            "'apps/SHA256SUMS' gives a sha256 for 'apps/data/table.csv', \
             which the program folder does not hold"
        );

        fs::write(&top_list, &prog_line).unwrap();
        fs::write(store.path().join("apps/lib/SHA256SUMS"), &table_line).unwrap();
        let (dest, result) = fetch_file_store(store.path(), "apps/prog.py", &limits(), &no_sums());
        assert_eq!(result.unwrap().files, 6);
        assert!(dest.path().join("SHA256SUMS").is_file());

        fs::write(store.path().join("apps/prog.py"), b"print('tampered')\n").unwrap();
        let (dest, result) = fetch_file_store(store.path(), "apps/prog.py", &limits(), &no_sums());
        assert_eq!(
            result.unwrap_err().to_string(),
            format!(
                "program file 'apps/prog.py' has sha256 '{}...', but 'apps/SHA256SUMS' gives '{}...'",
                &sha256_of(b"print('tampered')\n")[..12],
                &sha256_of(b"print('hi')\n")[..12]
            )
        );
        assert!(is_empty(dest.path()));
    }

    #[test]
    fn mqtt_auth_file_holds_the_credentials_for_its_owner_only() {
        let dest = tempfile::tempdir().unwrap();
        write_mqtt_auth(dest.path(), Some("cli"), Some("t0k\"en")).unwrap();
        let path = dest.path().join(".arena_mqtt_auth");
        let written: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            written,
            serde_json::json!({"username": "cli", "token": "t0k\"en"})
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_mqtt_auth(dest.path(), None, None).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            r#"{"token":null,"username":null}"#
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    /// Serves `root` like `python3 -m http.server`, plus `extra` index entries (raw
    /// hrefs) in the top folder's page. Stops when dropped.
    struct IndexServer {
        server: Arc<tiny_http::Server>,
        thread: Option<thread::JoinHandle<()>>,
        url: String,
    }

    impl IndexServer {
        fn start(root: &Path, extra: &'static [&'static str]) -> IndexServer {
            let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
            let port = server.server_addr().to_ip().unwrap().port();
            let root = root.to_path_buf();
            let serving = Arc::clone(&server);
            let thread = thread::spawn(move || {
                for request in serving.incoming_requests() {
                    let path = String::from_utf8(listing::percent_decode(request.url())).unwrap();
                    let local = root.join(path.trim_start_matches('/'));
                    let response = if path.ends_with('/') && local.is_dir() {
                        let page =
                            index_page(&local, if path == "/store/apps/" { extra } else { &[] });
                        tiny_http::Response::from_string(page)
                    } else if local.is_file() {
                        tiny_http::Response::from_data(fs::read(&local).unwrap())
                    } else {
                        tiny_http::Response::from_string("no").with_status_code(404)
                    };
                    let _ = request.respond(response);
                }
            });
            IndexServer {
                server,
                thread: Some(thread),
                url: format!("http://user:s3cret@127.0.0.1:{port}/store"),
            }
        }
    }

    impl Drop for IndexServer {
        fn drop(&mut self) {
            self.server.unblock();
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    fn index_page(dir: &Path, extra: &[&str]) -> String {
        let mut page = String::from("<html><body><a href=\"../\">../</a>\n");
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let slash = if entry.path().is_dir() { "/" } else { "" };
            let href = crate::program_files::percent_encode_path(&name);
            page.push_str(&format!("<a href=\"{href}{slash}\">{name}{slash}</a>\n"));
        }
        for href in extra {
            page.push_str(&format!("<a href='{href}'>x</a>\n"));
        }
        page + "</body></html>"
    }

    fn fetch_http(
        url: &str,
        limits: &FetchLimits,
    ) -> (tempfile::TempDir, Result<FetchedFolder, FetchError>) {
        let dest = tempfile::tempdir().unwrap();
        let store = Store::Http(url.to_string());
        let result = fetch_program_folder(
            &store,
            "apps",
            "prog.py",
            dest.path(),
            limits,
            &no_sums(),
            &never,
        );
        (dest, result)
    }

    #[test]
    fn http_store_folder_is_crawled_with_its_sub_folders() {
        let store = store();
        fs::write(store.path().join("apps/my prog&co.py"), b"# odd name\n").unwrap();
        let root = tempfile::tempdir().unwrap();
        fs::rename(store.path(), root.path().join("store")).unwrap();
        let server = IndexServer::start(root.path(), &[]);

        let (dest, result) = fetch_http(&server.url, &limits());

        assert_eq!(result.unwrap().files, 5);
        let mut expected = FETCHED.to_vec();
        expected.insert(2, "my prog&co.py");
        assert_eq!(files_in(dest.path()), expected);
        assert_eq!(
            fs::read(dest.path().join("lib/data/table.csv")).unwrap(),
            b"a,b\n1,2\n"
        );
    }

    #[test]
    fn http_store_entries_that_would_leave_the_work_folder_fail_the_fetch() {
        let store = store();
        let root = tempfile::tempdir().unwrap();
        fs::rename(store.path(), root.path().join("store")).unwrap();
        let server = IndexServer::start(root.path(), &["%2e%2e%2fescape.py"]);

        let (dest, result) = fetch_http(&server.url, &limits());

        assert_eq!(
            result.unwrap_err().to_string(),
            "program folder 'apps/' lists '../escape.py', which would leave the work folder"
        );
        assert!(is_empty(dest.path()));
    }

    #[test]
    fn http_store_errors_name_the_url_without_credentials() {
        let root = tempfile::tempdir().unwrap();
        let server = IndexServer::start(root.path(), &[]);
        let (dest, result) = fetch_http(&server.url, &limits());
        let shown = result.unwrap_err().to_string();
        assert!(
            !shown.contains("s3cret") && !shown.contains("user"),
            "{shown}"
        );
        assert!(shown.ends_with("/store/apps/': 404 Not Found"), "{shown}");
        assert!(is_empty(dest.path()));
    }

    #[test]
    fn http_store_file_over_the_size_bound_is_refused() {
        let store = store();
        fs::write(store.path().join("apps/lib/big.bin"), vec![0u8; 2000]).unwrap();
        let root = tempfile::tempdir().unwrap();
        fs::rename(store.path(), root.path().join("store")).unwrap();
        let server = IndexServer::start(root.path(), &[]);

        let (dest, result) = fetch_http(&server.url, &limits());

        assert_eq!(
            result.unwrap_err().to_string(),
            "program file 'apps/lib/big.bin' is 2000 bytes, over the limit of 1024 bytes"
        );
        assert!(is_empty(dest.path()));
    }

    #[test]
    fn stalled_server_fails_the_fetch_within_the_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let holder = thread::spawn(move || listener.accept().map(|(stream, _)| stream));
        let short = FetchLimits {
            timeout: Duration::from_millis(300),
            ..limits()
        };

        let started = Instant::now();
        let (dest, result) = fetch_http(&format!("http://127.0.0.1:{port}"), &short);
        let elapsed = started.elapsed();
        drop(holder.join());

        let shown = result.unwrap_err().to_string();
        assert!(shown.contains("timeout"), "{shown}");
        assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
        assert!(is_empty(dest.path()));
    }

    /// Answers each request with `route(path)` (path still percent-encoded), one at a
    /// time. Stops when dropped.
    struct RoutedServer {
        server: Arc<tiny_http::Server>,
        thread: Option<thread::JoinHandle<()>>,
        base: String,
    }

    impl RoutedServer {
        fn start(
            route: impl Fn(&str, &str) -> tiny_http::ResponseBox + Send + 'static,
        ) -> RoutedServer {
            let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
            let base = format!(
                "http://127.0.0.1:{}",
                server.server_addr().to_ip().unwrap().port()
            );
            let serving = Arc::clone(&server);
            let own = base.clone();
            let thread = thread::spawn(move || {
                for request in serving.incoming_requests() {
                    let response = route(&own, request.url());
                    let _ = request.respond(response);
                }
            });
            RoutedServer {
                server,
                thread: Some(thread),
                base,
            }
        }
    }

    impl Drop for RoutedServer {
        fn drop(&mut self) {
            self.server.unblock();
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    fn page(hrefs: &[&str]) -> tiny_http::ResponseBox {
        let links: String = hrefs
            .iter()
            .map(|href| format!("<a href=\"{href}\">{href}</a>\n"))
            .collect();
        tiny_http::Response::from_string(links).boxed()
    }

    fn redirect(location: &str) -> tiny_http::ResponseBox {
        let header = tiny_http::Header::from_bytes("Location", location).unwrap();
        tiny_http::Response::empty(302).with_header(header).boxed()
    }

    #[test]
    fn redirects_are_followed_inside_the_store_only() {
        let elsewhere = RoutedServer::start(|_, _| {
            tiny_http::Response::from_string("secret of another server").boxed()
        });
        let target = format!("{}/internal/metadata", elsewhere.base);
        let served = target.clone();
        let store = RoutedServer::start(move |own, path| match path {
            "/store/apps/" => page(&["prog.py", "moved.py", "lib/"]),
            "/store/apps/prog.py" => tiny_http::Response::from_string("print(1)\n").boxed(),
            "/store/apps/moved.py" => redirect("../v2/moved.py"),
            "/store/v2/moved.py" => tiny_http::Response::from_string("X = 2\n").boxed(),
            "/store/apps/lib/" => redirect(&format!("{own}/store/lib2/")),
            "/store/lib2/" => page(&["util.py"]),
            "/store/apps/lib/util.py" => redirect(&served),
            _ => tiny_http::Response::from_string("no")
                .with_status_code(404)
                .boxed(),
        });

        let (dest, result) = fetch_http(&format!("{}/store", store.base), &limits());

        let shown = result.unwrap_err().to_string();
        assert_eq!(
            shown,
            format!(
                "cannot fetch '{}/store/apps/lib/util.py': redirected to '{target}', \
                 outside the program store '{}/store'",
                store.base, store.base
            )
        );
        assert!(is_empty(dest.path()));

        let contained = RoutedServer::start(|_, path| match path {
            "/store/apps/" => page(&["prog.py", "moved.py"]),
            "/store/apps/prog.py" => tiny_http::Response::from_string("print(1)\n").boxed(),
            "/store/apps/moved.py" => redirect("/store/v2/moved.py"),
            "/store/v2/moved.py" => tiny_http::Response::from_string("X = 2\n").boxed(),
            _ => tiny_http::Response::from_string("no")
                .with_status_code(404)
                .boxed(),
        });
        let (dest, result) = fetch_http(&format!("{}/store", contained.base), &limits());
        assert_eq!(result.unwrap().files, 2);
        assert_eq!(files_in(dest.path()), ["moved.py", "prog.py"]);
        assert_eq!(fs::read(dest.path().join("moved.py")).unwrap(), b"X = 2\n");
    }

    #[test]
    fn a_redirect_to_a_local_file_is_refused() {
        let store = RoutedServer::start(|_, path| match path {
            "/store/apps/" => page(&["prog.py"]),
            _ => redirect("file:///etc/passwd"),
        });
        let (dest, result) = fetch_http(&format!("{}/store", store.base), &limits());
        assert_eq!(
            result.unwrap_err().to_string(),
            format!(
                "cannot fetch '{0}/store/apps/prog.py': redirected to 'file:///etc/passwd', \
                 outside the program store '{0}/store'",
                store.base
            )
        );
        assert!(is_empty(dest.path()));
    }

    #[test]
    fn index_pages_count_against_the_folder_total() {
        let padding = " ".repeat(3000);
        let store = RoutedServer::start(move |_, path| match path {
            "/store/apps/" => page(&["prog.py", "a/", "b/"]),
            "/store/apps/prog.py" => tiny_http::Response::from_string("print(1)\n").boxed(),
            _ if path.ends_with('/') => tiny_http::Response::from_string(padding.clone()).boxed(),
            _ => tiny_http::Response::from_string("no")
                .with_status_code(404)
                .boxed(),
        });

        let (dest, result) = fetch_http(&format!("{}/store", store.base), &limits());

        assert_eq!(
            result.unwrap_err().to_string(),
            "program folder 'apps/' is over the limit of 4096 bytes in all"
        );
        assert!(is_empty(dest.path()));
    }

    #[test]
    fn a_folder_fetch_ends_at_its_total_time_even_when_every_request_is_quick_enough() {
        let names: Vec<String> = (0..30).map(|n| format!("f{n}.py")).collect();
        let listed: Vec<&str> = names.iter().map(String::as_str).collect();
        let index = page(&listed).into_reader();
        let mut index_text = String::new();
        index.take(1 << 20).read_to_string(&mut index_text).unwrap();
        let store = RoutedServer::start(move |_, path| {
            if path == "/store/apps/" {
                return tiny_http::Response::from_string(index_text.clone()).boxed();
            }
            // A slow server: each file takes 100 ms, well inside the 5 s per request.
            thread::sleep(Duration::from_millis(100));
            tiny_http::Response::from_string("x = 1\n").boxed()
        });
        let tight = FetchLimits {
            total_timeout: Duration::from_millis(500),
            max_files: 100,
            ..limits()
        };

        let (dest, result) = fetch_http(&format!("{}/store", store.base), &tight);

        let shown = result.unwrap_err().to_string();
        assert!(
            shown.ends_with(
                "the program's files took longer than 0.5 s in all (repository.total_timeout_sec)"
            ),
            "{shown}"
        );
        assert!(is_empty(dest.path()));
    }

    #[test]
    fn sums_given_for_the_stored_credentials_file_are_passed_over() {
        let store = store();
        fs::write(store.path().join("apps/.arena_mqtt_auth"), b"{}").unwrap();
        let prog = sha256_of(b"print('hi')\n");
        let auth = sha256_of(b"{}");
        fs::write(
            store.path().join("apps/SHA256SUMS"),
            format!("{prog}  prog.py\n{auth}  .arena_mqtt_auth\n"),
        )
        .unwrap();
        let mut sums = no_sums();
        sums.insert(".arena_mqtt_auth".to_string(), auth);

        let (dest, result) = fetch_file_store(store.path(), "apps/prog.py", &limits(), &sums);

        assert_eq!(result.unwrap().files, 5, "4 files and SHA256SUMS");
        assert!(!dest.path().join(".arena_mqtt_auth").exists());
    }

    #[test]
    fn a_stored_credentials_file_or_folder_is_skipped_for_the_runtime_s_own() {
        let store = store();
        fs::create_dir(store.path().join("apps/.arena_mqtt_auth")).unwrap();
        fs::write(store.path().join("apps/.arena_mqtt_auth/x"), b"x").unwrap();
        fs::write(store.path().join("apps/lib/.arena_mqtt_auth"), b"kept").unwrap();

        let (dest, result) = fetch_apps_prog(store.path(), &never);
        assert_eq!(result.unwrap().files, 5);
        assert!(!dest.path().join(".arena_mqtt_auth").exists());
        assert!(dest.path().join("lib/.arena_mqtt_auth").is_file());
        write_mqtt_auth(dest.path(), Some("u"), Some("t")).unwrap();
        assert!(dest.path().join(".arena_mqtt_auth").is_file());

        let root = tempfile::tempdir().unwrap();
        fs::rename(store.path(), root.path().join("store")).unwrap();
        fs::remove_dir_all(root.path().join("store/apps/.arena_mqtt_auth")).unwrap();
        fs::write(root.path().join("store/apps/.arena_mqtt_auth"), b"{}").unwrap();
        let server = IndexServer::start(root.path(), &[]);
        let (dest, result) = fetch_http(&server.url, &limits());
        assert_eq!(result.unwrap().files, 5);
        assert!(!dest.path().join(".arena_mqtt_auth").exists());
    }

    #[test]
    fn python_http_server_folder_is_fetched() {
        use std::io::BufRead;
        use std::process::{Command, Stdio};

        let store = store();
        fs::write(store.path().join("apps/été & co.py"), b"# accents\n").unwrap();
        let mut child = match Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
            .current_dir(store.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(err) => panic!("python3 is needed for this test: {err}"),
        };
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        io::BufReader::new(stdout).read_line(&mut line).unwrap();
        // "Serving HTTP on 127.0.0.1 port 43125 (http://127.0.0.1:43125/) ..."
        let port = line
            .split_whitespace()
            .nth(5)
            .unwrap_or_default()
            .to_string();

        let (dest, result) = fetch_http(&format!("http://127.0.0.1:{port}/"), &limits());
        let _ = child.kill();
        let _ = child.wait();

        assert_eq!(result.unwrap().files, 5, "{line}");
        assert_eq!(
            fs::read(dest.path().join("été & co.py")).unwrap(),
            b"# accents\n"
        );
        assert!(dest.path().join("lib/data/table.csv").is_file());
    }
}
