//! Gives the heap a burst of connections left free back to the kernel (glibc's `malloc_trim`).
//!
//! glibc's allocator returns freed memory to the kernel only from the top of its heap. After a
//! burst — thousands of connections each served at once, then idle — every connection frees its
//! hyper buffers when it parks, but those holes lie between the small long-lived state of the
//! connections still open, so the process kept the burst's whole peak: 10–21 KiB per held
//! connection, where one opened on its own costs 3–4 (`bench/idle_conns.py … burst`).
//! `malloc_trim(0)` also hands back (`MADV_DONTNEED`) every whole free page inside the heap,
//! and a flood of closed connections goes back to 13–20 MiB instead of 70–96
//! (`bench/flood_rss.py`). Pages that still hold some parked connection's state stay: 2.2–2.8
//! KiB per held connection since that state is made in the accept loop, side by side, and no
//! longer keeps anything of its first request (`accept.rs`, `park.rs`; 6.5–10 KiB before).
//! It walks the allocator's free lists, so it runs only once a burst is over — at least
//! [`BURST`] connections parked or closed since the last trim, and none in the last half
//! second — and never under steady load, where connections neither park nor close.
//!
//! Measured against the alternatives (bench/levers.md, "Idle connections after a burst"):
//! glibc's tunables (`M_TRIM_THRESHOLD`, `M_MMAP_THRESHOLD`) move only the top of the heap
//! (no change); jemalloc kept 3.3 KiB per connection but starts 2 MiB larger and peaks at
//! 11 MiB streaming 100 MiB (the limit is 8), and mimalloc is worse on both.

use std::sync::Arc;
use std::time::Duration;

use super::ConnStats;

/// Connections parked or closed since the last trim that make it worth one.
const BURST: u64 = 512;
/// How often the counts are looked at.
const EVERY: Duration = Duration::from_millis(500);

/// Trims the heap after each burst, until the runtime stops.
pub async fn run(stats: Arc<ConnStats>) {
    let idled = || {
        let (accepted, open, _, _) = stats.snapshot();
        stats.parked() + accepted.saturating_sub(open)
    };
    let mut bursts = Bursts::new(idled());
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if bursts.ended(idled()) {
            // Off the worker: a walk of every arena's free lists must not stall the clients
            // this runtime serves (with several workers it is one of them).
            let _ = tokio::task::spawn_blocking(release_free_memory).await;
        }
    }
}

/// Tells, from a running count of connections that parked or closed, when a burst has ended:
/// at least [`BURST`] since the last trim, and none since the last look (so one trim, after
/// the last of them, rather than several while they are still parking).
#[derive(Debug)]
struct Bursts {
    at_trim: u64,
    at_look: u64,
}

impl Bursts {
    fn new(count: u64) -> Self {
        Bursts {
            at_trim: count,
            at_look: count,
        }
    }

    fn ended(&mut self, count: u64) -> bool {
        let quiet = count == self.at_look;
        self.at_look = count;
        if quiet && count.saturating_sub(self.at_trim) >= BURST {
            self.at_trim = count;
            return true;
        }
        false
    }
}

/// Hands the allocator's whole free pages back to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_memory() {
    extern "C" {
        // glibc ≥ 2.8 (malloc.h): `int malloc_trim(size_t pad)`.
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointer and only rearranges the allocator's own free
    // memory under its own locks; it is safe to call from any thread at any time. The one
    // `unsafe` in the crate, kept for a measured reason: the module doc.
    unsafe {
        malloc_trim(0);
    }
}

/// Elsewhere (musl, macOS) there is no `malloc_trim`; nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_when_a_burst_has_ended() {
        let mut bursts = Bursts::new(10);
        assert!(!bursts.ended(10), "nothing happened");
        assert!(!bursts.ended(10 + BURST), "still parking");
        assert!(bursts.ended(10 + BURST), "quiet after a burst: trim");
        assert!(!bursts.ended(10 + BURST), "nothing new since the trim");
    }

    #[test]
    fn a_trickle_never_trims() {
        let mut bursts = Bursts::new(0);
        for count in 1..BURST {
            assert!(!bursts.ended(count));
            assert!(!bursts.ended(count));
        }
    }

    #[test]
    fn trimming_twice_is_harmless() {
        release_free_memory();
        release_free_memory();
    }
}
