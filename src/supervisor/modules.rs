//! The module registry: one entry per module the runtime has accepted, from the create
//! request until its exit has been reported. Owned by the supervisor thread alone.
//!
//! Not for: starting programs (launchers) or building messages (protocol).

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use crate::launcher::StopFlag;
use crate::outbox::ModuleOutput;
use crate::protocol::{ModuleRef, ModuleRequest};
use crate::stats::{CpuMeter, ModuleStats};

use super::inactivity::IdleTracker;

/// Where a module is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Launched; the create requests (the first and any repeats) wait for `Started`
    /// or `Failed`.
    Starting {
        create_ids: Vec<String>,
    },
    Running,
    /// Asked to stop; `delete_ids` are the delete requests to answer once it exits
    /// (none when the runtime itself stops it).
    Stopping {
        delete_ids: Vec<String>,
    },
}

pub struct ModuleEntry {
    pub request: ModuleRequest,
    pub phase: Phase,
    /// Sender of the module's stdin; dropped to tell the module to stop reading.
    pub stdin: Option<Sender<Vec<u8>>>,
    pub stdin_topic: String,
    pub stop: StopFlag,
    pub stats: Arc<ModuleStats>,
    pub cpu: CpuMeter,
    /// Idle time between inactivity checks, while the module runs.
    pub idle: IdleTracker,
    pub output: ModuleOutput,
    pub thread: Option<JoinHandle<()>>,
    /// The create requests of a start still pending, when a stop overtook it.
    pub unanswered_creates: Vec<String>,
}

impl ModuleEntry {
    pub fn module_ref(&self) -> ModuleRef {
        self.request.module_ref()
    }

    /// Raise the stop flag and close stdin; the launcher does the rest. A delete that
    /// arrives while the module is already stopping joins the ones to answer.
    pub fn begin_stop(&mut self, delete_id: Option<String>) {
        match &mut self.phase {
            Phase::Stopping { delete_ids } => delete_ids.extend(delete_id),
            phase => {
                if let Phase::Starting { create_ids } = phase {
                    self.unanswered_creates = std::mem::take(create_ids);
                }
                self.phase = Phase::Stopping {
                    delete_ids: delete_id.into_iter().collect(),
                };
            }
        }
        self.stop.raise();
        self.stdin = None;
    }

    /// The create requests still waiting for the module to start, whatever its phase.
    pub fn take_pending_creates(&mut self) -> Vec<String> {
        match &mut self.phase {
            Phase::Starting { create_ids } => std::mem::take(create_ids),
            _ => std::mem::take(&mut self.unanswered_creates),
        }
    }

    /// Whether the module's program never started running.
    pub fn never_started(&self) -> bool {
        matches!(self.phase, Phase::Starting { .. }) || !self.unanswered_creates.is_empty()
    }
}

/// The modules of this runtime, by uuid.
#[derive(Default)]
pub struct Registry {
    modules: HashMap<String, ModuleEntry>,
    /// Stdin topic -> module uuid, for routing inbound messages.
    stdin_topics: HashMap<String, String>,
}

/// Result of looking a delete target up by uuid or name.
pub enum Lookup {
    Found(String),
    NotFound,
    /// A name shared by several modules.
    Ambiguous(usize),
}

impl Registry {
    pub fn len(&self) -> usize {
        self.modules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }

    pub fn insert(&mut self, entry: ModuleEntry) {
        self.stdin_topics
            .insert(entry.stdin_topic.clone(), entry.request.uuid.clone());
        self.modules.insert(entry.request.uuid.clone(), entry);
    }

    pub fn remove(&mut self, uuid: &str) -> Option<ModuleEntry> {
        let entry = self.modules.remove(uuid)?;
        self.stdin_topics.remove(&entry.stdin_topic);
        Some(entry)
    }

    pub fn contains(&self, uuid: &str) -> bool {
        self.modules.contains_key(uuid)
    }

    pub fn get_mut(&mut self, uuid: &str) -> Option<&mut ModuleEntry> {
        self.modules.get_mut(uuid)
    }

    pub fn uuid_for_stdin_topic(&self, topic: &str) -> Option<String> {
        self.stdin_topics.get(topic).cloned()
    }

    /// A delete names a module by uuid or, from clients that delete by name, by name.
    pub fn lookup(&self, target: &str) -> Lookup {
        if self.modules.contains_key(target) {
            return Lookup::Found(target.to_string());
        }
        let by_name: Vec<&String> = self
            .modules
            .iter()
            .filter(|(_, entry)| entry.request.name == target)
            .map(|(uuid, _)| uuid)
            .collect();
        match by_name.as_slice() {
            [] => Lookup::NotFound,
            [uuid] => Lookup::Found((*uuid).clone()),
            many => Lookup::Ambiguous(many.len()),
        }
    }

    pub fn uuids(&self) -> Vec<String> {
        self.modules.keys().cloned().collect()
    }

    pub fn entries_mut(&mut self) -> impl Iterator<Item = &mut ModuleEntry> {
        self.modules.values_mut()
    }
}
