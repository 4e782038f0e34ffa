//! The dev service's command-line flags (each with an env var) and the parsers behind them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::parse_duration;

/// RFC 7518 §3.2: an HS256 key MUST be at least as long as the hash output (256 bits).
const MIN_SECRET_BYTES: usize = 32;

/// Flags of the development central auth service; flattened into `auth-proxy --dev` and
/// `auth-proxy dev-auth`.
#[derive(clap::Args, Debug, Clone)]
pub struct DevAuthArgs {
    /// HS256 signing key for the dev service's tokens, at least 32 bytes.
    /// Default: a fresh random key from the OS for every process, so tokens die with it.
    #[arg(
        long = "jwt-secret",
        env = "DEV_JWT_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        value_parser = JwtSecret::parse
    )]
    pub jwt_secret: Option<JwtSecret>,

    /// Lifetime of the dev service's access tokens (e.g. 30s, 5m, 1h).
    #[arg(long = "access-ttl", env = "DEV_ACCESS_TTL", default_value = "5m", value_parser = parse_ttl)]
    pub access_ttl: Duration,

    /// Lifetime of the dev service's refresh tokens (e.g. 12h, 7d).
    #[arg(long = "refresh-ttl", env = "DEV_REFRESH_TTL", default_value = "7d", value_parser = parse_ttl)]
    pub refresh_ttl: Duration,

    /// Most users the dev service keeps in memory; registrations beyond it get 507.
    #[arg(long = "max-users", env = "DEV_MAX_USERS", default_value_t = 10_000)]
    pub max_users: usize,
}

impl Default for DevAuthArgs {
    /// The same values as the flags' defaults.
    fn default() -> Self {
        Self {
            jwt_secret: None,
            access_ttl: Duration::from_secs(5 * 60),
            refresh_ttl: Duration::from_secs(7 * 24 * 3600),
            max_users: 10_000,
        }
    }
}

/// An HS256 key given on the command line. Its `Debug` never shows the key, so a logged
/// `Config` or `DevAuthArgs` cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct JwtSecret(Arc<[u8]>);

impl JwtSecret {
    /// Accepts keys of at least 32 bytes (RFC 7518 §3.2).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "must be at least {MIN_SECRET_BYTES} bytes long (RFC 7518 §3.2)"
            ));
        }
        Ok(Self(Arc::from(text.as_bytes())))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret(<redacted>)")
    }
}

/// A token lifetime: the proxy's duration syntax (`250ms`, `5s`, `1m`, `2h`) plus days (`7d`),
/// since refresh tokens usually live that long.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let Some(days) = trimmed.strip_suffix('d') else {
        return parse_duration(trimmed);
    };
    let hours = parse_duration(&format!("{days}h"))
        .map_err(|_| format!("`{trimmed}` is not a duration (write e.g. 30s, 5m, 12h, 7d)"))?;
    hours
        .checked_mul(24)
        .ok_or_else(|| format!("`{trimmed}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::{parse_ttl, DevAuthArgs, JwtSecret};
    use clap::Parser;
    use std::time::Duration;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        dev: DevAuthArgs,
    }

    fn parse(argv: &[&str]) -> DevAuthArgs {
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli.dev,
            Err(err) => panic!("{err}"),
        }
    }

    #[test]
    fn ttl_accepts_days_and_the_proxy_units() {
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_ttl("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_ttl("90m"), Ok(Duration::from_secs(5_400)));
        for bad in ["7", "d", "1.5d", "-1d", "7dd", "99999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn flag_defaults_match_default_impl() {
        let parsed = parse(&["x"]);
        let default = DevAuthArgs::default();
        assert_eq!(parsed.access_ttl, default.access_ttl);
        assert_eq!(parsed.refresh_ttl, default.refresh_ttl);
        assert_eq!(parsed.max_users, default.max_users);
        assert!(parsed.jwt_secret.is_none());
    }

    #[test]
    fn short_secrets_are_refused_and_debug_redacts() {
        assert!(JwtSecret::parse("short").is_err());
        let secret = "0123456789abcdef0123456789abcdef-very-secret";
        let args = parse(&["x", "--jwt-secret", secret]);
        let shown = format!("{args:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
