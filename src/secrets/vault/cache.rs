//! The in-memory cache of reads, and the health the last call to Vault showed.

use std::time::Instant;

use super::{CacheEntry, VaultBackend, lock};
use crate::secrets::{BackendHealth, SecretError, SecretVersion};

impl VaultBackend {
    /// A cached read: fresh only, or (`stale`) of any age.
    pub(super) fn cached(
        &self,
        path: &str,
        version: Option<u64>,
        stale: bool,
    ) -> Option<SecretVersion> {
        let cache = lock(&self.cache);
        let entry = cache.get(&(path.to_string(), version))?;
        (stale || entry.stored.elapsed() < self.cache_ttl).then(|| entry.value.clone())
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
