//! A governor state store bounded in entries: a flood of new keys evicts the least recently
//! throttled ones instead of growing memory, and idle keys can be swept out.
//!
//! governor's own keyed stores (a `HashMap` or `DashMap`) grow with every key ever seen until
//! `retain_recent` runs. This one is split into shards, each under its own mutex and holding at
//! most `max_keys / shards` keys; a new key in a full shard first evicts the quarter of that
//! shard with the earliest theoretical arrival times (TAT). Those are the keys closest to a
//! fresh state (every key whose TAT is past is exactly a fresh state), so eviction forgets the
//! least: at worst a client under attack regains part of its budget early. The scan is paid
//! once per quarter-shard of new keys.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use governor::nanos::Nanos;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::state::StateStore;

/// Shards of a store with room for at least this many keys per shard.
const SHARDS: usize = 16;

pub struct BoundedStore<K> {
    shards: Box<[Mutex<HashMap<K, u64>>]>,
    per_shard: usize,
    hasher: RandomState,
    evicted: Evictions,
}

/// How many keys stores have forgotten to stay within their bound (idle keys swept out are
/// not counted: forgetting those loses nothing). Shared by the stores given a clone.
#[derive(Clone, Default)]
pub struct Evictions(Arc<AtomicU64>);

impl Evictions {
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl<K: Hash + Eq + Clone> BoundedStore<K> {
    /// A store that never holds more than `max_keys` keys (at least 1).
    pub fn new(max_keys: usize, evicted: Evictions) -> Self {
        let max_keys = max_keys.max(1);
        let shards = if max_keys >= SHARDS * 4 { SHARDS } else { 1 };
        BoundedStore {
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: max_keys / shards,
            hasher: RandomState::new(),
            evicted,
        }
    }

    fn shard(&self, key: &K) -> MutexGuard<'_, HashMap<K, u64>> {
        let hash = self.hasher.hash_one(key);
        // The index is reduced modulo the shard count first: it fits any usize.
        let index = usize::try_from(hash % self.shards.len() as u64).unwrap_or_default();
        // A panic while holding the lock leaves a valid map (every write is one insert).
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Removes the quarter (at least one) of `map` with the earliest TATs; returns how many went.
fn evict_earliest<K: Hash + Eq>(map: &mut HashMap<K, u64>) -> usize {
    let mut tats: Vec<u64> = map.values().copied().collect();
    if tats.is_empty() {
        return 0;
    }
    let nth = (tats.len() / 4).max(1) - 1;
    let (_, threshold, _) = tats.select_nth_unstable(nth);
    let threshold = *threshold;
    let before = map.len();
    map.retain(|_, tat| *tat > threshold);
    before - map.len()
}

impl<K: Hash + Eq + Clone> StateStore for BoundedStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut shard = self.shard(key);
        let old = shard.get(key).copied();
        let (outcome, tat) = f(old.map(Nanos::from))?;
        if old.is_none() && shard.len() >= self.per_shard {
            self.evicted.add(evict_earliest(&mut shard));
        }
        shard.insert(key.clone(), tat.as_u64());
        Ok(outcome)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for BoundedStore<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        let drop_below = drop_below.as_u64();
        for shard in &self.shards {
            let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
            map.retain(|_, tat| *tat >= drop_below);
            // Give a flood's memory back once the keys are gone.
            if map.capacity() > 2 * map.len().max(self.per_shard / 8) {
                map.shrink_to_fit();
            }
        }
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(store: &BoundedStore<u64>, key: u64, tat: u64) {
        let _: Result<(), ()> = store.measure_and_replace(&key, |_| Ok(((), Nanos::from(tat))));
    }

    #[test]
    fn never_holds_more_than_max_keys() {
        let evicted = Evictions::default();
        let store = BoundedStore::new(1000, evicted.clone());
        for key in 0..100_000 {
            put(&store, key, key);
            assert!(store.len() <= 1000, "{} keys after {key}", store.len());
        }
        assert_eq!(evicted.count(), 100_000 - store.len() as u64);
    }

    #[test]
    fn eviction_keeps_the_latest_tats() {
        let store = BoundedStore::new(8, Evictions::default()); // one shard of 8
        for key in 0..8 {
            put(&store, key, 100 + key);
        }
        put(&store, 99, 1_000);
        // The earliest quarter (TATs 100 and 101) made room for the new key.
        assert_eq!(store.len(), 7);
        let map = store.shards[0].lock().unwrap();
        let mut kept: Vec<u64> = map.keys().copied().collect();
        kept.sort_unstable();
        assert_eq!(kept, vec![2, 3, 4, 5, 6, 7, 99]);
    }

    #[test]
    fn a_refused_attempt_stores_nothing() {
        let store = BoundedStore::<u64>::new(8, Evictions::default());
        let refused: Result<(), ()> = store.measure_and_replace(&1, |_| Err(()));
        assert_eq!(refused, Err(()));
        assert!(store.is_empty());
    }

    #[test]
    fn retain_recent_drops_idle_keys() {
        let store = BoundedStore::new(100, Evictions::default());
        for key in 0..10 {
            put(&store, key, key * 10);
        }
        store.retain_recent(Nanos::from(50));
        assert_eq!(store.len(), 5);
    }
}
