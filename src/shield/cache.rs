//! The opt-in /protected micro-cache: answers by key, each for at most its own TTL, bounded in bytes and entries (moka).
//!
//! moka's TinyLFU admission and per-entry expiry do what a hand-rolled map would get wrong: a
//! flood of one-off tokens cannot push out the hot ones, and expired entries go without a sweep
//! of ours. Each entry weighs its bytes plus `answer::ENTRY_OVERHEAD`, so `--protected-cache-max-bytes`
//! bounds the bytes, and the entries at that over 512.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::header::{CACHE_CONTROL, SET_COOKIE};
use http::{HeaderMap, StatusCode};
use moka::sync::Cache as Moka;
use moka::Expiry;

use super::answer::Answer;
use super::jwt;
use super::key::{BuildKeyHasher, Key};
use crate::config::ShieldArgs;

#[derive(Debug, Clone)]
struct Entry {
    answer: Arc<Answer>,
    ttl: Duration,
}

/// Each entry lives as long as it was given.
struct OwnTtl;

impl Expiry<Key, Entry> for OwnTtl {
    fn expire_after_create(&self, _: &Key, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }
}

pub struct Cache {
    entries: Moka<Key, Entry, BuildKeyHasher>,
    ttl: Duration,
    negative_ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Cache {
    /// The cache `args` ask for; `None` when `--protected-cache-ttl` is 0s.
    pub fn new(args: &ShieldArgs) -> Option<Self> {
        if args.protected_cache_ttl.is_zero() {
            return None;
        }
        let entries = Moka::builder()
            .max_capacity(args.protected_cache_max_bytes)
            .weigher(|_, entry: &Entry| entry.answer.weight())
            .expire_after(OwnTtl)
            .build_with_hasher(BuildKeyHasher::default());
        Some(Cache {
            entries,
            ttl: args.protected_cache_ttl,
            negative_ttl: args
                .protected_cache_negative_ttl
                .min(args.protected_cache_ttl),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    pub fn get(&self, key: Key) -> Option<Arc<Answer>> {
        let found = self.entries.get(&key).map(|entry| entry.answer);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// How long an answer for `token` may be kept: 200 for `--protected-cache-ttl`, 401 for
    /// `--protected-cache-negative-ttl`, neither past the token's `exp`; `None` for anything
    /// else, and for an answer that sets a cookie or says `no-store`/`private`.
    pub fn ttl_for(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        token: &str,
    ) -> Option<Duration> {
        let ttl = match status {
            StatusCode::OK => self.ttl,
            StatusCode::UNAUTHORIZED => self.negative_ttl,
            _ => return None,
        };
        let forbidden = headers.contains_key(SET_COOKIE)
            || headers.get_all(CACHE_CONTROL).iter().any(|value| {
                let value = value.as_bytes().to_ascii_lowercase();
                [&b"no-store"[..], b"private", b"no-cache"]
                    .iter()
                    .any(|word| value.windows(word.len()).any(|w| w == *word))
            });
        if forbidden {
            return None;
        }
        let ttl = match jwt::remaining(token, SystemTime::now()) {
            Some(left) => ttl.min(left),
            None => ttl,
        };
        (!ttl.is_zero()).then_some(ttl)
    }

    pub fn insert(&self, key: Key, answer: Arc<Answer>, ttl: Duration) {
        self.entries.insert(key, Entry { answer, ttl });
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Entries and weighed bytes (moka's counts, updated as its housekeeping runs).
    pub fn size(&self) -> (u64, u64) {
        (self.entries.entry_count(), self.entries.weighted_size())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::HeaderValue;

    use super::*;

    fn cache(ttl: u64) -> Cache {
        let args = ShieldArgs {
            protected_cache_ttl: Duration::from_secs(ttl),
            ..ShieldArgs::default()
        };
        Cache::new(&args).expect("on")
    }

    #[test]
    fn off_at_zero() {
        assert!(Cache::new(&ShieldArgs::default()).is_none());
    }

    #[test]
    fn ttl_by_status_headers_and_exp() {
        let cache = cache(10);
        let plain = HeaderMap::new();
        let ok = StatusCode::OK;
        assert_eq!(
            cache.ttl_for(ok, &plain, "opaque"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            cache.ttl_for(StatusCode::UNAUTHORIZED, &plain, "opaque"),
            Some(Duration::from_secs(1))
        );
        assert_eq!(cache.ttl_for(StatusCode::FORBIDDEN, &plain, "opaque"), None);
        assert_eq!(
            cache.ttl_for(StatusCode::BAD_GATEWAY, &plain, "opaque"),
            None
        );
        for (name, value) in [(SET_COOKIE, "a=b"), (CACHE_CONTROL, "No-Store")] {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_static(value));
            assert_eq!(cache.ttl_for(ok, &headers, "opaque"), None);
        }
        // `{"exp":1}`: long past.
        assert_eq!(cache.ttl_for(ok, &plain, "e30.eyJleHAiOjF9.c2ln"), None);
    }

    #[test]
    fn entries_count_hits_and_misses() {
        let cache = cache(10);
        let key = Key::from_test(3);
        assert!(cache.get(key).is_none());
        let answer = Arc::new(Answer {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"{}"),
        });
        cache.insert(key, answer, Duration::from_secs(10));
        assert_eq!(cache.get(key).expect("cached").body, "{}");
        assert_eq!((cache.hits(), cache.misses()), (1, 1));
        cache.entries.run_pending_tasks();
        assert_eq!(cache.size(), (1, 514));
    }
}
