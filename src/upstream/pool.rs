//! Connections to the central service: idle HTTP/1 senders, newest first, or one shared HTTP/2 connection.
//!
//! hyper's `client::conn` does the HTTP; this file only decides which connection a request
//! goes on. It replaced hyper-util's legacy `Client`, which for this one-upstream proxy spent
//! about 4,000 instructions a request (callgrind) on what a single destination does not need:
//! a keyed pool map, a boxed future per request, a lazily built connect future raced against
//! every checkout, connection extras copied into every response.
//!
//! An HTTP/1 connection goes back to the pool as soon as its response can no longer need it:
//! at once when hyper has already read the whole answer (the usual small JSON body), else when
//! the streamed body ends or reaches its trailers ([`UpstreamBody`] carries the [`Lease`]). A
//! body dropped before its end drops the lease, and with it the connection's only sender: hyper
//! then closes the connection. An answer that is already complete (`HEAD`, 204, an empty body)
//! returns its connection at once, even if hyper is still writing the request body (a service
//! answering before reading it): the next request then waits for that write.
//! Idle connections older than `--pool-idle-timeout` are never used, and a reaper task, which
//! runs only while something is pooled, closes each about that long after its last use.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tower_service::Service;

use super::limit::Permit;

type Connector = HttpsConnector<HttpConnector>;
type RequestBody = Full<Bytes>;

pub struct Pool {
    /// Connections open to the central service, every worker's pool counted.
    sockets: Arc<Sockets>,
    connector: Connector,
    /// `AUTH_URL`'s scheme and authority: what is dialled, and what HTTP/2 requests carry.
    target: Uri,
    idle_timeout: Duration,
    http1: http1::Builder,
    idle: Mutex<Idle>,
}

/// Connections open to the central service across every worker's pool, and how many may stay
/// open: `--upstream-max-connections`. Busy ones are already bounded by the shared in-flight
/// [`Limit`](super::limit::Limit); this bounds idle ones too, which each worker's pool would
/// otherwise keep up to the cap on its own (N workers, N × the cap).
#[derive(Debug)]
pub struct Sockets {
    open: AtomicUsize,
    max: usize,
}

impl Sockets {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Sockets {
            open: AtomicUsize::new(0),
            max,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// One open connection in [`Sockets`], until dropped with its connection task.
struct OpenSocket(Arc<Sockets>);

impl OpenSocket {
    fn new(sockets: &Arc<Sockets>) -> Self {
        sockets.open.fetch_add(1, Ordering::Relaxed);
        OpenSocket(sockets.clone())
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Idle {
    /// Oldest first: returned senders are pushed, checkouts pop the newest (warmest) one.
    http1: Vec<(http1::SendRequest<RequestBody>, Instant)>,
    /// When ALPN chose h2, every request shares this connection; and when it was last used.
    http2: Option<(http2::SendRequest<RequestBody>, Instant)>,
    /// Whether the reaper task is running.
    reaping: bool,
}

/// A connection a request can be sent on.
pub enum Sender {
    Http1(http1::SendRequest<RequestBody>),
    Http2(http2::SendRequest<RequestBody>),
}

/// Why a request got no response.
#[allow(clippy::large_enum_variant)] // as hyper's own `TrySendError`: boxing would allocate on the retry path
pub enum SendError {
    /// The connection closed before hyper wrote a byte of the request: safe to send elsewhere.
    Unsent(Request<RequestBody>, hyper::Error),
    /// The request was (or may have been) written.
    Sent(hyper::Error),
}

/// Why no connection could be made.
pub enum ConnectError {
    /// TCP or TLS failed (refused, unreachable, bad certificate, `--connect-timeout`).
    Dial(Box<dyn std::error::Error + Send + Sync>),
    /// The HTTP/2 preface could not be exchanged.
    Handshake(hyper::Error),
}

impl Pool {
    pub fn new(
        connector: Connector,
        target: Uri,
        idle_timeout: Duration,
        sockets: Arc<Sockets>,
    ) -> Arc<Self> {
        let mut http1 = http1::Builder::new();
        // Auth requests and answers are small: one copy into hyper's buffer and one `write`
        // beat a two-slice `writev` (as on the server side, see conn/accept.rs).
        http1.writev(false);
        Arc::new(Pool {
            sockets,
            connector,
            target,
            idle_timeout,
            http1,
            idle: Mutex::new(Idle::default()),
        })
    }

    /// A pool with no connections yet that dials the same service the same way.
    pub fn empty_like(&self) -> Arc<Self> {
        Pool::new(
            self.connector.clone(),
            self.target.clone(),
            self.idle_timeout,
            self.sockets.clone(),
        )
    }

    fn idle(&self) -> MutexGuard<'_, Idle> {
        // Nothing panics while holding the lock; if something ever did, the list is still valid.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A pooled connection that is open and was idle for less than `--pool-idle-timeout`.
    pub fn checkout(&self) -> Option<Sender> {
        let mut idle = self.idle();
        let now = Instant::now();
        if let Some((shared, used)) = &mut idle.http2 {
            if !shared.is_closed() && now.saturating_duration_since(*used) < self.idle_timeout {
                *used = now;
                return Some(Sender::Http2(shared.clone()));
            }
            idle.http2 = None;
        }
        while let Some((sender, since)) = idle.http1.pop() {
            if now.saturating_duration_since(since) >= self.idle_timeout {
                // The newest is too old, so are all the others. Dropping a sender wakes its
                // connection task: do it after the lock is released.
                let expired = std::mem::take(&mut idle.http1);
                drop(idle);
                drop(expired);
                return None;
            }
            if !sender.is_closed() {
                return Some(Sender::Http1(sender));
            }
        }
        None
    }

    /// Dials `AUTH_URL` and starts HTTP/2 if ALPN chose it, HTTP/1.1 otherwise.
    pub async fn connect(self: &Arc<Self>) -> Result<Sender, ConnectError> {
        let mut connector = self.connector.clone();
        poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(ConnectError::Dial)?;
        let io = connector
            .call(self.target.clone())
            .await
            .map_err(ConnectError::Dial)?;
        if io.connected().is_negotiated_h2() {
            let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await
                .map_err(ConnectError::Handshake)?;
            spawn_connection(connection, "HTTP/2", OpenSocket::new(&self.sockets));
            let mut idle = self.idle();
            if let Some((shared, _)) = &idle.http2 {
                if !shared.is_closed() {
                    // Requests that found nothing pooled all dialled; the first h2 connection
                    // carries them all, and this one closes as its only sender is dropped.
                    return Ok(Sender::Http2(shared.clone()));
                }
            }
            idle.http2 = Some((sender.clone(), Instant::now()));
            self.start_reaper(&mut idle);
            Ok(Sender::Http2(sender))
        } else {
            let (sender, connection) = self
                .http1
                .handshake(io)
                .await
                .map_err(ConnectError::Handshake)?;
            spawn_connection(connection, "HTTP/1", OpenSocket::new(&self.sockets));
            Ok(Sender::Http1(sender))
        }
    }

    /// Hands `sender` back once `response` no longer needs it; what the body must carry otherwise.
    pub fn release(
        self: &Arc<Self>,
        sender: Sender,
        response: &Response<Incoming>,
    ) -> Option<Lease> {
        match sender {
            // The shared connection stays in the pool; this clone is just dropped.
            Sender::Http2(_) => None,
            Sender::Http1(sender) => {
                if sender.is_ready() || response.body().is_end_stream() {
                    self.put(sender);
                    None
                } else {
                    Some(Lease {
                        sender,
                        pool: Arc::clone(self),
                    })
                }
            }
        }
    }

    /// Idle HTTP/1 connections, and whether a shared HTTP/2 connection is pooled (for `/metrics`).
    pub fn idle_counts(&self) -> (usize, bool) {
        let idle = self.idle();
        (idle.http1.len(), idle.http2.is_some())
    }

    /// Stops handing out the shared HTTP/2 connection; the next request dials a new one.
    pub fn forget_http2(&self) {
        self.idle().http2 = None;
    }

    fn put(self: &Arc<Self>, sender: http1::SendRequest<RequestBody>) {
        // Over the cap (other workers' pools hold idle ones too): dropping the only sender
        // of an idle connection closes it.
        if sender.is_closed() || self.sockets.open() > self.sockets.max {
            return;
        }
        let mut idle = self.idle();
        idle.http1.push((sender, Instant::now()));
        self.start_reaper(&mut idle);
    }

    fn start_reaper(self: &Arc<Self>, idle: &mut Idle) {
        if idle.reaping {
            return;
        }
        // Always inside the runtime (called from request tasks); if not, a later call retries.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(reap(Arc::downgrade(self), self.idle_timeout));
            idle.reaping = true;
        }
    }
}

/// Runs a connection's I/O as its own task until the connection ends.
fn spawn_connection(
    connection: impl Future<Output = hyper::Result<()>> + Send + 'static,
    protocol: &'static str,
    open: OpenSocket,
) {
    tokio::spawn(async move {
        let _open = open;
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, protocol, "central service connection ended");
        }
    });
}

/// Closes connections idle past the timeout (dropping the pool's sender ends an HTTP/1
/// connection task, and an HTTP/2 one once its last stream is done); exits when nothing is
/// pooled, so an idle proxy runs no timer.
async fn reap(pool: Weak<Pool>, every: Duration) {
    let mut wake = Instant::now() + every;
    loop {
        tokio::time::sleep_until(wake.into()).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        let mut idle = pool.idle();
        let now = Instant::now();
        let fresh = |since: &Instant| now.saturating_duration_since(*since) < every;
        // Oldest first, so the expired ones are a prefix; they are dropped (which wakes their
        // connection tasks) after the lock is released. Closed ones wake nothing.
        let cut = idle.http1.partition_point(|(_, since)| !fresh(since));
        let expired: Vec<_> = idle.http1.drain(..cut).collect();
        idle.http1.retain(|(sender, _)| !sender.is_closed());
        let expired_http2 = if idle
            .http2
            .as_ref()
            .is_some_and(|(shared, used)| shared.is_closed() || !fresh(used))
        {
            idle.http2.take()
        } else {
            None
        };
        let oldest = idle
            .http1
            .first()
            .map(|(_, since)| *since)
            .into_iter()
            .chain(idle.http2.as_ref().map(|(_, used)| *used))
            .min();
        let Some(oldest) = oldest else {
            idle.reaping = false;
            return;
        };
        drop(idle);
        drop((expired, expired_http2));
        wake = oldest + every;
    }
}

impl Sender {
    /// Sends `request` once the connection can take it.
    pub async fn send(
        &mut self,
        mut request: Request<RequestBody>,
        target: &Uri,
    ) -> Result<Response<Incoming>, SendError> {
        let sent = match self {
            Sender::Http1(sender) => {
                // A sender returned when its answer's body ended may not be ready yet.
                if let Err(e) = sender.ready().await {
                    return Err(SendError::Unsent(request, e));
                }
                sender.try_send_request(request).await
            }
            Sender::Http2(sender) => {
                if let Err(e) = sender.ready().await {
                    return Err(SendError::Unsent(request, e));
                }
                // HTTP/2 sends scheme and authority as pseudo-headers; HTTP/1 requests are
                // built in origin form.
                *request.uri_mut() = absolute(target, request.uri());
                sender.try_send_request(request).await
            }
        };
        sent.map_err(|mut e| match e.take_message() {
            Some(request) => SendError::Unsent(request, e.into_error()),
            None => SendError::Sent(e.into_error()),
        })
    }
}

/// `target`'s scheme and authority with `uri`'s path and query.
fn absolute(target: &Uri, uri: &Uri) -> Uri {
    let mut parts = http::uri::Parts::default();
    parts.scheme = target.scheme().cloned();
    parts.authority = target.authority().cloned();
    parts.path_and_query = uri.path_and_query().cloned();
    Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}

/// An HTTP/1 connection whose answer is still streaming; back to the pool when the body ends.
pub struct Lease {
    sender: http1::SendRequest<RequestBody>,
    pool: Arc<Pool>,
}

/// Why an upstream body failed after its head was passed on.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// The central service's response body, returning its connection to the pool and its
/// request's place among those in flight at its end.
///
/// A body that stops coming for `--upstream-timeout` (the central service wrote half an answer
/// and stalled) fails, as nginx's `proxy_read_timeout` does between two reads: the client sees
/// the answer cut instead of waiting for ever, and the connection is closed.
#[derive(Debug)]
pub struct UpstreamBody {
    body: Incoming,
    lease: Option<Lease>,
    permit: Option<Permit>,
    /// The longest wait for the next frame.
    patience: Duration,
    /// Made the first time the body has to wait, re-armed at each later wait.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    waiting: bool,
}

/// The central service sent part of a body and then nothing for `--upstream-timeout`.
#[derive(Debug)]
pub struct BodyStalled;

impl std::fmt::Display for BodyStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the central service stopped sending its answer's body")
    }
}

impl std::error::Error for BodyStalled {}

impl UpstreamBody {
    pub fn new(body: Incoming, lease: Option<Lease>) -> Self {
        UpstreamBody {
            body,
            lease,
            permit: None,
            patience: Duration::MAX,
            stalled: None,
            waiting: false,
        }
    }

    /// Keeps `permit` until the body ends (an answer already complete lets it go at once), and
    /// waits at most `patience` for each frame.
    #[must_use]
    pub fn holding(mut self, permit: Permit, patience: Duration) -> Self {
        if !self.body.is_end_stream() {
            self.permit = Some(permit);
        }
        self.patience = patience;
        self
    }

    /// Whether the body has waited `patience` since its last frame; arms the wait if needed.
    fn stalled(&mut self, cx: &mut Context<'_>) -> bool {
        // The clock is read only when a wait begins, not at every poll during it.
        let patience = self.patience;
        let timer = match &mut self.stalled {
            Some(timer) if self.waiting => timer,
            Some(timer) => {
                timer.as_mut().reset(tokio::time::Instant::now() + patience);
                timer
            }
            None => self.stalled.insert(Box::pin(tokio::time::sleep(patience))),
        };
        self.waiting = true;
        timer.as_mut().poll(cx).is_ready()
    }

    fn end(&mut self) {
        // The connection is back in the pool before the permit is: a request waiting for a
        // permit then finds it instead of dialling another.
        if let Some(Lease { sender, pool }) = self.lease.take() {
            pool.put(sender);
        }
        self.permit = None;
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lease")
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if polled.is_pending() {
            if this.patience == Duration::MAX || !this.stalled(cx) {
                return Poll::Pending;
            }
            this.lease = None;
            this.permit = None;
            return Poll::Ready(Some(Err(Box::new(BodyStalled))));
        }
        this.waiting = false;
        match &polled {
            // hyper stops polling a body that says it has ended, so check after every frame.
            // hyper's server also stops at trailers; by then hyper's client has read the answer.
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() || this.body.is_end_stream() => {
                this.end();
            }
            Poll::Ready(None) => this.end(),
            // A broken body: the connection goes with it.
            Poll::Ready(Some(Err(_))) => {
                this.lease = None;
                this.permit = None;
            }
            _ => {}
        }
        polled.map(|frame| frame.map(|result| result.map_err(BodyError::from)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
