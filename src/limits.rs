//! Limits on what one client uid can take from the agent, as plain data structures the actors
//! share: the connection slots kept for administrators ([`connection_slot`]), connections per
//! uid ([`UidConnections`]) and requests per second per uid ([`RateLimiter`], a token bucket per
//! uid). How many refusals get an audit record of their own is the audit writer's business
//! ([`crate::audit::summary`]).
//!
//! Every structure is bounded: per-uid entries exist only while they matter (open connections;
//! a bucket that is not full), so a process cycling through uids cannot grow the agent's memory
//! beyond one entry per uid that is actually connected or recently active.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Open connections per uid, with a cap.
#[derive(Debug, Default)]
pub struct UidConnections {
    open: Mutex<HashMap<u32, usize>>,
}

impl UidConnections {
    /// Counts one more connection for `uid` unless it already has `max` (0 = no cap); returns
    /// the number it had when refused.
    pub fn try_open(&self, uid: u32, max: usize) -> Result<(), usize> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(uid).or_insert(0);
        // `max` > 0 here means `n` > 0: a refused uid always has an entry worth keeping.
        if max > 0 && *n >= max {
            return Err(*n);
        }
        *n += 1;
        Ok(())
    }

    /// One connection of `uid` closed.
    pub fn close(&self, uid: u32) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&uid);
            }
        }
    }

    /// Connections `uid` has open (for the tests).
    #[cfg(test)]
    pub fn count(&self, uid: u32) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&uid).copied().unwrap_or(0)
    }
}

/// Whether one more connection may open when `open` are open already (this one not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// It may.
    Free,
    /// `max_connections` are open: no one may.
    Full,
    /// Only the reserved slots are left, and the peer is not an administrator.
    Reserved,
}

/// Decides [`Slot`] for a connection arriving with `open` connections open, of at most `max`,
/// the last `reserved` of them for administrators. `is_admin` is asked only when the answer
/// depends on it (in the reserved slots), so its cost is paid only then.
pub fn connection_slot(
    open: usize,
    max: usize,
    reserved: usize,
    is_admin: impl FnOnce() -> bool,
) -> Slot {
    if open >= max {
        Slot::Full
    } else if open >= max.saturating_sub(reserved) && !is_admin() {
        Slot::Reserved
    } else {
        Slot::Free
    }
}

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn full(burst: u32, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: f64::from(burst),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant, rate: u32, burst: u32) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(burst));
        self.last = self.last.max(now);
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant, rate: u32, burst: u32) -> bool {
        self.refill(now, rate, burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket would be full at `now` (nothing to remember about this uid).
    pub fn is_full(&self, now: Instant, rate: u32, burst: u32) -> bool {
        let mut b = *self;
        b.refill(now, rate, burst);
        b.tokens >= f64::from(burst)
    }
}

/// Requests per second per uid: one [`TokenBucket`] per uid.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<u32, TokenBucket>>,
}

/// Buckets kept before full ones (uids that have been quiet) are forgotten.
const PRUNE_ABOVE: usize = 1024;

impl RateLimiter {
    /// Whether `uid` may make one more request now; `rate` 0 means no limit.
    pub fn allow(&self, uid: u32, rate: u32, burst: u32, now: Instant) -> bool {
        if rate == 0 {
            return true;
        }
        let burst = burst.max(1);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= PRUNE_ABOVE && !buckets.contains_key(&uid) {
            buckets.retain(|_, b| !b.is_full(now, rate, burst));
        }
        buckets
            .entry(uid)
            .or_insert_with(|| TokenBucket::full(burst, now))
            .try_take(now, rate, burst)
    }

    /// Uids remembered (for the tests).
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_per_uid_cap_holds_and_frees_on_close() {
        let c = UidConnections::default();
        assert!(c.try_open(7, 2).is_ok());
        assert!(c.try_open(7, 2).is_ok());
        assert_eq!(c.try_open(7, 2), Err(2));
        assert!(c.try_open(8, 2).is_ok(), "another uid has its own count");
        c.close(7);
        assert!(c.try_open(7, 2).is_ok());
        assert_eq!(c.count(7), 2);
        c.close(7);
        c.close(7);
        c.close(7);
        assert_eq!(c.count(7), 0, "never below zero");
        assert!(c.try_open(9, 0).is_ok(), "0 = no cap");
        assert_eq!(c.try_open(10, 0).map_err(|_| ()), Ok(()));
    }

    #[test]
    fn the_last_slots_are_for_administrators_only() {
        let never = || -> bool { panic!("asked whether admin outside the reserved slots") };
        assert_eq!(connection_slot(0, 10, 4, never), Slot::Free);
        assert_eq!(connection_slot(5, 10, 4, never), Slot::Free);
        assert_eq!(connection_slot(6, 10, 4, || false), Slot::Reserved);
        assert_eq!(connection_slot(6, 10, 4, || true), Slot::Free);
        assert_eq!(connection_slot(9, 10, 4, || true), Slot::Free);
        assert_eq!(
            connection_slot(10, 10, 4, never),
            Slot::Full,
            "not even an admin"
        );
        assert_eq!(connection_slot(11, 10, 4, never), Slot::Full);
        assert_eq!(
            connection_slot(9, 10, 0, never),
            Slot::Free,
            "0 reserves none"
        );
        assert_eq!(connection_slot(0, 1, 5, || false), Slot::Reserved);
    }

    #[test]
    fn no_entry_is_kept_for_a_uid_without_connections() {
        let c = UidConnections::default();
        for uid in 0..10_000 {
            c.try_open(uid, 1).unwrap();
            c.close(uid);
        }
        assert!(c.open.lock().unwrap().is_empty());
    }

    #[test]
    fn a_bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::full(3, t0);
        assert!(b.try_take(t0, 10, 3));
        assert!(b.try_take(t0, 10, 3));
        assert!(b.try_take(t0, 10, 3));
        assert!(!b.try_take(t0, 10, 3), "burst spent");
        assert!(!b.try_take(t0 + Duration::from_millis(50), 10, 3));
        assert!(
            b.try_take(t0 + Duration::from_millis(100), 10, 3),
            "one token per 100 ms"
        );
        assert!(b.is_full(t0 + Duration::from_secs(10), 10, 3));
        assert!(!b.try_take(t0, 10, 3), "time going backwards adds nothing");
    }

    #[test]
    fn the_limiter_is_per_uid_and_zero_means_off() {
        let r = RateLimiter::default();
        let t = Instant::now();
        assert!(r.allow(1, 1, 1, t));
        assert!(!r.allow(1, 1, 1, t));
        assert!(r.allow(2, 1, 1, t), "uid 2 has its own bucket");
        for _ in 0..1000 {
            assert!(r.allow(3, 0, 0, t));
        }
    }

    #[test]
    fn quiet_uids_are_forgotten_when_many_are_tracked() {
        let r = RateLimiter::default();
        let t = Instant::now();
        for uid in 0..(PRUNE_ABOVE as u32 + 10) {
            r.allow(uid, 100, 10, t);
        }
        assert!(r.tracked() <= PRUNE_ABOVE + 10);
        let later = t + Duration::from_secs(5);
        r.allow(1_000_000, 100, 10, later);
        assert_eq!(r.tracked(), 1, "full buckets pruned, the new one kept");
    }
}
