//! The in-memory cache of reads, what it has done (hits, misses, stale answers: counted with
//! relaxed atomics, since every read passes here), and the health the last call to Vault showed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::{CacheEntry, VaultBackend, lock};
use crate::secrets::{BackendHealth, CacheStats, SecretError, SecretVersion};

/// What the cache has done since the backend was built, for `agent status --verbose`.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Reads answered from a fresh entry, without asking Vault.
    hits: AtomicU64,
    /// Reads that found nothing fresh and so asked Vault.
    misses: AtomicU64,
    /// Answers served from an entry past `cache_ttl` because Vault was unavailable.
    stale: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl VaultBackend {
    /// A cached read: fresh only, or (`stale`) of any age.
    ///
    /// Counts what it finds: a fresh lookup is a hit or a miss; a stale lookup that finds a
    /// value is a stale answer served (call it only to serve what it returns).
    pub(super) fn cached(
        &self,
        path: &str,
        version: Option<u64>,
        stale: bool,
    ) -> Option<SecretVersion> {
        let found = {
            let cache = lock(&self.cache);
            cache
                .get(&(path.to_string(), version))
                .filter(|entry| stale || entry.stored.elapsed() < self.cache_ttl)
                .map(|entry| entry.value.clone())
        };
        let counter = match (stale, found.is_some()) {
            (false, true) => &self.counters.hits,
            (false, false) => &self.counters.misses,
            (true, true) => &self.counters.stale,
            (true, false) => return None,
        };
        Counters::bump(counter);
        found
    }

    pub(super) fn remember(&self, path: &str, version: Option<u64>, value: &SecretVersion) {
        if self.cache_ttl.is_zero() && !self.stale_if_error {
            return;
        }
        let mut cache = lock(&self.cache);
        if !self.stale_if_error {
            let ttl = self.cache_ttl;
            cache.retain(|_, e| e.stored.elapsed() < ttl);
        }
        cache.insert(
            (path.to_string(), version),
            CacheEntry {
                value: value.clone(),
                stored: Instant::now(),
            },
        );
    }

    pub(super) fn forget(&self, path: &str) {
        lock(&self.cache).retain(|(p, _), _| p != path);
    }

    /// The cache's figures now: its entries (counted under its lock) and the counters.
    pub(super) fn stats(&self) -> CacheStats {
        let (entries, fresh) = {
            let cache = lock(&self.cache);
            let fresh = cache
                .values()
                .filter(|e| e.stored.elapsed() < self.cache_ttl)
                .count();
            (cache.len(), fresh)
        };
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            entries: entries as u64,
            fresh: fresh as u64,
            hits: count(&self.counters.hits),
            misses: count(&self.counters.misses),
            stale_served: count(&self.counters.stale),
            ttl: self.cache_ttl.as_secs_f64(),
            stale_if_error: self.stale_if_error,
        }
    }

    /// Records how a call to Vault went, for [`SecretBackend::health`].
    pub(super) fn note<T>(&self, result: &Result<T, SecretError>) {
        let (healthy, last_error) = match result {
            // Vault answered: a missing secret, a bad request, or its policy saying no to one
            // path does not make the backend unhealthy.
            Ok(_)
            | Err(SecretError::NotFound(_) | SecretError::Invalid(_) | SecretError::Denied(_)) => {
                (true, None)
            }
            Err(e) => (false, Some(e.to_string())),
        };
        *lock(&self.health) = Some(BackendHealth {
            backend: "vault".into(),
            healthy,
            last_error,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::secrets::vault::{VaultAuth, VaultConfig};
    use crate::secrets::{SecretMap, SecretString};

    /// A backend that is never contacted: only its cache is used.
    fn backend(ttl: u64, stale_if_error: bool) -> VaultBackend {
        let mut config = VaultConfig::new(VaultAuth::TokenFile("/nonexistent/token".into()));
        config.address = "http://127.0.0.1:1".into();
        config.cache_ttl = Duration::from_secs(ttl);
        config.stale_if_error = stale_if_error;
        VaultBackend::new(config).expect("backend")
    }

    fn value() -> SecretVersion {
        let data: SecretMap = [("pw".to_string(), SecretString::new("v".into()))].into();
        SecretVersion {
            version: 1,
            created_time: "2026-01-01T00:00:00Z".into(),
            data,
        }
    }

    fn age(b: &VaultBackend, by: Duration) {
        for e in lock(&b.cache).values_mut() {
            e.stored = e
                .stored
                .checked_sub(by)
                .expect("uptime longer than the age");
        }
    }

    #[test]
    fn lookups_are_counted_by_what_they_found() {
        let b = backend(60, true);
        assert_eq!(
            b.stats(),
            CacheStats {
                ttl: 60.0,
                stale_if_error: true,
                ..CacheStats::default()
            }
        );
        assert!(b.cached("a", None, false).is_none(), "empty: a miss");
        b.remember("a", None, &value());
        assert_eq!(b.cached("a", None, false), Some(value()), "a hit");
        assert!(b.cached("a", Some(1), false).is_none(), "another version");
        let s = b.stats();
        assert_eq!((s.entries, s.fresh, s.hits, s.misses), (1, 1, 1, 2));
        age(&b, Duration::from_secs(61));
        assert!(b.cached("a", None, false).is_none(), "expired: a miss");
        assert_eq!(b.cached("a", None, true), Some(value()), "served stale");
        assert!(b.cached("b", None, true).is_none(), "nothing to serve");
        let s = b.stats();
        assert_eq!(
            (s.entries, s.fresh, s.hits, s.misses, s.stale_served),
            (1, 0, 1, 3, 1),
            "{s:?}"
        );
    }

    #[test]
    fn without_a_cache_every_read_is_a_miss() {
        let b = backend(0, false);
        for _ in 0..3 {
            assert!(b.cached("a", None, false).is_none());
            b.remember("a", None, &value());
        }
        let s = b.stats();
        assert_eq!(
            (s.entries, s.hits, s.misses, s.ttl),
            (0, 0, 3, 0.0),
            "{s:?}"
        );
    }
}
