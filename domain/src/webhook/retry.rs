//! When a failed delivery is tried again: after a wait that doubles from `first` up to
//! `longest`, until `give_up_after` has passed since the first attempt — by default 10 s,
//! 20 s, 40 s, … 12 h, about eighteen attempts over three days, enough for a receiver to
//! come back from a long weekend's outage.

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub first: Duration,
    pub longest: Duration,
    pub give_up_after: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            first: Duration::seconds(10),
            longest: Duration::hours(12),
            give_up_after: Duration::days(3),
        }
    }
}

impl Schedule {
    /// When to try again after `failures` failed attempts (1 after the first), the first
    /// of them made at `first_attempt`; `None` once the delivery should be given up.
    pub fn next(
        &self,
        failures: u32,
        first_attempt: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let doublings = failures.saturating_sub(1).min(30);
        let wait = self
            .first
            .checked_mul(1_i32 << doublings)
            .unwrap_or(self.longest)
            .min(self.longest);
        let next = now + wait;
        (next - first_attempt <= self.give_up_after).then_some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_longest_and_stop_after_three_days() {
        let schedule = Schedule::default();
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut now = start;
        let mut waits = Vec::new();
        let mut failures = 1;
        while let Some(next) = schedule.next(failures, start, now) {
            waits.push((next - now).num_seconds());
            now = next;
            failures += 1;
        }
        assert_eq!(&waits[..4], [10, 20, 40, 80]);
        assert_eq!(*waits.last().unwrap(), 12 * 3600);
        assert!(now - start <= Duration::days(3));
        assert!(now - start > Duration::days(2) + Duration::hours(12));
        assert_eq!(waits.len(), 17);
    }
}
