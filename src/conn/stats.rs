//! Client connection counters the accept loop and the parking layer keep whether or not metrics are on: plain atomics, touched once per connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::park;

/// Client connections as `/metrics` reports them.
#[derive(Debug, Default)]
pub struct ConnStats {
    accepted: AtomicU64,
    closed: AtomicU64,
    at_cap: AtomicU64,
    header_timeouts: AtomicU64,
    /// Kept by `park` itself.
    pub(super) park: park::Stats,
}

/// Counts a connection open until dropped.
#[derive(Debug)]
pub struct OpenConn(Arc<ConnStats>);

impl Drop for OpenConn {
    fn drop(&mut self) {
        self.0.closed.fetch_add(1, Ordering::Relaxed);
    }
}

impl ConnStats {
    /// A connection was accepted; it counts as open while the guard lives.
    pub fn accepted(self: &Arc<Self>) -> OpenConn {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        OpenConn(self.clone())
    }

    /// The accept loop found `--max-connections` reached and stopped accepting until one closed.
    pub fn hit_cap(&self) {
        self.at_cap.fetch_add(1, Ordering::Relaxed);
    }

    /// A client was closed for not sending a request head in time (`--client-header-timeout`).
    pub fn header_timeout(&self) {
        self.header_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// (accepted, open, times at the cap, header timeouts, parked HTTP/1 connections included).
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let accepted = get(&self.accepted);
        let open = accepted.saturating_sub(get(&self.closed));
        (
            accepted,
            open,
            get(&self.at_cap),
            get(&self.header_timeouts) + self.park.header_timeouts(),
        )
    }

    /// Idle HTTP/1 connections parked now (hyper's state dropped, the socket kept).
    pub fn parked_now(&self) -> u64 {
        self.park.parked_now()
    }

    /// Times an idle HTTP/1 connection was parked.
    pub fn parked(&self) -> u64 {
        self.park.parked()
    }

    /// Times a parked connection resumed.
    pub fn resumed(&self) -> u64 {
        self.park.resumed()
    }
}
