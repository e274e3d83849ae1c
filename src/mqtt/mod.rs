//! The MQTT session: the one connection to the broker. Connects (TLS when asked),
//! reconnects with capped, jittered backoff, restores subscriptions after every
//! connect and only then reports `Connected`, publishes what the outbox holds, and
//! forwards inbound publications to the supervisor.
//!
//! Not for: understanding messages (`protocol`) or keeping state about modules.
//!
//! Two threads: the pump (`pump.rs`) drives rumqttc's `Connection` and must never
//! block on the client; the publisher (`publisher.rs`) takes from the outbox and
//! hands publications to the client. They share the `Link` below: connection state,
//! the remembered subscriptions and the counters that let the publisher leave room in
//! rumqttc's request channel and let shutdown wait for acknowledgements.

mod publisher;
mod pump;
mod tls;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use rumqttc::{Client, LastWill, MqttOptions, QoS, Transport};

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
pub struct Session {
    client: Client,
    link: Arc<Link>,
    /// Dropped to wake the publisher when draining starts.
    stop_publisher: Option<Sender<()>>,
    /// Dropped to wake the pump out of its backoff when the session stops.
    stop_pump: Option<Sender<()>>,
    publisher: Option<Worker>,
    pump: Option<Worker>,
}

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("cannot read CA file '{path}': {reason}")]
    CaFile { path: String, reason: String },
    #[error("tls setup failed: {0}")]
    Tls(String),
    #[error("invalid mqtt topic filter '{0}'")]
    InvalidFilter(String),
    #[error("invalid last will topic '{0}'")]
    InvalidWillTopic(String),
    #[error("cannot start thread '{name}': {reason}")]
    Thread { name: String, reason: String },
}

/// Size of rumqttc's request channel.
const REQUEST_CAPACITY: usize = 64;
/// Slots the publisher leaves free for subscribe, unsubscribe and disconnect requests.
const REQUEST_RESERVE: usize = 8;
/// Bytes of an MQTT publish packet besides topic and payload: fixed header (at most 5),
/// topic length (2), packet id (2).
const PUBLISH_OVERHEAD: usize = 9;
/// Longest wait for TCP, TLS and the CONNACK of one connection attempt.
const CONNECT_TIMEOUT_SEC: u64 = 10;

impl Session {
    /// Start the session threads; returns at once (connecting happens in the background).
    pub fn start(
        options: SessionOptions,
        outbox: OutboxReceiver,
        events: Sender<MqttEvent>,
    ) -> Result<Session, MqttError> {
        if let Some(filter) = options
            .subscriptions
            .iter()
            .find(|filter| !rumqttc::valid_filter(filter))
        {
            return Err(MqttError::InvalidFilter(filter.clone()));
        }
        if !rumqttc::valid_topic(&options.last_will.topic) {
            return Err(MqttError::InvalidWillTopic(options.last_will.topic));
        }

        let settings = options.settings.clone();
        let mqtt_options = mqtt_options(&options)?;
        let (client, mut connection) = Client::new(mqtt_options, REQUEST_CAPACITY);
        let mut network = connection.eventloop.network_options();
        network.set_tcp_nodelay(true);
        network.set_connection_timeout(CONNECT_TIMEOUT_SEC);
        connection.eventloop.set_network_options(network);

        let link = Arc::new(Link::new(options.subscriptions));
        let (stop_pump, pump_stopped) = crossbeam_channel::bounded::<()>(0);
        let (stop_publisher, publisher_stopped) = crossbeam_channel::bounded::<()>(0);
        log::info!(
            "connecting to mqtt broker '{}:{}'{}",
            settings.host,
            settings.port,
            if settings.ssl { " with tls" } else { "" }
        );

        let pump = pump::Pump {
            connection,
            client: client.clone(),
            link: link.clone(),
            events,
            stop: pump_stopped,
            settings: settings.clone(),
        };
        let pump = Worker::spawn("mqtt-pump", move || pump.run())?;

        let max_packet = settings.max_packet_bytes;
        let publisher = publisher::Publisher {
            outbox,
            client: client.clone(),
            link: link.clone(),
            stop: publisher_stopped,
            max_packet,
        };
        let publisher = match Worker::spawn("mqtt-publisher", move || publisher.run()) {
            Ok(publisher) => publisher,
            Err(error) => {
                link.lock().stopping = true;
                drop(stop_pump);
                let _ = client.try_disconnect();
                return Err(error);
            }
        };

        Ok(Session {
            client,
            link,
            stop_publisher: Some(stop_publisher),
            stop_pump: Some(stop_pump),
            publisher: Some(publisher),
            pump: Some(pump),
        })
    }

    /// Add a filter to the subscriptions (kept across reconnects).
    pub fn subscribe(&self, filter: &str) {
        if !rumqttc::valid_filter(filter) {
            log::error!("not subscribing to invalid topic filter '{filter}'");
            return;
        }
        let mut state = self.link.lock();
        if !state.filters.insert(filter.to_string()) {
            return;
        }
        state.request(&self.client, Change::Subscribe(filter.to_string()));
    }

    pub fn unsubscribe(&self, filter: &str) {
        let mut state = self.link.lock();
        if !state.filters.remove(filter) {
            return;
        }
        state.request(&self.client, Change::Unsubscribe(filter.to_string()));
    }

    /// Publish what the outbox still holds of control messages (at most `timeout`),
    /// disconnect cleanly and join the threads.
    ///
    /// Module output written from now on is dropped; output already queued goes out
    /// after the control messages while time remains.
    pub fn shutdown(mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        // The last part of the time is kept for the DISCONNECT: without it the broker
        // would publish our last will.
        let drained_by = deadline - (timeout / 4).min(Duration::from_millis(500));
        self.link.lock().draining = Some(drained_by);
        self.link.changed.notify_all();
        self.stop_publisher.take();

        if let Some(publisher) = self.publisher.take() {
            if !publisher.join_until(drained_by) {
                log::warn!("mqtt publisher did not finish before the shutdown timeout");
            }
        }

        let unacked = self.link.wait_for_acks(drained_by);
        if unacked > 0 {
            log::warn!("disconnecting with {unacked} control messages not acknowledged");
        }

        self.stop();
        if let Some(pump) = self.pump.take() {
            if !pump.join_until(deadline) {
                log::warn!("mqtt connection did not close before the shutdown timeout");
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Without `shutdown`, stop the threads without waiting for anything.
        if self.pump.is_some() {
            self.stop();
            self.stop_publisher.take();
        }
    }
}

impl Session {
    /// Tells the pump to disconnect and end; the pump retries the DISCONNECT request
    /// when the request channel is full.
    fn stop(&mut self) {
        let mut state = self.link.lock();
        state.stopping = true;
        state.disconnect_queued = self.client.try_disconnect().is_ok();
        drop(state);
        self.link.changed.notify_all();
        self.stop_pump.take();
    }
}

fn mqtt_options(options: &SessionOptions) -> Result<MqttOptions, MqttError> {
    let settings = &options.settings;
    let mut mqtt = MqttOptions::new(&options.client_id, &settings.host, settings.port);
    // Keep-alive between 0 and 1 s panics in rumqttc; 0 turns pings off.
    mqtt.set_keep_alive(Duration::from_secs(settings.keepalive_sec));
    mqtt.set_clean_session(true);
    mqtt.set_max_packet_size(
        settings.max_incoming_packet_bytes,
        settings.max_packet_bytes,
    );
    mqtt.set_last_will(LastWill::new(
        &options.last_will.topic,
        options.last_will.payload.clone(),
        QoS::AtLeastOnce,
        false,
    ));
    if let Some(username) = &settings.username {
        let password = settings.password.clone().unwrap_or_default();
        mqtt.set_credentials(username, password);
    }
    if settings.ssl {
        let config = tls::client_config(settings)?;
        mqtt.set_transport(Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(Arc::new(config)),
        ));
    }
    Ok(mqtt)
}

/// State shared by the session handle, the pump and the publisher.
struct Link {
    state: Mutex<LinkState>,
    /// Notified on every change of `LinkState`.
    changed: Condvar,
}

#[derive(Default)]
struct LinkState {
    /// A CONNACK arrived and the connection has not failed since.
    connected: bool,
    /// Where the subscriptions of the current connection stand.
    phase: Phase,
    /// The subscriptions restored at every connect.
    filters: BTreeSet<String>,
    /// Changes to apply once the connection's subscriptions hold, or that found the
    /// request channel full; the pump retries them.
    changes: Vec<Change>,
    /// Publish requests handed to the client and not yet written to the network.
    unwritten: usize,
    /// QoS 1 publications handed to the client / acknowledged by the broker.
    submitted: u64,
    acked: u64,
    /// Shutdown started: publish what is queued until this instant.
    draining: Option<Instant>,
    /// Shutdown reached the disconnect: the pump ends.
    stopping: bool,
    /// The DISCONNECT request is in the request channel.
    disconnect_queued: bool,
    /// The pump ended; nothing reaches the network any more.
    pump_gone: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    /// No connection.
    #[default]
    Down,
    /// Connected, the restoring subscribe is queued or waits for room.
    Subscribing { queued: bool },
    /// The broker confirmed the subscriptions; `Connected` was reported.
    Ready,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Subscribe(String),
    Unsubscribe(String),
}

impl Link {
    fn new(filters: Vec<String>) -> Link {
        Link {
            state: Mutex::new(LinkState {
                filters: filters.into_iter().collect(),
                ..LinkState::default()
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LinkState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait<'a>(
        &self,
        guard: MutexGuard<'a, LinkState>,
        until: Option<Instant>,
    ) -> MutexGuard<'a, LinkState> {
        let result = match until {
            None => self.changed.wait(guard),
            Some(until) => {
                let left = until.saturating_duration_since(Instant::now());
                self.changed
                    .wait_timeout(guard, left)
                    .map(|(guard, _)| guard)
                    .map_err(|poisoned| std::sync::PoisonError::new(poisoned.into_inner().0))
            }
        };
        result.unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until every QoS 1 publication handed to the client is acknowledged, or
    /// `deadline`; returns how many are still unacknowledged.
    fn wait_for_acks(&self, deadline: Instant) -> u64 {
        let mut state = self.lock();
        while state.acked < state.submitted && !state.pump_gone && Instant::now() < deadline {
            state = self.wait(state, Some(deadline));
        }
        state.submitted.saturating_sub(state.acked)
    }
}

impl LinkState {
    /// Apply a subscription change now when the connection is ready, else keep it for
    /// the pump (a connection still subscribing took its list before this change).
    fn request(&mut self, client: &Client, change: Change) {
        match self.phase {
            Phase::Down => {}
            Phase::Subscribing { .. } => self.changes.push(change),
            Phase::Ready => {
                if !self.changes.is_empty() || !send_change(client, &change) {
                    self.changes.push(change);
                }
            }
        }
    }
}

/// Queues a subscription change without blocking; false when the channel is full.
fn send_change(client: &Client, change: &Change) -> bool {
    let sent = match change {
        Change::Subscribe(filter) => client.try_subscribe(filter.as_str(), QoS::AtLeastOnce),
        Change::Unsubscribe(filter) => client.try_unsubscribe(filter.as_str()),
    };
    sent.is_ok()
}

/// A thread that reports its end on a channel, so that joining can give up at a
/// deadline.
struct Worker {
    handle: JoinHandle<()>,
    done: Receiver<()>,
}

impl Worker {
    fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> Result<Worker, MqttError> {
        let (done_tx, done) = crossbeam_channel::bounded::<()>(1);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                body();
                drop(done_tx);
            })
            .map_err(|e| MqttError::Thread {
                name: name.into(),
                reason: e.to_string(),
            })?;
        Ok(Worker { handle, done })
    }

    /// Joins when the thread ends before `deadline`; otherwise leaves it detached.
    fn join_until(self, deadline: Instant) -> bool {
        match self.done.recv_deadline(deadline) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => false,
            _ => {
                let _ = self.handle.join();
                true
            }
        }
    }
}
