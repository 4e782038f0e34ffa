//! Canary: hyper's HTTP/1 server uses its timer the way `src/conn/park.rs` relies on.
//!
//! Parking rests on private behaviour of hyper's HTTP/1 server (`proto/h1/conn.rs`, hyper
//! 1.12): with `header_read_timeout` set, it asks its timer for exactly one sleep each time it
//! begins to wait for a request head — `sleep_until(timer.now() + header_read_timeout)` — keeps
//! it while it waits, however long and however often it is polled, drops it as soon as a
//! head is parsed, and asks for nothing else: no timer while a request is in flight, while its
//! body is read, or while the response is written. `park` reads "a header sleep is alive" as
//! "idle, waiting for a head" and derives when the wait began from the deadline. If a hyper
//! upgrade changes any of that, these tests fail and say which part; parking must then be
//! re-checked before the `~1.12` pin in Cargo.toml is moved.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot bind a socket has failed

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::rt::{Sleep, Timer};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Long enough for the server task to have run after a client write, on a loaded machine.
const SETTLE: Duration = Duration::from_millis(150);

/// What hyper asked of its timer.
#[derive(Default)]
struct Asked {
    now: AtomicUsize,
    sleep: AtomicUsize,
    sleep_until: AtomicUsize,
    reset: AtomicUsize,
    /// Sleeps made and not yet dropped.
    live: AtomicUsize,
    /// The last `now()` handed out, and the last deadline asked for.
    last_now: Mutex<Option<Instant>>,
    last_deadline: Mutex<Option<Instant>>,
}

impl Asked {
    fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }

    /// (sleeps asked for in any way, sleeps alive now).
    fn sleeps(&self) -> (usize, usize) {
        let made = Self::get(&self.sleep) + Self::get(&self.sleep_until) + Self::get(&self.reset);
        (made, Self::get(&self.live))
    }
}

/// A tokio timer that counts what it is asked.
struct Counting {
    inner: TokioTimer,
    asked: Arc<Asked>,
}

struct CountedSleep {
    inner: Pin<Box<dyn Sleep>>,
    asked: Arc<Asked>,
}

impl std::future::Future for CountedSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.as_mut().poll(cx)
    }
}

impl Sleep for CountedSleep {}

impl Drop for CountedSleep {
    fn drop(&mut self) {
        self.asked.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Counting {
    fn counted(&self, inner: Pin<Box<dyn Sleep>>) -> Pin<Box<dyn Sleep>> {
        self.asked.live.fetch_add(1, Ordering::SeqCst);
        Box::pin(CountedSleep {
            inner,
            asked: self.asked.clone(),
        })
    }
}

impl Timer for Counting {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.asked.sleep.fetch_add(1, Ordering::SeqCst);
        self.counted(self.inner.sleep(duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        self.asked.sleep_until.fetch_add(1, Ordering::SeqCst);
        *self.asked.last_deadline.lock().unwrap() = Some(deadline);
        self.counted(self.inner.sleep_until(deadline))
    }

    fn now(&self) -> Instant {
        self.asked.now.fetch_add(1, Ordering::SeqCst);
        let now = Instant::now();
        *self.asked.last_now.lock().unwrap() = Some(now);
        now
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        self.asked.reset.fetch_add(1, Ordering::SeqCst);
        *sleep = self.counted(self.inner.sleep_until(new_deadline));
    }
}

/// A keep-alive hyper HTTP/1 server connection with the counting timer, whose service reads
/// each request body whole and then waits for a permit from `gate` before answering.
async fn server() -> (TcpStream, Arc<Asked>, Arc<Semaphore>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    let asked = Arc::new(Asked::default());
    let gate = Arc::new(Semaphore::new(0));
    let service = {
        let gate = gate.clone();
        service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let gate = gate.clone();
            async move {
                let body = request.into_body().collect().await.unwrap().to_bytes();
                gate.acquire().await.unwrap().forget();
                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(format!(
                    "{}",
                    body.len()
                )))))
            }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(Counting {
            inner: TokioTimer::new(),
            asked: asked.clone(),
        })
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true);
    tokio::spawn(async move {
        let _ = builder
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
    (client, asked, gate)
}

/// Reads one response (small, with `content-length`) from `client`.
async fn response(client: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut chunk))
            .await
            .expect("a response within 5 s")
            .unwrap();
        assert!(n > 0, "connection closed");
        got.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

const BROKE: &str = "hyper's HTTP/1 server no longer uses its timer as src/conn/park.rs relies on \
                     (see its module doc, \"When parking is safe\"); re-check parking before \
                     moving the hyper pin";

#[tokio::test]
async fn hyper_arms_one_header_sleep_per_wait_for_a_head_and_nothing_else() {
    let (mut client, asked, gate) = server().await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        asked.sleeps(),
        (1, 1),
        "{BROKE}: one sleep, alive, while waiting for the first head"
    );
    let deadline = asked.last_deadline.lock().unwrap().expect("a deadline");
    let now = asked
        .last_now
        .lock()
        .unwrap()
        .expect("now() asked before the sleep");
    assert_eq!(
        deadline,
        now + HEADER_TIMEOUT,
        "{BROKE}: the deadline is timer.now() + header_read_timeout"
    );

    // Idle, polled or not: still the one sleep.
    tokio::time::sleep(SETTLE * 2).await;
    assert_eq!(asked.sleeps(), (1, 1), "{BROKE}: one sleep per idle period");

    for request in 1..=3 {
        // A head, and half a body: the head's sleep is gone, and none is made for the body.
        client
            .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
            .await
            .unwrap();
        tokio::time::sleep(SETTLE).await;
        assert_eq!(
            asked.sleeps(),
            (request, 0),
            "{BROKE}: the sleep is dropped once a head is parsed, none while a body is read"
        );
        client.write_all(b"world").await.unwrap();
        tokio::time::sleep(SETTLE).await;
        assert_eq!(
            asked.sleeps(),
            (request, 0),
            "{BROKE}: no sleep while the request is in flight"
        );
        gate.add_permits(1);
        let answer = response(&mut client).await;
        assert!(answer.ends_with("\r\n\r\n10"), "{answer:?}");
        tokio::time::sleep(SETTLE).await;
        assert_eq!(
            asked.sleeps(),
            (request + 1, 1),
            "{BROKE}: one new sleep when the next wait for a head begins"
        );
    }
    assert_eq!(
        Asked::get(&asked.sleep),
        0,
        "{BROKE}: sleep() is never used"
    );
    assert_eq!(
        Asked::get(&asked.reset),
        0,
        "{BROKE}: reset() is never used"
    );
    assert_eq!(
        Asked::get(&asked.now),
        Asked::get(&asked.sleep_until),
        "{BROKE}: now() once per sleep_until"
    );
}

/// A head that arrives whole, with the next one already behind it (pipelined): each wait is
/// still one sleep, made and dropped within the poll that parses the head.
#[tokio::test]
async fn pipelined_heads_each_get_one_sleep() {
    let (mut client, asked, gate) = server().await;
    client
        .write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    gate.add_permits(2);
    let mut both = Vec::new();
    let mut chunk = [0u8; 1024];
    while String::from_utf8_lossy(&both).matches("\r\n\r\n0").count() < 2 {
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut chunk))
            .await
            .expect("both responses within 5 s")
            .unwrap();
        assert!(n > 0, "connection closed");
        both.extend_from_slice(&chunk[..n]);
    }
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        asked.sleeps(),
        (3, 1),
        "{BROKE}: one sleep per head waited for (two heads, then the idle wait)"
    );
}
