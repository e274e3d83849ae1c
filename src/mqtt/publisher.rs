//! The publisher thread: takes what the outbox holds (control first) and hands it to
//! the MQTT client while the connection is up, leaving room in the client's request
//! channel for the pump's subscribe and disconnect requests.
//!
//! Not for: choosing what to publish or in which order (`outbox`), or the connection
//! (`pump.rs`).

use std::sync::Arc;
use std::time::Instant;

use rumqttc::{Client, ClientError, QoS, Request};

use super::{Link, PUBLISH_OVERHEAD, REQUEST_CAPACITY, REQUEST_RESERVE};
use crate::outbox::{OutboxItem, OutboxReceiver};

pub(super) struct Publisher {
    pub(super) outbox: OutboxReceiver,
    pub(super) client: Client,
    pub(super) link: Arc<Link>,
    /// Disconnected when shutdown starts draining.
    pub(super) stop: crossbeam_channel::Receiver<()>,
    pub(super) max_packet: usize,
}

impl Publisher {
    pub(super) fn run(mut self) {
        loop {
            let state = self.link.lock();
            let (draining, stopping) = (state.draining, state.stopping || state.pump_gone);
            drop(state);
            if stopping {
                break;
            }
            if draining.is_some() {
                self.outbox.seal_output();
            }

            let Some(item) = self.outbox.take(true) else {
                if draining.is_some() {
                    break;
                }
                crossbeam_channel::select! {
                    recv(self.outbox.wakeups()) -> _ => {}
                    recv(self.stop) -> _ => {}
                }
                continue;
            };

            if !self.publish(item) {
                break;
            }
        }
        log::debug!("mqtt publisher finished");
    }

    /// Hands one publication to the client once connected; false when the session is
    /// stopping (or the shutdown deadline passed) before it could.
    fn publish(&self, item: OutboxItem) -> bool {
        let OutboxItem { message, control } = item;
        if !rumqttc::valid_topic(&message.topic) {
            log::error!("not publishing to invalid topic '{}'", message.topic);
            return true;
        }
        let size = PUBLISH_OVERHEAD + message.topic.len() + message.payload.len();
        if size > self.max_packet {
            // Output batches stay under max_batch_bytes and control messages are small,
            // so this means settings that contradict each other.
            log::error!(
                "dropping {} on '{}': {size} bytes exceed mqtt.max_packet_bytes ({})",
                if control {
                    "control message"
                } else {
                    "module output"
                },
                message.topic,
                self.max_packet
            );
            return true;
        }

        // Control messages must arrive, so QoS 1 (and they are resent after a
        // reconnect). Module output is QoS 0: it is best effort by design (dropped with
        // a counted notice under pressure), needs no packet id, so a burst never waits
        // on the broker's acknowledgements or fills the inflight window that control
        // messages rely on.
        let qos = if control {
            QoS::AtLeastOnce
        } else {
            QoS::AtMostOnce
        };
        let (mut topic, mut payload) = (message.topic, message.payload);

        let mut state = self.link.lock();
        loop {
            if state.stopping || state.pump_gone {
                return false;
            }
            let deadline = state.draining;
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return false;
            }

            if state.connected && state.unwritten < REQUEST_CAPACITY - REQUEST_RESERVE {
                // Never blocks: a blocking publish could wait forever on a full channel
                // while the pump is between connections.
                match self.client.try_publish(topic, qos, false, payload) {
                    Ok(()) => {
                        state.unwritten += 1;
                        if control {
                            state.submitted += 1;
                        }
                        return true;
                    }
                    Err(ClientError::TryRequest(Request::Publish(publish)))
                    | Err(ClientError::Request(Request::Publish(publish))) => {
                        topic = publish.topic;
                        payload = publish.payload.to_vec();
                    }
                    Err(error) => {
                        log::error!("mqtt client refused a publication: {error}");
                        return true;
                    }
                }
            }

            // Woken by the pump on every connection change and every packet written.
            state = self.link.wait(state, deadline);
        }
    }
}
