//! What an idle keep-alive connection costs the proxy's heap once parked: a budget, counted by dhat.
//!
//! RSS per connection is a benchmark (`bench/idle_conns.py`, BENCHMARKS.md); this is the exact
//! figure underneath it, the bytes a parked connection keeps allocated, which does not move with
//! the machine. A parked connection should keep its task (the connection's future), its socket's
//! registration with the runtime, its service (peer address, trust decision) and two small
//! records (framing verdicts, header-read wait): 1,996 bytes today. Anything of an incarnation left
//! behind — hyper's connection (~800 bytes, as once happened: its emptied box outlived the park),
//! a read or write buffer (8 KiB) — breaks the budget.
//!
//! One `#[test]` in this file: dhat counts the whole process, and a test running beside it
//! would be counted too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::{spawn_proxy, MockUpstream, WAIT};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Connections opened and held for the measurement.
const CONNECTIONS: usize = 200;
/// Heap a parked connection may keep, in bytes.
const BUDGET: usize = 2304;

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: proxy.test\r\n\r\n";

/// Opens `n` connections one after another, each answered once and then left open. Plain std
/// sockets: a file descriptor each, nothing on the heap of this process but the `Vec`.
fn open_idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(HEALTHZ).unwrap();
        read_one_response(&mut stream);
        held.push(stream);
    }
    held
}

/// Reads one `Content-Length` response, asserting it is a 200 that keeps the connection open.
fn read_one_response(stream: &mut TcpStream) {
    let mut buf = [0u8; 2048];
    let mut len = 0;
    loop {
        let n = stream.read(&mut buf[len..]).unwrap();
        assert_ne!(n, 0, "the proxy closed the connection");
        len += n;
        let text = std::str::from_utf8(&buf[..len]).unwrap();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let head = &text[..end];
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert!(
            !head.to_ascii_lowercase().contains("connection: close"),
            "{head}"
        );
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .expect("a Content-Length");
        if len >= end + 4 + length {
            assert_eq!(len, end + 4 + length, "nothing after the one response");
            return;
        }
    }
}

fn live_bytes() -> usize {
    dhat::HeapStats::get().curr_bytes
}

#[tokio::test]
async fn a_parked_connection_keeps_its_task_and_socket_state_and_nothing_of_hyper() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let mock = MockUpstream::start_default().await;
    // A header-read timeout far past this test: a parked connection that reached it would
    // close and free its state before the count, hiding what it kept.
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.client_header_timeout = Duration::from_secs(600);
    })
    .await;
    let addr = proxy.addr;

    // Warm up whatever is made once (the runtime's lists, the first connection's lazies).
    let warm = tokio::task::spawn_blocking(move || open_idle(addr, 8))
        .await
        .unwrap();
    proxy.parked(8).await;
    assert_eq!(proxy.state.conns.parked_now(), 8);
    let before = live_bytes();

    let held = tokio::task::spawn_blocking(move || open_idle(addr, CONNECTIONS))
        .await
        .unwrap();
    // The proxy runs on this test's one thread: once the count is reached, each of those
    // connections has finished the poll that parked it and freed what parking frees.
    proxy.parked(8 + CONNECTIONS as u64).await;
    let after = live_bytes();
    assert_eq!(
        proxy.state.conns.parked_now(),
        8 + CONNECTIONS as u64,
        "all still parked"
    );

    let per_connection = after.saturating_sub(before) / CONNECTIONS;
    eprintln!("{per_connection} bytes of heap per parked connection");
    assert!(
        per_connection <= BUDGET,
        "a parked connection keeps {per_connection} bytes of heap (budget {BUDGET}): \
         {before} bytes live before {CONNECTIONS} connections, {after} after"
    );
    // And it is a real measurement: the connections do cost something.
    assert!(
        per_connection >= 512,
        "{per_connection} bytes per connection"
    );
    drop((held, warm));
}
