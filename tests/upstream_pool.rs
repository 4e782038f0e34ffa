//! The upstream connection pool as the central service sees it: how many TCP connections the
//! proxy opens, when it reuses them, when it closes them, and that no answer ever leaks into the
//! next one. These pin what clients and the central service can observe, so that the pool can be
//! rebuilt (hyper-util's legacy `Client` → hyper `client::conn` senders) without changing it.
//!
//! Reuse is already pinned for plain sequential HTTP/1 (`passthrough.rs`) and the stale-pool races
//! (`edge.rs`); this file covers HTTP/2 by ALPN, the idle timeout, bursts, abandoned bodies,
//! `Connection: close`, empty bodies and the `/readyz` probe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{
    get, pattern, post_form, post_json, spawn_proxy, within, MockUpstream, Received, Reply, TestCa,
    WithHeader, H1, WAIT,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

const REFRESH: &str = r#"{"refresh_token":"r"}"#;

// ---- A central service on hyper's own server, for what the hand-written mock cannot speak ----

/// What the hyper-based central service speaks.
#[derive(Clone)]
enum Speaks {
    /// HTTP/1.1 over plain TCP.
    Http1,
    /// HTTP/2 over TLS with this server configuration (its ALPN offers only `h2`).
    H2OverTls(Arc<rustls::ServerConfig>),
}

/// One request as the hyper-based central service received it.
#[derive(Debug, Clone)]
struct Seen {
    /// Which accepted TCP connection carried it (0 = the first).
    connection: usize,
    /// The ALPN protocol of that connection's TLS session, if any.
    alpn: Option<Vec<u8>>,
    version: Version,
    method: String,
    path: String,
    /// The request URI's authority (`:authority` in HTTP/2).
    authority: Option<String>,
    host: Option<String>,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

struct Shared {
    connections: AtomicUsize,
    /// Connections whose serving has ended (closed by the proxy, as this server closes none).
    ended: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    /// Requests received so far.
    arrived: watch::Sender<usize>,
    /// Answers wait until this many requests have arrived (0: answer at once).
    hold_until: AtomicUsize,
}

/// A central service on hyper's server; `answer` makes the response for a request path.
struct HyperUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl HyperUpstream {
    async fn start(speaks: Speaks, answer: fn(&str) -> Response<Full<Bytes>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            connections: AtomicUsize::new(0),
            ended: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            arrived: watch::Sender::new(0),
            hold_until: AtomicUsize::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone(), speaks, answer));
        HyperUpstream { addr, shared, task }
    }

    fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    fn ended(&self) -> usize {
        self.shared.ended.load(Ordering::SeqCst)
    }

    /// Waits until `done` holds of (connections accepted, connections ended).
    async fn wait_for_connections(&self, what: &str, done: impl Fn(usize, usize) -> bool) {
        within(WAIT, what, async {
            while !done(self.connections(), self.ended()) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await;
    }

    fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Holds every answer until `more` further requests have arrived: they are then all in flight at once.
    fn hold_until_more_arrive(&self, more: usize) {
        let arrived = *self.shared.arrived.borrow();
        self.shared
            .hold_until
            .store(arrived + more, Ordering::SeqCst);
    }
}

impl Drop for HyperUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    speaks: Speaks,
    answer: fn(&str) -> Response<Full<Bytes>>,
) {
    // Owned here so that aborting this task drops every connection.
    let mut connections = JoinSet::new();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let id = shared.connections.fetch_add(1, Ordering::SeqCst);
        let (shared, ended, speaks) = (shared.clone(), shared.clone(), speaks.clone());
        let serving = async move {
            match speaks {
                Speaks::Http1 => {
                    let service = service_fn(move |r| handle(r, shared.clone(), id, None, answer));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                }
                Speaks::H2OverTls(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                    let service =
                        service_fn(move |r| handle(r, shared.clone(), id, alpn.clone(), answer));
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                }
            }
        };
        connections.spawn(async move {
            serving.await;
            ended.ended.fetch_add(1, Ordering::SeqCst);
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
    connection: usize,
    alpn: Option<Vec<u8>>,
    answer: fn(&str) -> Response<Full<Bytes>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| v.to_str().expect("header value is text").to_owned())
    };
    let seen = Seen {
        connection,
        alpn,
        version: parts.version,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        authority: parts.uri.authority().map(ToString::to_string),
        host: header("host"),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: body
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_default(),
    };
    let path = seen.path.clone();
    shared.seen.lock().unwrap().push(seen);
    shared.arrived.send_modify(|n| *n += 1);
    let hold_until = shared.hold_until.load(Ordering::SeqCst);
    let mut arrived = shared.arrived.subscribe();
    let _ = arrived.wait_for(|n| *n >= hold_until).await;
    Ok(answer(&path))
}

fn json_answer(status: u16, body: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-upstream", "hyper")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

const USER: &str = r#"{"user":"alice","scopes":["read"]}"#;
const TOKENS: &str = r#"{"access_token":"at-1","token_type":"bearer"}"#;

fn auth_answers(path: &str) -> Response<Full<Bytes>> {
    match path {
        "/api/protected" => json_answer(200, USER),
        "/api/login" => json_answer(200, TOKENS),
        _ => json_answer(404, r#"{"detail":"Not Found"}"#),
    }
}

/// The whole answer `auth_answers` gives, as the client must receive it.
fn assert_answer(got: &Received, body: &str) {
    assert_eq!(got.status, StatusCode::OK, "body {:?}", got.text());
    assert_eq!(got.text(), body);
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("x-upstream"), Some("hyper"));
    assert!(got.header("x-request-id").is_some());
}

/// `GET /protected` with `token`, on a fresh client connection of its own.
async fn protected_on_own_connection(addr: SocketAddr, token: String) -> (String, Received) {
    let mut client = H1::connect(addr).await;
    let got = client
        .send(get("/protected").with("authorization", &format!("Bearer {token}")))
        .await;
    (token, got)
}

// ---- 1. HTTP/2 to the central service, chosen by ALPN ----

/// An HTTP/2-only https central service (ALPN offers `h2` alone), and the proxy in front of
/// `https://127.0.0.1:PORT/api` trusting its CA through `--upstream-ca`, with `tweak` applied.
async fn h2_upstream_and_proxy(
    tweak: impl FnOnce(&mut auth_proxy::Config),
) -> (HyperUpstream, support::Proxy, String) {
    let ca = TestCa::new("central-h2");
    let mut tls = (*ca.server).clone();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let upstream = HyperUpstream::start(Speaks::H2OverTls(Arc::new(tls)), auth_answers).await;
    let authority = format!("127.0.0.1:{}", upstream.addr.port());
    let proxy = spawn_proxy(&format!("https://{authority}/api"), |c| {
        c.upstream_ca = vec![ca.ca_der.clone()];
        tweak(c);
    })
    .await;
    (upstream, proxy, authority)
}

#[tokio::test]
async fn http2_upstream_chosen_by_alpn_multiplexes_every_request_over_one_connection() {
    let (upstream, proxy, authority) = h2_upstream_and_proxy(|_| {}).await;

    // Sequential, on one client connection.
    let mut client = proxy.h1().await;
    for i in 0..3 {
        let got = client
            .send(get("/protected").with("authorization", &format!("Bearer seq-{i}")))
            .await;
        assert_answer(&got, USER);
    }
    // Concurrent, on eight client connections, all eight in flight upstream at once.
    upstream.hold_until_more_arrive(8);
    let mut burst = JoinSet::new();
    for i in 0..8 {
        burst.spawn(protected_on_own_connection(proxy.addr, format!("conc-{i}")));
    }
    let mut burst_tokens = Vec::new();
    while let Some(done) = within(WAIT, "the concurrent burst", burst.join_next()).await {
        let (token, got) = done.expect("client task");
        assert_answer(&got, USER);
        burst_tokens.push(format!("Bearer {token}"));
    }
    assert_eq!(burst_tokens.len(), 8);
    // A form body over HTTP/2 arrives byte for byte.
    let form = "grant_type=password&username=alice&password=s%26cret&scope=read+write\
                &client_id=cid&client_secret=cs";
    let got = client.send(post_form("/login", form)).await;
    assert_answer(&got, TOKENS);

    let seen = upstream.seen();
    assert_eq!(seen.len(), 3 + 8 + 1);
    for request in &seen {
        assert_eq!(request.alpn.as_deref(), Some(&b"h2"[..]), "ALPN chose h2");
        assert_eq!(request.version, Version::HTTP_2);
        assert_eq!(
            request.connection, 0,
            "one upstream connection: {request:?}"
        );
        assert_eq!(request.authority.as_deref(), Some(authority.as_str()));
        assert!(
            request.host.as_deref().is_none_or(|h| h == authority),
            "Host, if sent besides :authority, is AUTH_URL's: {:?}",
            request.host
        );
    }
    for (i, request) in seen[..3].iter().enumerate() {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("GET", "/api/protected")
        );
        assert_eq!(request.authorization, Some(format!("Bearer seq-{i}")));
        assert!(request.body.is_empty());
    }
    let mut arrived_tokens: Vec<String> = seen[3..11]
        .iter()
        .map(|r| {
            assert_eq!(
                (r.method.as_str(), r.path.as_str()),
                ("GET", "/api/protected")
            );
            r.authorization.clone().expect("Authorization forwarded")
        })
        .collect();
    arrived_tokens.sort();
    burst_tokens.sort();
    assert_eq!(
        arrived_tokens, burst_tokens,
        "each token arrived once, intact"
    );
    let login = &seen[11];
    assert_eq!(
        (login.method.as_str(), login.path.as_str()),
        ("POST", "/api/login")
    );
    assert_eq!(
        login.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(login.body, form.as_bytes(), "the form, byte for byte");
    assert_eq!(
        login.authorization, None,
        "Authorization only on /protected"
    );
    assert_eq!(
        upstream.connections(),
        1,
        "one TCP connection to the central service"
    );
    assert_eq!(upstream.ended(), 0, "and it stays open");
}

#[tokio::test]
async fn http2_cold_burst_is_multiplexed_onto_one_connection_and_spare_dials_are_closed() {
    let (upstream, proxy, _) = h2_upstream_and_proxy(|_| {}).await;

    // Eight requests at once with nothing pooled yet, all in flight upstream together.
    upstream.hold_until_more_arrive(8);
    let mut burst = JoinSet::new();
    for i in 0..8 {
        burst.spawn(protected_on_own_connection(proxy.addr, format!("cold-{i}")));
    }
    while let Some(done) = within(WAIT, "the cold burst", burst.join_next()).await {
        let (_, got) = done.expect("client task");
        assert_answer(&got, USER);
    }

    let seen = upstream.seen();
    assert_eq!(seen.len(), 8);
    let carrier = seen[0].connection;
    assert!(
        seen.iter().all(|s| s.connection == carrier),
        "all eight multiplexed on one connection: {:?}",
        seen.iter().map(|s| s.connection).collect::<Vec<_>>()
    );
    // Before ALPN says h2 each waiting request may dial (hyper-util does); every dial that
    // carries no request is closed, and the one that does stays pooled.
    upstream
        .wait_for_connections("spare connections closed", |accepted, ended| {
            ended + 1 == accepted
        })
        .await;
    let accepted = upstream.connections();
    assert!(
        (1..=8).contains(&accepted),
        "{accepted} dials for 8 requests"
    );
    let mut client = proxy.h1().await;
    let got = client
        .send(get("/protected").with("authorization", "Bearer after"))
        .await;
    assert_answer(&got, USER);
    let after = upstream.seen().pop().unwrap();
    assert_eq!(after.authorization.as_deref(), Some("Bearer after"));
    assert_eq!(
        after.connection, carrier,
        "the pooled h2 connection is reused"
    );
    assert_eq!(upstream.connections(), accepted);
}

// ---- 2. --pool-idle-timeout ----

#[tokio::test]
async fn idle_pooled_connection_is_closed_by_the_proxy_after_pool_idle_timeout() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.pool_idle_timeout = Duration::from_millis(300);
    })
    .await;
    let mut client = proxy.h1().await;

    let sent = Instant::now();
    let got = client.send(post_json("/refresh", REFRESH)).await;
    got.assert_json(200, r#"{"ok":true}"#);
    assert_eq!(mock.connections(), 1);

    // The mock never closes a connection itself: an ended one was closed by the proxy.
    mock.wait_for_connections_ended(1).await;
    assert!(
        sent.elapsed() >= Duration::from_millis(250),
        "closed before the idle timeout: {:?}",
        sent.elapsed()
    );
    assert_eq!(mock.connections(), 1);

    // The next request opens a new connection and is answered; nothing was sent on the closed one.
    let got = client.send(post_json("/refresh", REFRESH)).await;
    got.assert_json(200, r#"{"ok":true}"#);
    assert_eq!(mock.connections(), 2);
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn idle_http2_connection_is_closed_by_the_proxy_after_pool_idle_timeout() {
    let (upstream, proxy, _) = h2_upstream_and_proxy(|c| {
        c.pool_idle_timeout = Duration::from_millis(300);
    })
    .await;
    let mut client = proxy.h1().await;

    let sent = Instant::now();
    let got = client
        .send(get("/protected").with("authorization", "Bearer one"))
        .await;
    assert_answer(&got, USER);

    // hyper's server never closes an idle HTTP/2 connection itself: the proxy did.
    upstream
        .wait_for_connections("idle h2 connection closed", |_, ended| ended == 1)
        .await;
    assert!(
        sent.elapsed() >= Duration::from_millis(250),
        "closed before the idle timeout: {:?}",
        sent.elapsed()
    );

    let got = client
        .send(get("/protected").with("authorization", "Bearer two"))
        .await;
    assert_answer(&got, USER);
    assert_eq!(upstream.connections(), 2);
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].connection, 1, "sent on a new connection");
    assert_eq!(seen[1].authorization.as_deref(), Some("Bearer two"));
}

// ---- 3. A burst opens connections; later requests reuse them ----

#[tokio::test]
async fn concurrent_requests_open_one_connection_each_and_later_requests_reuse_them() {
    const N: usize = 6;
    let upstream = HyperUpstream::start(Speaks::Http1, auth_answers).await;
    let proxy = spawn_proxy(&format!("http://{}/api", upstream.addr), |_| {}).await;

    // All N held upstream at once: HTTP/1 needs one connection each.
    upstream.hold_until_more_arrive(N);
    let mut burst = JoinSet::new();
    for i in 0..N {
        burst.spawn(protected_on_own_connection(
            proxy.addr,
            format!("burst-{i}"),
        ));
    }
    while let Some(done) = within(WAIT, "the concurrent burst", burst.join_next()).await {
        let (_, got) = done.expect("client task");
        assert_answer(&got, USER);
    }
    assert_eq!(upstream.connections(), N);

    // 2N sequential requests, from one client and from fresh clients: all on the pooled N.
    let mut client = proxy.h1().await;
    for i in 0..2 * N {
        let token = format!("seq-{i}");
        let got = if i % 2 == 0 {
            client
                .send(get("/protected").with("authorization", &format!("Bearer {token}")))
                .await
        } else {
            protected_on_own_connection(proxy.addr, token).await.1
        };
        assert_answer(&got, USER);
    }
    assert_eq!(upstream.connections(), N, "no new upstream connection");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 3 * N);
    let mut used: Vec<usize> = seen.iter().map(|s| s.connection).collect();
    used.sort_unstable();
    used.dedup();
    assert_eq!(used, (0..N).collect::<Vec<_>>());
    for (i, request) in seen[N..].iter().enumerate() {
        assert_eq!(request.version, Version::HTTP_11);
        assert_eq!(request.authorization, Some(format!("Bearer seq-{i}")));
    }
}

// ---- 4. A client that goes away mid-body ----

#[tokio::test]
async fn client_dropping_mid_stream_does_not_leave_its_upstream_connection_in_the_pool() {
    const TOTAL: usize = 256 * 1024;
    let mock = MockUpstream::builder()
        .stream(TOTAL, 4 * 1024, Duration::from_millis(5))
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;

    let mut leaving = proxy.h1().await;
    let response = leaving.send_streaming(post_json("/refresh", REFRESH)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = within(WAIT, "the first body bytes", body.frame())
        .await
        .expect("a frame")
        .expect("a body frame")
        .into_data()
        .expect("data");
    assert!(!first.is_empty() && first.len() < TOTAL);
    drop(body);
    drop(leaving);

    // At once, while the abandoned body may still be streaming upstream.
    let mut client = proxy.h1().await;
    let got = client.send(post_json("/refresh", REFRESH)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("content-type"), Some("application/octet-stream"));
    assert_eq!(
        got.header("content-length"),
        Some(TOTAL.to_string().as_str())
    );
    assert_eq!(got.body.len(), TOTAL);
    assert!(
        got.body == pattern(TOTAL),
        "exactly the body, no leftover bytes"
    );
    assert_eq!(mock.requests().len(), 2);
    assert_eq!(
        mock.connections(),
        2,
        "not sent on the abandoned connection"
    );
    // The abandoned connection is closed, not kept.
    mock.wait_for_connections_ended(1).await;

    // The connection whose body was read to the end is reused.
    let got = client.send(post_json("/refresh", REFRESH)).await;
    assert!(got.status == StatusCode::OK && got.body == pattern(TOTAL));
    assert_eq!(mock.connections(), 2);
}

// ---- 5. Connection: close from the central service ----

#[tokio::test]
async fn upstream_connection_close_answers_are_each_served_on_a_fresh_connection() {
    let answer = r#"{"ok":"closing"}"#;
    let reply = Reply::json(200, answer).header("connection", "close");
    // The service announces the close and closes; or only announces it, and the proxy must close.
    let closes = MockUpstream::builder()
        .reply(reply.clone())
        .close_after_answer()
        .start()
        .await;
    let announces = MockUpstream::replying(reply).await;

    for mock in [&closes, &announces] {
        let proxy = spawn_proxy(&mock.url(), |_| {}).await;
        let mut client = proxy.h1().await;
        for i in 0..5 {
            // One client connection throughout: the upstream's close is not the client's.
            let got = client.send(post_json("/refresh", REFRESH)).await;
            got.assert_json(200, answer);
            assert_eq!(got.header("connection"), None, "request {i}");
        }
        assert_eq!(mock.requests().len(), 5, "each request sent once");
        assert_eq!(mock.connections(), 5, "a fresh connection for each request");
        mock.wait_for_connections_ended(5).await;
    }
}

// ---- 6. Empty bodies ----

fn empty_answers(path: &str) -> Response<Full<Bytes>> {
    match path {
        // 204: no body and, from hyper's server, no Content-Length either.
        "/protected" => Response::builder()
            .status(204)
            .header("x-upstream", "hyper")
            .body(Full::new(Bytes::new()))
            .unwrap(),
        "/login" => Response::builder()
            .status(200)
            .header("content-length", "0")
            .header("x-upstream", "hyper")
            .body(Full::new(Bytes::new()))
            .unwrap(),
        _ => json_answer(200, TOKENS),
    }
}

#[tokio::test]
async fn empty_body_answers_keep_the_upstream_connection_reusable() {
    let upstream = HyperUpstream::start(Speaks::Http1, empty_answers).await;
    let proxy = spawn_proxy(&format!("http://{}", upstream.addr), |_| {}).await;
    let mut client = proxy.h1().await;

    for round in 0..3 {
        let no_content = client
            .send(get("/protected").with("authorization", "Bearer t"))
            .await;
        assert_eq!(no_content.status, StatusCode::NO_CONTENT, "round {round}");
        assert!(no_content.body.is_empty());
        assert_eq!(no_content.header("content-length"), None);
        assert_eq!(no_content.header("x-upstream"), Some("hyper"));

        let empty = client
            .send(post_form("/login", "username=alice&password=pw"))
            .await;
        assert_eq!(empty.status, StatusCode::OK, "round {round}");
        assert!(empty.body.is_empty());
        assert_eq!(empty.header("content-length"), Some("0"));
        assert_eq!(empty.header("x-upstream"), Some("hyper"));

        // A body after the empty ones: the connection is still in step.
        let full = client.send(post_json("/refresh", REFRESH)).await;
        assert_answer(&full, TOKENS);
    }
    assert_eq!(upstream.seen().len(), 9);
    assert_eq!(upstream.connections(), 1, "every answer on one connection");
}

#[tokio::test]
async fn content_length_zero_answers_from_the_mock_keep_the_connection_reusable() {
    let mock = MockUpstream::replying(Reply::new(200).header("x-empty", "yes")).await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    for _ in 0..5 {
        let got = client.send(post_json("/refresh", REFRESH)).await;
        assert_eq!(got.status, StatusCode::OK);
        assert!(got.body.is_empty());
        assert_eq!(got.header("content-length"), Some("0"));
        assert_eq!(got.header("x-empty"), Some("yes"));
    }
    assert_eq!(mock.requests().len(), 5);
    assert_eq!(mock.connections(), 1);
}

// ---- 7. The /readyz probe shares the pool ----

#[tokio::test]
async fn readyz_head_probe_leaves_a_reusable_connection_in_the_pool() {
    // HEAD answers carry the Content-Length of the body they leave out (11 bytes here): a pool
    // that waited for those bytes would hang or hand them to the next answer.
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    // Nothing answered yet, so /readyz probes with HEAD.
    let ready = client.send(get("/readyz")).await;
    ready.assert_json(200, r#"{"status":"ready"}"#);
    for _ in 0..3 {
        client
            .send(post_json("/refresh", REFRESH))
            .await
            .assert_json(200, r#"{"ok":true}"#);
    }
    // Answered a moment ago: no second probe.
    client
        .send(get("/readyz"))
        .await
        .assert_json(200, r#"{"status":"ready"}"#);
    client
        .send(post_json("/refresh", REFRESH))
        .await
        .assert_json(200, r#"{"ok":true}"#);

    let seen: Vec<(String, String)> = mock
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    let refresh = ("POST".to_owned(), "/refresh".to_owned());
    let mut expected = vec![("HEAD".to_owned(), "/".to_owned())];
    expected.extend(std::iter::repeat_n(refresh, 4));
    assert_eq!(seen, expected);
    // There is one pool for the one AUTH_URL, so the probe's connection is the one every later
    // request reuses.
    assert_eq!(mock.connections(), 1, "the probe's connection is reused");
}
