//! The MQTT session: the one connection to the broker. Connects (TLS when asked),
//! reconnects with capped, jittered backoff, restores subscriptions after every
//! connect and only then reports `Connected`, publishes what the outbox holds, and
//! forwards inbound publications to the supervisor.
//!
//! Not for: understanding messages (`protocol`) or keeping state about modules.
//!
//! CONTRACT (skeleton): signatures are shared; bodies are filled in by the mqtt work.

use crossbeam_channel::Sender;

use crate::config::MqttSettings;
use crate::outbox::OutboxReceiver;
use crate::protocol::Message;

/// What the session tells the supervisor.
#[derive(Debug, Clone, PartialEq)]
pub enum MqttEvent {
    /// Connected and every subscription confirmed by the broker (sent after each
    /// reconnect too: time to register again).
    Connected,
    /// Connection lost; the session reconnects by itself.
    Disconnected { reason: String },
    /// An inbound publication.
    Message { topic: String, payload: Vec<u8> },
}

/// Everything needed to open the session.
pub struct SessionOptions {
    pub settings: MqttSettings,
    pub client_id: String,
    /// Published by the broker if we vanish (the unregistration message).
    pub last_will: Message,
    /// Filters subscribed at every connect.
    pub subscriptions: Vec<String>,
}

/// Handle kept by the supervisor.
pub struct Session {}

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("cannot read CA file '{path}': {reason}")]
    CaFile { path: String, reason: String },
    #[error("tls setup failed: {0}")]
    Tls(String),
}

#[allow(unused_variables)]
impl Session {
    /// Start the session threads; returns at once (connecting happens in the background).
    pub fn start(
        options: SessionOptions,
        outbox: OutboxReceiver,
        events: Sender<MqttEvent>,
    ) -> Result<Session, MqttError> {
        unimplemented!()
    }

    /// Add a filter to the subscriptions (kept across reconnects).
    pub fn subscribe(&self, filter: &str) {
        unimplemented!()
    }

    pub fn unsubscribe(&self, filter: &str) {
        unimplemented!()
    }

    /// Publish what the outbox still holds of control messages (at most `timeout`),
    /// disconnect cleanly and join the threads.
    pub fn shutdown(self, timeout: std::time::Duration) {
        unimplemented!()
    }
}
