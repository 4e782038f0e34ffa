//! Test DSL over real sockets: the proxy on port 0, a scriptable mock central service, clients.
//!
//! Every wait is bounded (`within`), every socket is on 127.0.0.1, and nothing sleeps longer
//! than the behaviour under test needs.
#![allow(dead_code, unused_imports)] // each test crate uses its own part of the DSL

pub mod client;
pub mod logs;
pub mod mock;
pub mod redis;
pub mod tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth_proxy::config::parse_auth_url;
use auth_proxy::{AppState, Config};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use client::{
    get, post_form, post_json, protected, request, RawConn, Received, WithHeader, H1, H2,
};
pub use mock::{pattern, BlackHole, H2Conn, MockUpstream, Recorded, Reply};
pub use tls::TestCa;

/// The longest any single step of a test may take before it counts as hung.
pub const WAIT: Duration = Duration::from_secs(5);

/// Awaits `f` for at most `limit`, failing the test with `what` if it takes longer.
pub async fn within<F: Future>(limit: Duration, what: &str, f: F) -> F::Output {
    let Ok(output) = tokio::time::timeout(limit, f).await else {
        panic!("{what}: not done within {limit:?}");
    };
    output
}

/// A proxy running `auth_proxy::serve` inside the test's runtime.
pub struct Proxy {
    pub addr: SocketAddr,
    /// The running proxy's shared state (its park counters, for instance).
    pub state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Proxy {
    /// Resolves the shutdown future given to `serve` (what SIGTERM does in the binary).
    pub fn shutdown(&mut self) {
        if let Some(trigger) = self.shutdown.take() {
            let _ = trigger.send(());
        }
    }

    /// Waits for `serve` to return, at most `limit`.
    pub async fn stopped(&mut self, limit: Duration) -> io::Result<()> {
        let task = self.task.take().expect("serve() already awaited");
        within(limit, "serve() returning", task)
            .await
            .expect("serve() panicked")
    }

    /// Waits until the proxy has parked `n` connections in all (`src/conn/park.rs`).
    pub async fn parked(&self, n: u64) {
        within(WAIT, "connection parked", async {
            while self.state.conns.parked() < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }

    /// A fresh raw HTTP/1 connection to the proxy.
    pub async fn raw(&self) -> RawConn {
        RawConn::connect(self.addr).await
    }

    /// A fresh hyper HTTP/1.1 client connection to the proxy.
    pub async fn h1(&self) -> H1 {
        H1::connect(self.addr).await
    }

    /// A fresh hyper HTTP/2 (prior knowledge) client connection to the proxy.
    pub async fn h2(&self) -> H2 {
        H2::connect(self.addr).await
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The documented defaults, pointed at `auth_url`, with timeouts short enough for a test suite.
pub fn test_config(auth_url: &str) -> Config {
    let mut config = Config::new(parse_auth_url(auth_url).expect("test AUTH_URL parses"));
    config.connect_timeout = Duration::from_millis(300);
    config.upstream_timeout = Duration::from_secs(2);
    config.client_header_timeout = Duration::from_secs(2);
    config.shutdown_grace = Duration::from_secs(2);
    config
}

/// Starts the proxy on `127.0.0.1:0` in front of `auth_url`, with `tweak` applied to [`test_config`].
pub async fn spawn_proxy(auth_url: &str, tweak: impl FnOnce(&mut Config)) -> Proxy {
    let mut config = test_config(auth_url);
    tweak(&mut config);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let (trigger, triggered) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = triggered.await;
    };
    // What `auth_proxy::serve` does, keeping a handle on the state.
    let state = Arc::new(AppState::new(config).expect("test config is valid"));
    let task = tokio::spawn(auth_proxy::service::serve(
        listener,
        state.clone(),
        shutdown,
    ));
    Proxy {
        addr,
        state,
        shutdown: Some(trigger),
        task: Some(task),
    }
}

/// Starts the proxy in front of `mock` with `path` appended to its URL (`""` or e.g. `"/api"`),
/// trusting its CA if it is https, with `tweak` applied to [`test_config`].
pub async fn spawn_proxy_for(
    mock: &MockUpstream,
    path: &str,
    tweak: impl FnOnce(&mut Config),
) -> Proxy {
    let ca = mock.ca_der();
    spawn_proxy(&format!("{}{path}", mock.url()), |c| {
        c.upstream_ca.extend(ca);
        tweak(c);
    })
    .await
}

/// Parses a JSON body, failing the test with the body shown if it is not JSON.
pub fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(body)))
}

/// A `127.0.0.1` port with nothing listening: connecting to it is refused at once.
pub fn refused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr").port()
}
