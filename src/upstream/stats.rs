//! What the upstream layer counts about itself (new connections, retries), for `/metrics`: plain atomics, touched only on rare events.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a request was sent again (see `Upstream::exchange`).
#[derive(Debug, Clone, Copy)]
pub enum Retry {
    /// Not written: the pooled connection had closed.
    Unsent,
    /// Written on a reused connection the central service had closed; idempotent, so resent.
    Stale,
    /// HTTP/2 said the stream was never processed.
    Refused,
}

#[derive(Debug, Default)]
pub struct Counters {
    connected: AtomicU64,
    connect_failed: AtomicU64,
    retries: [AtomicU64; 3],
}

impl Counters {
    pub(super) fn connected(&self, ok: bool) {
        let counter = if ok {
            &self.connected
        } else {
            &self.connect_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn retried(&self, why: Retry) {
        self.retries[why as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// The upstream layer as a scrape sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// New connections made, and attempts that failed (dial, TLS or HTTP/2 preface).
    pub connected: u64,
    pub connect_failed: u64,
    /// Retries: not written, stale reused connection, HTTP/2 refused stream.
    pub retries: [(&'static str, u64); 3],
    /// Requests holding a place among those in flight (each one HTTP/1 connection or h2 stream).
    pub in_flight: u64,
    /// Requests waiting for such a place.
    pub waiting: u64,
    /// Idle pooled HTTP/1 connections, all workers' pools together.
    pub idle_http1: u64,
    /// Whether a shared HTTP/2 connection is pooled (in any worker's pool).
    pub http2: bool,
}

impl Counters {
    pub(super) fn snapshot(&self) -> Snapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            connected: get(&self.connected),
            connect_failed: get(&self.connect_failed),
            retries: [
                ("unsent", get(&self.retries[Retry::Unsent as usize])),
                ("stale", get(&self.retries[Retry::Stale as usize])),
                ("refused", get(&self.retries[Retry::Refused as usize])),
            ],
            ..Snapshot::default()
        }
    }
}
