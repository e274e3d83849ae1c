//! The one wrapper around the container engine's command line (`docker`, or `podman`
//! as a drop-in): builds every command line, runs it with a time bound, and turns
//! what the engine printed into typed results and errors that name what failed.
//!
//! Not for: module life cycles (`docker/mod.rs`) or deciding when to call the engine.
//!
//! CONTRACT (lead): the signatures below are what the container launcher calls.
//! `create_args` returns a `Result` and `EngineError::InvalidSpec` exists since the
//! engine-cli work: a mount path with `:` or `,`, an env entry without `=`, or an
//! image that reads as an option is refused instead of becoming a wrong command.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod exec;
mod parse;
#[cfg(test)]
mod tests;

pub(crate) use exec::wait_exited_without_reaping;
use exec::{Finished, RunError};

/// Label naming the runtime that started a container.
pub const LABEL_RUNTIME: &str = "org.silverline.sideload.runtime";
/// Label naming the module a container runs.
pub const LABEL_MODULE: &str = "org.silverline.sideload.module";
/// Label holding the module's name (for people reading `docker ps`).
pub const LABEL_MODULE_NAME: &str = "org.silverline.sideload.module-name";

/// Why an engine command failed; the text goes to the log and to the orchestrator.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("container engine '{binary}' is not installed (not found on PATH)")]
    NotInstalled { binary: String },
    #[error("container engine '{binary}' is not reachable: {message}")]
    Unreachable { binary: String, message: String },
    #[error("image '{image}' is not available: {message}")]
    NoSuchImage { image: String, message: String },
    #[error("no container '{name}'")]
    NoSuchContainer { name: String },
    #[error("'{command}' failed: {message}")]
    Failed { command: String, message: String },
    #[error("'{command}' did not finish within {seconds} s")]
    TimedOut { command: String, seconds: u64 },
    /// The spec cannot be turned into a safe command line (nothing was run).
    #[error("container '{name}' cannot be created: {reason}")]
    InvalidSpec { name: String, reason: String },
}

/// Everything `create` needs for one module's container.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerSpec {
    /// Container name, unique on the host.
    pub name: String,
    pub image: String,
    /// Host folder mounted read-write at `workdir`, which is also the working folder.
    pub mount_source: PathBuf,
    pub workdir: String,
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    /// `(key, value)` labels.
    pub labels: Vec<(String, String)>,
    /// The command and its arguments (no shell).
    pub command: Vec<String>,
    /// `missing`, `never` or `always`.
    pub pull: String,
    pub cpu_shares: u64,
    pub memory: Option<String>,
    pub pids_limit: i64,
    /// Run a tiny init as the container's first process (`--init`), so that the
    /// program gets the default signal handling and SIGTERM stops it at once.
    pub init: bool,
    pub network: Option<String>,
    pub extra_args: Vec<String>,
}

/// What `inspect` tells about a container's state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerState {
    /// `created`, `running`, `exited`, `dead`, ...
    pub status: String,
    pub running: bool,
    /// False while the container never started (still `created`).
    pub started: bool,
    pub exit_code: Option<i32>,
    /// Host pid of the container's first process while it runs.
    pub pid: Option<u32>,
    /// The engine's error text when the start failed ("" otherwise).
    pub error: String,
    /// Killed by the kernel's OOM killer.
    pub oom_killed: bool,
}

/// One container found by label.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerSummary {
    pub id: String,
    pub name: String,
    /// The module label's value, when present.
    pub module: Option<String>,
    /// The engine's status text ("Up 3 minutes", "Exited (0) ...").
    pub status: String,
}

/// One container's line of `stats --no-stream`; byte counts are totals since start.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerStats {
    pub name: String,
    pub cpu_percent: f64,
    pub mem_bytes: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    pub blk_read_bytes: u64,
    pub blk_write_bytes: u64,
}

/// The engine's command line.
#[derive(Debug, Clone)]
pub struct Engine {
    binary: String,
    timeout: Duration,
}

impl Engine {
    /// An engine run as `binary`, each command bounded by `timeout`.
    pub fn new(binary: impl Into<String>, timeout: Duration) -> Self {
        Engine {
            binary: binary.into(),
            timeout,
        }
    }

    pub fn binary(&self) -> &str {
        &self.binary
    }

    /// A bare command for the engine binary, for the launcher's long-lived
    /// `start --attach --interactive` child (whose stdio it pipes itself).
    pub fn command(&self) -> Command {
        Command::new(&self.binary)
    }

    /// `start -a -i <name>` as a command ready to get piped stdio, in a process group
    /// of its own: the engine's command line passes the signals it gets on to the
    /// container (`docker start` has no `--sig-proxy`), and a Ctrl-C on the runtime's
    /// terminal must not reach the modules. They are stopped by `stop`, with their
    /// grace period.
    pub fn attach_start_command(&self, name: &str) -> Command {
        use std::os::unix::process::CommandExt;

        let mut command = self.command();
        command.args(["start", "--attach", "--interactive", "--", name]);
        command.process_group(0);
        command
    }

    /// Check that the engine answers (`version`); the error says what is wrong.
    pub fn ping(&self) -> Result<(), EngineError> {
        let finished = self.run("version", &["--format", "{{.Server.Version}}"])?;
        if !finished.success {
            return Err(self.failure("version", &finished, &[]));
        }
        if finished.stdout.trim().is_empty() {
            return Err(EngineError::Unreachable {
                binary: self.binary.clone(),
                message: "the engine printed no server version".into(),
            });
        }
        Ok(())
    }

    /// `create` a container from `spec`; returns its id. The error carries the
    /// engine's own message (image missing, bad option, daemon down).
    pub fn create(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        let env_file = EnvFile::write(spec)?;
        let args = create_args(spec, env_file.as_ref().map(EnvFile::path))?;
        let finished = self
            .run_args("create", &args)
            .map_err(|error| redact_error(error, &spec.env))?;
        drop(env_file);
        if !finished.success {
            let error = match self.failure("create", &finished, &spec.env) {
                EngineError::Failed { message, .. } if is_image_missing(&message) => {
                    EngineError::NoSuchImage {
                        image: spec.image.clone(),
                        message,
                    }
                }
                other => other,
            };
            return Err(error);
        }

        // The id is the last line; the engine may print pull progress before it.
        let id = finished
            .stdout
            .lines()
            .map(str::trim)
            .rfind(|line| !line.is_empty());
        match id {
            Some(id) => Ok(id.to_string()),
            None => Err(EngineError::Failed {
                command: self.command_text("create"),
                message: "the engine printed no container id".into(),
            }),
        }
    }

    /// `inspect` one container's state.
    pub fn inspect(&self, name: &str) -> Result<ContainerState, EngineError> {
        let args = [
            "--type",
            "container",
            "--format",
            "{{json .State}}",
            "--",
            name,
        ];
        let finished = self.run("inspect", &args)?;
        if !finished.success {
            return Err(match self.failure("inspect", &finished, &[]) {
                EngineError::NoSuchContainer { .. } => EngineError::NoSuchContainer {
                    name: name.to_string(),
                },
                other => other,
            });
        }
        parse::state(&finished.stdout).map_err(|message| EngineError::Failed {
            command: self.command_text("inspect"),
            message,
        })
    }

    /// `stop --time <grace>`: SIGTERM, then SIGKILL after `grace`. A container that
    /// is gone or not running is not an error.
    pub fn stop(&self, name: &str, grace: Duration) -> Result<(), EngineError> {
        let seconds = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
        // `--time` rather than `--timeout`: podman and older docker know only this
        // spelling; docker 28 accepts it with a deprecation note on stderr.
        let seconds = seconds.to_string();
        let finished = self.run("stop", &["--time", &seconds, "--", name])?;
        self.succeed_unless_present("stop", &finished)
    }

    /// `rm --force`: remove in any state (killing it if it runs). A container that
    /// is already gone is not an error.
    pub fn remove(&self, name: &str) -> Result<(), EngineError> {
        let finished = self.run("rm", &["--force", "--volumes", "--", name])?;
        if !finished.success && finished.stderr.contains("is already in progress") {
            // Another remove of the same container is under way; it will be gone.
            return Ok(());
        }
        self.succeed_unless_present("rm", &finished)
    }

    /// Every container, running or not, with label `key=value`.
    pub fn list_labelled(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let filter = format!("label={key}={value}");
        let args = [
            "--all",
            "--no-trunc",
            "--filter",
            &filter,
            "--format",
            "{{json .}}",
        ];
        let finished = self.run("ps", &args)?;
        if !finished.success {
            return Err(self.failure("ps", &finished, &[]));
        }
        let (records, unreadable) = parse::records(&finished.stdout);
        for text in unreadable {
            log::warn!("unreadable output of '{} ps': '{text}'", self.binary);
        }
        let summaries = records
            .iter()
            .filter_map(|record| {
                let summary = parse::summary(record, LABEL_MODULE);
                if summary.is_none() {
                    log::warn!(
                        "container without an id in '{} ps': '{}'",
                        self.binary,
                        parse::one_line(&record.to_string())
                    );
                }
                summary
            })
            .collect();
        Ok(summaries)
    }

    /// One `stats --no-stream` call for all `names`; containers that are gone are
    /// left out of the answer rather than failing it.
    pub fn stats(&self, names: &[String]) -> Result<Vec<ContainerStats>, EngineError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let finished = self.stats_once(names)?;
        let parsed = parse_stats_lines(&finished.stdout);
        if finished.success || !parsed.is_empty() {
            return Ok(parsed);
        }

        let mut missing = parse::missing_containers(&finished.stderr);
        if missing.is_empty() && finished.stderr.trim_end().ends_with("EOF") {
            // docker 28 ends with just "EOF" for every container when one of them goes
            // during the call; asked again, it names the one gone.
            let again = self.stats_once(names)?;
            let parsed = parse_stats_lines(&again.stdout);
            if again.success || !parsed.is_empty() {
                return Ok(parsed);
            }
            missing = parse::missing_containers(&again.stderr);
        }
        if missing.is_empty() {
            return Err(self.failure("stats", &finished, &[]));
        }
        // docker 28 prints nothing at all when one of the names is gone, so ask once
        // more for the others.
        let remaining: Vec<String> = names
            .iter()
            .filter(|name| !missing.contains(name))
            .cloned()
            .collect();
        if remaining.is_empty() || remaining.len() == names.len() {
            return Ok(Vec::new());
        }
        let finished = self.stats_once(&remaining)?;
        let parsed = parse_stats_lines(&finished.stdout);
        if finished.success
            || !parsed.is_empty()
            || !parse::missing_containers(&finished.stderr).is_empty()
        {
            return Ok(parsed);
        }
        Err(self.failure("stats", &finished, &[]))
    }

    fn stats_once(&self, names: &[String]) -> Result<Finished, EngineError> {
        let mut args: Vec<String> = ["--no-stream", "--format", "{{json .}}", "--"]
            .iter()
            .map(|arg| arg.to_string())
            .collect();
        args.extend(names.iter().cloned());
        self.run_args("stats", &args)
    }

    /// Success, or success anyway when the engine says the container is gone.
    fn succeed_unless_present(
        &self,
        subcommand: &str,
        finished: &Finished,
    ) -> Result<(), EngineError> {
        if finished.success {
            return Ok(());
        }
        match self.failure(subcommand, finished, &[]) {
            EngineError::NoSuchContainer { .. } => Ok(()),
            other => Err(other),
        }
    }

    fn run(&self, subcommand: &str, args: &[&str]) -> Result<Finished, EngineError> {
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        self.run_args(subcommand, &args)
    }

    /// The one place that runs the engine binary.
    fn run_args(&self, subcommand: &str, args: &[String]) -> Result<Finished, EngineError> {
        let mut argv = Vec::with_capacity(args.len() + 1);
        argv.push(subcommand.to_string());
        argv.extend(args.iter().cloned());

        log::debug!("running '{}'", self.command_text(subcommand));
        exec::run(&self.binary, &argv, self.timeout).map_err(|error| match error {
            RunError::NotFound => EngineError::NotInstalled {
                binary: self.binary.clone(),
            },
            RunError::TimedOut => EngineError::TimedOut {
                command: self.command_text(subcommand),
                seconds: self.timeout.as_secs() + u64::from(self.timeout.subsec_nanos() > 0),
            },
            RunError::Io(error) => EngineError::Failed {
                command: self.command_text(subcommand),
                message: format!("could not run the engine: {error}"),
            },
        })
    }

    /// What a command that exited non-zero means, from what it printed; `env` values
    /// are blanked out of the message.
    fn failure(&self, subcommand: &str, finished: &Finished, env: &[String]) -> EngineError {
        let printed = if finished.stderr.trim().is_empty() {
            &finished.stdout
        } else {
            &finished.stderr
        };
        let mut message = parse::one_line(&redact(printed, env));
        if message.is_empty() {
            message = match finished.code {
                Some(code) => format!("exit status {code} without a message"),
                None => "killed by a signal without a message".into(),
            };
        }

        if is_unreachable(&message) {
            return EngineError::Unreachable {
                binary: self.binary.clone(),
                message,
            };
        }
        let lower = message.to_lowercase();
        if lower.contains("no such container")
            || lower.contains("no such object")
            || lower.contains("no container with name or id")
        {
            let name = parse::missing_containers(printed)
                .into_iter()
                .next()
                .unwrap_or_default();
            return EngineError::NoSuchContainer { name };
        }
        EngineError::Failed {
            command: self.command_text(subcommand),
            message,
        }
    }

    /// Only the binary and the subcommand: the arguments may carry env values.
    fn command_text(&self, subcommand: &str) -> String {
        format!("{} {subcommand}", self.binary)
    }
}

/// The module's env for `create --env-file`, readable by the runtime's user only and
/// removed once `create` has run: values on the command line would be in the process
/// list for every local user to read. Entries an env file cannot carry as they are
/// (see `fits_env_file`) stay on the command line.
struct EnvFile(PathBuf);

impl EnvFile {
    /// Writes the file beside the work folder (`.<work folder>-<random>.env`, outside
    /// what the container sees), if any entry fits one.
    fn write(spec: &ContainerSpec) -> Result<Option<EnvFile>, EngineError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;

        let lines: String = spec
            .env
            .iter()
            .filter(|entry| fits_env_file(entry))
            .map(|entry| format!("{entry}\n"))
            .collect();
        if lines.is_empty() {
            return Ok(None);
        }
        let (Some(folder), Some(parent)) =
            (spec.mount_source.file_name(), spec.mount_source.parent())
        else {
            return Err(EngineError::InvalidSpec {
                name: spec.name.clone(),
                reason: format!("work folder '{}' has no name", spec.mount_source.display()),
            });
        };
        // Random, so that it is never another module's work folder (a uuid may be
        // anything a topic level can hold).
        let mut name = std::ffi::OsString::from(".");
        name.push(folder);
        name.push(format!("-{}.env", uuid::Uuid::new_v4().simple()));
        let file = EnvFile(parent.join(name));
        let failed = |error: std::io::Error| EngineError::InvalidSpec {
            name: spec.name.clone(),
            reason: format!("cannot write its env file '{}': {error}", file.0.display()),
        };
        // A leftover of a crash in the middle of a create goes with the sweep of the
        // work folders at the next start.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file.0)
            .and_then(|mut output| output.write_all(lines.as_bytes()))
            .map_err(failed)?;
        Ok(Some(file))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for EnvFile {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.0) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                log::warn!("cannot remove env file '{}': {error}", self.0.display());
            }
            _ => {}
        }
    }
}

/// Whether every engine reads `entry` from an env file exactly as from `--env`.
/// Docker and podman 4 read a line at a time (at most 64 KiB); podman 5 reads the
/// file as dotenv: quotes, `#` and blanks at either end mean something there, an
/// empty value takes podman's own variable, and odd names are dropped. What might be
/// read otherwise stays on the command line.
fn fits_env_file(entry: &str) -> bool {
    let Some((key, value)) = entry.split_once('=') else {
        return false;
    };
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        && !key.starts_with(['.', '-'])
        && !value.is_empty()
        && !value.starts_with(char::is_whitespace)
        && !value.ends_with(char::is_whitespace)
        && !value.starts_with(['\'', '"', '`'])
        && !value.contains(['#', '\n', '\r', '\0'])
        && entry.len() < 60 * 1024
}

/// The arguments of `create` for `spec` (after the binary name), without a shell.
/// With an `env_file` (written by `EnvFile::write`), the entries that fit one are
/// read from it instead of the command line. Refuses a spec that would not mean what
/// it says on the command line.
pub fn create_args(
    spec: &ContainerSpec,
    env_file: Option<&Path>,
) -> Result<Vec<String>, EngineError> {
    let invalid = |reason: String| EngineError::InvalidSpec {
        name: spec.name.clone(),
        reason,
    };
    check_not_option("container name", &spec.name).map_err(invalid)?;
    check_not_option("image", &spec.image).map_err(invalid)?;
    let mount_source = mount_source(&spec.mount_source).map_err(invalid)?;
    check_workdir(&spec.workdir).map_err(invalid)?;

    let mut args: Vec<String> = vec![
        "create".into(),
        "--interactive".into(),
        "--name".into(),
        spec.name.clone(),
    ];
    for (key, value) in &spec.labels {
        if key.is_empty() || key.contains('=') {
            return Err(invalid(format!("label key '{key}' is empty or holds '='")));
        }
        args.extend(["--label".into(), format!("{key}={value}")]);
    }
    if let Some(env_file) = env_file {
        args.extend(["--env-file".into(), env_file.display().to_string()]);
    }
    for (index, entry) in spec.env.iter().enumerate() {
        // An entry without `=` would make the engine copy the runtime's own variable.
        match entry.split_once('=') {
            Some(_) if env_file.is_some() && fits_env_file(entry) => {}
            Some((key, _)) if !key.is_empty() => {
                args.extend(["--env".into(), entry.clone()]);
            }
            _ => {
                return Err(invalid(format!(
                    "env entry {} is not of the form KEY=VALUE",
                    index + 1
                )))
            }
        }
    }
    args.extend([
        "--volume".into(),
        format!("{mount_source}:{}", spec.workdir),
        "--workdir".into(),
        spec.workdir.clone(),
    ]);
    if !spec.pull.is_empty() {
        if !["missing", "never", "always", "newer"].contains(&spec.pull.as_str()) {
            return Err(invalid(format!(
                "pull policy '{}' is not one of missing, never, always",
                spec.pull
            )));
        }
        args.extend(["--pull".into(), spec.pull.clone()]);
    }
    if spec.cpu_shares > 0 {
        args.extend(["--cpu-shares".into(), spec.cpu_shares.to_string()]);
    }
    if let Some(memory) = &spec.memory {
        check_not_option("memory", memory).map_err(invalid)?;
        args.extend(["--memory".into(), memory.clone()]);
    }
    if spec.pids_limit > 0 {
        args.extend(["--pids-limit".into(), spec.pids_limit.to_string()]);
    }
    if spec.init {
        args.push("--init".into());
    }
    if let Some(network) = &spec.network {
        check_not_option("network", network).map_err(invalid)?;
        args.extend(["--network".into(), network.clone()]);
    }
    args.extend(spec.extra_args.iter().cloned());
    args.push(spec.image.clone());
    args.extend(spec.command.iter().cloned());

    if args.iter().any(|arg| arg.contains('\0')) {
        return Err(invalid("an argument holds a NUL byte".into()));
    }
    // The subcommand is added by the runner.
    args.remove(0);
    Ok(args)
}

/// `value` must be present and must not read as an option.
fn check_not_option(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if value.starts_with('-') {
        return Err(format!("{what} '{value}' starts with '-'"));
    }
    Ok(())
}

/// The mount source as an absolute, resolved path that `--volume` reads as one path.
fn mount_source(path: &Path) -> Result<String, String> {
    let absolute = path
        .canonicalize()
        .map_err(|error| format!("mount source '{}' is not usable: {error}", path.display()))?;
    let Some(text) = absolute.to_str() else {
        return Err(format!(
            "mount source '{}' is not valid UTF-8",
            absolute.display()
        ));
    };
    if text.contains(':') || text.contains(',') {
        return Err(format!("mount source '{text}' holds ':' or ','"));
    }
    Ok(text.to_string())
}

fn check_workdir(workdir: &str) -> Result<(), String> {
    if !workdir.starts_with('/') {
        return Err(format!("workdir '{workdir}' is not an absolute path"));
    }
    if workdir.contains(':') || workdir.contains(',') {
        return Err(format!("workdir '{workdir}' holds ':' or ','"));
    }
    Ok(())
}

/// The stats records of one call; anything unreadable is left out (a container not
/// measured yet counts zeros on the next tick).
fn parse_stats_lines(stdout: &str) -> Vec<ContainerStats> {
    let (records, _unreadable) = parse::records(stdout);
    records.iter().filter_map(parse::stats).collect()
}

fn is_unreachable(message: &str) -> bool {
    let lower = message.to_lowercase();
    lower.contains("cannot connect to the docker daemon")
        || lower.contains("is the docker daemon running")
        || lower.contains("unable to connect to podman")
        || lower.contains("cannot connect to podman")
        || lower.contains("permission denied while trying to connect to the docker daemon")
        || lower.contains("error during connect")
        || (lower.contains("connection refused") && lower.contains(".sock"))
}

fn is_image_missing(message: &str) -> bool {
    let lower = message.to_lowercase();
    [
        "unable to find image",
        "no such image",
        "pull access denied",
        "repository does not exist",
        "image not known",
        "manifest unknown",
        // podman without a registry for a short name it does not have.
        "did not resolve to an alias",
        "requested access to the resource is denied",
    ]
    .iter()
    .any(|pattern| lower.contains(pattern))
}

/// `text` with every env entry, and every value long enough to be a secret, blanked.
fn redact(text: &str, env: &[String]) -> String {
    let mut text = text.to_string();
    for entry in env {
        if !entry.is_empty() {
            text = text.replace(entry.as_str(), "<env redacted>");
        }
    }
    for entry in env {
        let value = entry
            .split_once('=')
            .map_or(entry.as_str(), |(_, value)| value);
        if value.chars().count() >= REDACT_MIN_CHARS {
            text = text.replace(value, "<redacted>");
        }
    }
    text
}

/// Values shorter than this are left in messages: blanking every `1`, `on` or `test`
/// would garble the engine's words (an image tag `latest` read `la<redacted>`), and
/// values that short are not secrets worth the name.
const REDACT_MIN_CHARS: usize = 8;

fn redact_error(error: EngineError, env: &[String]) -> EngineError {
    match error {
        EngineError::Failed { command, message } => EngineError::Failed {
            command,
            message: redact(&message, env),
        },
        other => other,
    }
}
