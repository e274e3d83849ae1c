//! A token bucket for answers to bad input: a peer that floods the runtime with
//! invalid messages gets a bounded number of error replies and log lines, then one
//! counted summary, so a flood can grow neither the outbox nor the log.
//!
//! Not for: replies to valid requests (those are never limited).

use std::time::{Duration, Instant};

/// Errors allowed in a burst.
const BURST: f64 = 20.0;
/// Errors allowed per second once the burst is spent.
const PER_SECOND: f64 = 2.0;

pub struct ErrorBudget {
    tokens: f64,
    refilled_at: Instant,
    suppressed: u64,
}

/// Whether an error may be reported now.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Report it; `suppressed_before` errors were swallowed since the last report.
    Report { suppressed_before: u64 },
    /// Swallow it (counted).
    Suppress,
}

impl ErrorBudget {
    pub fn new(now: Instant) -> Self {
        ErrorBudget {
            tokens: BURST,
            refilled_at: now,
            suppressed: 0,
        }
    }

    pub fn take(&mut self, now: Instant) -> Verdict {
        if !self.spend(now) {
            self.suppressed += 1;
            return Verdict::Suppress;
        }
        Verdict::Report {
            suppressed_before: std::mem::take(&mut self.suppressed),
        }
    }

    /// When the count of swallowed errors can be reported, if there is one.
    pub fn summary_due(&self) -> Option<Instant> {
        if self.suppressed == 0 {
            return None;
        }
        let wait = (1.0 - self.tokens).max(0.0) / PER_SECOND;
        Some(self.refilled_at + Duration::from_secs_f64(wait))
    }

    /// The count of swallowed errors, once the budget allows reporting it.
    pub fn take_summary(&mut self, now: Instant) -> Option<u64> {
        if self.suppressed == 0 || !self.spend(now) {
            return None;
        }
        Some(std::mem::take(&mut self.suppressed))
    }

    /// Refill for the time passed, then spend a token if there is one.
    fn spend(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * PER_SECOND).min(BURST);
        self.refilled_at = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_reported_then_errors_are_counted_and_summarised_later() {
        let start = Instant::now();
        let mut budget = ErrorBudget::new(start);
        for _ in 0..20 {
            assert_eq!(
                budget.take(start),
                Verdict::Report {
                    suppressed_before: 0
                }
            );
        }
        for _ in 0..5 {
            assert_eq!(budget.take(start), Verdict::Suppress);
        }
        assert_eq!(
            budget.take(start + Duration::from_secs(1)),
            Verdict::Report {
                suppressed_before: 5
            }
        );
    }

    #[test]
    fn the_count_of_swallowed_errors_is_due_once_a_token_is_back() {
        let start = Instant::now();
        let mut budget = ErrorBudget::new(start);
        assert_eq!(budget.summary_due(), None);
        for _ in 0..23 {
            budget.take(start);
        }
        let due = budget.summary_due().expect("a summary is due");
        assert!(due > start);
        assert_eq!(budget.take_summary(start), None);
        assert_eq!(budget.take_summary(due), Some(3));
        assert_eq!(budget.summary_due(), None);
    }
}
