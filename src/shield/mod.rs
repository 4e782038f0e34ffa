//! What keeps duplicate work off the central service: coalescing of /protected and /refresh, and the /protected micro-cache.
//!
//! The pieces are pure data structures; `routes/shared.rs` puts them around the upstream call.
//! The breaker, which is about the upstream connection, lives in `upstream/breaker.rs`.

pub mod answer;
pub mod cache;
pub mod coalesce;
pub mod jwt;
pub mod key;

use crate::config::ShieldArgs;

pub use cache::Cache;
pub use coalesce::Flights;
pub use key::{Domain, Key, Keyer};

/// The per-process shields, built from the flags.
pub struct Shield {
    pub keyer: Keyer,
    /// `--protected-coalesce on`.
    pub protected: Option<Flights>,
    /// `--protected-cache-ttl` above 0s.
    pub cache: Option<Cache>,
    /// `--refresh-coalesce on`.
    pub refresh: Option<Flights>,
}

/// Counters for the metrics endpoint; all zero for a feature that is off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShieldStats {
    /// `GET /protected` requests answered with another request's upstream answer (or failure).
    pub protected_coalesced: u64,
    /// `POST /refresh` requests answered with another request's upstream answer (or failure).
    pub refresh_coalesced: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_entries: u64,
    /// Weighed bytes: body and headers, plus 512 per entry.
    pub cache_bytes: u64,
}

impl Shield {
    pub fn new(args: &ShieldArgs) -> Result<Self, String> {
        Ok(Shield {
            keyer: Keyer::random()?,
            protected: args.protected_coalesce.is_on().then(Flights::default),
            cache: Cache::new(args),
            refresh: args.refresh_coalesce.is_on().then(Flights::default),
        })
    }

    pub fn stats(&self) -> ShieldStats {
        let (cache_entries, cache_bytes) = self.cache.as_ref().map_or((0, 0), Cache::size);
        ShieldStats {
            protected_coalesced: self.protected.as_ref().map_or(0, Flights::waited),
            refresh_coalesced: self.refresh.as_ref().map_or(0, Flights::waited),
            cache_hits: self.cache.as_ref().map_or(0, Cache::hits),
            cache_misses: self.cache.as_ref().map_or(0, Cache::misses),
            cache_entries,
            cache_bytes,
        }
    }
}
