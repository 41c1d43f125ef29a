//! Reconnect delays: exponential, bounded, with jitter.

use std::time::Duration;

/// When to try the server again after a failed or lost connection.
///
/// The delay doubles with each failure from `initial` up to `max`, and a random part
/// of it (`jitter`, 0 to 1) is taken off so that devices that lost the server
/// together do not all come back in the same instant. Randomness is passed in, as
/// everywhere in the core, so tests can pin it.
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// The fraction of each delay that is random, from 0 (none) to 1 (all).
    pub jitter: f64,
    failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(30), 0.5)
    }
}

impl Backoff {
    /// A backoff with these bounds; `jitter` is clamped to 0..=1.
    pub fn new(initial: Duration, max: Duration, jitter: f64) -> Self {
        Self {
            initial,
            max: max.max(initial),
            jitter: if jitter.is_nan() {
                0.0
            } else {
                jitter.clamp(0.0, 1.0)
            },
            failures: 0,
        }
    }

    /// The delay before the next attempt, given a random number in `0..1`; counts a
    /// failure.
    pub fn next_delay(&mut self, random: f64) -> Duration {
        let exp = self.failures.min(31);
        self.failures = self.failures.saturating_add(1);
        let full = self
            .initial
            .checked_mul(1u32 << exp)
            .unwrap_or(self.max)
            .min(self.max);
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        full.mul_f64(1.0 - self.jitter * random)
    }

    /// A connection worked: start again from `initial`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_bound_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 0.0);
        let delays: Vec<u128> = (0..6).map(|_| b.next_delay(0.7).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(0.0), Duration::from_millis(100));
    }

    #[test]
    fn jitter_takes_a_random_part_off() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1), 0.5);
        assert_eq!(b.next_delay(0.0), Duration::from_secs(1));
        assert_eq!(b.next_delay(1.0), Duration::from_millis(500));
        assert_eq!(b.next_delay(0.5), Duration::from_millis(750));
        // Out-of-range randomness cannot push the delay outside its bounds.
        assert_eq!(b.next_delay(f64::NAN), Duration::from_secs(1));
        assert_eq!(b.next_delay(7.0), Duration::from_millis(500));
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60), 0.0);
        for _ in 0..100 {
            assert!(b.next_delay(0.0) <= Duration::from_secs(60));
        }
        assert_eq!(b.failures(), 100);
    }
}
