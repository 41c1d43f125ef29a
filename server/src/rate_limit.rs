//! Rate limits on what peers send: per connection and per user, in frames and in
//! bytes per second. A peer over its rate is not cut off but slowed: its frames are
//! read later, so TCP pushes back on it and everyone else's frames go first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Frames and bytes per second, with bursts of a second's worth.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Frames per second.
    pub frames: f64,
    /// Bytes per second.
    pub bytes: f64,
}

/// A token bucket over frames and bytes.
#[derive(Debug)]
pub struct Bucket {
    rate: Rate,
    frames: f64,
    bytes: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: Rate, now: Instant) -> Self {
        Self {
            rate,
            frames: rate.frames,
            bytes: rate.bytes,
            at: now,
        }
    }

    /// Take one frame of `len` bytes; returns how long to wait before reading it
    /// (zero when within the rate). A frame larger than a second's bytes is let
    /// through once the bucket is full, so nothing is refused for size here.
    pub fn take(&mut self, len: usize, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.frames = (self.frames + elapsed * self.rate.frames).min(self.rate.frames);
        self.bytes = (self.bytes + elapsed * self.rate.bytes).min(self.rate.bytes);
        let len = (len as f64).min(self.rate.bytes);
        self.frames -= 1.0;
        self.bytes -= len;
        let wait_frames = (-self.frames).max(0.0) / self.rate.frames;
        let wait_bytes = (-self.bytes).max(0.0) / self.rate.bytes;
        Duration::from_secs_f64(wait_frames.max(wait_bytes))
    }
}

/// The configured rates and the per-user buckets they fill.
#[derive(Clone, Debug)]
pub struct RateLimits {
    /// Per connection.
    pub connection: Rate,
    /// Per user, over all their connections.
    pub user: Rate,
    users: Arc<Mutex<HashMap<String, Bucket>>>,
}

impl RateLimits {
    /// Limits with these rates.
    pub fn new(connection: Rate, user: Rate) -> Self {
        Self {
            connection,
            user,
            users: Arc::default(),
        }
    }

    /// Charge a frame to a user's bucket; returns how long to wait.
    pub fn take_user(&self, user: &str, len: usize, now: Instant) -> Duration {
        let mut users = self.users.lock().expect("rate limit lock");
        // Idle users' buckets are full again; dropping them keeps the map small.
        if users.len() > 10_000 {
            users.retain(|_, b| now.saturating_duration_since(b.at) < Duration::from_secs(2));
        }
        users
            .entry(user.to_owned())
            .or_insert_with(|| Bucket::new(self.user, now))
            .take(len, now)
    }
}

/// How many refused logins from one address are written to the audit log per
/// minute; the rest are only counted, so that a stream of bad tokens cannot fill
/// the disk.
pub const AUDITED_REFUSALS_PER_MINUTE: u32 = 10;

/// Counts refused logins per address, minute by minute.
#[derive(Clone, Debug, Default)]
pub struct LoginRefusals {
    by_address: Arc<Mutex<HashMap<std::net::IpAddr, (Instant, u32)>>>,
}

impl LoginRefusals {
    /// Count a refusal from `address`; whether it should be audited.
    pub fn audit(&self, address: std::net::IpAddr, now: Instant) -> bool {
        let mut map = self.by_address.lock().expect("refusals lock");
        if map.len() > 10_000 {
            map.retain(|_, (since, _)| {
                now.saturating_duration_since(*since) < Duration::from_secs(60)
            });
        }
        let (since, count) = map.entry(address).or_insert((now, 0));
        if now.saturating_duration_since(*since) >= Duration::from_secs(60) {
            *since = now;
            *count = 0;
        }
        *count += 1;
        *count <= AUDITED_REFUSALS_PER_MINUTE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_lets_a_burst_through_then_paces_to_the_rate() {
        let now = Instant::now();
        let mut b = Bucket::new(
            Rate {
                frames: 10.0,
                bytes: 1000.0,
            },
            now,
        );
        for _ in 0..10 {
            assert_eq!(b.take(10, now), Duration::ZERO);
        }
        let wait = b.take(10, now);
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        // Bytes limit too: a second's bytes at once, then wait for more.
        let later = now + Duration::from_secs(5);
        assert_eq!(b.take(1000, later), Duration::ZERO);
        assert!(b.take(500, later) >= Duration::from_millis(499));
    }

    #[test]
    fn refused_logins_are_audited_up_to_a_limit_per_address_and_minute() {
        let refusals = LoginRefusals::default();
        let now = Instant::now();
        let a: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let b: std::net::IpAddr = "10.0.0.2".parse().unwrap();
        let audited = (0..50).filter(|_| refusals.audit(a, now)).count();
        assert_eq!(audited, AUDITED_REFUSALS_PER_MINUTE as usize);
        assert!(refusals.audit(b, now), "another address has its own count");
        assert!(
            refusals.audit(a, now + Duration::from_secs(61)),
            "a new minute"
        );
    }
}
