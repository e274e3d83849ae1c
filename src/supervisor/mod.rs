//! The supervisor: sole owner of runtime state (registration, the module registry,
//! keepalive and inactivity timers, shutdown). One thread waits on one `select!` over
//! inbound MQTT events, module events, signals and its next timer, and answers every
//! request.
//!
//! Not for: network I/O (the mqtt session), wire formats (protocol) or running
//! programs (launchers).

mod budget;
mod inactivity;
mod modules;
mod registration;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender, TrySendError};
use log::{debug, error, info, warn};
use serde_json::json;

use crate::launcher::{LaunchContext, Launcher, ModuleEvent, StopFlag};
use crate::mqtt::{MqttEvent, Session};
use crate::outbox::Outbox;
use crate::protocol::{ChildStats, FileType, Inbound, ModuleRequest, Protocol, ProtocolError};
use crate::stats::{CpuMeter, ModuleStats};

use budget::{ErrorBudget, Verdict};
use inactivity::{IdleTracker, Sample};
use modules::{Lookup, ModuleEntry, Phase, Registry};
use registration::{RegAction, Registration};

pub use inactivity::InactivitySettings;

/// Stdin messages queued per module before new ones are refused.
const STDIN_QUEUE: usize = 256;
/// How long shutdown waits for modules to end before it unregisters anyway.
const SHUTDOWN_MODULE_GRACE: Duration = Duration::from_millis(2500);
/// How long shutdown waits for the modules' output and exits to go out before it
/// unregisters.
const SHUTDOWN_EXITS_GRACE: Duration = Duration::from_millis(750);
/// How long shutdown gives the session to deliver the last messages.
const SHUTDOWN_PUBLISH_GRACE: Duration = Duration::from_millis(1500);

/// Settings the supervisor reads while running.
pub struct SupervisorSettings {
    pub runtime_name: String,
    pub reg_attempts: i64,
    pub reg_timeout: Duration,
    pub reg_fail_error: bool,
    pub max_nmodules: usize,
    pub ka_interval: Duration,
    pub apis: Vec<String>,
    /// Publish module output on MQTT (else log it).
    pub pipe_stdout: bool,
    /// Parent of the module work folders.
    pub work_root: PathBuf,
    /// When running modules count as idle, and how long before they are deleted.
    pub inactivity: InactivitySettings,
}

/// Everything the supervisor is wired to.
pub struct Parts {
    pub settings: SupervisorSettings,
    pub protocol: Protocol,
    pub outbox: Outbox,
    pub session: Session,
    pub mqtt_events: Receiver<MqttEvent>,
    pub signals: Receiver<i32>,
    pub launchers: HashMap<FileType, Arc<dyn Launcher>>,
}

pub struct Supervisor {
    settings: SupervisorSettings,
    protocol: Protocol,
    outbox: Outbox,
    session: Session,
    mqtt_events: Receiver<MqttEvent>,
    signals: Receiver<i32>,
    launchers: HashMap<FileType, Arc<dyn Launcher>>,
    module_events_tx: Sender<ModuleEvent>,
    module_events: Receiver<ModuleEvent>,
    registry: Registry,
    registration: Registration,
    /// Limits answers to bad input.
    errors: ErrorBudget,
    connected: bool,
    ka_interval: Duration,
    next_keepalive: Option<Instant>,
    /// Next inactivity check; none when inactivity deletion is off.
    next_inactivity_check: Option<Instant>,
    /// Exit code once the runtime must stop.
    exit_code: Option<i32>,
}

impl Supervisor {
    pub fn new(parts: Parts) -> Self {
        let (module_events_tx, module_events) = crossbeam_channel::unbounded();
        let registration =
            Registration::new(parts.settings.reg_attempts, parts.settings.reg_timeout);
        let ka_interval = parts.settings.ka_interval;
        let inactivity = parts.settings.inactivity;
        let next_inactivity_check = inactivity
            .is_on()
            .then(|| Instant::now() + inactivity.check_interval);
        Supervisor {
            settings: parts.settings,
            protocol: parts.protocol,
            outbox: parts.outbox,
            session: parts.session,
            mqtt_events: parts.mqtt_events,
            signals: parts.signals,
            launchers: parts.launchers,
            module_events_tx,
            module_events,
            registry: Registry::default(),
            registration,
            errors: ErrorBudget::new(Instant::now()),
            connected: false,
            ka_interval,
            next_keepalive: None,
            next_inactivity_check,
            exit_code: None,
        }
    }

    /// Run until a signal, a runtime delete or a fatal registration failure; returns
    /// the process exit code.
    pub fn run(mut self) -> i32 {
        while self.exit_code.is_none() {
            let timer = crossbeam_channel::at(self.next_deadline());
            select! {
                recv(self.mqtt_events) -> event => match event {
                    Ok(event) => self.on_mqtt_event(event),
                    Err(_) => {
                        error!("mqtt session ended unexpectedly");
                        self.exit_code = Some(1);
                    }
                },
                recv(self.module_events) -> event => {
                    if let Ok(event) = event {
                        self.on_module_event(event);
                    }
                },
                recv(self.signals) -> signal => {
                    info!("signal {} received, shutting down", signal.unwrap_or(0));
                    self.exit_code = Some(0);
                },
                recv(timer) -> _ => self.on_timer(Instant::now()),
            }
        }
        let code = self.exit_code.unwrap_or(0);
        self.shutdown();
        code
    }

    fn next_deadline(&self) -> Instant {
        let idle = Instant::now() + Duration::from_secs(3600);
        [
            self.registration.deadline(),
            self.next_keepalive,
            self.next_inactivity_check,
            self.errors.summary_due(),
        ]
        .into_iter()
        .flatten()
        .fold(idle, Instant::min)
    }

    fn on_mqtt_event(&mut self, event: MqttEvent) {
        match event {
            MqttEvent::Connected => {
                info!("connected to the broker");
                self.connected = true;
                let action = self.registration.on_connected(Instant::now());
                self.on_reg_action(action);
                if !self.registration_required() {
                    self.schedule_keepalive(Instant::now());
                }
            }
            MqttEvent::Disconnected { reason } => {
                if self.connected {
                    warn!("disconnected from the broker: {reason}");
                }
                self.connected = false;
                self.registration.on_disconnected();
                self.next_keepalive = None;
            }
            MqttEvent::Message { topic, payload } => self.on_message(&topic, &payload),
        }
    }

    /// Keepalives wait for the registration only when the runtime registers at all.
    fn registration_required(&self) -> bool {
        self.settings.reg_attempts >= 0
    }

    fn on_reg_action(&mut self, action: RegAction) {
        match action {
            RegAction::Nothing => {}
            RegAction::Send { object_id, attempt } => {
                info!(
                    "registering as '{}' (attempt {attempt})",
                    self.settings.runtime_name
                );
                self.outbox.control(self.protocol.registration(&object_id));
            }
            RegAction::Registered { ka_interval } => {
                info!("registered with the orchestrator");
                if let Some(interval) = ka_interval {
                    self.ka_interval = interval;
                    for launcher in self.launchers.values() {
                        launcher.keepalive_interval(interval);
                    }
                }
                self.schedule_keepalive(Instant::now());
            }
            RegAction::GiveUp { attempts } => {
                if self.settings.reg_fail_error {
                    error!("registration failed after {attempts} attempts, exiting");
                    self.exit_code = Some(1);
                } else {
                    warn!("registration failed after {attempts} attempts, running unregistered");
                    self.schedule_keepalive(Instant::now());
                }
            }
        }
    }

    fn schedule_keepalive(&mut self, now: Instant) {
        self.next_keepalive = Some(now + self.ka_interval);
    }

    fn on_timer(&mut self, now: Instant) {
        if let Some(count) = self.errors.take_summary(now) {
            self.report_suppressed(count);
        }

        let action = self.registration.on_timer(now);
        self.on_reg_action(action);

        if self.next_keepalive.is_some_and(|due| now >= due) {
            self.send_keepalive(now);
            self.schedule_keepalive(now);
        }

        if self.next_inactivity_check.is_some_and(|due| now >= due) {
            self.check_inactivity(now);
            self.next_inactivity_check = Some(now + self.settings.inactivity.check_interval);
        }
    }

    /// Compare every running module's counters with the previous check and delete
    /// the ones idle for the inactivity timeout, as a delete request would.
    fn check_inactivity(&mut self, now: Instant) {
        let mut expired = Vec::new();
        for entry in self.registry.entries_mut() {
            if !matches!(entry.phase, Phase::Running) {
                continue;
            }
            let verdict = entry.idle.observe(Sample::read(&entry.stats), now);
            if let inactivity::Verdict::Expired(idle) = verdict {
                expired.push((entry.request.uuid.clone(), idle));
            }
        }
        for (uuid, idle) in expired {
            self.delete_idle(&uuid, idle);
        }
    }

    /// Stop a module nobody asked to stop: its exit is reported like one of its own.
    fn delete_idle(&mut self, uuid: &str, idle: Duration) {
        let Some(entry) = self.registry.get_mut(uuid) else {
            return;
        };
        info!(
            "module '{uuid}' ('{}') idle for {:.1} s, deleting it",
            entry.request.name,
            idle.as_secs_f64()
        );
        entry.begin_stop(None);
        if let Some(launcher) = self.launchers.get(&entry.request.filetype) {
            launcher.stop(uuid);
        }
    }

    fn send_keepalive(&mut self, now: Instant) {
        let mut children = Vec::with_capacity(self.registry.len());
        for entry in self.registry.entries_mut() {
            children.push(child_stats(entry, now));
        }
        debug!("keepalive with {} modules", children.len());
        self.outbox.status(self.protocol.keepalive(&children));
    }

    fn on_message(&mut self, topic: &str, payload: &[u8]) {
        let registry = &self.registry;
        let inbound = self.protocol.parse_inbound(topic, payload, &|topic: &str| {
            registry.uuid_for_stdin_topic(topic)
        });
        match inbound {
            Inbound::Ignored => {}
            Inbound::RegistrationReply {
                object_id,
                ok,
                details,
            } => {
                if !ok && self.registration.awaits(&object_id) {
                    let details = crate::protocol::printable(&details.to_string());
                    warn!("registration refused by the orchestrator: {details}");
                }
                let action = self.registration.on_reply(&object_id, ok, &details);
                self.on_reg_action(action);
            }
            Inbound::CreateModule { object_id, request } => self.create(object_id, *request),
            Inbound::DeleteModule { object_id, target } => self.delete(object_id, &target),
            Inbound::DeleteRuntime { object_id } => {
                let object_id = crate::protocol::printable(&object_id);
                info!("runtime delete requested ('{object_id}'), shutting down");
                self.exit_code = Some(0);
            }
            Inbound::Stdin { module_uuid, data } => self.stdin(&module_uuid, data),
            Inbound::Invalid { object_id, error } => {
                let data = match &error {
                    ProtocolError::NotJson(_) => {
                        crate::protocol::printable(&String::from_utf8_lossy(payload))
                    }
                    other => other.offending_value(),
                };
                let desc = error.to_string();
                self.reply_bad_input(object_id.as_deref(), &format!("on '{topic}'"), &desc, &data);
            }
        }
    }

    /// Answer bad input from the network (malformed messages, unknown modules) within
    /// the error budget: a flood of it gets a bounded
    /// number of replies and log lines, then a counted summary.
    fn reply_bad_input(&mut self, object_id: Option<&str>, place: &str, desc: &str, data: &str) {
        match self.errors.take(Instant::now()) {
            Verdict::Suppress => {}
            Verdict::Report { suppressed_before } => {
                if suppressed_before > 0 {
                    self.report_suppressed(suppressed_before);
                }
                warn!("rejected message {place}: {desc}");
                self.reply_error(object_id, desc, data);
            }
        }
    }

    fn report_suppressed(&self, count: u64) {
        let summary = format!("{count} more errors about bad input were not reported");
        warn!("{summary}");
        self.reply_error(None, &summary, &count.to_string());
    }

    fn reply_error(&self, object_id: Option<&str>, desc: &str, data: &str) {
        self.outbox
            .control(self.protocol.error(object_id, desc, data));
    }

    fn create(&mut self, object_id: String, request: ModuleRequest) {
        let uuid = request.uuid.clone();
        if self.registry.contains(&uuid) {
            self.create_again(object_id, &request);
            return;
        }
        if let Err(desc) = self.admit(&request) {
            // Outside the bad input budget: the orchestrator waits for the answer to a
            // well-formed create (it re-sends them all after a registration).
            let name = crate::protocol::printable(&request.name);
            warn!("create of module '{uuid}' ('{name}') refused: {desc}");
            self.reply_error(Some(&object_id), &desc, &uuid);
            return;
        }
        let name = request.name.clone();
        if let Err(desc) = self.launch(object_id.clone(), request) {
            error!("module '{uuid}' ('{name}') could not be launched: {desc}");
            self.reply_error(Some(&object_id), &desc, &uuid);
        }
    }

    /// A create for a module the runtime already has (the orchestrator re-sends creates
    /// after every registration).
    fn create_again(&mut self, object_id: String, request: &ModuleRequest) {
        let uuid = &request.uuid;
        let Some(entry) = self.registry.get_mut(uuid) else {
            return;
        };
        match &mut entry.phase {
            Phase::Running => {
                info!(
                    "module '{uuid}' ('{}') already runs, create ignored",
                    request.name
                );
                let module = request.module_ref();
                let ok =
                    self.protocol
                        .response_ok(&object_id, "create", &module, request.raw.clone());
                self.outbox.control(ok);
            }
            Phase::Starting { create_ids } => {
                info!(
                    "module '{uuid}' ('{}') is starting, create joined",
                    request.name
                );
                create_ids.push(object_id);
            }
            Phase::Stopping { .. } => {
                let desc = format!(
                    "module '{uuid}' is stopping: create it again once its exit is reported"
                );
                warn!("{desc}");
                self.reply_error(Some(&object_id), &desc, uuid);
            }
        }
    }

    /// Checks a create against what this runtime offers; the orchestrator checks neither.
    fn admit(&self, request: &ModuleRequest) -> Result<(), String> {
        let max = self.settings.max_nmodules;
        if self.registry.len() >= max {
            return Err(format!(
                "runtime '{}' already runs {max} modules (max_nmodules is {max})",
                self.settings.runtime_name
            ));
        }
        if let Some(api) = request
            .apis
            .iter()
            .find(|api| !self.settings.apis.contains(api))
        {
            return Err(format!(
                "api '{api}' is not offered by runtime '{}'",
                self.settings.runtime_name
            ));
        }
        if !self.launchers.contains_key(&request.filetype) {
            return Err(format!(
                "filetype '{}' is not supported by runtime '{}'",
                request.filetype.as_str(),
                self.settings.runtime_name
            ));
        }
        Ok(())
    }

    fn launch(&mut self, create_id: String, request: ModuleRequest) -> Result<(), String> {
        let module = request.module_ref();
        let launcher = self
            .launchers
            .get(&request.filetype)
            .cloned()
            .ok_or_else(|| "no launcher".to_string())?;
        let (stdin_tx, stdin_rx) = crossbeam_channel::bounded(STDIN_QUEUE);
        let stop = StopFlag::default();
        let stats = Arc::new(ModuleStats::default());
        let output = if self.settings.pipe_stdout {
            self.outbox.module_output(
                self.protocol.stdout_topic(&module),
                self.protocol.stderr_topic(&module),
            )
        } else {
            self.outbox.logged_module_output(
                format!("module '{}' stdout", module.uuid),
                format!("module '{}' stderr", module.uuid),
            )
        };
        let stdin_topic = self.protocol.stdin_topic(&module);
        let context = LaunchContext {
            request: request.clone(),
            work_dir: self.settings.work_root.join(&request.uuid),
            output: output.clone(),
            stdin: stdin_rx,
            events: self.module_events_tx.clone(),
            stop: stop.clone(),
            stats: stats.clone(),
        };
        let thread = launcher
            .launch(context)
            .map_err(|err| format!("cannot start a thread for module '{}': {err}", module.uuid))?;

        info!("module '{}' ('{}') starting", module.uuid, module.name);
        self.session.subscribe(&stdin_topic);
        self.registry.insert(ModuleEntry {
            request,
            phase: Phase::Starting {
                create_ids: vec![create_id],
            },
            stdin: Some(stdin_tx),
            stdin_topic,
            stop,
            stats,
            cpu: CpuMeter::new(0, Instant::now()),
            idle: IdleTracker::new(self.settings.inactivity),
            output,
            thread: Some(thread),
            unanswered_creates: Vec::new(),
        });
        Ok(())
    }

    fn delete(&mut self, object_id: String, target: &str) {
        let target_text = crate::protocol::printable(target);
        let uuid = match self.registry.lookup(target) {
            Lookup::Found(uuid) => uuid,
            Lookup::NotFound if self.protocol.control_is_shared() => {
                // On a control topic shared by every runtime, deletes of modules that
                // run elsewhere arrive here too: not ours to answer.
                debug!("delete of module '{target_text}' that does not run here");
                return;
            }
            Lookup::NotFound => {
                let desc = format!("no module '{target_text}' on this runtime");
                self.reply_bad_input(Some(&object_id), "(delete)", &desc, &target_text);
                return;
            }
            Lookup::Ambiguous(count) => {
                let desc = format!("name '{target_text}' matches {count} modules: delete by uuid");
                warn!("{desc}");
                self.reply_error(Some(&object_id), &desc, &target_text);
                return;
            }
        };
        let Some(entry) = self.registry.get_mut(&uuid) else {
            return;
        };
        let already_stopping = matches!(entry.phase, Phase::Stopping { .. });
        entry.begin_stop(Some(object_id));
        if already_stopping {
            info!(
                "module '{uuid}' ('{}') is already stopping, delete joined",
                entry.request.name
            );
            return;
        }
        info!("stopping module '{uuid}' ('{}')", entry.request.name);
        if let Some(launcher) = self.launchers.get(&entry.request.filetype) {
            launcher.stop(&uuid);
        }
    }

    fn stdin(&mut self, uuid: &str, data: Vec<u8>) {
        let Some(entry) = self.registry.get_mut(uuid) else {
            return;
        };
        let Some(stdin) = &entry.stdin else {
            return;
        };
        match stdin.try_send(data) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let desc = format!("stdin of module '{uuid}' is full: message dropped");
                self.reply_bad_input(None, "on stdin", &desc, uuid);
            }
            // The program has ended; its exit is on the way.
            Err(TrySendError::Disconnected(_)) => {
                debug!("stdin for module '{uuid}' that no longer reads it dropped");
            }
        }
    }

    fn on_module_event(&mut self, event: ModuleEvent) {
        match event {
            ModuleEvent::Started { uuid } => self.on_started(&uuid),
            ModuleEvent::Failed { uuid, error } => self.on_failed(&uuid, &error),
            ModuleEvent::Exited { uuid, code, reason } => self.on_exited(&uuid, code, &reason),
        }
    }

    /// The program runs: answer its creates, even when a stop overtook the start (its
    /// exit will be reported).
    fn on_started(&mut self, uuid: &str) {
        let Some(entry) = self.registry.get_mut(uuid) else {
            return;
        };
        if matches!(entry.phase, Phase::Running) {
            return;
        }
        let create_ids = entry.take_pending_creates();
        if matches!(entry.phase, Phase::Starting { .. }) {
            entry.phase = Phase::Running;
        }
        info!("module '{uuid}' ('{}') started", entry.request.name);
        for create_id in create_ids {
            let ok = self.protocol.response_ok(
                &create_id,
                "create",
                &entry.module_ref(),
                entry.request.raw.clone(),
            );
            self.outbox.control(ok);
        }
    }

    fn on_failed(&mut self, uuid: &str, error: &str) {
        let Some(mut entry) = self.registry.remove(uuid) else {
            return;
        };
        error!(
            "module '{uuid}' ('{}') failed to start: {error}",
            entry.request.name
        );
        let desc = format!("module '{uuid}' could not start: {error}");
        for create_id in &entry.take_pending_creates() {
            self.reply_error(Some(create_id), &desc, &entry.request.file);
        }
        self.finish(entry, Ending::NeverRan);
    }

    fn on_exited(&mut self, uuid: &str, code: Option<i32>, reason: &str) {
        let Some(mut entry) = self.registry.remove(uuid) else {
            return;
        };
        info!(
            "module '{uuid}' ('{}') exited: {reason}",
            entry.request.name
        );
        for create_id in entry.take_pending_creates() {
            let desc = format!("module '{uuid}' ended before it started");
            self.reply_error(Some(&create_id), &desc, uuid);
        }
        self.finish(entry, Ending::Exited(code));
    }

    /// Report the exit behind the module's last output, answer pending deletes, and
    /// forget the module.
    fn finish(&mut self, mut entry: ModuleEntry, ending: Ending) {
        let module = entry.module_ref();
        let delete_ids = match &mut entry.phase {
            Phase::Stopping { delete_ids } => std::mem::take(delete_ids),
            _ => Vec::new(),
        };
        for delete_id in &delete_ids {
            let details = json!({"uuid": module.uuid, "name": module.name});
            let ok = self
                .protocol
                .response_ok(delete_id, "delete", &module, details);
            self.outbox.control(ok);
        }
        let deleted = !delete_ids.is_empty();
        // A module that never ran did not exit, unless a delete was answered for it:
        // the orchestrator then waits for the exit as after any delete.
        let code = match ending {
            Ending::Exited(code) if !deleted || self.protocol.notifies_deleted_modules() => {
                Some(code)
            }
            Ending::NeverRan if deleted && self.protocol.notifies_deleted_modules() => Some(None),
            _ => None,
        };
        match code {
            Some(code) => entry.output.close_with(self.protocol.exited(&module, code)),
            None => entry.output.close(),
        }
        self.session.unsubscribe(&entry.stdin_topic);
        // The thread's last act was to send the event that brought us here; join it
        // only when it is done, never wait for it on this thread.
        if let Some(thread) = entry.thread.take().filter(|thread| thread.is_finished()) {
            if thread.join().is_err() {
                error!(
                    "thread of module '{}' ('{}') panicked",
                    module.uuid, module.name
                );
            }
        }
    }

    /// Stop every module, report their exits, unregister and close the session.
    fn shutdown(mut self) {
        let now = Instant::now();
        for uuid in self.registry.uuids() {
            if let Some(entry) = self.registry.get_mut(&uuid) {
                entry.begin_stop(None);
                if let Some(launcher) = self.launchers.get(&entry.request.filetype) {
                    launcher.stop(&uuid);
                }
            }
        }
        let slowest_stop = self
            .launchers
            .values()
            .map(|launcher| launcher.stop_timeout())
            .max()
            .unwrap_or_default();
        let deadline = now + SHUTDOWN_MODULE_GRACE.max(slowest_stop);
        while !self.registry.is_empty() {
            match self.module_events.recv_deadline(deadline) {
                Ok(event) => self.on_module_event(event),
                Err(_) => break,
            }
        }
        // What did not end in time is reported before the launchers' clean-up, which
        // can wait on a slow engine: the orchestrator hears of every module and of the
        // runtime's end even when the runtime is killed during it.
        for uuid in self.registry.uuids() {
            if let Some(entry) = self.registry.remove(&uuid) {
                self.abandon(entry);
            }
        }
        if self.registration_required() {
            // After the exits, which wait behind their modules' output; unless a
            // backlog would keep it from going out before the session ends.
            if !self.outbox.wait_output_taken(SHUTDOWN_EXITS_GRACE) {
                warn!("module output still queued at shutdown: unregistering before it");
            }
            self.outbox.control(self.protocol.unregistration());
        }
        for launcher in self.launchers.values() {
            launcher.shutdown();
        }
        // Empty now; a folder left behind would only puzzle whoever looks.
        let _ = std::fs::remove_dir(&self.settings.work_root);
        self.session.shutdown(SHUTDOWN_PUBLISH_GRACE);
        info!("runtime stopped");
    }

    /// Give up on a module that did not stop in time: answer what it left unanswered,
    /// report its end and remove its work folder behind its thread's back.
    fn abandon(&mut self, mut entry: ModuleEntry) {
        let uuid = entry.request.uuid.clone();
        error!(
            "module '{uuid}' ('{}') did not stop in time, abandoning it",
            entry.request.name
        );
        let ending = if entry.never_started() {
            Ending::NeverRan
        } else {
            Ending::Exited(None)
        };
        let desc = format!("module '{uuid}' did not start before the runtime stopped");
        for create_id in entry.take_pending_creates() {
            self.reply_error(Some(&create_id), &desc, &uuid);
        }
        self.finish(entry, ending);

        let work_dir = self.settings.work_root.join(&uuid);
        if work_dir.exists() {
            if let Err(err) = std::fs::remove_dir_all(&work_dir) {
                warn!("cannot remove '{}': {err}", work_dir.display());
            }
        }
    }
}

fn child_stats(entry: &mut ModuleEntry, now: Instant) -> ChildStats {
    use std::sync::atomic::Ordering::Relaxed;
    let stats = &entry.stats;
    let cpu_usage_percent = entry.cpu.percent(stats.cpu_time_ns.load(Relaxed), now);
    ChildStats {
        uuid: entry.request.uuid.clone(),
        name: entry.request.name.clone(),
        file: entry.request.file.clone(),
        filetype: entry.request.filetype,
        cpu_usage_percent,
        mem_usage: stats.mem_bytes.load(Relaxed),
        network_rx_mb: stats.net_rx_bytes.load(Relaxed) as f64 / 1e6,
        network_tx_mb: stats.net_tx_bytes.load(Relaxed) as f64 / 1e6,
        network_rx_pkts: stats.net_rx_pkts.load(Relaxed),
        network_tx_pkts: stats.net_tx_pkts.load(Relaxed),
    }
}

/// How a module's life ended, for what the orchestrator is told.
enum Ending {
    /// It ran and ended with this exit code, if it had one.
    Exited(Option<i32>),
    /// It failed before running.
    NeverRan,
}

/// Create the folder that holds module work folders, removing any left by a run that
/// crashed (no module survives a restart of the runtime).
pub fn prepare_work_root(root: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root)?;
    for entry in std::fs::read_dir(root)? {
        let path = entry?.path();
        warn!(
            "removing work folder '{}' left by an earlier run",
            path.display()
        );
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if let Err(err) = removed {
            warn!("cannot remove '{}': {err}", path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
