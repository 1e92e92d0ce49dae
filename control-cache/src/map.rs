//! A bounded map of cached values with freshness, staleness and a generation guard.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Entry<V> {
    value: V,
    expires: Instant,
    /// Marked by an invalidation: kept only as a fallback for when the store is down.
    stale: bool,
}

/// Values by key. The lock is never held across an `.await`.
pub(crate) struct CacheMap<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
    max_entries: usize,
}

/// What a lookup found.
pub(crate) enum Lookup<V> {
    Fresh(V),
    /// Expired or invalidated: refetch, but keep this for when the store fails.
    Stale(V),
    Missing,
}

impl<K: Hash + Eq, V: Clone> CacheMap<K, V> {
    pub(crate) fn new(max_entries: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            max_entries,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry<V>>> {
        // A panic while holding the lock cannot leave a half-written entry (every critical
        // section is a single map operation), so a poisoned map is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(&self, key: &K) -> Lookup<V> {
        match self.lock().get(key) {
            Some(e) if !e.stale && e.expires > Instant::now() => Lookup::Fresh(e.value.clone()),
            Some(e) => Lookup::Stale(e.value.clone()),
            None => Lookup::Missing,
        }
    }

    /// Stores `value` for `ttl`; `stale` stores it as already invalidated (a load raced with
    /// an invalidation, so the value may predate the change).
    pub(crate) fn insert(&self, key: K, value: V, ttl: Duration, stale: bool) {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= self.max_entries && !map.contains_key(&key) {
            map.retain(|_, e| !e.stale && e.expires > now);
            if map.len() >= self.max_entries {
                // Still full of fresh entries: start over rather than track recency per hit.
                map.clear();
            }
        }
        map.insert(
            key,
            Entry {
                value,
                expires: now + ttl,
                stale,
            },
        );
    }

    /// Marks the entries `pred` selects as stale.
    pub(crate) fn mark_stale(&self, mut pred: impl FnMut(&K, &V) -> bool) {
        for (k, e) in self.lock().iter_mut() {
            if pred(k, &e.value) {
                e.stale = true;
            }
        }
    }

    /// Drops the entries `pred` selects.
    pub(crate) fn remove_where(&self, mut pred: impl FnMut(&K, &V) -> bool) {
        self.lock().retain(|k, v| !pred(k, &v.value));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_stale_missing_and_bound() {
        let m = CacheMap::new(2);
        m.insert(1, "a", Duration::from_secs(60), false);
        assert!(matches!(m.get(&1), Lookup::Fresh("a")));
        m.mark_stale(|k, _| *k == 1);
        assert!(matches!(m.get(&1), Lookup::Stale("a")));
        m.insert(2, "b", Duration::ZERO, false);
        assert!(matches!(m.get(&2), Lookup::Stale("b")));
        assert!(matches!(m.get(&3), Lookup::Missing));
        m.insert(3, "c", Duration::from_secs(60), false);
        assert_eq!(m.len(), 1, "stale and expired entries go first when full");
        m.remove_where(|_, _| true);
        assert_eq!(m.len(), 0);
    }
}
