//! The floor under auth-proxy's instructions per request: hyper's HTTP/1 server and client, and nothing else.
//!
//! A pass-through that does only what every proxy built on hyper must do: hyper's server parses
//! the client's request; that same `Request` (its header map reused, `Host` replaced, its body
//! streamed) goes to the upstream over a pooled keep-alive `hyper::client::conn::http1`
//! connection; hyper's client parses the answer and hyper's server writes it back as it came.
//! No validation, header policy, request id, trace context, log, metrics, timeouts, caps or TLS
//! — one current-thread runtime, as auth-proxy runs one per worker.
//!
//! `bench/run.sh` counts its instructions per request beside auth-proxy's and nginx's when
//! `BENCH_FLOOR_BIN` names it (BENCHMARKS.md, "hyper alone"): whatever separates it from nginx is
//! hyper's own cost, which no change to auth-proxy's code can remove.
//!
//! ```text
//! cargo build --release --example hyper_floor
//! target/release/examples/hyper_floor --listen 127.0.0.1:18090 --auth-url http://127.0.0.1:18081
//! ```
//!
//! A measuring instrument for loopback benchmarks, not a proxy to deploy: it trusts its upstream
//! and its clients completely.

use std::error::Error;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, HOST};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn Error + Send + Sync>;

/// Idle upstream connections, the most recently used last.
type Pool = Arc<Mutex<Vec<SendRequest<Incoming>>>>;

/// Where to listen and where to forward; the flags bench/run.sh gives every proxy it starts.
struct Flags {
    listen: SocketAddr,
    upstream: SocketAddr,
    host: HeaderValue,
}

fn main() -> Result<(), BoxError> {
    let flags = flags(std::env::args().skip(1))?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(flags))
}

/// `--listen ADDR --auth-url http://IP:PORT`; any other flag is taken to have one value and is
/// ignored (bench/run.sh also passes `--access-log off`).
fn flags(mut args: impl Iterator<Item = String>) -> Result<Flags, BoxError> {
    let (mut listen, mut url) = (None, None);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value),
            "--auth-url" => url = Some(value),
            _ => {}
        }
    }
    let url: http::Uri = url
        .ok_or("--auth-url http://IP:PORT is required")?
        .parse()?;
    let authority = url.authority().ok_or("--auth-url needs IP:PORT")?;
    Ok(Flags {
        listen: listen.ok_or("--listen ADDR is required")?.parse()?,
        upstream: authority.as_str().parse()?,
        host: HeaderValue::from_str(authority.as_str())?,
    })
}

async fn serve(flags: Flags) -> Result<(), BoxError> {
    let listener = TcpListener::bind(flags.listen).await?;
    // bench/run.sh's `launch` waits for this line.
    eprintln!("listening on http://{}", listener.local_addr()?);
    let pool = Pool::default();
    loop {
        // A failed accept (a client gone before it was taken, no descriptor left) ends neither
        // the listener nor the process.
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (pool, host, upstream) = (pool.clone(), flags.host.clone(), flags.upstream);
        tokio::spawn(async move {
            let service =
                service_fn(move |request| forward(request, pool.clone(), host.clone(), upstream));
            // No header-read timeout: it needs a timer, which costs a registration per request.
            // `writev(false)` on both sides, as auth-proxy (~500 instructions a request fewer).
            let _ = http1::Builder::new()
                .header_read_timeout(None)
                .writev(false)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The client's request, `Host` replaced, to the upstream; its answer back as it came.
async fn forward(
    mut request: Request<Incoming>,
    pool: Pool,
    host: HeaderValue,
    upstream: SocketAddr,
) -> Result<Response<Returning>, BoxError> {
    request.headers_mut().insert(HOST, host);
    let mut sender = checkout(&pool, upstream).await?;
    // One given back when its answer's body ended may not be ready yet (auth-proxy waits too).
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    Ok(response.map(|body| Returning {
        body,
        lease: Some((sender, pool)),
    }))
}

/// An idle pooled connection (see [`Returning`]), or a new one.
async fn checkout(pool: &Pool, upstream: SocketAddr) -> Result<SendRequest<Incoming>, BoxError> {
    loop {
        let idle = pool.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let Some(sender) = idle else { break };
        if !sender.is_closed() {
            return Ok(sender);
        }
    }
    let stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .writev(false)
        .handshake(TokioIo::new(stream))
        .await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// The upstream's answer body; its connection goes back to the pool once the body has ended,
/// as auth-proxy's pool takes one back (one whose answer was cut short is dropped instead).
struct Returning {
    body: Incoming,
    lease: Option<(SendRequest<Incoming>, Pool)>,
}

impl Body for Returning {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        let ended = matches!(polled, Poll::Ready(None)) || self.body.is_end_stream();
        if let (true, Some((sender, pool))) = (ended, self.lease.take()) {
            pool.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(sender);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
