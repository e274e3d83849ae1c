//! One container module's thread: fetch the program folder into the work folder,
//! create the container, start it attached to piped stdio (so that no early output
//! is lost), report `Started` once the engine says it runs, bridge stdin and output,
//! report how it ended, and remove the container and the work folder however the
//! thread ends.
//!
//! Not for: engine command lines (`cli.rs`) or engine-wide chores (`chores.rs`).

use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::cli::{ContainerSpec, ContainerState, EngineError};
use super::cli::{LABEL_MODULE, LABEL_MODULE_NAME, LABEL_RUNTIME};
use super::{container_name, kernel, lock, Sampled, Shared};
use crate::launcher::work_dir::WorkDir;
use crate::launcher::{
    guard_module_thread, module_time_limit, LaunchContext, ModuleEvent, StopFlag,
};
use crate::outbox::{ModuleOutput, OutputWriter};
use crate::program_files;
use crate::protocol::ModuleRequest;
use crate::stats::ModuleStats;

/// Stderr kept back until the container is known to run: what the engine's command
/// line prints when a start fails, which becomes the error reply instead of output.
const HELD_STDERR_BYTES: usize = 64 * 1024;
/// Longest pause between two looks at a starting container.
const START_POLL_MAX: Duration = Duration::from_millis(100);
/// What `start --attach` exits with when the error is the engine's own (docker's
/// "error waiting for container" once the daemon is gone; podman alike), not the
/// program's: no exit code to report.
const ENGINE_OWN_EXIT_CODE: i32 = 125;
/// How often a running module's thread looks at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(200);

/// The body of a module thread: never panics outward, always sends either `Failed`
/// or `Started` then `Exited`.
pub(super) fn run(shared: &Arc<Shared>, context: LaunchContext) {
    let uuid = context.request.uuid.clone();
    let events = context.events.clone();
    guard_module_thread(
        &uuid,
        &events,
        |started| run_module(shared, context, started),
        || {
            lock(&shared.running).remove(&uuid);
            shared.remove_ours(&container_name(&uuid), "");
        },
    );
}

fn run_module(shared: &Arc<Shared>, context: LaunchContext, started: &AtomicBool) {
    let LaunchContext {
        request,
        work_dir,
        output,
        stdin,
        events,
        stop,
        stats,
    } = context;
    let uuid = request.uuid.clone();
    let fail = |error: String| {
        log::debug!(
            "module '{uuid}' ('{}') failed to start: {error}",
            request.name
        );
        let _ = events.send(ModuleEvent::Failed {
            uuid: uuid.clone(),
            error,
        });
    };

    // Checked before any file is fetched: the engine would refuse the name only at
    // `create`.
    if let Some(bad) = uuid
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !"_.-".contains(*c))
    {
        return fail(format!(
            "module uuid '{}' cannot name a container: it holds '{}', and container \
             names take only letters, digits, '_', '.' and '-'",
            crate::protocol::printable(&uuid),
            crate::protocol::printable(&bad.to_string())
        ));
    }

    let work = match WorkDir::create(&work_dir) {
        Ok(work) => work,
        Err(err) => {
            let shown = work_dir.display();
            return fail(format!("cannot create module folder '{shown}': {err}"));
        }
    };
    // The work folder goes before the event: once the supervisor hears of the end, a
    // create of the same uuid may make the folder afresh, which ours must not remove.
    let program = match prepare_files(shared, &request, work.path(), &stop) {
        Ok(program) => program,
        Err(_) if stop.is_raised() => {
            drop(work);
            return fail("deleted before it started".into());
        }
        Err(error) => {
            drop(work);
            return fail(error);
        }
    };
    if stop.is_raised() {
        drop(work);
        return fail("deleted before it started".into());
    }

    let container = container_name(&uuid);
    let spec = container_spec(shared, &request, &container, work.path(), &program);
    let no_sweep_meanwhile = shared.hold_off_sweep();
    if shared.closing.load(Ordering::SeqCst) {
        drop(no_sweep_meanwhile);
        drop(work);
        return fail("the runtime is shutting down".into());
    }
    let created = create(shared, &spec);
    if let Ok(id) = &created {
        shared.claim(&container, id);
    }
    drop(no_sweep_meanwhile);
    let id = match created {
        Ok(id) => id,
        Err(err) => {
            // A create that timed out may still have made the container, even after
            // this removal: a sweep for containers of ours that no module owns follows.
            if matches!(err, EngineError::TimedOut { .. }) {
                shared.remove_container(&container);
                shared.owe_sweep();
            }
            drop(work);
            return fail(err.to_string());
        }
    };

    let module = RunningModule {
        shared,
        request: &request,
        container: &container,
        stop: &stop,
        stats: &stats,
    };
    let ending = module.start_and_wait(&output, stdin, &events, started);
    lock(&shared.running).remove(&uuid);
    shared.remove_ours(&container, &id);
    drop(work);

    match ending {
        Ending::NeverStarted(error) => fail(error),
        Ending::Exited { code, reason } => {
            log::debug!("module '{uuid}' ('{}') ended: {reason}", request.name);
            let _ = events.send(ModuleEvent::Exited { uuid, code, reason });
        }
    }
}

/// Fetch the program folder and write the MQTT credentials file; returns the
/// program's file name inside the work folder.
fn prepare_files(
    shared: &Shared,
    request: &ModuleRequest,
    work_dir: &Path,
    stop: &StopFlag,
) -> Result<String, String> {
    let options = &shared.options;
    let fetched = program_files::fetch_program_folder(
        &options.store,
        &request.location,
        &request.file,
        work_dir,
        &options.fetch,
        &request.sha256,
        &|| stop.is_raised(),
    )
    .map_err(|err| err.to_string())?;
    program_files::write_mqtt_auth(
        work_dir,
        options.mqtt_username.as_deref(),
        options.mqtt_password.as_deref(),
    )
    .map_err(|err| err.to_string())?;
    Ok(fetched.program.to_string_lossy().into_owned())
}

fn container_spec(
    shared: &Shared,
    request: &ModuleRequest,
    container: &str,
    work_dir: &Path,
    program: &str,
) -> ContainerSpec {
    let options = &shared.options;
    let settings = &options.settings;
    let mut env: Vec<String> = request
        .env
        .iter()
        .filter(|(key, _)| key != "PROGRAM_OBJECT_ID")
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    env.push(format!("PROGRAM_OBJECT_ID={}", request.uuid));
    // `-x.py` would read as an option to the entrypoint's `python3`.
    let program = if program.starts_with('-') {
        format!("./{program}")
    } else {
        program.to_string()
    };
    let mut command = vec![options.cmd.clone(), program];
    command.extend(request.argv.iter().cloned());

    ContainerSpec {
        name: container.to_string(),
        image: settings.image.clone(),
        mount_source: work_dir.to_path_buf(),
        workdir: settings.workdir.clone(),
        env,
        labels: vec![
            (LABEL_RUNTIME.into(), options.runtime_uuid.clone()),
            (LABEL_MODULE.into(), request.uuid.clone()),
            (LABEL_MODULE_NAME.into(), request.name.clone()),
        ],
        command,
        pull: settings.pull.clone(),
        cpu_shares: settings.cpu_shares,
        memory: settings.memory.clone(),
        pids_limit: settings.pids_limit,
        init: settings.init,
        network: settings.network.clone(),
        extra_args: settings.extra_args.clone(),
    }
}

/// Create the container (the caller keeps sweeps and shutdown away meanwhile, which
/// must never miss it). A container of the same name left by a failed removal is
/// removed and the create tried once more.
/// Returns the container's id.
fn create(shared: &Shared, spec: &ContainerSpec) -> Result<String, EngineError> {
    match shared.engine.create(spec) {
        Err(EngineError::Failed { message, .. })
            if message.contains("already in use") && is_ours(shared, &spec.name) =>
        {
            log::warn!(
                "removing stale container '{}' before creating it",
                spec.name
            );
            shared.remove_container(&spec.name);
            shared.engine.create(spec)
        }
        other => other,
    }
}

/// Whether container `name` carries this runtime's label: containers of others (a
/// second runtime on the same engine) are never removed.
fn is_ours(shared: &Shared, name: &str) -> bool {
    let runtime = &shared.options.runtime_uuid;
    match shared.engine.list_labelled(LABEL_RUNTIME, runtime) {
        Ok(found) => found.iter().any(|container| container.name == name),
        Err(err) => {
            log::warn!("cannot tell whether container '{name}' is this runtime's: {err}");
            false
        }
    }
}

/// How a module that had a container ended.
enum Ending {
    /// The container never ran; the text says why.
    NeverStarted(String),
    Exited {
        code: Option<i32>,
        reason: String,
    },
}

/// A created container and what its module thread needs to run it.
struct RunningModule<'a> {
    shared: &'a Shared,
    request: &'a ModuleRequest,
    container: &'a str,
    stop: &'a StopFlag,
    stats: &'a Arc<ModuleStats>,
}

impl RunningModule<'_> {
    fn start_and_wait(
        &self,
        output: &ModuleOutput,
        stdin: Receiver<Vec<u8>>,
        events: &Sender<ModuleEvent>,
        started: &AtomicBool,
    ) -> Ending {
        if self.stop.is_raised() {
            return Ending::NeverStarted("deleted before it started".into());
        }
        let mut child = match self
            .shared
            .engine
            .attach_start_command(self.container)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(err) => {
                let binary = self.shared.engine.binary();
                return Ending::NeverStarted(format!("cannot run '{binary}': {err}"));
            }
        };
        let held = Arc::new(HeldStderr::default());
        let pipes = Pipes::attach(&mut child, output, stdin, &held);
        let (done, attach) = match wait_in_background(child) {
            Ok(waiting) => waiting,
            Err(err) => {
                pipes.finish();
                return Ending::NeverStarted(format!(
                    "cannot start a thread to wait for it: {err}"
                ));
            }
        };

        let (state, status) = self.wait_for_start(&done);
        let engine_said_why = state.as_ref().is_some_and(|state| !state.error.is_empty());
        let Some(state) = state.filter(|state| state.started) else {
            let status = match status {
                Some(status) => Some(status),
                // The engine said why: its start command is about to print it and end.
                None if engine_said_why => end_within(&done, &attach, self.shared.engine_timeout()),
                None => end_within(&done, &attach, Duration::ZERO),
            };
            pipes.finish();
            return Ending::NeverStarted(start_failure(self.container, &held, status));
        };

        held.release(&output.stderr());
        started.store(true, Ordering::SeqCst);
        self.stats.polled.store(true, Ordering::Relaxed);
        let pid = state.pid.filter(|pid| *pid > 0);
        lock(&self.shared.running).insert(
            self.request.uuid.clone(),
            Sampled {
                container: self.container.to_string(),
                stats: self.stats.clone(),
                pid,
                cpu_usage: pid.and_then(kernel::CpuUsage::of_process),
                cpu_counted_ns: 0,
                last_sample: Instant::now(),
            },
        );
        let _ = events.send(ModuleEvent::Started {
            uuid: self.request.uuid.clone(),
        });
        if self.stop.is_raised() {
            self.shared.stop_container(self.container);
        }

        let (status, timed_out) = match status {
            Some(status) => (Some(status), None),
            None => self.wait_within_time_limit(&done, &attach),
        };
        pipes.finish();
        match (self.ending(status), timed_out) {
            (Ending::Exited { code, .. }, Some(limit)) => Ending::Exited {
                code,
                reason: format!("time limit of {} s reached", limit.as_secs_f64()),
            },
            (ending, _) => ending,
        }
    }

    /// Wait for the container to end; past the request's time limit, stop it. Once the
    /// module is being stopped and the stop had its time, an attached start that still
    /// has not ended (a hung engine command line) is killed. Returns the start
    /// command's status and the limit when it was reached.
    fn wait_within_time_limit(
        &self,
        done: &Receiver<io::Result<ExitStatus>>,
        attach: &AttachKiller,
    ) -> (Option<io::Result<ExitStatus>>, Option<Duration>) {
        let mut limit =
            module_time_limit(self.request).map(|limit| (limit, Instant::now() + limit));
        let mut reached = None;
        let mut give_up_at: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if give_up_at.is_none() && (self.stop.is_raised() || reached.is_some()) {
                give_up_at = Some(now + self.shared.stop_timeout() + self.shared.engine_timeout());
            }
            let mut next = now + STOP_POLL;
            for at in [limit.map(|(_, at)| at), give_up_at].into_iter().flatten() {
                next = next.min(at);
            }
            match done.recv_deadline(next) {
                Ok(status) => return (Some(status), reached),
                Err(RecvTimeoutError::Disconnected) => return (None, reached),
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            if let Some((duration, _)) = limit.filter(|(_, at)| now >= *at) {
                log::info!(
                    "module '{}' ('{}') reached its time limit of {} s, stopping it",
                    self.request.uuid,
                    self.request.name,
                    duration.as_secs_f64()
                );
                limit = None;
                reached = Some(duration);
                self.shared.stop_container(self.container);
            }
            if give_up_at.is_some_and(|at| now >= at) {
                log::warn!(
                    "the engine's start command of container '{}' did not end after the \
                     stop, killing it",
                    self.container
                );
                attach.kill();
                return (done.recv().ok(), reached);
            }
        }
    }

    /// Look at the container until the engine says it started, the start command
    /// ended, or the engine timeout passed. Returns the last state seen and the
    /// start command's status if it ended.
    fn wait_for_start(
        &self,
        done: &Receiver<io::Result<ExitStatus>>,
    ) -> (Option<ContainerState>, Option<io::Result<ExitStatus>>) {
        let deadline = Instant::now() + self.shared.engine_timeout();
        let mut pause = Duration::from_millis(5);
        let mut status = None;
        loop {
            let state = self.shared.engine.inspect(self.container).ok();
            let settled = state
                .as_ref()
                .is_some_and(|state| state.started || !state.error.is_empty());
            if settled || status.is_some() || Instant::now() >= deadline {
                return (state, status);
            }
            if let Ok(ended) = done.recv_timeout(pause) {
                status = Some(ended);
            }
            pause = (pause * 2).min(START_POLL_MAX);
        }
    }

    /// Exit code and reason, from the engine when it still answers.
    fn ending(&self, status: Option<io::Result<ExitStatus>>) -> Ending {
        let stopped = self.stop.is_raised();
        match self.shared.engine.inspect(self.container) {
            Ok(state) => {
                let code = state.exit_code;
                let reason = match (stopped, state.oom_killed, code) {
                    (true, _, _) => "stopped".to_string(),
                    (false, true, _) => "killed: out of memory".to_string(),
                    (false, false, Some(code)) => format!("exited with code {code}"),
                    (false, false, None) => "exited".to_string(),
                };
                Ending::Exited { code, reason }
            }
            Err(err) => {
                let code = status
                    .and_then(|status| status.ok())
                    .and_then(|status| status.code())
                    .filter(|code| *code != ENGINE_OWN_EXIT_CODE);
                let reason = if stopped {
                    "stopped".to_string()
                } else {
                    format!("container engine lost: {err}")
                };
                Ending::Exited { code, reason }
            }
        }
    }
}

impl Shared {
    /// Longest a stop may take before the container is gone.
    pub(super) fn stop_timeout(&self) -> Duration {
        self.grace() + Duration::from_secs(1)
    }

    fn engine_timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.options.settings.engine_timeout_sec)
            .unwrap_or(Duration::from_secs(60))
    }
}

/// The error of a start that never ran the program: the engine's own words.
fn start_failure(
    container: &str,
    held: &HeldStderr,
    status: Option<io::Result<ExitStatus>>,
) -> String {
    let printed = held.text();
    let detail = if !printed.is_empty() {
        printed
    } else {
        match status {
            Some(Ok(status)) => format!("the engine's start command ended ({status})"),
            Some(Err(err)) => format!("the engine's start command failed: {err}"),
            None => "it did not start in time".to_string(),
        }
    };
    format!("container '{container}' could not start: {detail}")
}

/// The start command's exit status arrives on the returned channel; the killer ends
/// it when it hangs. When no thread can be had, the start command is killed and reaped.
fn wait_in_background(
    mut child: Child,
) -> io::Result<(Receiver<io::Result<ExitStatus>>, AttachKiller)> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let killer = AttachKiller {
        pid: child.id(),
        reaped: Arc::new(Mutex::new(false)),
    };
    let reaped = killer.reaped.clone();
    let spawned = thread::Builder::new()
        .name("container-wait".into())
        .spawn(move || {
            super::cli::wait_exited_without_reaping(child.id());
            let mut reaped = lock(&reaped);
            let status = child.wait();
            *reaped = true;
            drop(reaped);
            let _ = tx.send(status);
        });
    if let Err(err) = spawned {
        log::error!("cannot start a thread to wait for a container: {err}");
        // The child went with the closure, unwaited: end and reap it by its pid.
        if let Ok(pid) = libc::pid_t::try_from(killer.pid) {
            // SAFETY: plain system calls on our own child, which nothing has reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        return Err(err);
    }
    Ok((rx, killer))
}

/// Kills the engine's start command, never after it was reaped (its pid could then
/// be another process's).
struct AttachKiller {
    pid: u32,
    reaped: Arc<Mutex<bool>>,
}

impl AttachKiller {
    fn kill(&self) {
        let reaped = lock(&self.reaped);
        if *reaped {
            return;
        }
        if let Ok(pid) = libc::pid_t::try_from(self.pid) {
            // SAFETY: a plain system call; the child is not reaped (checked under the
            // lock the reaper holds while reaping), so `pid` is still ours.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// The start command's status once it ended, waiting at most `patience`; `None` when
/// it had to be killed (its status then says nothing about the container).
fn end_within(
    done: &Receiver<io::Result<ExitStatus>>,
    attach: &AttachKiller,
    patience: Duration,
) -> Option<io::Result<ExitStatus>> {
    match done.recv_timeout(patience) {
        Ok(status) => Some(status),
        Err(RecvTimeoutError::Disconnected) => None,
        Err(RecvTimeoutError::Timeout) => {
            attach.kill();
            let _ = done.recv();
            None
        }
    }
}

/// The threads copying between the start command's pipes and MQTT.
struct Pipes {
    stdout: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<()>>,
}

impl Pipes {
    fn attach(
        child: &mut Child,
        output: &ModuleOutput,
        stdin: Receiver<Vec<u8>>,
        held: &Arc<HeldStderr>,
    ) -> Pipes {
        if let Some(pipe) = child.stdin.take() {
            spawn_named("container-stdin", move || feed_stdin(stdin, pipe));
        }
        let stdout = child
            .stdout
            .take()
            .and_then(|pipe| spawn_named("container-stdout", copy_stdout(pipe, output.stdout())));
        let stderr = child.stderr.take().and_then(|pipe| {
            let (held, writer) = (held.clone(), output.stderr());
            spawn_named("container-stderr", move || copy_stderr(pipe, &held, writer))
        });
        Pipes { stdout, stderr }
    }

    /// Wait until every byte the container wrote is in the outbox.
    fn finish(self) {
        for reader in [self.stdout, self.stderr].into_iter().flatten() {
            let _ = reader.join();
        }
    }
}

fn spawn_named(name: &str, body: impl FnOnce() + Send + 'static) -> Option<JoinHandle<()>> {
    match thread::Builder::new().name(name.into()).spawn(body) {
        Ok(handle) => Some(handle),
        Err(err) => {
            log::error!("cannot start thread '{name}': {err}");
            None
        }
    }
}

/// Stdin lines to the container until the module is stopped (the channel closes),
/// then end-of-file.
fn feed_stdin(lines: Receiver<Vec<u8>>, mut pipe: ChildStdin) {
    for line in lines {
        if pipe.write_all(&line).and_then(|()| pipe.flush()).is_err() {
            break;
        }
    }
}

fn copy_stdout(mut pipe: ChildStdout, mut writer: OutputWriter) -> impl FnOnce() + Send {
    move || {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let _ = writer.write_all(&buf[..n]);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = writer.flush();
    }
}

fn copy_stderr(mut pipe: ChildStderr, held: &HeldStderr, mut writer: OutputWriter) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => held.write(&buf[..n], &mut writer),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    if held.is_released() {
        let _ = writer.flush();
    }
}

/// Stderr held back until the container runs (see `HELD_STDERR_BYTES`).
struct HeldStderr {
    /// `None` once released: stderr then goes straight to the module's output.
    held: Mutex<Option<Vec<u8>>>,
}

impl Default for HeldStderr {
    fn default() -> Self {
        HeldStderr {
            held: Mutex::new(Some(Vec::new())),
        }
    }
}

impl HeldStderr {
    fn write(&self, data: &[u8], writer: &mut OutputWriter) {
        let mut held = lock(&self.held);
        match held.as_mut() {
            Some(buffer) if buffer.len() + data.len() <= HELD_STDERR_BYTES => {
                buffer.extend_from_slice(data);
            }
            // Engines print short errors: this much stderr is the program's own.
            Some(buffer) => {
                let _ = writer.write_all(buffer);
                let _ = writer.write_all(data);
                *held = None;
            }
            None => {
                let _ = writer.write_all(data);
            }
        }
    }

    /// The container runs: what was held is the program's and goes out.
    fn release(&self, writer: &OutputWriter) {
        let mut held = lock(&self.held);
        if let Some(buffer) = held.take() {
            let mut writer = writer.clone();
            let _ = writer.write_all(&buffer);
        }
    }

    fn is_released(&self) -> bool {
        lock(&self.held).is_none()
    }

    /// What was held, as one trimmed line of text.
    fn text(&self) -> String {
        let held = lock(&self.held);
        let text = String::from_utf8_lossy(held.as_deref().unwrap_or_default());
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        crate::protocol::printable(&text)
    }
}
