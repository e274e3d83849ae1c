//! Program files: fetching a module's program from the store (`http://`, `https://`,
//! `file://`) into its work folder, refusing names that leave either, files that are
//! too large, servers that stall and checksums that do not match. One file for
//! WebAssembly modules (`fetch_program`, here), a whole folder for Python modules
//! (`fetch_program_folder`, in `folder.rs`).
//!
//! Not for: deciding where the store is (`config`) or running the program
//! (launchers).

mod checksum;
mod folder;
mod http;
mod listing;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use http::StoreClient;

use crate::config::RepositorySettings;

pub use folder::{fetch_program_folder, write_mqtt_auth, FetchedFolder};

/// Where program files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// Base URL of an HTTP(S) store, e.g. `http://host:8000/store`.
    Http(String),
    /// A local folder (from a `file://` URL).
    File(PathBuf),
}

/// Bounds on one fetch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FetchLimits {
    /// Connecting, each read and each whole HTTP request must each finish within this.
    pub timeout: Duration,
    /// All requests of one fetch (a whole program folder) must finish within this.
    pub total_timeout: Duration,
    /// Largest program file accepted, in bytes.
    pub max_file_bytes: u64,
    /// Most files and sub-folders one program folder may hold, all levels together.
    pub max_files: usize,
    /// Most bytes one program folder may hold in all.
    pub max_total_bytes: u64,
}

impl From<&RepositorySettings> for FetchLimits {
    /// `repository.timeout_sec` and `repository.total_timeout_sec` (30 s and 300 s
    /// when not usable numbers), `repository.max_file_bytes`, `repository.max_files`
    /// and `repository.max_total_bytes`.
    fn from(settings: &RepositorySettings) -> Self {
        let seconds = |value: f64, otherwise: u64| {
            Duration::try_from_secs_f64(value)
                .ok()
                .filter(|timeout| !timeout.is_zero())
                .unwrap_or(Duration::from_secs(otherwise))
        };
        FetchLimits {
            timeout: seconds(settings.timeout_sec, 30),
            total_timeout: seconds(settings.total_timeout_sec, 300),
            max_file_bytes: settings.max_file_bytes,
            max_files: settings.max_files,
            max_total_bytes: settings.max_total_bytes,
        }
    }
}

/// Why program files could not be fetched; the text goes to the orchestrator.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("file name '{0}' leaves the program store")]
    UnsafeName(String),
    #[error("program folder '{folder}' lists '{name}', which would leave the work folder")]
    UnsafeEntry { folder: String, name: String },
    #[error("'{0}' in the program store is a link that leaves the store")]
    LinkLeavesStore(String),
    #[error("program store '{0}' is not a readable folder")]
    StoreMissing(String),
    #[error("program file '{0}' not found in the store")]
    NotFound(String),
    #[error("program folder '{0}' not found in the store")]
    FolderNotFound(String),
    #[error("fetching program folder '{0}' was given up: the module is being deleted")]
    Abandoned(String),
    #[error("program file '{0}' is not a regular file")]
    NotRegularFile(String),
    #[error("program file '{file}' is {size}, over the limit of {limit}")]
    TooLarge {
        file: String,
        size: String,
        limit: String,
    },
    #[error("program file '{file}' is over the limit of {limit}")]
    TooLargeStreamed { file: String, limit: String },
    #[error("program folder '{folder}' holds more than {limit} files and folders")]
    TooManyFiles { folder: String, limit: usize },
    #[error("program folder '{folder}' is over the limit of {limit} in all")]
    TotalTooLarge { folder: String, limit: String },
    #[error("program folder '{folder}' nests deeper than {limit} folders at '{at}'")]
    TooDeep {
        folder: String,
        at: String,
        limit: usize,
    },
    #[error("program file '{file}' has sha256 '{actual}...', but {origin} gives '{expected}...'")]
    ChecksumMismatch {
        file: String,
        actual: String,
        expected: String,
        origin: String,
    },
    #[error("{origin} gives a sha256 for '{file}', which the program folder does not hold")]
    ChecksumForMissingFile { file: String, origin: String },
    #[error("checksum list '{file}', line {line}: {reason}")]
    BadChecksumList {
        file: String,
        line: usize,
        reason: String,
    },
    #[error("cannot fetch '{url}': {reason}")]
    Http { url: String, reason: String },
    #[error("cannot read program file '{file}': {source}")]
    Read { file: String, source: io::Error },
    #[error("cannot write program file into '{dir}': {source}")]
    Write { dir: String, source: io::Error },
}

/// Fetch `location/file` from `store` into `dest_dir` and return the path of the
/// copy (`dest_dir/<last part of file>`). The copy appears only once complete, and
/// only when it matches `checksums[<last part of file>]` if the request gave one
/// (lowercase hex sha256; other names in `checksums` are not looked at).
pub fn fetch_program(
    store: &Store,
    location: &str,
    file: &str,
    dest_dir: &Path,
    limits: &FetchLimits,
    checksums: &BTreeMap<String, String>,
) -> Result<PathBuf, FetchError> {
    let (relative, file_name) = program_path(location, file)?;
    let dest = dest_dir.join(&file_name);
    let temp = dest_dir.join(format!(".{file_name}.part"));
    let shown = relative.display().to_string();

    let result = match store {
        Store::File(folder) => copy_from_folder(folder, &relative, &temp, limits),
        Store::Http(base) => download(base, &relative, &temp, limits),
    }
    .and_then(|copied| match checksums.get(&file_name) {
        Some(expected) => checksum::verify_one(&shown, &copied.sha256, expected, "the request"),
        None => Ok(()),
    })
    .and_then(|()| {
        fs::rename(&temp, &dest).map_err(|source| FetchError::Write {
            dir: dest_dir.display().to_string(),
            source,
        })
    });

    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map(|()| dest)
}

/// Checks one name from a request: relative, no `..`, no backslash, no NUL.
/// `allow_empty` admits "" (an empty location means the store's top folder).
pub fn is_safe_relative(name: &str, allow_empty: bool) -> bool {
    if name.is_empty() {
        return allow_empty;
    }
    if name.contains('\\') || name.contains('\0') || name.starts_with('/') {
        return false;
    }
    Path::new(name)
        .components()
        .all(|part| matches!(part, Component::Normal(_) | Component::CurDir))
}

/// The program's path relative to the store, and its file name.
fn program_path(location: &str, file: &str) -> Result<(PathBuf, String), FetchError> {
    let relative = store_relative_path(location, file)?;
    let file_name = relative
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .ok_or_else(|| FetchError::UnsafeName(file.to_string()))?;
    Ok((relative, file_name))
}

fn store_relative_path(location: &str, file: &str) -> Result<PathBuf, FetchError> {
    if !is_safe_relative(location, true) {
        return Err(FetchError::UnsafeName(location.to_string()));
    }
    if !is_safe_relative(file, false) || file.ends_with('/') {
        return Err(FetchError::UnsafeName(file.to_string()));
    }
    let relative: PathBuf = Path::new(location)
        .join(file)
        .components()
        .filter(|part| matches!(part, Component::Normal(_)))
        .collect();
    if relative.as_os_str().is_empty() {
        return Err(FetchError::UnsafeName(file.to_string()));
    }
    Ok(relative)
}

fn copy_from_folder(
    folder: &Path,
    relative: &Path,
    temp: &Path,
    limits: &FetchLimits,
) -> Result<Copied, FetchError> {
    let shown = relative.display().to_string();
    let root = folder
        .canonicalize()
        .map_err(|_| FetchError::StoreMissing(folder.display().to_string()))?;
    let source = match root.join(relative).canonicalize() {
        Ok(path) => path,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(FetchError::NotFound(shown));
        }
        Err(source) => {
            return Err(FetchError::Read {
                file: shown,
                source,
            })
        }
    };
    if !source.starts_with(&root) {
        return Err(FetchError::UnsafeName(shown));
    }
    copy_local_file(&root, &source, &shown, temp, limits.max_file_bytes)
}

/// Copies the regular file at `source` (never blocking on a FIFO) into `temp`.
fn copy_local_file(
    root: &Path,
    source: &Path,
    shown: &str,
    temp: &Path,
    max: u64,
) -> Result<Copied, FetchError> {
    let (input, len) = open_regular(root, source, shown)?;
    if len > max {
        return Err(too_large(shown, len, max));
    }
    copy_bounded(input, temp, max).map_err(|err| err.into_fetch_error(shown, temp, max))
}

/// Opens `source` for reading, and its size, if it is a regular file inside the
/// store's `root` (canonical) at the moment it is opened: a file swapped for a link
/// out of the store after the checks is refused. FIFOs and devices are refused
/// without blocking on them.
fn open_regular(root: &Path, source: &Path, shown: &str) -> Result<(File, u64), FetchError> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;

    let read_error = |source| FetchError::Read {
        file: shown.to_string(),
        source,
    };
    let input = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(source)
        .map_err(read_error)?;
    let opened =
        fs::read_link(format!("/proc/self/fd/{}", input.as_raw_fd())).map_err(read_error)?;
    if !opened.starts_with(root) {
        return Err(FetchError::LinkLeavesStore(shown.to_string()));
    }
    let meta = input.metadata().map_err(read_error)?;
    if !meta.is_file() {
        return Err(FetchError::NotRegularFile(shown.to_string()));
    }
    Ok((input, meta.len()))
}

fn download(
    base: &str,
    relative: &Path,
    temp: &Path,
    limits: &FetchLimits,
) -> Result<Copied, FetchError> {
    let shown = relative.display().to_string();
    let url = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        percent_encode_path(&relative.to_string_lossy())
    );
    let client = StoreClient::new(base, limits);
    let body = client.get(&url)?;
    if let Some(size) = body.content_length() {
        if size > limits.max_file_bytes {
            return Err(too_large(&shown, size, limits.max_file_bytes));
        }
    }
    copy_bounded(body.into_reader(), temp, limits.max_file_bytes).map_err(|err| match err {
        CopyError::Read(source) => client.error(&url, source.to_string()),
        other => other.into_fetch_error(&shown, temp, limits.max_file_bytes),
    })
}

/// What `copy_bounded` wrote.
struct Copied {
    bytes: u64,
    /// Lowercase hex.
    sha256: String,
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
    OverLimit,
}

impl CopyError {
    fn into_fetch_error(self, shown: &str, temp: &Path, max: u64) -> FetchError {
        match self {
            CopyError::Read(source) => FetchError::Read {
                file: shown.to_string(),
                source,
            },
            CopyError::Write(source) => FetchError::Write {
                dir: temp
                    .parent()
                    .map(|dir| dir.display().to_string())
                    .unwrap_or_default(),
                source,
            },
            CopyError::OverLimit => FetchError::TooLargeStreamed {
                file: shown.to_string(),
                limit: human_size(max),
            },
        }
    }
}

/// Copies at most `max` bytes of `input` into a new file at `temp`, hashing them.
fn copy_bounded(input: impl Read, temp: &Path, max: u64) -> Result<Copied, CopyError> {
    let mut output = File::create(temp).map_err(CopyError::Write)?;
    let mut limited = input.take(max.saturating_add(1));
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut copied: u64 = 0;
    loop {
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(CopyError::Read(source)),
        };
        copied += n as u64;
        if copied > max {
            return Err(CopyError::OverLimit);
        }
        hash.update(&buf[..n]);
        output.write_all(&buf[..n]).map_err(CopyError::Write)?;
    }
    output.sync_all().map_err(CopyError::Write)?;
    Ok(Copied {
        bytes: copied,
        sha256: checksum::hex(hash.finish().as_ref()),
    })
}

fn too_large(file: &str, size: u64, limit: u64) -> FetchError {
    FetchError::TooLarge {
        file: file.to_string(),
        size: human_size(size),
        limit: human_size(limit),
    }
}

/// `30 s`, `1.5 s`.
fn human_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds.fract() == 0.0 {
        format!("{seconds} s")
    } else {
        format!("{seconds:.1} s")
    }
}

/// `70 MB` for sizes of a megabyte and more, `1000 bytes` below.
fn human_size(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if bytes < MB {
        format!("{bytes} bytes")
    } else if bytes % MB == 0 || bytes >= 10 * MB {
        format!("{} MB", (bytes + MB / 2) / MB)
    } else {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    }
}

fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::http::without_credentials;
    use super::*;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Instant;

    fn limits(max_file_bytes: u64) -> FetchLimits {
        FetchLimits {
            timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(60),
            max_file_bytes,
            max_files: 100,
            max_total_bytes: 1024 * 1024,
        }
    }

    struct FileStore {
        store: tempfile::TempDir,
        dest: tempfile::TempDir,
    }

    fn file_store() -> FileStore {
        let store = tempfile::tempdir().unwrap();
        fs::create_dir_all(store.path().join("apps")).unwrap();
        fs::write(store.path().join("apps/hello.wasm"), b"\0asm program").unwrap();
        FileStore {
            store,
            dest: tempfile::tempdir().unwrap(),
        }
    }

    impl FileStore {
        fn fetch(&self, location: &str, file: &str, max: u64) -> Result<PathBuf, FetchError> {
            let store = Store::File(self.store.path().to_path_buf());
            fetch_program(
                &store,
                location,
                file,
                self.dest.path(),
                &limits(max),
                &BTreeMap::new(),
            )
        }

        fn dest_is_empty(&self) -> bool {
            fs::read_dir(self.dest.path()).unwrap().next().is_none()
        }
    }

    #[test]
    fn file_store_copies_the_program_into_the_work_folder() {
        let fixture = file_store();
        let path = fixture.fetch("apps", "hello.wasm", 1024).unwrap();
        assert_eq!(path, fixture.dest.path().join("hello.wasm"));
        assert_eq!(fs::read(&path).unwrap(), b"\0asm program");
    }

    #[test]
    fn file_store_accepts_a_file_path_with_folders_and_no_location() {
        let fixture = file_store();
        let path = fixture.fetch("", "apps/hello.wasm", 1024).unwrap();
        assert_eq!(path, fixture.dest.path().join("hello.wasm"));
    }

    #[test]
    fn file_store_refuses_dot_dot_absolute_backslash_and_nul_names() {
        let fixture = file_store();
        for (location, file) in [
            ("apps", "../apps/hello.wasm"),
            ("..", "hello.wasm"),
            ("", "/etc/passwd"),
            ("/etc", "passwd"),
            ("apps", "..\\hello.wasm"),
            ("apps", "hello\0.wasm"),
            ("apps", ""),
        ] {
            let err = fixture.fetch(location, file, 1024).unwrap_err();
            assert!(
                matches!(err, FetchError::UnsafeName(_)),
                "{location}/{file}: {err}"
            );
        }
        assert!(fixture.dest_is_empty());
    }

    #[test]
    fn file_store_refuses_a_symlink_leaving_the_store() {
        let fixture = file_store();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret.wasm"), b"secret").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.wasm"),
            fixture.store.path().join("apps/link.wasm"),
        )
        .unwrap();

        let err = fixture.fetch("apps", "link.wasm", 1024).unwrap_err();
        assert_eq!(
            err.to_string(),
            "file name 'apps/link.wasm' leaves the program store"
        );
        assert!(fixture.dest_is_empty());
    }

    #[test]
    fn file_swapped_for_a_link_out_of_the_store_after_the_checks_is_refused() {
        let fixture = file_store();
        let root = fixture.store.path().canonicalize().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), b"secret").unwrap();
        // As if swapped between the walk's checks and the open.
        let swapped = root.join("apps/hello.wasm");
        fs::remove_file(&swapped).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), &swapped).unwrap();

        let err = open_regular(&root, &swapped, "apps/hello.wasm").unwrap_err();

        assert_eq!(
            err.to_string(),
            "'apps/hello.wasm' in the program store is a link that leaves the store"
        );
    }

    #[test]
    fn file_store_follows_a_symlink_that_stays_inside_the_store() {
        let fixture = file_store();
        std::os::unix::fs::symlink("hello.wasm", fixture.store.path().join("apps/alias.wasm"))
            .unwrap();
        let path = fixture.fetch("apps", "alias.wasm", 1024).unwrap();
        assert_eq!(fs::read(path).unwrap(), b"\0asm program");
    }

    #[test]
    fn request_sum_of_the_program_is_checked_before_the_copy_appears() {
        let fixture = file_store();
        let store = Store::File(fixture.store.path().to_path_buf());
        let fetch = |sum: String| {
            let sums = BTreeMap::from([("hello.wasm".to_string(), sum)]);
            fetch_program(
                &store,
                "apps",
                "hello.wasm",
                fixture.dest.path(),
                &limits(1024),
                &sums,
            )
        };

        let err = fetch(checksum::sha256_of(b"other")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "program file 'apps/hello.wasm' has sha256 '{}...', but the request gives '{}...'",
                &checksum::sha256_of(b"\0asm program")[..12],
                &checksum::sha256_of(b"other")[..12]
            )
        );
        assert!(fixture.dest_is_empty());

        let path = fetch(checksum::sha256_of(b"\0asm program")).unwrap();
        assert_eq!(fs::read(path).unwrap(), b"\0asm program");
    }

    #[test]
    fn file_store_refuses_a_file_over_the_size_limit() {
        let fixture = file_store();
        let err = fixture.fetch("apps", "hello.wasm", 4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "program file 'apps/hello.wasm' is 12 bytes, over the limit of 4 bytes"
        );
        assert!(fixture.dest_is_empty());
    }

    #[test]
    fn file_store_reports_a_missing_file_and_a_folder_by_name() {
        let fixture = file_store();
        let missing = fixture.fetch("apps", "nope.wasm", 1024).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "program file 'apps/nope.wasm' not found in the store"
        );
        let folder = fixture.fetch("", "apps", 1024).unwrap_err();
        assert_eq!(
            folder.to_string(),
            "program file 'apps' is not a regular file"
        );
    }

    #[test]
    fn fetch_limits_come_from_the_repository_settings() {
        let mut settings = RepositorySettings {
            url: "file://programs".into(),
            timeout_sec: 2.5,
            total_timeout_sec: 90.0,
            max_file_bytes: 1234,
            max_files: 12,
            max_total_bytes: 5678,
        };
        let limits = FetchLimits::from(&settings);
        assert_eq!(limits.timeout, Duration::from_millis(2500));
        assert_eq!(limits.total_timeout, Duration::from_secs(90));
        assert_eq!(limits.max_file_bytes, 1234);
        assert_eq!((limits.max_files, limits.max_total_bytes), (12, 5678));

        settings.timeout_sec = -1.0;
        settings.total_timeout_sec = f64::NAN;
        let limits = FetchLimits::from(&settings);
        assert_eq!(limits.timeout, Duration::from_secs(30));
        assert_eq!(limits.total_timeout, Duration::from_secs(300));
    }

    #[test]
    fn durations_read_in_seconds() {
        assert_eq!(human_duration(Duration::from_secs(300)), "300 s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5 s");
    }

    #[test]
    fn sizes_read_in_megabytes_from_one_megabyte_up() {
        assert_eq!(human_size(70 * 1024 * 1024), "70 MB");
        assert_eq!(human_size(64 * 1024 * 1024), "64 MB");
        assert_eq!(human_size(1536 * 1024), "1.5 MB");
        assert_eq!(human_size(1000), "1000 bytes");
    }

    /// Serves requests on a local port from a thread; `answer` decides each reply.
    fn http_store(
        answer: impl Fn(tiny_http::Request) + Send + 'static,
    ) -> (Store, thread::JoinHandle<()>) {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let handle = thread::spawn(move || {
            if let Ok(request) = server.recv() {
                answer(request);
            }
        });
        (
            Store::Http(format!("http://127.0.0.1:{port}/store/")),
            handle,
        )
    }

    #[test]
    fn http_store_downloads_the_program_by_its_url() {
        let (seen_tx, seen_rx) = mpsc::channel();
        let (store, server) = http_store(move |request| {
            seen_tx.send(request.url().to_string()).unwrap();
            request
                .respond(tiny_http::Response::from_data(b"\0asm served".to_vec()))
                .unwrap();
        });
        let dest = tempfile::tempdir().unwrap();

        let path = fetch_program(
            &store,
            "apps",
            "my prog.wasm",
            dest.path(),
            &limits(1024),
            &BTreeMap::new(),
        )
        .unwrap();
        server.join().unwrap();

        assert_eq!(seen_rx.recv().unwrap(), "/store/apps/my%20prog.wasm");
        assert_eq!(path, dest.path().join("my prog.wasm"));
        assert_eq!(fs::read(path).unwrap(), b"\0asm served");
    }

    #[test]
    fn http_store_reports_a_missing_file_with_its_status() {
        let (store, server) = http_store(|request| {
            request
                .respond(tiny_http::Response::from_string("no").with_status_code(404))
                .unwrap();
        });
        let dest = tempfile::tempdir().unwrap();

        let err = fetch_program(
            &store,
            "",
            "x.wasm",
            dest.path(),
            &limits(1024),
            &BTreeMap::new(),
        )
        .unwrap_err();
        server.join().unwrap();

        let Store::Http(base) = store else {
            unreachable!()
        };
        assert_eq!(
            err.to_string(),
            format!("cannot fetch '{base}x.wasm': 404 Not Found")
        );
        assert!(fs::read_dir(dest.path()).unwrap().next().is_none());
    }

    #[test]
    fn http_store_refuses_a_body_over_the_size_limit() {
        let (store, server) = http_store(|request| {
            request
                .respond(tiny_http::Response::from_data(vec![7u8; 4096]))
                .unwrap();
        });
        let dest = tempfile::tempdir().unwrap();

        let err = fetch_program(
            &store,
            "",
            "big.wasm",
            dest.path(),
            &limits(1000),
            &BTreeMap::new(),
        )
        .unwrap_err();
        server.join().unwrap();

        assert_eq!(
            err.to_string(),
            "program file 'big.wasm' is 4096 bytes, over the limit of 1000 bytes"
        );
        assert!(fs::read_dir(dest.path()).unwrap().next().is_none());
    }

    #[test]
    fn http_store_refuses_a_streamed_body_without_length_over_the_limit() {
        let (store, server) = http_store(|request| {
            let body = io::Cursor::new(vec![7u8; 4096]);
            let response =
                tiny_http::Response::new(tiny_http::StatusCode(200), Vec::new(), body, None, None);
            let _ = request.respond(response);
        });
        let dest = tempfile::tempdir().unwrap();

        let err = fetch_program(
            &store,
            "",
            "big.wasm",
            dest.path(),
            &limits(1000),
            &BTreeMap::new(),
        )
        .unwrap_err();
        server.join().unwrap();

        assert_eq!(
            err.to_string(),
            "program file 'big.wasm' is over the limit of 1000 bytes"
        );
    }

    #[test]
    fn http_store_gives_up_on_a_stalled_server_after_the_timeout() {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (store, server) = http_store(move |request| {
            // Hold the request unanswered until the client has given up.
            let _ = release_rx.recv();
            drop(request);
        });
        let dest = tempfile::tempdir().unwrap();
        let short = FetchLimits {
            timeout: Duration::from_millis(300),
            ..limits(1024)
        };

        let started = Instant::now();
        let err = fetch_program(
            &store,
            "",
            "slow.wasm",
            dest.path(),
            &short,
            &BTreeMap::new(),
        )
        .unwrap_err();
        let elapsed = started.elapsed();
        release_tx.send(()).unwrap();
        server.join().unwrap();

        let text = err.to_string();
        assert!(
            text.starts_with("cannot fetch 'http://127.0.0.1:"),
            "{text}"
        );
        assert!(text.contains("timeout"), "{text}");
        assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    }

    #[test]
    fn errors_never_show_the_credentials_of_the_store_url() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let store = Store::Http(format!("http://alice:s3cret@127.0.0.1:{port}/store"));
        let dest = tempfile::tempdir().unwrap();

        let err = fetch_program(
            &store,
            "",
            "x.wasm",
            dest.path(),
            &limits(1024),
            &BTreeMap::new(),
        )
        .unwrap_err();

        let shown = err.to_string();
        assert!(
            !shown.contains("s3cret") && !shown.contains("alice"),
            "{shown}"
        );
        assert!(
            shown.starts_with(&format!(
                "cannot fetch 'http://***@127.0.0.1:{port}/store/x.wasm'"
            )),
            "{shown}"
        );
        assert_eq!(without_credentials("https://h/a@b"), "https://h/a@b");
        assert_eq!(without_credentials("no scheme@x"), "no scheme@x");
    }

    #[test]
    fn http_store_reports_a_refused_connection() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let store = Store::Http(format!("http://127.0.0.1:{port}"));
        let dest = tempfile::tempdir().unwrap();
        let err = fetch_program(
            &store,
            "",
            "x.wasm",
            dest.path(),
            &limits(1024),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("cannot fetch 'http://127.0.0.1:{port}/x.wasm': ")),
            "{err}"
        );
    }
}
