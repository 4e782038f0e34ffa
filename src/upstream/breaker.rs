//! Fast-fail while the central service is down: a circuit breaker over connect failures and timeouts.
//!
//! Closed, it costs one atomic load per request. After `--breaker-failures` consecutive connect
//! failures or timeouts it opens: requests fail at once (503 + `Retry-After`) for a cool-down
//! that starts at 1 s and doubles after every failed probe, up to 30 s. When the cool-down is
//! over, one request at a time goes through as a probe (half-open): an answer of any status
//! closes the breaker, a connect failure or timeout opens it again. A probe that ends neither
//! way (a reset, the client leaving) only frees the probe's place for the next request.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The first cool-down after the breaker opens.
pub const FIRST_COOL_DOWN: Duration = Duration::from_secs(1);
/// The longest cool-down, reached by doubling after failed probes.
pub const LAST_COOL_DOWN: Duration = Duration::from_secs(30);

/// The breaker's state, as `/readyz` and the metrics see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    /// Failing fast until the cool-down ends.
    Open,
    /// The cool-down is over: the next request probes.
    HalfOpen,
}

#[derive(Debug)]
pub struct Breaker {
    /// Consecutive failures that open it; 0 = never.
    threshold: u32,
    epoch: Instant,
    failures: AtomicU32,
    /// Milliseconds since `epoch` until which requests fail fast; 0 while closed.
    open_until_ms: AtomicU64,
    cool_down_ms: AtomicU64,
    probing: AtomicBool,
    opened: AtomicU64,
    closed: AtomicU64,
    rejected: AtomicU64,
}

/// Counters for the metrics endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerStats {
    pub state: State,
    /// Times it went from closed (or a failed probe) to open.
    pub opened: u64,
    /// Times a probe closed it.
    pub closed: u64,
    /// Requests answered 503 without being sent.
    pub rejected: u64,
}

/// How a request was let through; report its outcome with [`Breaker::record`].
#[derive(Debug)]
pub enum Pass<'a> {
    Normal,
    /// The one probe of a half-open breaker; frees its place when dropped.
    Probe(Probe<'a>),
}

#[derive(Debug)]
pub struct Probe<'a>(&'a Breaker);

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        self.0.probing.store(false, Ordering::Release);
    }
}

/// What the central service did with a request that was let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It answered (any status).
    Answered,
    /// No connection, or no answer in time.
    Failed,
    /// Neither (a reset, a malformed answer, nothing sent).
    Other,
}

impl Breaker {
    pub fn new(threshold: u32) -> Self {
        Breaker {
            threshold,
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            cool_down_ms: AtomicU64::new(millis(FIRST_COOL_DOWN)),
            probing: AtomicBool::new(false),
            opened: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        millis(self.epoch.elapsed()).max(1)
    }

    /// Lets a request through, or says in how many seconds to retry.
    pub fn pass(&self) -> Result<Pass<'_>, u64> {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return Ok(Pass::Normal);
        }
        let now = self.now_ms();
        if now < until {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return Err((until - now).div_ceil(1000));
        }
        if self
            .probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(Pass::Probe(Probe(self)));
        }
        self.rejected.fetch_add(1, Ordering::Relaxed);
        Err(1)
    }

    /// Takes in what happened to a request [`pass`](Self::pass) let through.
    pub fn record(&self, pass: Pass<'_>, outcome: Outcome) {
        match (pass, outcome) {
            (_, Outcome::Other) => {}
            (Pass::Normal, Outcome::Answered) => {
                // A load first: the hot path writes nothing shared.
                if self.failures.load(Ordering::Relaxed) != 0 {
                    self.failures.store(0, Ordering::Relaxed);
                }
            }
            (Pass::Normal, Outcome::Failed) => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if self.threshold != 0 && failures >= self.threshold {
                    let until = self.now_ms() + self.cool_down_ms.load(Ordering::Relaxed);
                    let was = self.open_until_ms.compare_exchange(
                        0,
                        until,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                    if was.is_ok() {
                        self.opened.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(failures, "central auth service failing: breaker open");
                    }
                }
            }
            (Pass::Probe(probe), Outcome::Answered) => {
                self.failures.store(0, Ordering::Relaxed);
                self.cool_down_ms
                    .store(millis(FIRST_COOL_DOWN), Ordering::Relaxed);
                self.open_until_ms.store(0, Ordering::Release);
                self.closed.fetch_add(1, Ordering::Relaxed);
                tracing::info!("central auth service answered a probe: breaker closed");
                drop(probe);
            }
            (Pass::Probe(probe), Outcome::Failed) => {
                let cool_down = self
                    .cool_down_ms
                    .load(Ordering::Relaxed)
                    .saturating_mul(2)
                    .min(millis(LAST_COOL_DOWN));
                self.cool_down_ms.store(cool_down, Ordering::Relaxed);
                self.open_until_ms
                    .store(self.now_ms() + cool_down, Ordering::Release);
                self.opened.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(cool_down_ms = cool_down, "breaker probe failed: open again");
                drop(probe);
            }
        }
    }

    pub fn state(&self) -> State {
        match self.open_until_ms.load(Ordering::Acquire) {
            0 => State::Closed,
            until if self.now_ms() < until => State::Open,
            _ => State::HalfOpen,
        }
    }

    pub fn stats(&self) -> BreakerStats {
        BreakerStats {
            state: self.state(),
            opened: self.opened.load(Ordering::Relaxed),
            closed: self.closed.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(breaker: &Breaker) {
        let pass = breaker.pass().expect("let through");
        breaker.record(pass, Outcome::Failed);
    }

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures_only() {
        let breaker = Breaker::new(3);
        fail(&breaker);
        fail(&breaker);
        let pass = breaker.pass().expect("closed");
        breaker.record(pass, Outcome::Answered);
        fail(&breaker);
        fail(&breaker);
        assert_eq!(breaker.state(), State::Closed, "an answer reset the count");
        fail(&breaker);
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(breaker.pass().err(), Some(1), "1 s cool-down");
        assert_eq!(
            breaker.stats(),
            BreakerStats {
                state: State::Open,
                opened: 1,
                closed: 0,
                rejected: 1
            }
        );
    }

    #[test]
    fn half_open_lets_one_probe_through_and_an_answer_closes_it() {
        let breaker = Breaker::new(1);
        fail(&breaker);
        // End the cool-down without sleeping.
        breaker.open_until_ms.store(1, Ordering::Release);
        assert_eq!(breaker.state(), State::HalfOpen);
        let probe = breaker.pass().expect("the probe");
        assert!(matches!(probe, Pass::Probe(_)));
        assert_eq!(breaker.pass().err(), Some(1), "one probe at a time");
        breaker.record(probe, Outcome::Answered);
        assert_eq!(breaker.state(), State::Closed);
        assert!(matches!(breaker.pass(), Ok(Pass::Normal)));
        assert_eq!(breaker.stats().closed, 1);
    }

    #[test]
    fn failed_probes_double_the_cool_down_up_to_30s() {
        let breaker = Breaker::new(1);
        fail(&breaker);
        for expected in [2, 4, 8, 16, 30, 30] {
            breaker.open_until_ms.store(1, Ordering::Release);
            let probe = breaker.pass().expect("the probe");
            breaker.record(probe, Outcome::Failed);
            assert_eq!(breaker.pass().err(), Some(expected));
        }
    }

    #[test]
    fn a_probe_that_ends_otherwise_frees_its_place() {
        let breaker = Breaker::new(1);
        fail(&breaker);
        breaker.open_until_ms.store(1, Ordering::Release);
        drop(breaker.pass().expect("the probe")); // the client left
        let probe = breaker.pass().expect("another probe");
        breaker.record(probe, Outcome::Other);
        assert!(matches!(breaker.pass(), Ok(Pass::Probe(_))));
    }

    #[test]
    fn zero_never_opens() {
        let breaker = Breaker::new(0);
        for _ in 0..100 {
            fail(&breaker);
        }
        assert_eq!(breaker.state(), State::Closed);
    }
}
