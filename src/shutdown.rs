//! The one shutdown every part listens to: requested (readyz 503), closing (connections drain), cutting (the grace ran out).
//!
//! mini-redis's `Shutdown` is the model: one owner moves the phase forward, and every part that
//! must react holds a clone and asks, or waits. The accept loop (`conn`) owns the phases after
//! the first; `readyz` and `/metrics` read [`Shutdown::is_requested`], the access log
//! [`Shutdown::is_cutting`], and connections wait for [`Shutdown::closing`].

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

/// How far the shutdown has gone; each phase includes the ones before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    /// Serving.
    Running = 0,
    /// SIGTERM/SIGINT arrived: `/readyz` answers 503 while the listener still accepts
    /// (`--shutdown-delay`).
    Requested = 1,
    /// The listener is closed; every connection drains (idle ones close at once).
    Closing = 2,
    /// `--shutdown-grace` ran out: the connections still open are cut, and a request dropped
    /// unanswered from now on was cut by us, not left by its client.
    Cutting = 3,
}

/// A handle on the process's shutdown; clones share it.
#[derive(Debug, Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The phase, for the cheap questions asked on hot paths (one relaxed load).
    phase: AtomicU8,
    /// The phase, for those that wait.
    changed: watch::Sender<Phase>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            inner: Arc::new(Inner {
                phase: AtomicU8::new(Phase::Running as u8),
                changed: watch::Sender::new(Phase::Running),
            }),
        }
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the shutdown forward to `phase` (never back).
    pub fn advance(&self, phase: Phase) {
        let before = self.inner.phase.fetch_max(phase as u8, Ordering::Relaxed);
        if before < phase as u8 {
            self.inner.changed.send_if_modified(|now| {
                let moved = *now < phase;
                if moved {
                    *now = phase;
                }
                moved
            });
        }
    }

    /// Whether the shutdown has reached `phase`.
    pub fn reached(&self, phase: Phase) -> bool {
        self.inner.phase.load(Ordering::Relaxed) >= phase as u8
    }

    /// A shutdown was asked for: `/readyz` answers 503.
    pub fn is_requested(&self) -> bool {
        self.reached(Phase::Requested)
    }

    /// The grace ran out: requests still open are cut by the proxy.
    pub fn is_cutting(&self) -> bool {
        self.reached(Phase::Cutting)
    }

    /// Resolves once the shutdown reaches `phase`.
    pub fn wait_for(&self, phase: Phase) -> impl std::future::Future<Output = ()> + Send + 'static {
        wait(self.inner.changed.subscribe(), phase)
    }

    /// Resolves once connections are to drain.
    pub fn closing(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.wait_for(Phase::Closing)
    }
}

async fn wait(mut changed: watch::Receiver<Phase>, phase: Phase) {
    // An error means every `Shutdown` handle is gone (the server is being torn down): that
    // counts as reached, so nothing waits for a phase no one can announce any more.
    let _ = changed.wait_for(|now| *now >= phase).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn phases_only_move_forward_and_wake_those_waiting() {
        let shutdown = Shutdown::new();
        assert!(!shutdown.is_requested());
        let closing = tokio::spawn(shutdown.closing());
        shutdown.advance(Phase::Requested);
        assert!(shutdown.is_requested() && !shutdown.reached(Phase::Closing));
        shutdown.advance(Phase::Closing);
        tokio::time::timeout(std::time::Duration::from_secs(5), closing)
            .await
            .expect("woken")
            .expect("no panic");
        shutdown.advance(Phase::Requested);
        assert!(shutdown.reached(Phase::Closing), "never back");
        // A phase already reached resolves at once.
        shutdown.closing().await;
        assert!(!shutdown.is_cutting());
    }
}
