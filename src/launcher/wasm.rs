//! WebAssembly launcher: one thread per module that fetches the program file into the
//! module's work folder, runs it as a WASI preview 1 program in `wasmi`, and reports
//! `Started`/`Failed`/`Exited`; the work folder is removed however the thread ends.
//!
//! Not for: the interpreter loop and WASI plumbing (`wasm/runner.rs`, `wasm/host.rs`),
//! or replies to the orchestrator (the supervisor builds them from the events).

mod host;
mod runner;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender};

pub use runner::{prepare, run_wasm, PreparedModule, WasmError, WasmExit, WasmRunOptions};

use super::work_dir::WorkDir;
use super::{
    guard_module_thread, module_time_limit, LaunchContext, Launcher, ModuleEvent, StopFlag,
};
use crate::config::WasmSettings;
use crate::program_files::{fetch_program, FetchLimits, Store};
use crate::protocol::ModuleRequest;
use crate::stats::ModuleStats;

/// Runs WebAssembly modules (`filetype` `WA`).
pub struct WasmLauncher {
    settings: WasmSettings,
    store: Store,
    fetch: FetchLimits,
}

impl WasmLauncher {
    /// A launcher taking programs from `store`, with `fetch` bounds and `settings`
    /// limits for every module.
    pub fn new(settings: WasmSettings, store: Store, fetch: FetchLimits) -> Self {
        WasmLauncher {
            settings,
            store,
            fetch,
        }
    }
}

impl Launcher for WasmLauncher {
    fn launch(&self, context: LaunchContext) -> io::Result<JoinHandle<()>> {
        let short_uuid: String = context.request.uuid.chars().take(8).collect();
        let LaunchContext {
            request,
            work_dir,
            output,
            stdin,
            events,
            stop,
            stats,
        } = context;
        let job = ModuleJob {
            request,
            work_dir,
            stdin,
            events,
            stop,
            stats,
            settings: self.settings.clone(),
            store: self.store.clone(),
            fetch: self.fetch,
        };
        thread::Builder::new()
            .name(format!("module-{short_uuid}"))
            .spawn(move || {
                let stdout = output.stdout();
                let stderr = output.stderr();
                run_module(job, stdout, stderr);
            })
    }
}

/// Everything one module thread owns.
struct ModuleJob {
    request: ModuleRequest,
    work_dir: PathBuf,
    stdin: Receiver<Vec<u8>>,
    events: Sender<ModuleEvent>,
    stop: StopFlag,
    stats: Arc<ModuleStats>,
    settings: WasmSettings,
    store: Store,
    fetch: FetchLimits,
}

/// The body of a module thread: never panics outward, always sends either `Failed`
/// or `Started` then `Exited`.
fn run_module(
    job: ModuleJob,
    stdout: impl Write + Send + Sync + 'static,
    stderr: impl Write + Send + Sync + 'static,
) {
    let uuid = job.request.uuid.clone();
    let events = job.events.clone();
    guard_module_thread(
        &uuid,
        &events,
        |started| start_and_run(job, stdout, stderr, started),
        || {},
    );
}

fn start_and_run(
    job: ModuleJob,
    stdout: impl Write + Send + Sync + 'static,
    stderr: impl Write + Send + Sync + 'static,
    started: &AtomicBool,
) {
    let uuid = job.request.uuid.clone();
    let name = job.request.name.clone();
    let fail = |error: String| {
        log::debug!("module '{name}' ('{uuid}') failed to start: {error}");
        let _ = job.events.send(ModuleEvent::Failed {
            uuid: uuid.clone(),
            error,
        });
    };

    let work_dir = match WorkDir::create(&job.work_dir) {
        Ok(dir) => dir,
        Err(err) => {
            return fail(format!(
                "cannot create module folder '{}': {err}",
                job.work_dir.display()
            ))
        }
    };
    let prepared = match fetch_and_prepare(&job, work_dir.path(), stdout, stderr) {
        Ok(prepared) => prepared,
        Err(error) => {
            drop(work_dir);
            return fail(error);
        }
    };

    started.store(true, Ordering::SeqCst);
    log::debug!("module '{name}' ('{uuid}') running");
    let _ = job.events.send(ModuleEvent::Started { uuid: uuid.clone() });

    let exit = prepared.run(&job.stats);
    drop(work_dir);

    log::debug!("module '{name}' ('{uuid}') ended: {exit}");
    let _ = job.events.send(ModuleEvent::Exited {
        uuid,
        code: exit.code(),
        reason: exit.reason(),
    });
}

/// Fetch the program file and compile it with the request's arguments, environment
/// and folders; the error text is what the orchestrator is told.
fn fetch_and_prepare(
    job: &ModuleJob,
    work_dir: &Path,
    stdout: impl Write + Send + Sync + 'static,
    stderr: impl Write + Send + Sync + 'static,
) -> Result<PreparedModule, String> {
    let request = &job.request;
    let program = fetch_program(
        &job.store,
        &request.location,
        &request.file,
        work_dir,
        &job.fetch,
        &request.sha256,
    )
    .map_err(|err| err.to_string())?;
    let bytes = fs::read(&program)
        .map_err(|err| format!("cannot read program file '{}': {err}", program.display()))?;

    let program_name = program
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| request.file.clone());
    let opts = WasmRunOptions {
        program_name,
        args: request.argv.clone(),
        env: request.env.clone(),
        dirs: request.dirs.clone(),
        work_dir: work_dir.to_path_buf(),
        fuel_slice: job.settings.fuel_slice,
        max_fuel: job.settings.max_fuel,
        max_memory_bytes: job.settings.max_memory_bytes,
        time_limit: module_time_limit(request),
    };
    prepare(&bytes, opts, job.stdin.clone(), stdout, stderr, &job.stop)
        .map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests;
