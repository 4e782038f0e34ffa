//! Command-line and environment configuration: `Cli` (what the user typed) → `Config` (what the proxy runs on).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Uri};
use ipnet::IpNet;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

mod shield;
pub use shield::{ShieldArgs, Toggle};

/// The default central service, as the FastAPI app we replace had it.
pub const DEFAULT_AUTH_URL: &str = "https://auth-central-challange.vercel.app";

/// Validating, streaming passthrough proxy in front of a central authentication service.
#[derive(Parser, Debug)]
#[command(name = "auth-proxy", version, about, long_about = None)]
pub struct Cli {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// Address of a separate listener for /metrics (Prometheus text), /healthz and /readyz;
    /// unset, no metrics are kept. Keep it off the public interface.
    #[arg(long, env = "METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Central auth service base URL (http or https); a path prefix is kept.
    #[arg(long, env = "AUTH_URL", default_value = DEFAULT_AUTH_URL, value_parser = parse_auth_url)]
    pub auth_url: AuthUrl,

    /// Extra PEM CA certificates trusted for an https AUTH_URL, besides the bundled web roots.
    #[arg(long, env = "AUTH_CA_FILE")]
    pub upstream_ca: Option<PathBuf>,

    /// Start the built-in development auth service on a free loopback port and use it as AUTH_URL.
    #[arg(long)]
    pub dev: bool,

    /// Time allowed to open a TCP (and TLS) connection to the central service.
    #[arg(long, env = "CONNECT_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Time allowed for the whole upstream exchange up to the response headers; also the
    /// longest pause allowed inside a response body.
    #[arg(long, env = "UPSTREAM_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub upstream_timeout: Duration,

    /// Time allowed for a client to send a request's headers; also how long an idle keep-alive
    /// connection (HTTP/1 or HTTP/2) is kept, and how soon an HTTP/2 client must send its first request.
    #[arg(long, env = "CLIENT_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub client_header_timeout: Duration,

    /// Time allowed for a client to send a whole request body; past it, 408 and the connection closes.
    #[arg(long, env = "CLIENT_BODY_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub client_body_timeout: Duration,

    /// Longest a response may wait for the client to take more of it (the gap between successful
    /// writes, as nginx's send_timeout); past it, the connection is closed.
    #[arg(long, env = "CLIENT_SEND_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub client_send_timeout: Duration,

    /// After SIGTERM/SIGINT, keep serving this long (readyz already 503) so a load balancer notices.
    #[arg(long, env = "SHUTDOWN_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,

    /// After the delay, time in-flight requests get to finish before connections are cut.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Largest request body accepted on the auth routes: bytes, or with a unit (64KiB, 1MiB).
    #[arg(long, env = "MAX_BODY_BYTES", default_value = "64KiB", value_parser = parse_size)]
    pub max_body_bytes: u64,

    /// Most client connections open at once; further ones wait in the listen backlog.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 25_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Most requests in flight to the central service at once (each holds one upstream
    /// connection or HTTP/2 stream); more wait in a queue of 4x this size, past it 503.
    #[arg(long, env = "UPSTREAM_MAX_CONNECTIONS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub upstream_max_connections: u32,

    /// How long an idle pooled upstream connection is kept (below common 5 s server keep-alives).
    #[arg(long, env = "POOL_IDLE_TIMEOUT", default_value = "4s", value_parser = parse_duration)]
    pub pool_idle_timeout: Duration,

    /// Peers (CIDR list) allowed to supply X-Forwarded-For/-Proto/-Host; default none.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<IpNet>,

    /// One log line per request (target `access`, level info): on or off.
    #[arg(long, env = "ACCESS_LOG", default_value = "on")]
    pub access_log: AccessLog,

    /// Format of every log line on stderr (RUST_LOG sets the level).
    #[arg(long, env = "LOG_FORMAT", default_value = "human")]
    pub log_format: LogFormat,

    /// Worker threads, each a single-threaded runtime with its own listener (SO_REUSEPORT)
    /// and upstream pool, as nginx's workers; 0 means one per available CPU.
    #[arg(long, env = "WORKER_THREADS", default_value_t = 0)]
    pub worker_threads: usize,

    #[command(flatten)]
    pub shield: ShieldArgs,
    /// Login throttling flags.
    #[command(flatten, next_help_heading = "Login throttling (off by default)")]
    pub rate_limit: crate::ratelimit::RateLimitArgs,

    /// Flags of the development auth service started by `--dev`.
    #[command(
        flatten,
        next_help_heading = "Development auth service (--dev, dev-auth)"
    )]
    pub dev_auth: crate::dev_auth::DevAuthArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run only the development central auth service.
    DevAuth {
        /// Address to listen on.
        #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8001")]
        listen: SocketAddr,
        #[command(flatten)]
        args: crate::dev_auth::DevAuthArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccessLog {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// The central service's base URL, split once at start-up into what each request needs.
#[derive(Clone)]
pub struct AuthUrl {
    pub scheme: Scheme,
    pub authority: Authority,
    /// Path prefix without a trailing slash (`""` or `/api`).
    pub prefix: String,
    /// `Host` header value sent upstream.
    pub host: HeaderValue,
}

impl AuthUrl {
    /// The upstream request target for a route path such as `/login`, in origin form
    /// (`/api/login`): what an HTTP/1 request line carries. HTTP/2 adds [`Self::origin`].
    pub fn path(&self, path: &str) -> Uri {
        Uri::try_from(format!("{}{path}", self.prefix)).unwrap_or_default()
    }

    /// Scheme and authority (`https://auth.example:8443/`): what is dialled.
    pub fn origin(&self) -> Uri {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query("/")
            .build()
            .unwrap_or_default()
    }
}

impl fmt::Debug for AuthUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.prefix)
    }
}

impl fmt::Display for AuthUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Parses `AUTH_URL`: http or https, a host, an optional path prefix, no query, no credentials.
pub fn parse_auth_url(text: &str) -> Result<AuthUrl, String> {
    let uri: Uri = text
        .parse()
        .map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    let scheme = match uri.scheme_str() {
        Some("http") => Scheme::HTTP,
        Some("https") => Scheme::HTTPS,
        _ => return Err(format!("`{text}` must start with http:// or https://")),
    };
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| format!("`{text}` has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!("`{text}` must not carry credentials"));
    }
    if authority.host().is_empty() {
        return Err(format!("`{text}` has no host"));
    }
    if uri.query().is_some() {
        return Err(format!("`{text}` must not have a query string"));
    }
    let prefix = uri.path().trim_end_matches('/').to_owned();
    let host = HeaderValue::from_str(authority.as_str())
        .map_err(|_| format!("`{text}` has an invalid host"))?;
    Ok(AuthUrl {
        scheme,
        authority,
        prefix,
        host,
    })
}

/// Parses one `--trusted-proxies` entry; a bare address means a single host.
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is not a CIDR range or IP address"))
}

/// Parses a duration written with a unit: `250ms`, `5s`, `1m`, `2h`.
///
/// A bare number is rejected on purpose: `--upstream-timeout 10` could mean seconds or
/// milliseconds, and a proxy that guesses wrong fails in production, not at start-up.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit (write e.g. 250ms, 5s, 1m)"))?;
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (write e.g. 250ms, 5s, 1m)"))?;
    let millis_per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("`{text}` has an unknown unit (use ms, s, m or h)")),
    };
    value
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Parses a byte size: a bare number of bytes, or one with a unit (`KiB`, `MiB`, `KB`, `MB`, `B`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (write e.g. 65536, 64KiB, 1MiB)"))?;
    let multiplier = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit (use B, KiB, MiB, KB or MB)"
            ))
        }
    };
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Reads `--upstream-ca`: a PEM file that must hold at least one certificate.
pub fn load_ca_file(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("--upstream-ca/AUTH_CA_FILE: cannot read {shown}: {e}"))?;
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--upstream-ca/AUTH_CA_FILE: {shown} is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "--upstream-ca/AUTH_CA_FILE: {shown} holds no certificate"
        ));
    }
    Ok(certs)
}

/// Everything the proxy runs on, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub auth_url: AuthUrl,
    pub upstream_ca: Vec<CertificateDer<'static>>,
    pub connect_timeout: Duration,
    pub upstream_timeout: Duration,
    pub client_header_timeout: Duration,
    pub client_body_timeout: Duration,
    pub client_send_timeout: Duration,
    pub shutdown_delay: Duration,
    pub shutdown_grace: Duration,
    pub max_body_bytes: u64,
    pub max_connections: u32,
    pub upstream_max_connections: u32,
    pub pool_idle_timeout: Duration,
    pub trusted_proxies: Vec<IpNet>,
    pub access_log: AccessLog,
    /// Coalescing, the /protected micro-cache and the breaker.
    pub shield: ShieldArgs,
    /// `--login-rate-limit*`; `None`: no login throttling.
    pub login_limit: Option<crate::ratelimit::Settings>,
    /// `--metrics-listen`: metrics are kept only when it is set.
    pub metrics_listen: Option<SocketAddr>,
}

impl Config {
    /// A configuration with the documented defaults, pointing at `auth_url`.
    pub fn new(auth_url: AuthUrl) -> Self {
        Config {
            auth_url,
            upstream_ca: Vec::new(),
            connect_timeout: Duration::from_secs(3),
            upstream_timeout: Duration::from_secs(10),
            client_header_timeout: Duration::from_secs(10),
            client_body_timeout: Duration::from_secs(10),
            client_send_timeout: Duration::from_secs(10),
            shutdown_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(30),
            max_body_bytes: 64 * 1024,
            max_connections: 25_000,
            upstream_max_connections: 256,
            pool_idle_timeout: Duration::from_secs(4),
            trusted_proxies: Vec::new(),
            access_log: AccessLog::On,
            shield: ShieldArgs::default(),
            login_limit: None,
            metrics_listen: None,
        }
    }

    /// Builds the runtime configuration from the parsed command line (reads `--upstream-ca`).
    pub fn from_cli(cli: &Cli) -> Result<Self, String> {
        let upstream_ca = match &cli.upstream_ca {
            Some(path) => load_ca_file(path)?,
            None => Vec::new(),
        };
        Ok(Config {
            auth_url: cli.auth_url.clone(),
            upstream_ca,
            connect_timeout: cli.connect_timeout,
            upstream_timeout: cli.upstream_timeout,
            client_header_timeout: cli.client_header_timeout,
            client_body_timeout: cli.client_body_timeout,
            client_send_timeout: cli.client_send_timeout,
            shutdown_delay: cli.shutdown_delay,
            shutdown_grace: cli.shutdown_grace,
            max_body_bytes: cli.max_body_bytes,
            max_connections: cli.max_connections,
            upstream_max_connections: cli.upstream_max_connections,
            pool_idle_timeout: cli.pool_idle_timeout,
            trusted_proxies: cli.trusted_proxies.clone(),
            access_log: cli.access_log,
            shield: cli.shield.clone(),
            login_limit: cli.rate_limit.settings()?,
            metrics_listen: cli.metrics_listen,
        })
    }
}

#[cfg(test)]
mod tests;
