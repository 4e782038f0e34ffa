//! The flags that shield the central service: /protected and /refresh coalescing, the /protected micro-cache, the breaker.

use std::time::Duration;

use clap::ValueEnum;

use super::{parse_duration, parse_size};

/// A feature switch written `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Toggle {
    On,
    Off,
}

impl Toggle {
    pub fn is_on(self) -> bool {
        self == Toggle::On
    }
}

/// Flattened into the proxy's `Cli`, and kept as they are in its `Config`.
#[derive(clap::Args, Debug, Clone)]
pub struct ShieldArgs {
    /// Concurrent GET /protected with the same bearer token share one upstream call (on/off).
    #[arg(long, env = "PROTECTED_COALESCE", default_value = "on")]
    pub protected_coalesce: Toggle,

    /// Cache 200 and 401 answers of /protected this long per token (never past a JWT's exp); 0s is off.
    #[arg(long, env = "PROTECTED_CACHE_TTL", default_value = "0s", value_parser = parse_duration)]
    pub protected_cache_ttl: Duration,

    /// Longest a cached 401 of /protected is served (at most --protected-cache-ttl).
    #[arg(long, env = "PROTECTED_CACHE_NEGATIVE_TTL", default_value = "1s", value_parser = parse_duration)]
    pub protected_cache_negative_ttl: Duration,

    /// Memory the /protected cache may hold (bytes, or KiB/MiB); each entry counts at least 512 bytes.
    #[arg(long, env = "PROTECTED_CACHE_MAX_BYTES", default_value = "32MiB", value_parser = parse_size)]
    pub protected_cache_max_bytes: u64,

    /// Concurrent POST /refresh with the same refresh_token share one upstream call (on/off).
    #[arg(long, env = "REFRESH_COALESCE", default_value = "on")]
    pub refresh_coalesce: Toggle,

    /// Consecutive connect failures or timeouts of the central service that open the breaker
    /// (requests then fail fast with 503 for 1s, growing to 30s); 0 never opens it.
    #[arg(long, env = "BREAKER_FAILURES", default_value_t = 5)]
    pub breaker_failures: u32,
}

impl Default for ShieldArgs {
    fn default() -> Self {
        ShieldArgs {
            protected_coalesce: Toggle::On,
            protected_cache_ttl: Duration::ZERO,
            protected_cache_negative_ttl: Duration::from_secs(1),
            protected_cache_max_bytes: 32 * 1024 * 1024,
            refresh_coalesce: Toggle::On,
            breaker_failures: 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::Cli;

    #[test]
    fn defaults_match_the_documented_ones() {
        let cli = Cli::try_parse_from(["auth-proxy"]).unwrap();
        let parsed = format!("{:?}", cli.shield);
        assert_eq!(parsed, format!("{:?}", super::ShieldArgs::default()));
    }

    #[test]
    fn switches_and_durations_parse() {
        let cli = Cli::try_parse_from([
            "auth-proxy",
            "--protected-coalesce",
            "off",
            "--protected-cache-ttl",
            "2s",
            "--refresh-coalesce",
            "off",
            "--breaker-failures",
            "0",
        ])
        .unwrap();
        assert!(!cli.shield.protected_coalesce.is_on());
        assert!(!cli.shield.refresh_coalesce.is_on());
        assert_eq!(cli.shield.protected_cache_ttl.as_secs(), 2);
        assert_eq!(cli.shield.breaker_failures, 0);
        assert!(Cli::try_parse_from(["auth-proxy", "--protected-cache-ttl", "5"]).is_err());
    }
}
