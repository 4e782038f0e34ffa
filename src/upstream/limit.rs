//! The cap on requests in flight to the central service (`--upstream-max-connections`) and its bounded wait queue.
//!
//! Each request to the central service holds a [`Permit`] from before it takes a connection
//! until its answer's body ends, so busy upstream connections (and HTTP/2 streams) never exceed
//! the cap, whatever clients do: a flood of requests, or of streams reset as soon as they are
//! sent, waits here instead of dialling the central service thousands of times. Idle pooled
//! connections are ones an earlier permit used, so they stay within the cap too.
//!
//! The fast path is one compare-and-swap to take a permit and one subtraction to return it;
//! only a request that finds the cap reached touches the queue.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// Requests that may wait for a permit, per permit: past it, 503 at once.
pub const QUEUE_PER_PERMIT: usize = 4;

#[derive(Debug)]
pub struct Limit {
    max: usize,
    in_flight: AtomicUsize,
    queue: usize,
    waiting: AtomicUsize,
    freed: Notify,
}

/// Why no permit came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The wait queue is full.
    QueueFull,
    /// Waited the whole allowance.
    TimedOut,
}

/// One request's place among those in flight; returned when dropped.
#[derive(Debug)]
pub struct Permit(Arc<Limit>);

impl Limit {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Limit {
            max,
            in_flight: AtomicUsize::new(0),
            queue: max.saturating_mul(QUEUE_PER_PERMIT),
            waiting: AtomicUsize::new(0),
            freed: Notify::new(),
        })
    }

    /// Requests holding a permit, and requests waiting for one (for `/metrics`).
    pub fn load(&self) -> (usize, usize) {
        (
            self.in_flight.load(Ordering::Relaxed),
            self.waiting.load(Ordering::Relaxed),
        )
    }

    /// A permit at once, if the cap is not reached.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        // SeqCst with `Permit::drop`: a waiter that counted itself in `waiting` and then finds
        // the cap reached is seen by the next release, which wakes it (no lost wake-up).
        let mut n = self.in_flight.load(Ordering::SeqCst);
        loop {
            if n >= self.max {
                return None;
            }
            match self
                .in_flight
                .compare_exchange_weak(n, n + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Some(Permit(self.clone())),
                Err(now) => n = now,
            }
        }
    }

    /// A permit, waiting in the queue for at most `patience` if the cap is reached.
    pub async fn acquire(self: &Arc<Self>, patience: Duration) -> Result<Permit, Full> {
        if let Some(permit) = self.try_acquire() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Full::QueueFull);
        }
        let queued = Queued(self);
        let waited = tokio::time::timeout(patience, queued.wait()).await;
        waited.map_err(|_| Full::TimedOut)
    }
}

/// A request in the queue; leaves it when dropped.
struct Queued<'a>(&'a Arc<Limit>);

impl Queued<'_> {
    async fn wait(&self) -> Permit {
        loop {
            let notified = self.0.freed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if let Some(permit) = self.0.try_acquire() {
                return permit;
            }
            notified.await;
        }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let limit = &self.0;
        limit.in_flight.fetch_sub(1, Ordering::SeqCst);
        if limit.waiting.load(Ordering::SeqCst) > 0 {
            limit.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn permits_stop_at_the_cap_and_come_back_when_dropped() {
        let limit = Limit::new(2);
        let a = limit.try_acquire().expect("first");
        let _b = limit.try_acquire().expect("second");
        assert!(limit.try_acquire().is_none(), "the cap is 2");
        assert_eq!(limit.in_flight.load(Ordering::SeqCst), 2);
        drop(a);
        assert!(
            limit.try_acquire().is_some(),
            "a dropped permit is returned"
        );
    }

    #[tokio::test]
    async fn a_waiter_gets_the_next_permit_returned() {
        let limit = Limit::new(1);
        let held = limit.try_acquire().expect("first");
        let waiter = {
            let limit = limit.clone();
            tokio::spawn(async move { limit.acquire(Duration::from_secs(5)).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(limit.waiting.load(Ordering::SeqCst), 1);
        drop(held);
        assert!(waiter.await.expect("joined"), "the waiter got the permit");
        assert_eq!(limit.waiting.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn past_the_queue_or_the_patience_there_is_no_permit() {
        let limit = Limit::new(1);
        let _held = limit.try_acquire().expect("first");
        let patient: Vec<_> = (0..QUEUE_PER_PERMIT)
            .map(|_| {
                let limit = limit.clone();
                tokio::spawn(async move { limit.acquire(Duration::from_millis(300)).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            limit.acquire(Duration::from_secs(5)).await.err(),
            Some(Full::QueueFull)
        );
        for waiter in patient {
            assert_eq!(waiter.await.expect("joined").err(), Some(Full::TimedOut));
        }
        assert_eq!(limit.waiting.load(Ordering::SeqCst), 0, "the queue empties");
    }
}
