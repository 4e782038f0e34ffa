//! The process as Prometheus' standard `process_*` metrics see it, read from /proc at scrape time (Linux; elsewhere they are left out).

use std::time::{SystemTime, UNIX_EPOCH};

/// Linux reports CPU times and start time in USER_HZ ticks, fixed at 100 on every architecture
/// the kernel exposes to user space (`sysconf(_SC_CLK_TCK)`).
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Default, Clone, Copy)]
pub struct Process {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
}

/// What /proc says about this process now; `None` where /proc is not there.
#[allow(clippy::cast_precision_loss)] // tick counts and epoch seconds stay far below 2^52
pub fn read() -> Option<Process> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: fields after it are
    // counted from the last ')'.
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after.split_ascii_whitespace().collect();
    // `after` starts at field 3 (state): field n is at index n - 3.
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let ticks = |n| field(n).map_or(0.0, |t| t as f64 / TICKS_PER_SECOND);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_ascii_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as u64);
    Some(Process {
        cpu_seconds: ticks(14) + ticks(15),
        resident_bytes: kib("VmRSS:"),
        virtual_bytes: kib("VmSize:"),
        open_fds,
        max_fds: max_open_files(),
        start_time_seconds: boot_time().map(|boot| boot + ticks(22)),
    })
}

/// The soft limit on open files, from /proc/self/limits.
fn max_open_files() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_ascii_whitespace().nth(3)?.parse().ok()
}

/// Seconds since the epoch at boot, from /proc/stat's `btime`.
#[allow(clippy::cast_precision_loss)] // epoch seconds stay far below 2^52
fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // A boot time in the future would be a broken clock: leave the metric out.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    (btime <= now).then_some(btime as f64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_memory_cpu_and_fds() {
        let p = super::read().expect("/proc on Linux");
        assert!(p.resident_bytes > 1024 * 1024, "{p:?}");
        assert!(p.open_fds >= 3, "{p:?}");
        assert!(p.max_fds.is_some_and(|m| m >= p.open_fds), "{p:?}");
        assert!(p.start_time_seconds.is_some_and(|t| t > 1.6e9), "{p:?}");
    }
}
