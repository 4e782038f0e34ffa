//! The open-file limit: raised from the soft to the hard limit at start-up, and a warning when even that cannot hold `--max-connections`.
//!
//! Every client connection, upstream connection and the listener is a file descriptor. Most
//! systems start processes with a soft limit of 1024 and a far higher hard limit (systemd:
//! 524288), so with the default `--max-connections 25000` the proxy met `EMFILE` at about
//! 1,010 connections: accepts failed (and backed off) while the cap was nowhere near. A
//! process may raise its own soft limit up to the hard one without privilege; nginx does it
//! with `worker_rlimit_nofile`, and Go's runtime does it for every program since 1.19.

use std::io;

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Descriptors that are not connections: stdio, the listener, the runtime's epoll and wakers,
/// the log writer, the dev service's listener, a CA file while it is read; with room to spare.
pub const RESERVED_FDS: u64 = 64;

/// What each worker beyond the first adds (`--worker-threads`): its listener, its runtime's
/// epoll and waker, and a client accepted at the cap and waiting for a slot.
pub const FDS_PER_EXTRA_WORKER: u64 = 4;

/// The descriptors besides connections, for `workers` worker threads.
pub fn reserved(workers: usize) -> u64 {
    let extra = u64::try_from(workers.saturating_sub(1)).unwrap_or(u64::MAX);
    RESERVED_FDS.saturating_add(extra.saturating_mul(FDS_PER_EXTRA_WORKER))
}

/// A soft and hard limit; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// What start-up did to the limit.
#[derive(Debug)]
pub struct Raised {
    pub before: Limit,
    /// The soft limit in force now.
    pub soft: Option<u64>,
    /// Why raising failed, if it did (a sandbox may forbid `setrlimit`).
    pub error: Option<io::Error>,
}

/// The soft limit to ask for: the hard one, when it is higher than the soft one.
pub fn target(limit: Limit) -> Option<Option<u64>> {
    match (limit.soft, limit.hard) {
        (Some(soft), Some(hard)) if soft < hard => Some(Some(hard)),
        (Some(_), None) => Some(None),
        _ => None,
    }
}

/// Descriptors the configuration can use at once: client connections, upstream connections
/// (twice with `--dev`, whose in-process service accepts each of them; every worker's pool
/// together stays within `--upstream-max-connections`), and [`reserved`].
pub fn needed(max_connections: u32, upstream: u64, dev: bool, workers: usize) -> u64 {
    let upstream = if dev { upstream * 2 } else { upstream };
    u64::from(max_connections) + upstream + reserved(workers)
}

/// Whether `soft` falls short of `needed`.
pub fn short(soft: Option<u64>, needed: u64) -> bool {
    soft.is_some_and(|soft| soft < needed)
}

/// Raises this process's `RLIMIT_NOFILE` soft limit to its hard limit.
pub fn raise_nofile() -> Raised {
    let current = getrlimit(Resource::Nofile);
    let before = Limit {
        soft: current.current,
        hard: current.maximum,
    };
    let Some(soft) = target(before) else {
        return Raised {
            before,
            soft: before.soft,
            error: None,
        };
    };
    let wanted = Rlimit {
        current: soft,
        maximum: current.maximum,
    };
    match setrlimit(Resource::Nofile, wanted) {
        Ok(()) => Raised {
            before,
            soft,
            error: None,
        },
        Err(e) => Raised {
            before,
            soft: before.soft,
            error: Some(e.into()),
        },
    }
}

impl Raised {
    /// One warning line if the limit in force cannot hold `needed` descriptors.
    /// `upstream` is `--upstream-max-connections`; `needed` is [`needed`]'s answer.
    pub fn warn_if_short(&self, max_connections: u32, upstream: u64, needed: u64) {
        let reserved = needed
            .saturating_sub(u64::from(max_connections))
            .saturating_sub(upstream);
        if !short(self.soft, needed) {
            return;
        }
        let limit = self.soft.unwrap_or(u64::MAX);
        let hard = self
            .before
            .hard
            .map_or("unlimited".to_owned(), |h| h.to_string());
        let error = self.error.as_ref().map(ToString::to_string);
        tracing::warn!(
            limit,
            hard = %hard,
            needed,
            max_connections,
            upstream_connections = upstream,
            setrlimit_error = error,
            "open-file limit {limit} is below --max-connections + upstream connections + {reserved} = {needed}; \
             past about {} clients, accepts fail with EMFILE: raise the hard limit (ulimit -Hn, LimitNOFILE=) \
             or lower --max-connections",
            limit.saturating_sub(upstream + reserved),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one_and_never_lowered() {
        let limit = |soft, hard| Limit { soft, hard };
        assert_eq!(
            target(limit(Some(1024), Some(524_288))),
            Some(Some(524_288))
        );
        assert_eq!(target(limit(Some(1024), None)), Some(None));
        assert_eq!(target(limit(Some(4096), Some(4096))), None);
        assert_eq!(target(limit(None, None)), None);
    }

    #[test]
    fn connections_plus_upstream_plus_reserve_must_fit() {
        assert_eq!(needed(25_000, 256, false, 1), 25_320);
        assert_eq!(needed(25_000, 256, true, 1), 25_576);
        assert_eq!(needed(25_000, 256, false, 32), 25_320 + 31 * 4);
        assert!(short(Some(1024), needed(25_000, 256, false, 1)));
        assert!(!short(Some(524_288), needed(25_000, 256, false, 1)));
        assert!(!short(None, u64::MAX));
        assert!(!short(Some(1344), needed(1024, 256, false, 1)));
        assert!(short(Some(1343), needed(1024, 256, false, 1)));
    }
}
