//! Request coalescing: the first request for a key goes upstream, the ones that arrive meanwhile wait for its outcome.
//!
//! A [`Lead`] is the first request's duty to say how its call ended. Nothing is spawned: the
//! leader's own future makes the call, so a leader whose client leaves still cancels its
//! upstream exchange (as every request does). Its `Lead` is dropped with it and tells the
//! waiters [`Outcome::Abandoned`]; one of them becomes the next leader and goes up itself, so a
//! waiter never fails because another client left, and never sends more than it would have
//! without coalescing.
//!
//! Distinct keys (the usual case) cost one short-held lock, a map insert and remove, and one
//! allocation each; the outcome is copied only when someone waits for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tokio::sync::Notify;

use super::answer::Answer;
use super::key::{BuildKeyHasher, Key};
use crate::upstream::UpstreamError;

/// How a leader's call ended, as its waiters see it.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Every waiter answers with a copy.
    Answer(Arc<Answer>),
    /// Every waiter answers with the same failure (a 502/503/504).
    Failed(Arc<UpstreamError>),
    /// The answer was too large to share: each waiter goes up on its own.
    NotShared,
    /// The leader's client left before the outcome: a waiter takes over.
    Abandoned,
}

/// One call in flight and the requests waiting for it.
#[derive(Debug, Default)]
pub struct Flight {
    waiters: AtomicUsize,
    outcome: OnceLock<Outcome>,
    done: Notify,
}

impl Flight {
    /// Waits for the leader's outcome. Cancel-safe; bound it with a timeout.
    pub async fn outcome(&self) -> Outcome {
        loop {
            // Created before the check: `notify_waiters` wakes it even if not yet polled.
            let notified = self.done.notified();
            if let Some(outcome) = self.outcome.get() {
                return outcome.clone();
            }
            notified.await;
        }
    }
}

/// The calls in flight, by key.
#[derive(Debug, Default)]
pub struct Flights {
    map: Mutex<HashMap<Key, Arc<Flight>, BuildKeyHasher>>,
    /// Requests that waited for another's call (the metric "coalesced waiters").
    waited: AtomicU64,
}

/// The first request's role.
pub enum Role<'a> {
    Leader(Lead<'a>),
    Waiter(Arc<Flight>),
}

impl Flights {
    fn map(&self) -> MutexGuard<'_, HashMap<Key, Arc<Flight>, BuildKeyHasher>> {
        // A panic while the lock was held left the map whole (every edit is one call).
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Leads the call for `key`, or waits for the one in flight.
    pub fn join(&self, key: Key) -> Role<'_> {
        let mut map = self.map();
        if let Some(flight) = map.get(&key) {
            flight.waiters.fetch_add(1, Ordering::Relaxed);
            self.waited.fetch_add(1, Ordering::Relaxed);
            return Role::Waiter(flight.clone());
        }
        let flight = Arc::new(Flight::default());
        map.insert(key, flight.clone());
        Role::Leader(Lead {
            flights: self,
            key,
            flight: Some(flight),
        })
    }

    /// Requests that waited for another's call, since start.
    pub fn waited(&self) -> u64 {
        self.waited.load(Ordering::Relaxed)
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        self.map().len()
    }
}

/// The leader's duty to tell its waiters how the call ended; dropped unfinished, it abandons.
pub struct Lead<'a> {
    flights: &'a Flights,
    key: Key,
    flight: Option<Arc<Flight>>,
}

impl Lead<'_> {
    /// Whether anyone waits yet (more may join until [`finish`](Self::finish)).
    pub fn has_waiters(&self) -> bool {
        self.flight
            .as_ref()
            .is_some_and(|f| f.waiters.load(Ordering::Relaxed) > 0)
    }

    /// Ends the flight: later requests start their own; the waiters get `outcome()`, which is
    /// only made if there are any.
    pub fn finish(mut self, outcome: impl FnOnce() -> Outcome) {
        self.land(outcome);
    }

    fn land(&mut self, outcome: impl FnOnce() -> Outcome) {
        let Some(flight) = self.flight.take() else {
            return;
        };
        {
            let mut map = self.flights.map();
            if map.get(&self.key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
                map.remove(&self.key);
            }
        }
        // Waiters join under the map lock: with the flight out of the map, none can come.
        if flight.waiters.load(Ordering::Relaxed) > 0 {
            let _ = flight.outcome.set(outcome());
            flight.done.notify_waiters();
        }
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        self.land(|| Outcome::Abandoned);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::{HeaderMap, StatusCode};

    use super::*;

    fn answer(body: &'static str) -> Outcome {
        Outcome::Answer(Arc::new(Answer {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: bytes::Bytes::from_static(body.as_bytes()),
        }))
    }

    fn lead(role: Role<'_>) -> Lead<'_> {
        match role {
            Role::Leader(lead) => lead,
            Role::Waiter(_) => panic!("expected to lead"),
        }
    }

    fn wait(role: Role<'_>) -> Arc<Flight> {
        match role {
            Role::Waiter(flight) => flight,
            Role::Leader(_) => panic!("expected to wait"),
        }
    }

    #[tokio::test]
    async fn waiters_get_the_leaders_outcome_and_the_key_is_free_after() {
        let flights = Flights::default();
        let key = Key::from_test(7);
        let leader = lead(flights.join(key));
        let (a, b) = (wait(flights.join(key)), wait(flights.join(key)));
        assert!(leader.has_waiters());
        leader.finish(|| answer("one"));
        for flight in [a, b] {
            let Outcome::Answer(got) = flight.outcome().await else {
                panic!("an answer");
            };
            assert_eq!(got.body, "one");
        }
        assert_eq!(flights.waited(), 2);
        assert_eq!(flights.in_flight(), 0);
        drop(lead(flights.join(key)));
    }

    #[tokio::test]
    async fn a_dropped_leader_abandons_and_its_waiter_can_lead() {
        let flights = Flights::default();
        let key = Key::from_test(1);
        let leader = lead(flights.join(key));
        let waiter = wait(flights.join(key));
        let waiting = tokio::time::timeout(Duration::from_secs(1), waiter.outcome());
        drop(leader);
        assert!(matches!(waiting.await, Ok(Outcome::Abandoned)));
        let next = lead(flights.join(key));
        next.finish(|| unreachable!("nobody waits: no copy is made"));
    }

    #[tokio::test]
    async fn distinct_keys_do_not_wait_for_each_other() {
        let flights = Flights::default();
        let _one = lead(flights.join(Key::from_test(1)));
        let _two = lead(flights.join(Key::from_test(2)));
        assert_eq!(flights.in_flight(), 2);
        assert_eq!(flights.waited(), 0);
    }
}
