//! Registration with the orchestrator: attempts, retries, and matching the reply by
//! `object_id`. A small state machine driven by the supervisor; it sends nothing
//! itself, it says what to send and when.
//!
//! Not for: keepalives or modules.

use std::time::{Duration, Instant};

use serde_json::Value;

/// Where registration stands on the current connection.
#[derive(Debug, Clone, PartialEq)]
pub enum RegState {
    /// Not connected, or connected and not yet started.
    Idle,
    /// A request is out; retry at `retry_at` unless the reply arrives.
    Pending {
        object_id: String,
        attempts: u32,
        retry_at: Instant,
    },
    Registered,
    /// All attempts used up without an `ok` reply.
    Failed,
    /// `reg_attempts: -1`: the runtime never registers.
    Disabled,
}

/// What the supervisor must do after a registration step.
#[derive(Debug, Clone, PartialEq)]
pub enum RegAction {
    Nothing,
    /// Publish a registration request with this `object_id`.
    Send {
        object_id: String,
        attempt: u32,
    },
    /// The orchestrator accepted us; `ka_interval` is its keepalive period, if it gave one.
    Registered {
        ka_interval: Option<Duration>,
    },
    /// Give up (after `attempts` tries).
    GiveUp {
        attempts: u32,
    },
}

/// Longest keepalive period taken from an orchestrator's reply (a day).
const MAX_KA_INTERVAL_SEC: f64 = 86_400.0;

pub struct Registration {
    /// -1 disabled, 0 forever, N attempts.
    reg_attempts: i64,
    retry_every: Duration,
    state: RegState,
}

impl Registration {
    pub fn new(reg_attempts: i64, retry_every: Duration) -> Self {
        let state = if reg_attempts < 0 {
            RegState::Disabled
        } else {
            RegState::Idle
        };
        Registration {
            reg_attempts,
            retry_every,
            state,
        }
    }

    #[cfg(test)]
    pub fn state(&self) -> &RegState {
        &self.state
    }

    #[cfg(test)]
    pub fn is_registered(&self) -> bool {
        self.state == RegState::Registered
    }

    /// The session is (again) connected with its subscriptions in place: register anew.
    /// One `object_id` serves every retry of this round, so a late reply still counts.
    pub fn on_connected(&mut self, now: Instant) -> RegAction {
        if self.state == RegState::Disabled {
            return RegAction::Nothing;
        }
        let object_id = uuid::Uuid::new_v4().to_string();
        self.state = RegState::Pending {
            object_id: object_id.clone(),
            attempts: 1,
            retry_at: now + self.retry_every,
        };
        RegAction::Send {
            object_id,
            attempt: 1,
        }
    }

    pub fn on_disconnected(&mut self) {
        if self.state != RegState::Disabled && self.state != RegState::Failed {
            self.state = RegState::Idle;
        }
    }

    /// A registration reply arrived; only the one for our pending request counts.
    pub fn on_reply(&mut self, object_id: &str, ok: bool, details: &Value) -> RegAction {
        let RegState::Pending {
            object_id: ours, ..
        } = &self.state
        else {
            return RegAction::Nothing;
        };
        if ours != object_id || !ok {
            return RegAction::Nothing;
        }
        self.state = RegState::Registered;
        let ka_interval = details
            .get("ka_interval_sec")
            .and_then(Value::as_f64)
            .filter(|secs| secs.is_finite() && *secs >= 1.0)
            .map(|secs| Duration::from_secs_f64(secs.min(MAX_KA_INTERVAL_SEC)));
        RegAction::Registered { ka_interval }
    }

    /// Whether `object_id` is that of the registration request now out.
    pub fn awaits(&self, object_id: &str) -> bool {
        matches!(&self.state, RegState::Pending { object_id: ours, .. } if ours == object_id)
    }

    /// When the next retry is due, if one is pending.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.state {
            RegState::Pending { retry_at, .. } => Some(*retry_at),
            _ => None,
        }
    }

    /// Time passed: retry or give up when the reply is overdue.
    pub fn on_timer(&mut self, now: Instant) -> RegAction {
        let RegState::Pending {
            object_id,
            attempts,
            retry_at,
        } = &self.state
        else {
            return RegAction::Nothing;
        };
        if now < *retry_at {
            return RegAction::Nothing;
        }
        let attempts = *attempts;
        if self.reg_attempts > 0 && i64::from(attempts) >= self.reg_attempts {
            self.state = RegState::Failed;
            return RegAction::GiveUp { attempts };
        }
        let object_id = object_id.clone();
        self.state = RegState::Pending {
            object_id: object_id.clone(),
            attempts: attempts + 1,
            retry_at: now + self.retry_every,
        };
        RegAction::Send {
            object_id,
            attempt: attempts + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn send_id(action: RegAction) -> String {
        match action {
            RegAction::Send { object_id, .. } => object_id,
            other => panic!("expected a send, got {other:?}"),
        }
    }

    #[test]
    fn reply_with_matching_object_id_registers() {
        let mut reg = Registration::new(0, Duration::from_secs(5));
        let id = send_id(reg.on_connected(Instant::now()));
        let action = reg.on_reply(&id, true, &json!({"ka_interval_sec": 30}));
        assert_eq!(
            action,
            RegAction::Registered {
                ka_interval: Some(Duration::from_secs(30))
            }
        );
        assert!(reg.is_registered());
    }

    #[test]
    fn absurd_keepalive_interval_in_the_reply_is_capped() {
        let mut reg = Registration::new(0, Duration::from_secs(5));
        let id = send_id(reg.on_connected(Instant::now()));
        let action = reg.on_reply(&id, true, &json!({"ka_interval_sec": 1e300}));
        assert_eq!(
            action,
            RegAction::Registered {
                ka_interval: Some(Duration::from_secs(86_400))
            }
        );
    }

    #[test]
    fn reply_with_other_object_id_or_error_result_is_ignored() {
        let mut reg = Registration::new(0, Duration::from_secs(5));
        let id = send_id(reg.on_connected(Instant::now()));
        assert_eq!(
            reg.on_reply("someone-else", true, &json!({})),
            RegAction::Nothing
        );
        assert_eq!(reg.on_reply(&id, false, &json!({})), RegAction::Nothing);
        assert!(!reg.is_registered());
    }

    #[test]
    fn retries_with_the_same_object_id_until_attempts_run_out() {
        let start = Instant::now();
        let mut reg = Registration::new(2, Duration::from_secs(5));
        let id = send_id(reg.on_connected(start));
        assert_eq!(
            reg.on_timer(start + Duration::from_secs(1)),
            RegAction::Nothing
        );
        assert_eq!(send_id(reg.on_timer(start + Duration::from_secs(5))), id);
        assert_eq!(
            reg.on_timer(start + Duration::from_secs(10)),
            RegAction::GiveUp { attempts: 2 }
        );
        assert_eq!(reg.state(), &RegState::Failed);
    }

    #[test]
    fn zero_attempts_means_retry_forever() {
        let start = Instant::now();
        let mut reg = Registration::new(0, Duration::from_secs(1));
        reg.on_connected(start);
        for n in 1..50 {
            let action = reg.on_timer(start + Duration::from_secs(n));
            assert!(matches!(action, RegAction::Send { .. }), "{action:?}");
        }
    }

    #[test]
    fn disabled_registration_never_sends() {
        let mut reg = Registration::new(-1, Duration::from_secs(1));
        assert_eq!(reg.on_connected(Instant::now()), RegAction::Nothing);
        assert_eq!(reg.state(), &RegState::Disabled);
    }

    #[test]
    fn reconnect_starts_a_new_round() {
        let mut reg = Registration::new(0, Duration::from_secs(5));
        let first = send_id(reg.on_connected(Instant::now()));
        reg.on_reply(&first, true, &json!({}));
        reg.on_disconnected();
        let second = send_id(reg.on_connected(Instant::now()));
        assert_ne!(first, second);
        assert!(!reg.is_registered());
    }
}
