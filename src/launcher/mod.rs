//! Launchers start modules: one thread per module, which fetches the program, runs it,
//! feeds it stdin, writes its output into the outbox and reports how it ended.
//!
//! Not for: protocol replies or the registry (the supervisor owns both).

pub mod docker;
pub mod wasm;
mod work_dir;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::outbox::ModuleOutput;
use crate::protocol::ModuleRequest;
use crate::stats::ModuleStats;

/// How a module's life went, reported by its thread.
#[derive(Debug, Clone, PartialEq)]
pub enum ModuleEvent {
    /// The program is running (answer the create with ok).
    Started { uuid: String },
    /// The program could not be started (answer the create with this error). No
    /// `Exited` follows.
    Failed { uuid: String, error: String },
    /// The program ended after `Started`; all its output is already in the outbox.
    /// `code` is the exit status when it had one; `reason` says why in words
    /// ("exited with code 3", "trap: unreachable", "stopped").
    Exited {
        uuid: String,
        code: Option<i32>,
        reason: String,
    },
}

/// Everything a launcher needs to run one module.
pub struct LaunchContext {
    pub request: ModuleRequest,
    /// The module's own folder, created by the launcher thread and removed when it ends.
    pub work_dir: PathBuf,
    pub output: ModuleOutput,
    /// Stdin lines from MQTT; disconnected when the module is being stopped.
    pub stdin: Receiver<Vec<u8>>,
    pub events: Sender<ModuleEvent>,
    pub stop: StopFlag,
    pub stats: Arc<ModuleStats>,
}

/// Set once, when the module must stop.
#[derive(Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Limits longer than this (a century) mean no limit: adding them to the clock could
/// overflow it.
const LONGEST_TIME_LIMIT: std::time::Duration =
    std::time::Duration::from_secs(100 * 365 * 24 * 3600);

/// How long the module may run (the request's `limit`), if it gave a usable one.
pub(crate) fn module_time_limit(request: &ModuleRequest) -> Option<std::time::Duration> {
    let seconds = request.limit_sec?;
    match std::time::Duration::try_from_secs_f64(seconds) {
        Ok(limit) if limit <= LONGEST_TIME_LIMIT => Some(limit),
        _ => {
            log::warn!(
                "module '{}' has an unusable time limit '{seconds}', running without one",
                request.uuid
            );
            None
        }
    }
}

/// Runs a module thread's `body` so that it never panics outward: after a panic the
/// supervisor still gets `Failed` (before the program started, as `body` marks in
/// `started`) or `Exited`, once `cleanup` has run.
pub(crate) fn guard_module_thread(
    uuid: &str,
    events: &Sender<ModuleEvent>,
    body: impl FnOnce(&AtomicBool),
    cleanup: impl FnOnce(),
) {
    let started = AtomicBool::new(false);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&started)));
    if outcome.is_ok() {
        return;
    }
    log::error!("module '{uuid}' thread panicked");
    cleanup();
    let uuid = uuid.to_string();
    let reason = "internal error in the runtime".to_string();
    let event = if started.load(Ordering::SeqCst) {
        ModuleEvent::Exited {
            uuid,
            code: None,
            reason,
        }
    } else {
        ModuleEvent::Failed {
            uuid,
            error: reason,
        }
    };
    let _ = events.send(event);
}

/// Starts modules of one filetype.
pub trait Launcher: Send + Sync {
    /// Spawn the module's thread and return at once; progress arrives as events.
    fn launch(&self, context: LaunchContext) -> std::io::Result<JoinHandle<()>>;

    /// Ask a running module to stop (the stop flag is already raised and stdin
    /// disconnected); must not block. Launchers whose programs notice the flag by
    /// themselves need nothing more.
    fn stop(&self, _uuid: &str) {}

    /// Longest a stop may take before the program is gone (a container's grace
    /// period, say); shutdown waits at least this long for modules to end.
    fn stop_timeout(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// The orchestrator set the keepalive interval (in its registration reply):
    /// launchers that sample stats on a clock of their own follow it.
    fn keepalive_interval(&self, _interval: std::time::Duration) {}

    /// Runtime shutdown, after the modules were asked to stop and given
    /// `stop_timeout`: remove whatever of theirs is still left (may block briefly).
    fn shutdown(&self) {}
}
