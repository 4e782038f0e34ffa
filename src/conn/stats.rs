//! Client connections of the whole process: the `--max-connections` cap every listener takes from, and the counters (plain atomics, touched once per connection) kept whether or not metrics are on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::park;

/// Client connections as `/metrics` reports them, and the cap on them.
#[derive(Debug)]
pub struct ConnStats {
    /// One permit per connection under `--max-connections`, shared by every worker's listener.
    pub(super) permits: Arc<Semaphore>,
    /// Whether one accept loop already runs the heap trimmer (it is process-wide).
    trimming: AtomicBool,
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
    /// No connection yet, at most `max_connections` at once.
    pub fn new(max_connections: u32) -> Self {
        ConnStats {
            permits: Arc::new(Semaphore::new(
                usize::try_from(max_connections).unwrap_or(usize::MAX),
            )),
            trimming: AtomicBool::new(false),
            accepted: AtomicU64::default(),
            closed: AtomicU64::default(),
            at_cap: AtomicU64::default(),
            header_timeouts: AtomicU64::default(),
            park: park::Stats::default(),
        }
    }

    /// True for the first caller only: the accept loop that runs the trimmer.
    pub(super) fn claim_trimmer(&self) -> bool {
        !self.trimming.swap(true, Ordering::Relaxed)
    }

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
