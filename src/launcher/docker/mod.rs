//! Container launcher: runs `PY` modules in containers through the engine's command
//! line, one thread per module (`module.rs`), plus the engine-wide chores: one stats
//! poll for all modules at a time, removal of containers whose removal failed, and
//! the sweep of containers left by a crashed run (`chores.rs`).
//!
//! Not for: command lines and parsing engine output (`cli.rs`), or replies to the
//! orchestrator (the supervisor builds them from the events).

mod chores;
pub mod cli;
mod kernel;
mod module;

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::{LaunchContext, Launcher};
use crate::config::ContainerSettings;
use crate::program_files::{FetchLimits, Store};
use crate::stats::ModuleStats;

use cli::Engine;

/// Prefix of the names of the containers this runtime starts.
pub const CONTAINER_PREFIX: &str = "sideload-";

/// What the container launcher is built from.
pub struct ContainerOptions {
    pub settings: ContainerSettings,
    /// The command run in the container before the program's file name.
    pub cmd: String,
    /// Labels every container; the sweep at start-up looks for it.
    pub runtime_uuid: String,
    pub store: Store,
    pub fetch: FetchLimits,
    /// MQTT credentials written to `.arena_mqtt_auth` for the program.
    pub mqtt_username: Option<String>,
    pub mqtt_password: Option<String>,
    /// How often one `stats` call samples every running container.
    pub stats_interval: Duration,
}

/// Runs Python modules in containers (`filetype` `PY`).
pub struct ContainerLauncher {
    shared: Arc<Shared>,
    /// Dropping it ends the chores thread.
    _chores: Sender<()>,
}

/// What module threads, the chores thread and the launcher share.
struct Shared {
    engine: Engine,
    options: ContainerOptions,
    /// Running containers, by module uuid, for the stats poll.
    running: Mutex<HashMap<String, Sampled>>,
    /// Containers whose removal failed (engine down), by id where known; retried by
    /// the chores thread.
    leftovers: Mutex<BTreeSet<String>>,
    /// Ids of the containers this run created and its module threads have not removed
    /// yet, by name: a sweep of a crashed run's containers never touches them, and
    /// stops and removals go by id, so that they never reach a later container of
    /// the same name.
    ours: Mutex<HashMap<String, String>>,
    /// Written while sweeping containers of a crashed run, read by every create, so
    /// that a sweep never removes a container this run created. `true` while a sweep
    /// is still owed (the engine could not be asked yet).
    sweep: RwLock<bool>,
    /// A sweep asked for after a create that timed out (see `owe_sweep`).
    sweep_wanted: AtomicBool,
    /// The keepalive interval the orchestrator asked for, if it did.
    keepalive_interval: Mutex<Option<Duration>>,
    /// Set by `shutdown` (under the sweep lock): no container is created any more.
    closing: AtomicBool,
}

/// A running container as the stats poll sees it.
struct Sampled {
    container: String,
    stats: Arc<ModuleStats>,
    /// Host pid of the container's first process (for network counters).
    pid: Option<u32>,
    /// Where its cgroup's CPU time is read, when the host shows it.
    cpu_usage: Option<kernel::CpuUsage>,
    /// The cgroup CPU time already added to `stats`.
    cpu_counted_ns: u64,
    /// When CPU time was last added to `stats`.
    last_sample: Instant,
}

impl ContainerLauncher {
    /// A launcher for `options`, with its chores thread started and the sweep of
    /// containers left by an earlier run of this runtime owed (see `sweep_orphans`).
    pub fn new(options: ContainerOptions) -> io::Result<Self> {
        let timeout = Duration::try_from_secs_f64(options.settings.engine_timeout_sec)
            .unwrap_or(Duration::from_secs(60));
        let engine = Engine::new(options.settings.engine.clone(), timeout);
        let shared = Arc::new(Shared {
            engine,
            options,
            running: Mutex::new(HashMap::new()),
            leftovers: Mutex::new(BTreeSet::new()),
            ours: Mutex::new(HashMap::new()),
            sweep: RwLock::new(true),
            keepalive_interval: Mutex::new(None),
            sweep_wanted: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        });
        let (chores_tx, chores_rx) = crossbeam_channel::bounded(0);
        let for_chores = shared.clone();
        thread::Builder::new()
            .name("container-chores".into())
            .spawn(move || chores::run(&for_chores, &chores_rx))?;
        Ok(ContainerLauncher {
            shared,
            _chores: chores_tx,
        })
    }

    /// Remove the containers labelled with this runtime's uuid: leftovers of a run
    /// that crashed. When the engine cannot be asked, the sweep stays owed and runs
    /// before the next create. Returns how many containers were removed.
    pub fn sweep_orphans(&self) -> usize {
        self.shared.sweep_if_owed(Wait::Yes)
    }
}

impl Launcher for ContainerLauncher {
    fn launch(&self, context: LaunchContext) -> io::Result<JoinHandle<()>> {
        let short_uuid: String = context.request.uuid.chars().take(8).collect();
        let shared = self.shared.clone();
        thread::Builder::new()
            .name(format!("module-{short_uuid}"))
            .spawn(move || module::run(&shared, context))
    }

    fn stop(&self, uuid: &str) {
        let shared = self.shared.clone();
        let container = container_name(uuid);
        let spawned = thread::Builder::new()
            .name("container-stop".into())
            .spawn(move || shared.stop_container(&container));
        if let Err(err) = spawned {
            log::error!("cannot start a thread to stop module '{uuid}': {err}");
        }
    }

    fn keepalive_interval(&self, interval: Duration) {
        *lock(&self.shared.keepalive_interval) = Some(interval);
    }

    fn stop_timeout(&self) -> Duration {
        self.shared.stop_timeout()
    }

    /// Removes every container of this runtime, those still being created or started
    /// included: creates under way are waited for, later ones refused.
    fn shutdown(&self) {
        let mut no_creates = self
            .shared
            .sweep
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.shared.closing.store(true, Ordering::SeqCst);
        let runtime = &self.shared.options.runtime_uuid;
        let mut containers: Vec<String> = lock(&self.shared.running)
            .values()
            .map(|sampled| sampled.container.clone())
            .collect();
        match self
            .shared
            .engine
            .list_labelled(cli::LABEL_RUNTIME, runtime)
        {
            Ok(found) => {
                // Whatever a sweep still owed would have found goes now.
                *no_creates = false;
                containers = found.into_iter().map(|found| found.id).collect();
            }
            Err(err) => log::warn!("cannot list the containers of this runtime: {err}"),
        }
        for container in containers {
            self.shared.remove_container(&container);
        }
        drop(no_creates);
        self.shared.remove_leftovers(Wait::Yes);
    }
}

impl Shared {
    fn grace(&self) -> Duration {
        Duration::try_from_secs_f64(self.options.settings.stop_grace_sec).unwrap_or_default()
    }

    /// SIGTERM, then SIGKILL after the grace period. The module thread removes the
    /// container once it has ended. A container not created yet (or already
    /// removed) has nothing to stop: its module thread sees the stop flag.
    fn stop_container(&self, container: &str) {
        let Some(id) = lock(&self.ours).get(container).cloned() else {
            log::debug!("container '{container}' is not there to stop");
            return;
        };
        if let Err(err) = self.engine.stop(&id, self.grace()) {
            log::warn!("cannot stop container '{container}': {err}; removing it");
            self.remove_container(&id);
        }
    }

    /// Remove a container in any state; remember it for later when the engine fails.
    fn remove_container(&self, container: &str) {
        match self.engine.remove(container) {
            Ok(()) => {
                lock(&self.leftovers).remove(container);
            }
            Err(err) => {
                log::warn!("cannot remove container '{container}' now, will retry: {err}");
                lock(&self.leftovers).insert(container.to_string());
            }
        }
    }

    /// Holds creates off (see `sweep`), waiting for those under way or, with
    /// `Wait::No`, giving up (`None`) while one is: the chores thread must not stall
    /// stats for every module behind one slow create.
    fn sweep_lock(&self, wait: Wait) -> Option<RwLockWriteGuard<'_, bool>> {
        match wait {
            Wait::Yes => Some(
                self.sweep
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            ),
            Wait::No => match self.sweep.try_write() {
                Ok(guard) => Some(guard),
                Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            },
        }
    }

    /// Retries failed removals. Creates wait meanwhile, so that a leftover known by
    /// name only is never a container created since under the same name.
    fn remove_leftovers(&self, wait: Wait) {
        let Some(_no_creates) = self.sweep_lock(wait) else {
            return;
        };
        let leftovers: Vec<String> = lock(&self.leftovers).iter().cloned().collect();
        for container in leftovers {
            if lock(&self.ours).contains_key(&container) {
                lock(&self.leftovers).remove(&container);
                continue;
            }
            if self.engine.remove(&container).is_ok() {
                log::info!("removed container '{container}' left by a failed removal");
                lock(&self.leftovers).remove(&container);
            }
        }
    }

    /// Have the chores thread look for containers labelled with this runtime that no
    /// module owns (after a create the engine may have finished after giving up).
    /// Never waits: the module thread that asks must report its failure at once.
    fn owe_sweep(&self) {
        self.sweep_wanted.store(true, Ordering::SeqCst);
    }

    /// Between two stats samples: the configured interval, or the orchestrator's
    /// keepalive interval when that is shorter (never under a second).
    fn stats_interval(&self) -> Duration {
        let configured = self.options.stats_interval;
        match *lock(&self.keepalive_interval) {
            Some(asked) => configured.min(asked.max(Duration::from_secs(1))),
            None => configured,
        }
    }

    /// Run the sweep when it is still owed; see `ContainerLauncher::sweep_orphans`.
    fn sweep_if_owed(&self, wait: Wait) -> usize {
        let Some(mut owed) = self.sweep_lock(wait) else {
            return 0;
        };
        let wanted = self.sweep_wanted.swap(false, Ordering::SeqCst);
        if !*owed && !wanted {
            return 0;
        }
        let runtime = &self.options.runtime_uuid;
        let found = match self.engine.list_labelled(cli::LABEL_RUNTIME, runtime) {
            Ok(found) => found,
            Err(err) => {
                log::warn!("cannot look for containers left by an earlier run: {err}");
                if wanted {
                    self.sweep_wanted.store(true, Ordering::SeqCst);
                }
                return 0;
            }
        };
        let mut removed = 0;
        for container in found {
            if lock(&self.ours).contains_key(&container.name) {
                continue;
            }
            let module = container.module.as_deref().unwrap_or("unknown");
            log::warn!(
                "removing container '{}' of module '{module}' ({}): no module of this run \
                 owns it (left by an earlier run, or made by a create given up on)",
                container.name,
                container.status
            );
            match self.engine.remove(&container.id) {
                Ok(()) => removed += 1,
                Err(err) => {
                    // By id: a later container of the same name must never go instead.
                    log::warn!(
                        "cannot remove container '{}' now, will retry: {err}",
                        container.name
                    );
                    lock(&self.leftovers).insert(container.id);
                }
            }
        }
        *owed = false;
        removed
    }

    /// Note a container this run just created (under the sweep's read lock, so that
    /// no sweep runs in between): sweeps leave it alone, and a removal of an earlier
    /// container of the same name that failed is not retried any more, as it would
    /// remove this one.
    fn claim(&self, container: &str, id: &str) {
        let id = if id.is_empty() { container } else { id };
        lock(&self.ours).insert(container.to_string(), id.to_string());
        lock(&self.leftovers).remove(container);
    }

    /// Remove a container this run created, by `id` (its name once the module is
    /// over may be another container's), and forget it.
    fn remove_ours(&self, container: &str, id: &str) {
        lock(&self.ours).remove(container);
        self.remove_container(if id.is_empty() { container } else { id });
    }
}

impl Shared {
    /// Keeps sweeps away while a container is being created; runs one first when
    /// it is owed.
    fn hold_off_sweep(&self) -> RwLockReadGuard<'_, bool> {
        let owed = self
            .sweep
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !*owed {
            return owed;
        }
        drop(owed);
        self.sweep_if_owed(Wait::Yes);
        self.sweep
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether to wait for creates under way before a sweep or a retry of removals.
#[derive(Clone, Copy)]
enum Wait {
    Yes,
    /// Skip it this time (it stays owed) when a create is under way.
    No,
}

/// The container of a module: one per module uuid on the host.
pub fn container_name(module_uuid: &str) -> String {
    format!("{CONTAINER_PREFIX}{module_uuid}")
}

/// Locks survive a panicking holder: the data they guard stays consistent between
/// statements.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests;
