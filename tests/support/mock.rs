//! A scriptable central auth service that records what it received, over HTTP/1 or HTTP/2.
//!
//! HTTP/1 is parsed and written by hand (httparse) so that the mock can misbehave exactly: close
//! a keep-alive connection without `Connection: close`, stall before the head, stream with pauses,
//! answer nothing, or reset. HTTP/2 is https with ALPN offering `h2` alone ([`MockBuilder::h2`]):
//! hyper's own server answers and records as HTTP/1 does, or a test drives the `h2` crate's
//! connection itself ([`MockBuilder::h2_script`]) to send GOAWAY or RST_STREAM exactly.
//! `BlackHole` is a loopback port whose connects never complete.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

use super::tls::TestCa;
use super::{within, WAIT};

/// A canned answer: status, headers in order (repeats allowed), body, and trailers (HTTP/1: a
/// chunked body ending with them).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub trailers: Vec<(String, String)>,
}

impl Reply {
    pub fn new(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            trailers: Vec::new(),
        }
    }

    /// `status` with `Content-Type: application/json` and `body`.
    pub fn json(status: u16, body: &str) -> Self {
        Reply::new(status)
            .header("content-type", "application/json")
            .body(body.to_owned())
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Ends the body with this trailer (over HTTP/1 the body is then sent chunked).
    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        self.trailers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Which accepted TCP connection carried it (0 = the first).
    pub connection: usize,
    /// The ALPN protocol of that connection's TLS session, if any.
    pub alpn: Option<Vec<u8>>,
    pub version: Version,
    pub method: String,
    pub path: String,
    /// The request URI's authority (`:authority` in HTTP/2; none in HTTP/1's origin form).
    pub authority: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    /// The single value of `name`, failing the test if it is repeated or not UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.headers.get_all(name).iter();
        let first = values.next()?;
        assert!(values.next().is_none(), "{name} sent more than once");
        Some(first.to_str().expect("header value is text"))
    }

    pub fn body_json(&self) -> serde_json::Value {
        super::json(&self.body)
    }
}

/// The deterministic bytes of a streamed body of `len` bytes.
pub fn pattern(len: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
    (0..len).map(|i| ALPHABET[i % ALPHABET.len()]).collect()
}

#[derive(Debug, Clone)]
enum Behaviour {
    Answer(Reply),
    /// Answers with what the function makes of the request path.
    Route(fn(&str) -> Reply),
    Stream {
        head: Reply,
        total: usize,
        chunk: usize,
        pause: Duration,
        hold_after_first: bool,
    },
    /// Reads requests, never answers.
    Silent,
    /// Reads the request, then resets the connection.
    Reset,
    /// Reads the request, writes these bytes as they are, then closes.
    Raw(Bytes),
}

/// A connection of an HTTP/2 mock as the `h2` crate's server hands it over.
pub type H2Conn = h2::server::Connection<tokio_rustls::server::TlsStream<TcpStream>, Bytes>;

type H2Script =
    Arc<dyn Fn(usize, H2Conn) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What the mock speaks on a connection.
enum Speaks {
    /// HTTP/1.1, by hand.
    Http1,
    /// HTTP/2 (over TLS) through hyper's server, answering as [`Behaviour`] says.
    H2,
    /// HTTP/2 (over TLS), each connection driven by the test's script.
    H2Script(H2Script),
}

struct Plan {
    behaviour: Behaviour,
    speaks: Speaks,
    delay_head: Duration,
    close_after_answer: bool,
    idle_close: Option<Duration>,
    reset_reused: bool,
    tls: Option<(Arc<rustls::ServerConfig>, CertificateDer<'static>)>,
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Recorded>>,
    /// Requests received so far (the length of `requests`, for waiting on).
    arrived: watch::Sender<usize>,
    /// Answers wait until this many requests have arrived (0: answer at once).
    hold_until: AtomicUsize,
    /// Every byte read, one log per connection in accept order (see [`Recording`]).
    raw: Mutex<Vec<Arc<Mutex<Vec<u8>>>>>,
    connections: AtomicUsize,
    /// Connections whose serving has ended (see [`MockUpstream::connections_ended`]).
    ended: AtomicUsize,
    release: Notify,
}

/// Counts a connection as ended when its serving task lets go of it (after the socket is closed).
struct EndedGuard(Arc<Shared>);

impl Drop for EndedGuard {
    fn drop(&mut self) {
        self.0.ended.fetch_add(1, Ordering::SeqCst);
    }
}

/// Builds a [`MockUpstream`]; by default it answers `200 {"ok":true}`.
pub struct MockBuilder {
    plan: Plan,
}

impl MockBuilder {
    pub fn reply(mut self, reply: Reply) -> Self {
        self.plan.behaviour = Behaviour::Answer(reply);
        self
    }

    /// Answers each request with `route(path)`.
    pub fn route(mut self, route: fn(&str) -> Reply) -> Self {
        self.plan.behaviour = Behaviour::Route(route);
        self
    }

    /// Answers 200 with a `total`-byte [`pattern`] body written `chunk` bytes at a time, `pause` apart.
    pub fn stream(mut self, total: usize, chunk: usize, pause: Duration) -> Self {
        self.plan.behaviour = Behaviour::Stream {
            head: Reply::new(200).header("content-type", "application/octet-stream"),
            total,
            chunk,
            pause,
            hold_after_first: false,
        };
        self
    }

    /// After the first chunk of a [`stream`](Self::stream), waits for [`MockUpstream::release`].
    pub fn hold_after_first_chunk(mut self) -> Self {
        match &mut self.plan.behaviour {
            Behaviour::Stream {
                hold_after_first, ..
            } => *hold_after_first = true,
            _ => panic!("hold_after_first_chunk needs stream()"),
        }
        self
    }

    pub fn silent(mut self) -> Self {
        self.plan.behaviour = Behaviour::Silent;
        self
    }

    /// Answers every request with `bytes` as they are (e.g. not HTTP at all), then closes.
    pub fn raw_answer(mut self, bytes: &'static [u8]) -> Self {
        self.plan.behaviour = Behaviour::Raw(Bytes::from_static(bytes));
        self
    }

    pub fn reset(mut self) -> Self {
        self.plan.behaviour = Behaviour::Reset;
        self
    }

    /// Waits this long after reading a request before writing the response head.
    pub fn delay_head(mut self, delay: Duration) -> Self {
        self.plan.delay_head = delay;
        self
    }

    /// Closes every connection right after answering, without announcing it (`Connection: close`).
    pub fn close_after_answer(mut self) -> Self {
        self.plan.close_after_answer = true;
        self
    }

    /// Closes a keep-alive connection that stays idle for `idle` after an answer — a server's
    /// keep-alive timeout, racing with the next request the proxy sends on it.
    pub fn close_when_idle_for(mut self, idle: Duration) -> Self {
        self.plan.idle_close = Some(idle);
        self
    }

    /// Answers the first request of each connection; any later one is read whole, recorded, and
    /// answered with a reset: a service that acted on a request and died before answering, on
    /// exactly the pooled connections a proxy reuses.
    pub fn reset_reused_connections(mut self) -> Self {
        self.plan.reset_reused = true;
        self
    }

    /// Serves https with `ca`'s leaf certificate for `localhost`/`127.0.0.1`.
    pub fn tls(mut self, ca: &TestCa) -> Self {
        self.plan.tls = Some((ca.server.clone(), ca.ca_der.clone()));
        self
    }

    /// Serves HTTP/2 over https with `ca`'s leaf, ALPN offering `h2` alone, through hyper's
    /// server: it records and answers ([`reply`](Self::reply), [`route`](Self::route)) as the
    /// HTTP/1 mock does, and never closes a connection itself.
    pub fn h2(mut self, ca: &TestCa) -> Self {
        let mut config = (*ca.server).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        self.plan.tls = Some((Arc::new(config), ca.ca_der.clone()));
        self.plan.speaks = Speaks::H2;
        self
    }

    /// As [`h2`](Self::h2), but `script(i, conn)` drives the i-th connection's `h2` server
    /// itself (GOAWAY, RST_STREAM, wedging): nothing is recorded.
    pub fn h2_script<F, Fut>(self, ca: &TestCa, script: F) -> Self
    where
        F: Fn(usize, H2Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut built = self.h2(ca);
        built.plan.speaks = Speaks::H2Script(Arc::new(move |i, conn| Box::pin(script(i, conn))));
        built
    }

    pub async fn start(self) -> MockUpstream {
        self.start_on("127.0.0.1:0".parse().expect("address")).await
    }

    /// Starts on `addr`: e.g. the [`refused_port`](super::refused_port) a proxy was failing to
    /// reach, as a central service coming back.
    pub async fn start_on(self, addr: SocketAddr) -> MockUpstream {
        let listener = TcpListener::bind(addr).await.expect("bind mock upstream");
        let addr = listener.local_addr().expect("local addr");
        let (scheme, ca_der) = match &self.plan.tls {
            Some((_, ca)) => ("https", Some(ca.clone())),
            None => ("http", None),
        };
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(accept_loop(listener, shared.clone(), Arc::new(self.plan)));
        MockUpstream {
            addr,
            scheme,
            ca_der,
            shared,
            task,
        }
    }
}

/// A running mock central service on `127.0.0.1:0`; stops when dropped.
pub struct MockUpstream {
    pub addr: SocketAddr,
    scheme: &'static str,
    /// The CA that signed the https mock's certificate.
    ca_der: Option<CertificateDer<'static>>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl MockUpstream {
    pub fn builder() -> MockBuilder {
        MockBuilder {
            plan: Plan {
                behaviour: Behaviour::Answer(Reply::json(200, r#"{"ok":true}"#)),
                speaks: Speaks::Http1,
                delay_head: Duration::ZERO,
                close_after_answer: false,
                idle_close: None,
                reset_reused: false,
                tls: None,
            },
        }
    }

    /// A mock that answers every request `200 {"ok":true}`.
    pub async fn start_default() -> Self {
        Self::builder().start().await
    }

    /// A mock that answers every request with `reply`.
    pub async fn replying(reply: Reply) -> Self {
        Self::builder().reply(reply).start().await
    }

    /// The base URL to use as `AUTH_URL`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The CA certificate to trust (`Config::upstream_ca`) for an https mock.
    pub fn ca_der(&self) -> Option<CertificateDer<'static>> {
        self.ca_der.clone()
    }

    /// Holds every answer until `more` further requests have arrived: they are then all in
    /// flight at once.
    pub fn hold_until_more_arrive(&self, more: usize) {
        let arrived = *self.shared.arrived.borrow();
        self.shared
            .hold_until
            .store(arrived + more, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().expect("requests lock").clone()
    }

    /// The one request received, failing the test if there were more or none.
    pub fn only_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected exactly one upstream request");
        requests.into_iter().next().expect("one request")
    }

    /// The bytes received on each HTTP/1 connection, in accept order, exactly as they arrived
    /// (after TLS): what a smuggling test needs to see that nothing ambiguous was forwarded.
    pub fn raw_received(&self) -> Vec<Vec<u8>> {
        let logs = self.shared.raw.lock().expect("raw lock");
        logs.iter()
            .map(|log| log.lock().expect("raw log lock").clone())
            .collect()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Connections the mock has stopped serving: the peer closed or reset it (seen when the mock
    /// next reads or writes), or the mock closed it itself (`close_after_answer`,
    /// `close_when_idle_for`, `raw_answer`, `reset`, a failed TLS handshake).
    pub fn connections_ended(&self) -> usize {
        self.shared.ended.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` connections have ended.
    pub async fn wait_for_connections_ended(&self, n: usize) {
        self.wait_for_connections("mock connections ending", |_, ended| ended >= n)
            .await;
    }

    /// Waits until `done` holds of (connections accepted, connections ended).
    pub async fn wait_for_connections(&self, what: &str, done: impl Fn(usize, usize) -> bool) {
        within(WAIT, what, async {
            while !done(self.connections(), self.connections_ended()) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await;
    }

    /// Lets a stream held by `hold_after_first_chunk` continue.
    pub fn release(&self) {
        self.shared.release.notify_one();
    }

    /// Waits until at least `n` requests have arrived.
    pub async fn wait_for_requests(&self, n: usize) {
        within(WAIT, "mock receiving requests", async {
            while self.requests().len() < n {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await;
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, plan: Arc<Plan>) {
    // Owned here so that aborting this task drops (and aborts) every connection.
    let mut connections = JoinSet::new();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let index = shared.connections.fetch_add(1, Ordering::SeqCst);
        let (shared, plan) = (shared.clone(), plan.clone());
        connections.spawn(async move {
            // Declared first, dropped last: counted once the socket below is closed.
            let _ended = EndedGuard(shared.clone());
            let Some((config, _)) = &plan.tls else {
                let mut tcp = tcp;
                let conn = Conn { index, alpn: None };
                if serve(&mut tcp, &shared, &plan, &conn).await == Outcome::Reset {
                    reset(&tcp);
                }
                return;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            let conn = Conn { index, alpn };
            match &plan.speaks {
                Speaks::Http1 => {
                    if serve(&mut tls, &shared, &plan, &conn).await == Outcome::Reset {
                        reset(tls.get_ref().0);
                    }
                }
                Speaks::H2 => serve_h2(tls, shared.clone(), plan.clone(), conn).await,
                Speaks::H2Script(script) => {
                    if let Ok(h2) = h2::server::handshake(tls).await {
                        script(index, h2).await;
                    }
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

fn reset(tcp: &TcpStream) {
    // SO_LINGER 0: the close that follows sends RST instead of FIN.
    let _ = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO));
}

#[derive(PartialEq, Eq)]
enum Outcome {
    Closed,
    Reset,
}

/// The accepted connection a request arrives on.
struct Conn {
    index: usize,
    alpn: Option<Vec<u8>>,
}

impl Shared {
    /// Records `request`, then waits while answers are held (see `hold_until_more_arrive`).
    async fn arrived(&self, request: Recorded) {
        self.requests.lock().expect("requests lock").push(request);
        self.arrived.send_modify(|n| *n += 1);
        let hold_until = self.hold_until.load(Ordering::SeqCst);
        let mut arrived = self.arrived.subscribe();
        let _ = arrived.wait_for(|n| *n >= hold_until).await;
    }
}

impl Behaviour {
    /// The answer to a request for `path`, for the behaviours that answer with a [`Reply`].
    fn reply_for(&self, path: &str) -> Option<Reply> {
        match self {
            Behaviour::Answer(reply) => Some(reply.clone()),
            Behaviour::Route(route) => Some(route(path)),
            _ => None,
        }
    }
}

/// Serves one HTTP/2 connection with hyper's server until the client closes it.
async fn serve_h2(
    tls: tokio_rustls::server::TlsStream<TcpStream>,
    shared: Arc<Shared>,
    plan: Arc<Plan>,
    conn: Conn,
) {
    let conn = Arc::new(conn);
    let service =
        hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let (shared, plan, conn) = (shared.clone(), plan.clone(), conn.clone());
            async move {
                let (parts, body) = request.into_parts();
                let path = parts.uri.path().to_owned();
                let reply = plan
                    .behaviour
                    .reply_for(&path)
                    .expect("the HTTP/2 mock answers with reply() or route()");
                assert!(
                    reply.trailers.is_empty(),
                    "the HTTP/2 mock sends no trailers"
                );
                let body = body
                    .collect()
                    .await
                    .map(http_body_util::Collected::to_bytes)
                    .unwrap_or_default();
                shared
                    .arrived(Recorded {
                        connection: conn.index,
                        alpn: conn.alpn.clone(),
                        version: parts.version,
                        method: parts.method.to_string(),
                        path,
                        authority: parts.uri.authority().map(ToString::to_string),
                        headers: parts.headers,
                        body,
                    })
                    .await;
                let mut response = http::Response::new(Full::new(reply.body));
                *response.status_mut() = StatusCode::from_u16(reply.status).expect("status");
                for (name, value) in &reply.headers {
                    response.headers_mut().append(
                        HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                        HeaderValue::from_str(value).expect("header value"),
                    );
                }
                Ok::<_, Infallible>(response)
            }
        });
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

async fn serve<S>(io: &mut S, shared: &Shared, plan: &Plan, conn: &Conn) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let log = Arc::new(Mutex::new(Vec::new()));
    shared.raw.lock().expect("raw lock").push(log.clone());
    let mut recording = Recording { inner: io, log };
    let io = &mut recording;
    let mut buf = Vec::new();
    for served in 0usize.. {
        let Some(mut request) = read_request(io, &mut buf).await else {
            return Outcome::Closed;
        };
        request.connection = conn.index;
        request.alpn.clone_from(&conn.alpn);
        let is_head = request.method == "HEAD";
        let reply = plan.behaviour.reply_for(&request.path);
        shared.arrived(request).await;
        if plan.reset_reused && served > 0 {
            return Outcome::Reset;
        }
        if let Some(reply) = reply {
            if !delay_head(io, &mut buf, plan.delay_head).await {
                return Outcome::Closed;
            }
            if io.write_all(&response(&reply, is_head)).await.is_err() {
                return Outcome::Closed;
            }
        }
        match &plan.behaviour {
            Behaviour::Silent => {
                let mut sink = [0u8; 1024];
                while matches!(io.read(&mut sink).await, Ok(n) if n > 0) {}
                return Outcome::Closed;
            }
            Behaviour::Reset => return Outcome::Reset,
            Behaviour::Raw(bytes) => {
                let _ = io.write_all(bytes).await;
                let _ = io.shutdown().await;
                return Outcome::Closed;
            }
            Behaviour::Answer(_) | Behaviour::Route(_) => {} // answered above
            Behaviour::Stream {
                head,
                total,
                chunk,
                pause,
                hold_after_first,
            } => {
                if !delay_head(io, &mut buf, plan.delay_head).await {
                    return Outcome::Closed;
                }
                if io
                    .write_all(&response_head(head, Some(*total)))
                    .await
                    .is_err()
                {
                    return Outcome::Closed;
                }
                if !is_head {
                    let body = pattern(*total);
                    for (i, piece) in body.chunks(*chunk).enumerate() {
                        if i == 1 && *hold_after_first {
                            shared.release.notified().await;
                        } else if i > 0 {
                            tokio::time::sleep(*pause).await;
                        }
                        if io.write_all(piece).await.is_err() || io.flush().await.is_err() {
                            return Outcome::Closed;
                        }
                    }
                }
            }
        }
        if io.flush().await.is_err() {
            return Outcome::Closed;
        }
        if plan.close_after_answer {
            let _ = io.shutdown().await;
            return Outcome::Closed;
        }
        if let Some(idle) = plan.idle_close {
            if buf.is_empty() {
                buf.reserve(16 * 1024);
                // `read_buf` is cancel-safe: bytes that arrive after the timeout stay unread,
                // and closing with them unread resets the connection, as a real server does.
                match tokio::time::timeout(idle, io.read_buf(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => {
                        let _ = io.shutdown().await;
                        return Outcome::Closed;
                    }
                }
            }
        }
    }
    Outcome::Closed
}

/// A connection whose reads are appended to a log as they arrive; writes pass through.
struct Recording<'a, S> {
    inner: &'a mut S,
    log: Arc<Mutex<Vec<u8>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Recording<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut *this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let new = &buf.filled()[before..];
            this.log
                .lock()
                .expect("raw log lock")
                .extend_from_slice(new);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recording<'_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Waits `delay` before answering, watching the connection meanwhile (as a server notices a
/// client that hangs up); `false` if the proxy closed it. Bytes that arrive are kept in `buf`.
async fn delay_head<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>, delay: Duration) -> bool {
    if delay.is_zero() {
        return true;
    }
    let deadline = tokio::time::Instant::now() + delay;
    loop {
        buf.reserve(1024);
        match tokio::time::timeout_at(deadline, io.read_buf(buf)).await {
            Err(_) => return true,
            Ok(Ok(n)) if n > 0 => {}
            Ok(_) => return false,
        }
    }
}

/// The whole HTTP/1 answer: Content-Length framed, or chunked when it has trailers.
fn response(reply: &Reply, is_head: bool) -> Vec<u8> {
    if reply.trailers.is_empty() {
        let mut bytes = response_head(reply, Some(reply.body.len()));
        if !is_head {
            bytes.extend_from_slice(&reply.body);
        }
        return bytes;
    }
    let mut bytes = response_head(reply, None);
    if !is_head {
        let mut chunked = String::new();
        if !reply.body.is_empty() {
            let _ = write!(chunked, "{:x}\r\n", reply.body.len());
        }
        bytes.extend_from_slice(chunked.as_bytes());
        bytes.extend_from_slice(&reply.body);
        let mut tail = String::from(if reply.body.is_empty() {
            "0\r\n"
        } else {
            "\r\n0\r\n"
        });
        for (name, value) in &reply.trailers {
            let _ = write!(tail, "{name}: {value}\r\n");
        }
        tail.push_str("\r\n");
        bytes.extend_from_slice(tail.as_bytes());
    }
    bytes
}

/// The status line and headers, then `content-length` if given (never on a 1xx, 204 or 304,
/// which have no body), else `transfer-encoding: chunked`.
fn response_head(reply: &Reply, content_length: Option<usize>) -> Vec<u8> {
    let reason = StatusCode::from_u16(reply.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Status");
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", reply.status);
    for (name, value) in &reply.headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    let bodiless = reply.status < 200 || reply.status == 204 || reply.status == 304;
    match content_length {
        _ if bodiless => {}
        Some(len) => {
            let _ = write!(head, "content-length: {len}\r\n");
        }
        None => head.push_str("transfer-encoding: chunked\r\n"),
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Reads one request (head and body, Content-Length or chunked) from `io`; `None` at EOF or on garbage.
async fn read_request<S>(io: &mut S, buf: &mut Vec<u8>) -> Option<Recorded>
where
    S: AsyncRead + Unpin,
{
    loop {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut slots);
        match parsed.parse(buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let method = parsed.method?.to_owned();
                let path = parsed.path?.to_owned();
                let version = if parsed.version? == 0 {
                    Version::HTTP_10
                } else {
                    Version::HTTP_11
                };
                let mut headers = HeaderMap::new();
                for h in parsed.headers.iter() {
                    headers.append(
                        HeaderName::from_bytes(h.name.as_bytes()).ok()?,
                        HeaderValue::from_bytes(h.value).ok()?,
                    );
                }
                buf.drain(..head_len);
                let body = read_body(io, buf, &headers).await?;
                return Some(Recorded {
                    connection: 0, // set by the caller, which knows the connection
                    alpn: None,
                    version,
                    method,
                    path,
                    authority: None,
                    headers,
                    body,
                });
            }
            Ok(httparse::Status::Partial) => {}
            Err(_) => return None,
        }
        if read_more(io, buf).await == 0 {
            return None;
        }
    }
}

async fn read_body<S>(io: &mut S, buf: &mut Vec<u8>, headers: &HeaderMap) -> Option<Bytes>
where
    S: AsyncRead + Unpin,
{
    let chunked = headers
        .get(http::header::TRANSFER_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    if !chunked {
        let len: usize = headers
            .get(http::header::CONTENT_LENGTH)
            .map_or(Some(0), |v| v.to_str().ok()?.parse().ok())?;
        while buf.len() < len {
            if read_more(io, buf).await == 0 {
                return None;
            }
        }
        return Some(Bytes::from(buf.drain(..len).collect::<Vec<_>>()));
    }
    let mut body = Vec::new();
    loop {
        if let Ok(httparse::Status::Complete((consumed, size))) = httparse::parse_chunk_size(buf) {
            let size = usize::try_from(size).ok()?;
            if size == 0 {
                // No trailers from the proxy: the last chunk ends with an empty line.
                while buf.len() < consumed + 2 {
                    if read_more(io, buf).await == 0 {
                        return None;
                    }
                }
                buf.drain(..consumed + 2);
                return Some(Bytes::from(body));
            }
            if buf.len() >= consumed + size + 2 {
                body.extend_from_slice(&buf[consumed..consumed + size]);
                buf.drain(..consumed + size + 2);
                continue;
            }
        }
        if read_more(io, buf).await == 0 {
            return None;
        }
    }
}

async fn read_more<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>) -> usize {
    buf.reserve(16 * 1024);
    io.read_buf(buf).await.unwrap_or(0)
}

/// A loopback port whose listen backlog is full: a connect to it never completes.
///
/// Linux drops a SYN while the accept queue is full, so the client keeps retransmitting and its
/// connect hangs — the same as a firewalled host, without sending a packet off this machine.
pub struct BlackHole {
    pub addr: SocketAddr,
    _listener: socket2::Socket,
    _fillers: Vec<std::net::TcpStream>,
}

impl BlackHole {
    pub fn new() -> Self {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
        socket.bind(&any.into()).expect("bind");
        socket.listen(0).expect("listen");
        let addr = socket
            .local_addr()
            .expect("local addr")
            .as_socket()
            .expect("inet");
        let mut fillers = Vec::new();
        for _ in 0..16 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                Ok(stream) => fillers.push(stream),
                Err(_) => {
                    return BlackHole {
                        addr,
                        _listener: socket,
                        _fillers: fillers,
                    }
                }
            }
        }
        panic!("the listen backlog never filled up");
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
