//! The pump thread: drives rumqttc's `Connection`, reconnects with capped, jittered
//! backoff, restores subscriptions on every CONNACK, reports `Connected` once the
//! broker confirmed them, forwards inbound publications, and keeps the link counters.
//!
//! Not for: publishing (the publisher thread): a blocking client call here would
//! deadlock, so everything this thread asks of the client uses `try_*` and is retried
//! on the next event when the request channel is full.
//!
//! rumqttc drops unacknowledged QoS 1 publications at a reconnect with a clean
//! session; the pump takes them from the event loop when the connection fails and
//! puts them back after the next CONNACK, so control messages survive outages.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rumqttc::{
    Client, Connection, ConnectionError, Event, Outgoing, Packet, QoS, Request, SubAck,
    SubscribeFilter, SubscribeReasonCode,
};

use super::{send_change, Link, LinkState, MqttEvent, Phase};
use crate::config::MqttSettings;

pub(super) struct Pump {
    pub(super) connection: Connection,
    pub(super) client: Client,
    pub(super) link: std::sync::Arc<Link>,
    pub(super) events: Sender<MqttEvent>,
    /// Disconnected when the session stops.
    pub(super) stop: Receiver<()>,
    pub(super) settings: MqttSettings,
}

/// What the pump remembers between events.
#[derive(Default)]
struct Progress {
    /// Publications the failed connection had not delivered, resent after CONNACK.
    saved: Vec<Request>,
    /// Failed attempts since the last good connection.
    failures: u32,
    /// `Disconnected` was reported for the current outage.
    outage_reported: bool,
    /// The filters of the restoring subscribe, in its order.
    restoring: Vec<String>,
}

impl Pump {
    pub(super) fn run(mut self) {
        let mut progress = Progress::default();
        loop {
            if !self.retry_requests(&mut progress) {
                break;
            }

            match self.connection.recv() {
                // Every client handle is gone.
                Err(_) => break,
                Ok(Ok(event)) => {
                    if !self.handle(event, &mut progress) {
                        break;
                    }
                }
                Ok(Err(error)) => {
                    if self.link.lock().stopping {
                        break;
                    }
                    self.connection_failed(error, &mut progress);
                    if !self.back_off(progress.failures) {
                        break;
                    }
                }
            }
        }

        let mut state = self.link.lock();
        state.connected = false;
        state.phase = Phase::Down;
        state.pump_gone = true;
        drop(state);
        self.link.changed.notify_all();
        log::debug!("mqtt connection closed");
    }

    /// Sends what waits for room in the request channel; false when the pump is done.
    fn retry_requests(&mut self, progress: &mut Progress) -> bool {
        let link = self.link.clone();
        let mut state = link.lock();
        if state.stopping {
            if !state.connected {
                return false;
            }
            if !state.disconnect_queued {
                state.disconnect_queued = self.client.try_disconnect().is_ok();
            }
        }

        match state.phase {
            Phase::Subscribing { queued: false } => {
                let connected = self.restore_subscriptions(&mut state, progress);
                drop(state);
                if connected {
                    self.ready(progress);
                }
            }
            Phase::Ready => {
                while let Some(change) = state.changes.first() {
                    if !send_change(&self.client, change) {
                        break;
                    }
                    state.changes.remove(0);
                }
            }
            _ => {}
        }
        true
    }

    /// Handles one event; false when the pump is done.
    fn handle(&mut self, event: Event, progress: &mut Progress) -> bool {
        match event {
            Event::Incoming(Packet::ConnAck(_)) => self.connected(progress),
            Event::Incoming(Packet::SubAck(ack)) => self.subscribed(&ack, progress),
            Event::Incoming(Packet::Publish(publish)) => {
                self.report(MqttEvent::Message {
                    topic: publish.topic,
                    payload: publish.payload.to_vec(),
                });
            }
            Event::Incoming(Packet::PubAck(_)) => {
                self.link.lock().acked += 1;
                self.link.changed.notify_all();
            }
            Event::Outgoing(Outgoing::Publish(_)) => {
                let mut state = self.link.lock();
                state.unwritten = state.unwritten.saturating_sub(1);
                drop(state);
                self.link.changed.notify_all();
            }
            Event::Outgoing(Outgoing::Disconnect) => {
                if self.link.lock().stopping {
                    return false;
                }
            }
            Event::Outgoing(_) => self.link.changed.notify_all(),
            Event::Incoming(_) => {}
        }
        true
    }

    fn connected(&mut self, progress: &mut Progress) {
        log::info!(
            "connected to mqtt broker '{}:{}'",
            self.settings.host,
            self.settings.port
        );
        let link = self.link.clone();
        let mut state = link.lock();
        state.connected = true;
        state.phase = Phase::Subscribing { queued: false };
        // The restoring subscribe takes the current filters; earlier changes are in it.
        state.changes.clear();
        self.resend_saved(&mut state, progress);

        let ready = self.restore_subscriptions(&mut state, progress);
        drop(state);
        self.link.changed.notify_all();
        if ready {
            self.ready(progress);
        }
    }

    /// The broker holds our subscriptions: the supervisor may register.
    fn ready(&self, progress: &mut Progress) {
        progress.failures = 0;
        progress.outage_reported = false;
        self.report(MqttEvent::Connected);
    }

    /// Puts the publications the last connection did not deliver first in line.
    fn resend_saved(&mut self, state: &mut LinkState, progress: &mut Progress) {
        let mut resent = 0;
        for request in progress.saved.drain(..) {
            let Request::Publish(mut publish) = request else {
                continue;
            };
            if publish.pkid != 0 {
                // Written once already: it counts as unwritten again, under a new id.
                publish.pkid = 0;
                state.unwritten += 1;
            }
            resent += 1;
            self.connection
                .eventloop
                .pending
                .push_back(Request::Publish(publish));
        }
        if resent > 0 {
            log::info!("resending {resent} publications the broker did not acknowledge");
        }
    }

    /// Queues the subscribe of every remembered filter; true when there is nothing to
    /// wait for (no filters), so the connection is ready at once.
    fn restore_subscriptions(&self, state: &mut LinkState, progress: &mut Progress) -> bool {
        if state.filters.is_empty() {
            state.phase = Phase::Ready;
            return true;
        }

        let filters: Vec<String> = state.filters.iter().cloned().collect();
        let request = filters
            .iter()
            .map(|filter| SubscribeFilter::new(filter.clone(), QoS::AtLeastOnce));
        if self.client.try_subscribe_many(request).is_ok() {
            state.phase = Phase::Subscribing { queued: true };
            progress.restoring = filters;
        } else {
            log::debug!("mqtt request channel full: subscribing on the next event");
        }
        false
    }

    fn subscribed(&mut self, ack: &SubAck, progress: &mut Progress) {
        let mut state = self.link.lock();
        let restoring = state.phase == (Phase::Subscribing { queued: true });
        for (index, code) in ack.return_codes.iter().enumerate() {
            if *code == SubscribeReasonCode::Failure {
                let filter = match progress.restoring.get(index) {
                    Some(filter) if restoring => filter.as_str(),
                    _ => "?",
                };
                log::error!("broker refused the subscription to '{filter}'");
            }
        }
        if !restoring {
            return;
        }

        state.phase = Phase::Ready;
        drop(state);
        self.link.changed.notify_all();
        log::debug!("subscriptions restored: {:?}", progress.restoring);
        self.ready(progress);
    }

    fn connection_failed(&mut self, error: ConnectionError, progress: &mut Progress) {
        progress
            .saved
            .extend(self.connection.eventloop.pending.drain(..));
        progress.failures = progress.failures.saturating_add(1);

        let mut state = self.link.lock();
        let was_connected = state.connected;
        state.connected = false;
        state.phase = Phase::Down;
        drop(state);
        self.link.changed.notify_all();

        let reason = describe(&error);
        if progress.outage_reported {
            log::debug!("mqtt connection attempt failed: {reason}");
            return;
        }
        progress.outage_reported = true;
        if was_connected {
            log::warn!("mqtt connection lost: {reason}");
        } else {
            log::warn!(
                "cannot connect to mqtt broker '{}:{}': {reason}",
                self.settings.host,
                self.settings.port
            );
        }
        self.report(MqttEvent::Disconnected { reason });
    }

    /// Waits before the next attempt; false when the session stops meanwhile.
    fn back_off(&self, failures: u32) -> bool {
        let delay = backoff_delay(
            self.settings.reconnect_min_sec,
            self.settings.reconnect_max_sec,
            failures,
            jitter(),
        );
        log::debug!("reconnecting in {delay:?}");
        matches!(
            self.stop.recv_timeout(delay),
            Err(RecvTimeoutError::Timeout)
        )
    }

    fn report(&self, event: MqttEvent) {
        // A gone supervisor is shutting down; there is nobody left to tell.
        let _ = self.events.send(event);
    }
}

/// Delay before reconnect attempt number `failures` (1-based): doubling from `min_sec`
/// up to `max_sec`, then scaled into its upper half by `jitter` (0..1) so that many
/// runtimes cut off together do not reconnect in step.
pub(super) fn backoff_delay(min_sec: f64, max_sec: f64, failures: u32, jitter: f64) -> Duration {
    let min_sec = if min_sec.is_finite() && min_sec > 0.0 {
        min_sec
    } else {
        0.1
    };
    let max_sec = if max_sec.is_finite() {
        max_sec.max(min_sec)
    } else {
        min_sec
    };
    let exponent = failures.saturating_sub(1).min(30) as i32;
    let ceiling = (min_sec * 2f64.powi(exponent)).min(max_sec);
    let seconds = (ceiling * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))).max(min_sec);
    Duration::from_secs_f64(seconds)
}

/// A number in 0..1 that differs between runtimes and attempts, without a random
/// number crate: a v4 uuid's random bits mixed with the clock.
fn jitter() -> f64 {
    let random = uuid::Uuid::new_v4().as_u128() as u64;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos() as u64)
        .unwrap_or(0);
    ((random ^ nanos) >> 11) as f64 / (1u64 << 53) as f64
}

/// A connection error in an operator's words: a broker's refusal is not a network fault.
fn describe(error: &ConnectionError) -> String {
    use rumqttc::ConnectReturnCode as Code;

    let ConnectionError::ConnectionRefused(code) = error else {
        return error.to_string();
    };
    let why = match code {
        Code::BadUserNamePassword => "bad username or password (check .secrets.yaml)",
        Code::NotAuthorized => "not authorised (check mqtt.username and mqtt.password)",
        Code::BadClientId => "client id refused (runtime.uuid)",
        Code::ServiceUnavailable => "service unavailable",
        Code::RefusedProtocolVersion => "protocol version refused (MQTT 3.1.1 is needed)",
        Code::Success => "refused without a reason",
    };
    format!("the broker refused the connection: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_minimum_and_stops_at_the_maximum() {
        let delays: Vec<f64> = (1..=8)
            .map(|n| backoff_delay(0.5, 10.0, n, 1.0).as_secs_f64())
            .collect();

        assert_eq!(delays, vec![0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]);
    }

    #[test]
    fn backoff_jitter_stays_between_the_minimum_and_the_ceiling() {
        for n in 1..20 {
            let delay = backoff_delay(0.5, 30.0, n, jitter()).as_secs_f64();
            assert!(
                (0.5..=30.0).contains(&delay),
                "delay {delay} after {n} failures"
            );
        }
        assert_eq!(backoff_delay(1.0, 8.0, 4, 0.0), Duration::from_secs(4));
    }

    #[test]
    fn backoff_survives_nonsense_settings() {
        assert_eq!(
            backoff_delay(f64::NAN, -1.0, u32::MAX, 0.5),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn a_refusal_by_the_broker_is_told_apart_from_a_network_fault() {
        let refused = ConnectionError::ConnectionRefused(rumqttc::ConnectReturnCode::NotAuthorized);
        assert_eq!(
            describe(&refused),
            "the broker refused the connection: not authorised (check mqtt.username and mqtt.password)"
        );
    }
}
