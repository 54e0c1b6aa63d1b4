//! What one uid may hold and ask for: the registry's per-uid book.
//!
//! Three limits, each a `capability_engine` key:
//!
//! - `max_active_per_uid`: active capabilities one uid may hold; a grant beyond it is refused.
//! - `max_retained_per_uid`: expired and revoked capabilities kept for listing (for an hour
//!   after expiry); beyond it, that uid's oldest are forgotten at once, so that a uid flooding
//!   short-lived grants cannot make the agent keep them all for an hour.
//! - `grant_rate_per_uid` / `grant_burst_per_uid`: grants per second (a token bucket), for
//!   everyone but administrators.
//!
//! Each uid's ids are kept in two queues: `live` (granted, maybe still active) and `retained`
//! (known to be expired or revoked, oldest first). Ids move from the first to the second when
//! `live` is counted, which happens only when its length reaches the active cap, or doubles
//! since it was last counted: so a grant costs O(1) amortised, however many a uid holds.
//! A grant admitted but not yet booked (its signature is being made off the event loop) is
//! counted as `signing` from [`UidBook::admit`] to [`UidBook::granted`] or
//! [`UidBook::release`], so the active cap stays exact while grants are in flight.
//! Plain data over the registry's map; the `CapabilityRegistry` actor calls it.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use jiff::Timestamp;

use super::record::{CapStatus, Record};
use crate::limits::RateLimiter;

/// The per-uid limits (see the module).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UidLimits {
    /// Active capabilities one uid may hold; 0 = no cap.
    pub max_active: usize,
    /// Expired and revoked capabilities kept per uid.
    pub max_retained: usize,
    /// Grants per second per uid; 0 = no limit.
    pub grant_rate: u32,
    /// Grants at once before the rate applies.
    pub grant_burst: u32,
}

impl From<&crate::config::CapabilityEngineConfig> for UidLimits {
    fn from(c: &crate::config::CapabilityEngineConfig) -> Self {
        UidLimits {
            max_active: c.max_active_per_uid,
            max_retained: c.max_retained_per_uid,
            grant_rate: c.grant_rate_per_uid,
            grant_burst: c.grant_burst_per_uid,
        }
    }
}

/// One uid's ids.
#[derive(Debug, Default)]
struct Held {
    /// Granted, maybe still active, in grant order.
    live: VecDeque<String>,
    /// Expired or revoked, oldest first.
    retained: VecDeque<String>,
    /// `live.len()` after it was last counted.
    counted: usize,
    /// Admitted, not yet granted or released.
    signing: usize,
}

/// The book (see the module).
#[derive(Debug, Default)]
pub struct UidBook {
    limits: UidLimits,
    by_uid: HashMap<u32, Held>,
    rates: RateLimiter,
}

impl UidBook {
    /// A book of `caps` (as restored from the store) under `limits`: each uid's capabilities
    /// in the order they were issued, those already expired or revoked beyond
    /// `limits.max_retained` returned as ids to forget.
    pub fn new(
        limits: UidLimits,
        caps: &HashMap<String, Record>,
        now: Timestamp,
    ) -> (UidBook, Vec<String>) {
        let mut book = UidBook {
            limits,
            ..Default::default()
        };
        let mut ordered: Vec<(&String, &Record)> = caps.iter().collect();
        ordered.sort_by(|a, b| (&a.1.cap.issued_at, a.0).cmp(&(&b.1.cap.issued_at, b.0)));
        for (id, r) in ordered {
            let held = book.by_uid.entry(r.holder.uid).or_default();
            if r.status(now) == CapStatus::Active {
                held.live.push_back(id.clone());
            } else {
                held.retained.push_back(id.clone());
            }
        }
        let mut forget = Vec::new();
        for held in book.by_uid.values_mut() {
            held.counted = held.live.len();
            while held.retained.len() > limits.max_retained {
                forget.extend(held.retained.pop_front());
            }
        }
        (book, forget)
    }

    /// Moves `uid`'s ids that are no longer active from `live` to `retained`; the active count.
    fn count(&mut self, uid: u32, caps: &HashMap<String, Record>, now: Timestamp) -> usize {
        let Some(held) = self.by_uid.get_mut(&uid) else {
            return 0;
        };
        let mut still = VecDeque::with_capacity(held.live.len());
        for id in held.live.drain(..) {
            match caps.get(&id).map(|r| r.status(now)) {
                Some(CapStatus::Active) => still.push_back(id),
                Some(_) => held.retained.push_back(id),
                None => {}
            }
        }
        held.live = still;
        held.counted = held.live.len();
        held.counted
    }

    /// Whether `uid` may get one more grant now: within its grant rate (unless `is_admin`) and
    /// below its active cap, counting grants admitted and not yet booked; otherwise the reason,
    /// naming the key. An admitted grant is reserved until [`UidBook::granted`] or
    /// [`UidBook::release`].
    pub fn admit(
        &mut self,
        uid: u32,
        is_admin: bool,
        caps: &HashMap<String, Record>,
        now: Timestamp,
        clock: Instant,
    ) -> Result<(), String> {
        let UidLimits {
            max_active,
            grant_rate,
            grant_burst,
            ..
        } = self.limits;
        if !is_admin && !self.rates.allow(uid, grant_rate, grant_burst, clock) {
            return Err(format!(
                "uid {uid} asks for capabilities faster than {grant_rate} a second (bursts of \
                 {grant_burst}; capability_engine.grant_rate_per_uid); slow down"
            ));
        }
        let (live, counted, signing) = self
            .by_uid
            .get(&uid)
            .map_or((0, 0, 0), |h| (h.live.len(), h.counted, h.signing));
        let cap_reached = max_active > 0 && live + signing >= max_active;
        if cap_reached || live >= (2 * counted).max(64) {
            let active = self.count(uid, caps, now) + signing;
            if max_active > 0 && active >= max_active {
                return Err(format!(
                    "uid {uid} already holds {active} active capabilities, the most one uid may \
                     hold (capability_engine.max_active_per_uid); revoke some or let them expire"
                ));
            }
        }
        self.by_uid.entry(uid).or_default().signing += 1;
        Ok(())
    }

    /// Gives back the reservation of a grant admitted for `uid` that will not be booked.
    pub fn release(&mut self, uid: u32) {
        if let Some(held) = self.by_uid.get_mut(&uid) {
            held.signing = held.signing.saturating_sub(1);
        }
    }

    /// Books a grant of `id` to `uid`; returns the ids of that uid's oldest expired or revoked
    /// capabilities beyond `max_retained`, which the registry forgets.
    pub fn granted(&mut self, uid: u32, id: String) -> Vec<String> {
        let held = self.by_uid.entry(uid).or_default();
        held.signing = held.signing.saturating_sub(1);
        held.live.push_back(id);
        let mut forget = Vec::new();
        while held.retained.len() > self.limits.max_retained {
            forget.extend(held.retained.pop_front());
        }
        forget
    }

    /// Forgets ids that are no longer in `caps` (after a sweep or a withdrawal); counts every
    /// uid again, so retention applies to what expired meanwhile. The ids to forget.
    pub fn sweep(&mut self, caps: &HashMap<String, Record>, now: Timestamp) -> Vec<String> {
        let uids: Vec<u32> = self.by_uid.keys().copied().collect();
        let mut forget = Vec::new();
        for uid in uids {
            self.count(uid, caps, now);
            let max_retained = self.limits.max_retained;
            let Some(held) = self.by_uid.get_mut(&uid) else {
                continue;
            };
            held.retained.retain(|id| caps.contains_key(id));
            while held.retained.len() > max_retained {
                forget.extend(held.retained.pop_front());
            }
            if held.live.is_empty() && held.retained.is_empty() && held.signing == 0 {
                self.by_uid.remove(&uid);
            }
        }
        forget
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::record::Revocation;
    use crate::protocol::types::{Capability, Holder};
    use jiff::SignedDuration;

    fn record(uid: u32, issued: i64, ttl: i64, revoked: bool) -> Record {
        let at = Timestamp::from_second(issued).unwrap();
        Record {
            cap: Capability {
                id: String::new(),
                kind: "read".into(),
                resource: "svc:/x".into(),
                actions: vec!["read".into()],
                identity: String::new(),
                issuer: "i".into(),
                issued_at: crate::timefmt::rfc3339(at),
                expires_at: String::new(),
                ttl: ttl as u64,
                max_uses: 0,
                used_count: 0,
                signature: String::new(),
                metadata: Default::default(),
                constraints: None,
                status: None,
                holder: None,
            },
            holder: Holder {
                uid,
                gid: uid,
                user: None,
                unit: None,
            },
            expires_at: at + SignedDuration::from_secs(ttl),
            revoked: revoked.then_some(Revocation {
                at,
                reason: None,
                by_uid: uid,
            }),
        }
    }

    const T0: i64 = 1_700_000_000;

    fn limits(max_active: usize, max_retained: usize) -> UidLimits {
        UidLimits {
            max_active,
            max_retained,
            grant_rate: 0,
            grant_burst: 0,
        }
    }

    #[test]
    fn expired_and_revoked_beyond_the_quota_are_forgotten_oldest_first() {
        let now = Timestamp::from_second(T0 + 10).unwrap();
        let mut caps = HashMap::new();
        for i in 0..10 {
            // Ids 0–5 expired at T0 + i + 1; 6–7 revoked; 8–9 active.
            let r = record(7, T0 + i, if i < 6 { 1 } else { 100 }, (6..8).contains(&i));
            caps.insert(format!("c{i}"), r);
        }
        let (mut book, forget) = UidBook::new(limits(0, 3), &caps, now);
        assert_eq!(forget, vec!["c0", "c1", "c2", "c3", "c4"]);
        for id in &forget {
            caps.remove(id);
        }
        // Each grant forgets what lies beyond the quota.
        assert!(book.admit(7, false, &caps, now, Instant::now()).is_ok());
        assert!(book.granted(7, "c10".into()).is_empty());
        caps.get_mut("c8").unwrap().revoked = Some(Revocation {
            at: now,
            reason: None,
            by_uid: 7,
        });
        assert_eq!(book.sweep(&caps, now), vec!["c5".to_string()]);
    }

    #[test]
    fn the_active_cap_counts_what_is_still_active() {
        let now = Timestamp::from_second(T0 + 10).unwrap();
        let mut caps = HashMap::new();
        let (mut book, _) = UidBook::new(limits(3, 100), &caps, now);
        for i in 0..3 {
            assert!(book.admit(7, false, &caps, now, Instant::now()).is_ok());
            caps.insert(format!("c{i}"), record(7, T0 + i, 100, false));
            book.granted(7, format!("c{i}"));
        }
        let e = book
            .admit(7, false, &caps, now, Instant::now())
            .unwrap_err();
        assert!(
            e.contains("3 active") && e.contains("max_active_per_uid"),
            "{e}"
        );
        // Another uid is not affected; one expiry makes room.
        assert!(book.admit(8, false, &caps, now, Instant::now()).is_ok());
        caps.insert("c0".into(), record(7, T0, 1, false));
        assert!(book.admit(7, false, &caps, now, Instant::now()).is_ok());
    }

    #[test]
    fn admitted_grants_not_yet_booked_count_against_the_active_cap() {
        let now = Timestamp::from_second(T0 + 10).unwrap();
        let caps = HashMap::new();
        let (mut book, _) = UidBook::new(limits(2, 100), &caps, now);
        // Two grants admitted, both still being signed: a third must wait, even after a sweep.
        assert!(book.admit(7, false, &caps, now, Instant::now()).is_ok());
        assert!(book.admit(7, false, &caps, now, Instant::now()).is_ok());
        assert!(book.sweep(&caps, now).is_empty());
        let e = book
            .admit(7, false, &caps, now, Instant::now())
            .unwrap_err();
        assert!(e.contains("2 active"), "{e}");
        // One is given back (its signing failed): room for one more, not two.
        book.release(7);
        assert!(book.admit(7, false, &caps, now, Instant::now()).is_ok());
        assert!(book.admit(7, false, &caps, now, Instant::now()).is_err());
    }

    #[test]
    fn grants_are_rate_limited_except_for_administrators() {
        let now = Timestamp::from_second(T0).unwrap();
        let caps = HashMap::new();
        let l = UidLimits {
            grant_rate: 1,
            grant_burst: 2,
            ..limits(0, 10)
        };
        let (mut book, _) = UidBook::new(l, &caps, now);
        let t = Instant::now();
        assert!(book.admit(7, false, &caps, now, t).is_ok());
        assert!(book.admit(7, false, &caps, now, t).is_ok());
        let e = book.admit(7, false, &caps, now, t).unwrap_err();
        assert!(e.contains("grant_rate_per_uid"), "{e}");
        assert!(book.admit(0, true, &caps, now, t).is_ok());
        assert!(book.admit(0, true, &caps, now, t).is_ok());
        assert!(book.admit(0, true, &caps, now, t).is_ok());
        assert!(
            book.admit(7, false, &caps, now, t + std::time::Duration::from_secs(1))
                .is_ok()
        );
    }
}
