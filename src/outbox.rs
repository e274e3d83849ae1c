//! The outbox: everything the runtime wants published waits here for the mqtt
//! publisher. Control messages (responses, registration, keepalives, errors) are never
//! dropped and go first; module output is queued per module, batched when it piles
//! up, and dropped with a counted "suppressed N bytes" notice past a byte bound, so a
//! noisy module can neither stall the control plane nor grow memory without bound.
//!
//! Not for: talking to the network (`mqtt.rs`) or deciding topics (`protocol`).
//!
//! CONTRACT (skeleton): signatures are shared; bodies are filled in by the mqtt work.

use crate::config::OutputSettings;
use crate::protocol::Message;

/// How module output is put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputEncoding {
    /// The bytes as written (silverline, arts).
    Raw,
    /// A JSON string of the text (arena).
    JsonString,
}

/// Producer side; cheap to clone, shared by the supervisor and module threads.
#[derive(Clone)]
pub struct Outbox {}

/// Consumer side, owned by the mqtt publisher.
pub struct OutboxReceiver {}

/// Creates a connected outbox pair.
#[allow(unused_variables)]
pub fn outbox(limits: OutputSettings, encoding: OutputEncoding) -> (Outbox, OutboxReceiver) {
    unimplemented!()
}

#[allow(unused_variables)]
impl Outbox {
    /// Queue a control message; never dropped, published before pending output.
    pub fn control(&self, message: Message) {
        unimplemented!()
    }

    /// Open the output queue of one module, with its stdout and stderr topics.
    pub fn module_output(&self, stdout_topic: String, stderr_topic: String) -> ModuleOutput {
        unimplemented!()
    }
}

/// One module's output queue. Clones share the queue. Stdout and stderr keep their
/// relative order.
#[derive(Clone)]
pub struct ModuleOutput {}

#[allow(unused_variables)]
impl ModuleOutput {
    /// Writer for the module's stdout (`std::io::Write + Send + Sync`); never blocks.
    pub fn stdout(&self) -> OutputWriter {
        unimplemented!()
    }
    pub fn stderr(&self) -> OutputWriter {
        unimplemented!()
    }

    /// Flush partial lines and queue `last` (the exit notice) after every byte of
    /// output the module wrote, so the notice never overtakes its output.
    pub fn close_with(&self, last: Message) {
        unimplemented!()
    }
}

/// Line-splitting writer into a module's queue.
#[derive(Clone)]
pub struct OutputWriter {}

#[allow(unused_variables)]
impl std::io::Write for OutputWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        unimplemented!()
    }
    fn flush(&mut self) -> std::io::Result<()> {
        unimplemented!()
    }
}
