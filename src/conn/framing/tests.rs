//! The framing follower against byte streams split in every possible place.

use super::*;

/// Feeds `stream` in pieces of `step` bytes; returns which request indexes were ambiguous.
fn ambiguous_index(stream: &[u8], step: usize) -> Option<u64> {
    let verdicts = Verdicts::new();
    let mut tracker = Tracker::new(verdicts.clone());
    for piece in stream.chunks(step) {
        tracker.feed(piece);
    }
    let found = verdicts.ambiguous.load(Ordering::Relaxed);
    (found != u64::MAX).then_some(found)
}

fn every_split(stream: &[u8], expected: Option<u64>) {
    for step in 1..=stream.len() {
        assert_eq!(ambiguous_index(stream, step), expected, "step {step}");
    }
}

const PLAIN: &[u8] = b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
const CHUNKED: &[u8] =
    b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n";
const GET: &[u8] = b"GET /protected HTTP/1.1\r\nHost: x\r\n\r\n";
const BOTH: &[u8] =
    b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
const BOTH_TE_FIRST: &[u8] =
    b"POST /login HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n0\r\n\r\n";

#[test]
fn plain_streams_are_never_flagged() {
    let stream = [PLAIN, CHUNKED, GET, PLAIN, GET].concat();
    every_split(&stream, None);
}

#[test]
fn both_framing_headers_are_flagged_at_their_request_index() {
    every_split(BOTH, Some(0));
    every_split(BOTH_TE_FIRST, Some(0));
    every_split(&[PLAIN, CHUNKED, GET, BOTH].concat(), Some(3));
}

/// A `Content-Length` we cannot read is still a second framing beside `Transfer-Encoding`: a
/// front end may read `5\u{a0}` or `+5` as 5 while hyper frames by chunks.
#[test]
fn an_unreadable_length_beside_chunked_is_flagged_too() {
    for length in [&b"5\xc2\xa0"[..], b"+5", b"5, 5", b"x", b""] {
        for te_first in [false, true] {
            let te = &b"Transfer-Encoding: chunked\r\n"[..];
            let cl = [&b"Content-Length: "[..], length, b"\r\n"].concat();
            let (first, second) = if te_first {
                (te, &cl[..])
            } else {
                (&cl[..], te)
            };
            let head = [
                &b"POST /login HTTP/1.1\r\nHost: x\r\n"[..],
                first,
                second,
                b"\r\n0\r\n\r\n",
            ]
            .concat();
            every_split(&head, Some(0));
        }
    }
}

/// A chunked request whose framing hyper reads one way and httparse's helpers another,
/// then a CL+TE request: the watch must still find the second head (fuzz finding, issue 19).
fn desync_then_both(first_body: &[u8]) -> Vec<u8> {
    let head = b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    [&head[..], first_body, BOTH].concat()
}

#[test]
fn a_long_zero_padded_chunk_size_keeps_the_watch_on() {
    // hyper takes any number of hex digits that fit in a u64; httparse's parser stops at 16.
    every_split(
        &desync_then_both(b"00000000000000000005\r\nhello\r\n0\r\n\r\n"),
        Some(1),
    );
    // Past u64 hyper refuses the body and closes: nothing more to follow.
    every_split(&desync_then_both(b"10000000000000000\r\n"), None);
}

#[test]
fn a_bare_lf_does_not_end_a_trailer_line_or_the_trailers() {
    // hyper: "X-T: 1\n\nPOST ... HTTP/1.1" is one trailer line, the wrapper's head more of
    // them, and the request after them is the CL+TE one (index 1); a reading that ended the
    // trailers at "\n\n" would take the wrapper for index 1 and BOTH for its body.
    let wrapper = format!("POST /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n", BOTH.len());
    let first = [&b"5\r\nhello\r\n0\r\nX-T: 1\n\n"[..], wrapper.as_bytes()].concat();
    every_split(&desync_then_both(&first), Some(1));
    let first = [&b"5\r\nhello\r\n0\r\n\n"[..], wrapper.as_bytes()].concat();
    every_split(&desync_then_both(&first), Some(1));
}

#[test]
fn chunk_size_lines_are_read_as_hyper_reads_them() {
    let cases: [(&[u8], Option<u64>); 12] = [
        (b"5\r\n", Some(5)),
        (b"00000000000000000000a\r\n", Some(10)),
        (b"ffffffffffffffff\r\n", Some(u64::MAX)),
        (b"10000000000000000\r\n", None),
        (b"5 \t ;ext=\"v\"\r\n", Some(5)),
        (b"5;\r\n", Some(5)),
        (b"5\n", None),
        (b"5;a\rb\r\n", None),
        (b"\r\n", None),
        (b" 5\r\n", None),
        (b"+5\r\n", None),
        (b"5\x0c\r\n", None),
    ];
    for (line, size) in cases {
        assert_eq!(
            chunk_size_line(line),
            size,
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn framing_headers_inside_a_body_are_not_a_head() {
    // A body that looks like a smuggled request must not be read as one.
    let body = b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let stream = [head.as_bytes(), body, GET].concat();
    every_split(&stream, None);
}

#[test]
fn http2_preface_and_garbage_switch_the_watcher_off() {
    every_split(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", None);
    every_split(b"\x16\x03\x01 not http at all\r\n\r\n", None);
}

#[test]
fn service_reads_verdicts_in_request_order() {
    let verdicts = Verdicts::new();
    let mut tracker = Tracker::new(verdicts.clone());
    tracker.feed(&[GET, BOTH].concat());
    assert!(!verdicts.next_request_is_ambiguous());
    assert!(verdicts.next_request_is_ambiguous());
    assert!(!verdicts.next_request_is_ambiguous());
}

/// The line scanner either defers to httparse or agrees with it exactly, on every prefix.
fn scanner_agrees(head: &[u8]) {
    for end in 0..=head.len() {
        let prefix = &head[..end];
        if let Some(scanned) = scan_head(prefix) {
            assert_eq!(
                scanned,
                parse_head_fully(prefix),
                "{:?}",
                String::from_utf8_lossy(prefix)
            );
        }
    }
}

#[test]
fn the_line_scanner_agrees_with_httparse() {
    for head in [PLAIN, CHUNKED, GET, BOTH, BOTH_TE_FIRST] {
        scanner_agrees(head);
    }
    for head in [
        &b"GET / HTTP/1.0\r\nCONTENT-LENGTH:  12 \r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        scanner_agrees(head);
    }
}

#[test]
fn the_line_scanner_defers_what_it_does_not_know() {
    for head in [
        &b"GET / HTTP/1.1\nHost: x\n\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        b"\r\nGET / HTTP/1.1\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n",
    ] {
        assert_eq!(scan_head(head), None, "{:?}", String::from_utf8_lossy(head));
    }
    let many: Vec<u8> = [
        &b"GET / HTTP/1.1\r\n"[..],
        &b"A: b\r\n".repeat(MAX_HEADERS + 1),
        b"\r\n",
    ]
    .concat();
    assert_eq!(scan_head(&many), None);
    assert_eq!(parse_head_fully(&many), Head::Invalid);
}

mod generated {
    use super::*;
    use proptest::prelude::*;

    fn line() -> impl Strategy<Value = String> {
        let name = prop::sample::select(vec![
            "Content-Length",
            "content-length",
            "Transfer-Encoding",
            "transfer-encoding",
            "Host",
            "X-A",
            "Content-Lengthx",
        ]);
        let value = prop::sample::select(vec![
            "0",
            "5",
            " 7 ",
            "12a",
            "",
            "chunked",
            " chunked",
            "gzip, chunked",
            "chunked, gzip",
            "x",
        ]);
        (name, value).prop_map(|(n, v)| format!("{n}:{v}\r\n"))
    }

    proptest! {
        #[test]
        fn scanner_and_httparse_agree(lines in prop::collection::vec(line(), 0..6), body in "[a-z0-9]{0,8}") {
            let head = format!("POST /login HTTP/1.1\r\n{}\r\n{body}", lines.concat());
            scanner_agrees(head.as_bytes());
        }
    }
}

#[tokio::test]
async fn a_write_left_pending_blocks_parking_until_a_flush_completes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (socket, mut client) = tokio::io::duplex(64);
    let verdicts = Verdicts::new();
    let mut watch = FramingWatch::new(socket, verdicts.clone());
    assert!(verdicts.parkable());

    // More than the pipe holds: the write goes `Pending` with bytes still unsent.
    let big = vec![b'x'; 256];
    let mut written = 0;
    std::future::poll_fn(|cx| {
        while written < big.len() {
            match Pin::new(&mut watch).poll_write(cx, &big[written..]) {
                Poll::Ready(Ok(n)) => written += n,
                Poll::Ready(Err(e)) => panic!("{e}"),
                Poll::Pending => return Poll::Ready(()),
            }
        }
        Poll::Ready(())
    })
    .await;
    assert!(written < big.len());
    assert!(!verdicts.parkable(), "a write is waiting for the client");

    let reader = tokio::spawn(async move {
        let mut all = Vec::new();
        client.read_to_end(&mut all).await.unwrap();
        all.len()
    });
    watch.write_all(&big[written..]).await.unwrap();
    watch.flush().await.unwrap();
    assert!(verdicts.parkable(), "flushed");
    watch.shutdown().await.unwrap();
    drop(watch);
    assert_eq!(reader.await.unwrap(), big.len());
}

#[tokio::test]
async fn replayed_bytes_are_read_first_and_not_tracked_twice() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (socket, mut client) = tokio::io::duplex(1024);
    let verdicts = Verdicts::new();
    let mut watch = FramingWatch::new(socket, verdicts.clone());

    client.write_all(GET).await.unwrap();
    let mut first = vec![0u8; GET.len()];
    watch.read_exact(&mut first).await.unwrap();
    assert!(!verdicts.parkable(), "a head the service has not taken");
    assert!(!verdicts.next_request_is_ambiguous());
    assert!(verdicts.parkable(), "one head, one request taken");

    // hyper gave the head back unparsed (it never does once the service took it, but the
    // bytes must come back exactly and count once).
    watch.replay(bytes::Bytes::from_static(b"GET /again"));
    assert!(!verdicts.parkable(), "replayed bytes pending");
    client
        .write_all(b" HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut replayed = [0u8; 10];
    watch.read_exact(&mut replayed).await.unwrap();
    assert_eq!(&replayed, b"GET /again");
    let mut rest = [0u8; 22];
    watch.read_exact(&mut rest).await.unwrap();
    assert_eq!(&rest, b" HTTP/1.1\r\nHost: x\r\n\r\n");
    // The tracker saw only the socket's bytes: a fragment of a head, not a second head.
    assert!(!verdicts.parkable());
}

/// Feeds `stream` in pieces of `step` bytes; returns the index of the head flagged as having a
/// length hyper cannot represent.
fn oversized_index(stream: &[u8], step: usize) -> Option<u64> {
    let verdicts = Verdicts::new();
    let mut tracker = Tracker::new(verdicts.clone());
    for piece in stream.chunks(step) {
        tracker.feed(piece);
    }
    let found = verdicts.oversized.load(Ordering::Relaxed);
    (found != u64::MAX).then_some(found)
}

#[test]
fn a_length_hyper_cannot_represent_is_flagged_at_its_request_index() {
    let head = |lengths: &[&str]| {
        let mut text = String::from("POST /login HTTP/1.1\r\nHost: x\r\n");
        for length in lengths {
            text.push_str("Content-Length: ");
            text.push_str(length);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        text.into_bytes()
    };
    let cases: [(&[&str], Option<u64>); 7] = [
        (&["18446744073709551615"], Some(0)),
        (&["18446744073709551614"], Some(0)),
        // hyper checks the first line first: 431 for it, 400 (different values) otherwise.
        (&["18446744073709551615", "5"], Some(0)),
        (&["5", "18446744073709551615"], None),
        (&["18446744073709551613"], None),
        // Not a u64: hyper's own 400.
        (&["18446744073709551616"], None),
        (&["5"], None),
    ];
    for (lengths, expected) in cases {
        let stream = [PLAIN, &head(lengths)].concat();
        for step in 1..=stream.len() {
            assert_eq!(
                oversized_index(&stream, step),
                expected.map(|i| i + 1),
                "{lengths:?} step {step}"
            );
        }
    }
    // Beside Transfer-Encoding it is the smuggling shape, not a length hyper refuses.
    let both = b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(oversized_index(both, both.len()), None);
    assert_eq!(ambiguous_index(both, both.len()), Some(0));
}

#[test]
fn only_hypers_exact_automatic_431_head_is_replaced() {
    let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\
                  content-length: 0\r\ndate: Sun, 06 Dec 2026 00:55:55 GMT\r\n\r\n";
    assert_eq!(
        length::hyper_refusal_date(hyper),
        Some(&b"Sun, 06 Dec 2026 00:55:55 GMT"[..])
    );
    let with_more = [&hyper[..], b"x"].concat();
    let other_header = b"HTTP/1.1 431 Request Header Fields Too Large\r\nx-request-id: 1\r\n\
                         content-length: 0\r\ndate: d\r\n\r\n";
    let other_status = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\
                         date: d\r\n\r\n";
    let partial = &hyper[..hyper.len() - 2];
    for written in [&with_more[..], other_header, other_status, partial] {
        assert_eq!(length::hyper_refusal_date(written), None);
    }
}

#[test]
fn the_answer_is_the_413_the_service_gives_a_body_over_the_limit() {
    let answer = length::too_large_answer(b"Sun, 06 Dec 2026 00:55:55 GMT");
    let expected = format!(
        "HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\nconnection: close\r\n\
         content-length: 35\r\ndate: Sun, 06 Dec 2026 00:55:55 GMT\r\n\r\n{}",
        String::from_utf8_lossy(length::TOO_LARGE_BODY)
    );
    assert_eq!(answer, expected.as_bytes());
    let service = crate::error::ProxyError::BodyTooLarge.into_response();
    assert_eq!(service.status().as_u16(), 413);
    let body = match service.into_body() {
        crate::body::ProxyBody::Full(Some(bytes)) => bytes,
        other => panic!("{other:?}"),
    };
    assert_eq!(body, length::TOO_LARGE_BODY);
}
