//! Issue 19: the request-smuggling matrix. Each row is one way of writing a request's framing
//! (CL+TE in every spelling, odd lengths, bare LF, chunk sizes and extensions, trailers,
//! absolute-form targets, duplicate Host, odd bytes in names and values), sent byte for byte
//! over a raw socket, with what the proxy must do: the status, whether the connection closes,
//! and whether the request reaches the central service — as exactly one request that the mock
//! (recording the raw bytes it received) can frame only one way. Each row is then sent again
//! with a second request pipelined behind it, which must be answered as its own request or
//! never reach the central service. Catalogued after HTTP Garden and T-Reqs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{spawn_proxy, MockUpstream, WAIT};

/// The body every row sends: 25 bytes, `19` in hex.
const FIRST: &str = r#"{"refresh_token":"first"}"#;
/// The pipelined request that follows each row.
const SECOND: &str =
    "POST /refresh HTTP/1.1\r\nHost: proxy.test\r\nContent-Type: application/json\r\n\
                      Content-Length: 26\r\n\r\n{\"refresh_token\":\"second\"}";

/// A request the central service must never receive: Content-Length and chunked framing
/// together, carrying the marker `smuggled`.
const SMUGGLED: &str =
    "POST /refresh HTTP/1.1\r\nHost: proxy.test\r\nContent-Type: application/json\r\n\
                        Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
                        1c\r\n{\"refresh_token\":\"smuggled\"}\r\n0\r\n\r\n";

/// What follows the row's request on the same connection.
enum Then {
    /// [`SECOND`]: answered 200 as its own request, or never forwarded.
    Second,
    /// These bytes; nothing holding `smuggled` may reach the central service.
    Smuggle(String),
}

struct Case {
    name: &'static str,
    request: Vec<u8>,
    /// The statuses the row's request may get.
    status: &'static [u16],
    /// Whether the connection closes after that answer.
    closes: bool,
    /// Whether the row's request reaches the central service (as one clean request).
    forwarded: bool,
    then: Then,
}

/// `POST /refresh` with `lines` as its framing headers, then `body` as it is.
fn post(version: &str, lines: &[&str], body: &str) -> Vec<u8> {
    let mut text = format!(
        "POST /refresh {version}\r\nHost: proxy.test\r\nContent-Type: application/json\r\n"
    );
    for line in lines {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.push_str(body);
    text.into_bytes()
}

fn post11(lines: &[&str], body: &str) -> Vec<u8> {
    post("HTTP/1.1", lines, body)
}

/// [`FIRST`] as one chunk and the last chunk.
fn chunked() -> String {
    format!("19\r\n{FIRST}\r\n0\r\n\r\n")
}

const CL: &str = "Content-Length: 25";
const TE: &str = "Transfer-Encoding: chunked";

fn ok(name: &'static str, request: Vec<u8>) -> Case {
    Case {
        name,
        request,
        status: &[200],
        closes: false,
        forwarded: true,
        then: Then::Second,
    }
}

fn refused(name: &'static str, request: Vec<u8>) -> Case {
    Case {
        name,
        request,
        status: &[400],
        closes: true,
        forwarded: false,
        then: Then::Second,
    }
}

#[allow(clippy::too_many_lines)] // the matrix is one table
fn cases() -> Vec<Case> {
    let body = chunked();
    let both = |te: &str| post11(&[CL, te], &body);
    let mut rows = vec![
        // Baselines: each framing alone is fine.
        ok("content_length", post11(&[CL], FIRST)),
        ok("chunked", post11(&[TE], &body)),
        // CL + TE, every spelling: refused, nothing forwarded (the smuggling shape).
        refused("cl_te", both(TE)),
        refused("te_cl", post11(&[TE, CL], &body)),
        refused("cl_te_upper_case", both("TRANSFER-ENCODING: CHUNKED")),
        refused("cl_te_mixed_case_value", both("Transfer-Encoding: ChUnKeD")),
        refused("cl_te_leading_spaces", both("Transfer-Encoding:    chunked")),
        refused("cl_te_tab", both("Transfer-Encoding:\tchunked")),
        refused("cl_te_trailing_space", both("Transfer-Encoding: chunked ")),
        refused("cl_te_chunked_identity", both("Transfer-Encoding: chunked, identity")),
        refused("cl_te_identity_chunked", both("Transfer-Encoding: identity, chunked")),
        refused("cl_te_xchunked", both("Transfer-Encoding: xchunked")),
        refused("cl_te_two_lines", post11(&[CL, TE, "Transfer-Encoding: identity"], &body)),
        refused("cl_te_obs_fold", both("Transfer-Encoding:\r\n chunked")),
        refused("cl_te_http10", post("HTTP/1.0", &[CL, TE], &body)),
        refused("cl_te_space_before_colon", both("Transfer-Encoding : chunked")),
        refused("cl_zero_te", post11(&["Content-Length: 0", TE], &body)),
        refused("cl_unreadable_te", post11(&["Content-Length: 25, 25", TE], &body)),
        // TE alone, in spellings hyper does not take as chunked: refused.
        refused("te_chunked_identity", post11(&["Transfer-Encoding: chunked, identity"], &body)),
        refused("te_xchunked", post11(&["Transfer-Encoding: xchunked"], &body)),
        refused("te_obs_fold", post11(&["Transfer-Encoding:\r\n chunked"], &body)),
        refused("te_http10", post("HTTP/1.0", &[TE], &body)),
        refused("te_space_before_colon", post11(&["Transfer-Encoding : chunked"], &body)),
        refused("te_nul_in_value", post11(&["Transfer-Encoding: chunked\0"], &body)),
        refused("te_vertical_tab", post11(&["Transfer-Encoding:\x0bchunked"], &body)),
        ok("te_identity_chunked", post11(&["Transfer-Encoding: identity, chunked"], &body)),
        ok("te_twice_chunked", post11(&[TE, TE], &body)),
        ok("te_upper_case", post11(&["TRANSFER-ENCODING: CHUNKED"], &body)),
        // Content-Length spellings.
        refused("two_different_lengths", post11(&[CL, "Content-Length: 26"], FIRST)),
        ok("two_equal_lengths", post11(&[CL, CL], FIRST)),
        refused("length_list", post11(&["Content-Length: 25, 25"], FIRST)),
        refused("length_plus_sign", post11(&["Content-Length: +25"], FIRST)),
        refused("length_minus_sign", post11(&["Content-Length: -25"], FIRST)),
        refused("length_hex", post11(&["Content-Length: 0x19"], FIRST)),
        refused("length_inner_space", post11(&["Content-Length: 2 5"], FIRST)),
        refused("length_space_before_colon", post11(&["Content-Length : 25"], FIRST)),
        ok("length_leading_zeros", post11(&["Content-Length: 00000000000000000000025"], FIRST)),
        ok("length_padded_with_spaces", post11(&["Content-Length:   25   "], FIRST)),
        // The largest u64: hyper's `DecodedLength::checked_new` refuses it as too large (a
        // 431); the framing watch answers the 413 that any length over --max-body-bytes gets.
        Case {
            status: &[413],
            ..refused("length_u64_max", post11(&["Content-Length: 18446744073709551615"], FIRST))
        },
        refused("length_overflow", post11(&["Content-Length: 18446744073709551616"], FIRST)),
        // Chunk sizes, extensions, trailers.
        refused("chunk_size_overflow", post11(&[TE], &format!("10000000000000000\r\n{FIRST}\r\n0\r\n\r\n"))),
        ok("chunk_size_leading_zeros", post11(&[TE], &format!("000000000000000000019\r\n{FIRST}\r\n0\r\n\r\n"))),
        ok("chunk_size_upper_hex", post11(&[TE], &format!("0019\r\n{FIRST}\r\n00\r\n\r\n"))),
        refused("chunk_size_plus_sign", post11(&[TE], &format!("+19\r\n{FIRST}\r\n0\r\n\r\n"))),
        refused("chunk_size_0x", post11(&[TE], &format!("0x19\r\n{FIRST}\r\n0\r\n\r\n"))),
        refused("chunk_size_bare_lf", post11(&[TE], &format!("19\n{FIRST}\r\n0\r\n\r\n"))),
        refused("chunk_data_bare_lf", post11(&[TE], &format!("19\r\n{FIRST}\n0\r\n\r\n"))),
        refused("chunk_data_too_long", post11(&[TE], &format!("18\r\n{FIRST}\r\n0\r\n\r\n"))),
        ok("chunk_extension", post11(&[TE], &format!("19;name=value\r\n{FIRST}\r\n0;last\r\n\r\n"))),
        ok("chunk_extension_quoted", post11(&[TE], &format!("19;a=\"b;c\"\r\n{FIRST}\r\n0\r\n\r\n"))),
        ok("chunk_size_then_spaces", post11(&[TE], &format!("19  ;x\r\n{FIRST}\r\n0\r\n\r\n"))),
        refused("chunk_extension_bare_lf", post11(&[TE], &format!("19;x\n{FIRST}\r\n0\r\n\r\n"))),
        ok("trailers", post11(&[TE], &format!("19\r\n{FIRST}\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n"))),
        // Line endings.
        ok("bare_lf_head", b"POST /refresh HTTP/1.1\nHost: proxy.test\nContent-Type: application/json\nContent-Length: 25\n\n{\"refresh_token\":\"first\"}".to_vec()),
        refused("bare_cr_in_head", post11(&[CL, "X-A: a\rb"], FIRST)),
        ok("leading_empty_line", [&b"\r\n"[..], &post11(&[CL], FIRST)].concat()),
        // Targets.
        ok("absolute_form", b"POST http://proxy.test/refresh HTTP/1.1\r\nHost: proxy.test\r\nContent-Type: application/json\r\nContent-Length: 25\r\n\r\n{\"refresh_token\":\"first\"}".to_vec()),
        ok("absolute_form_other_host", b"POST http://elsewhere.test/refresh HTTP/1.1\r\nHost: proxy.test\r\nContent-Type: application/json\r\nContent-Length: 25\r\n\r\n{\"refresh_token\":\"first\"}".to_vec()),
        refused("space_in_target", b"POST /refresh x HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: 25\r\n\r\n{\"refresh_token\":\"first\"}".to_vec()),
        refused("http_1_2", post("HTTP/1.2", &[CL], FIRST)),
        // Two Host lines: 400 (RFC 9112 §3.2), nothing forwarded.
        refused("duplicate_host", post11(&[CL, "Host: other.test"], FIRST)),
        // Odd bytes in names and values.
        refused("nul_in_name", post11(&[CL, "X-A\0: b"], FIRST)),
        refused("nul_in_value", post11(&[CL, "X-A: b\0c"], FIRST)),
        refused("control_in_name", post11(&[CL, "X\x01A: b"], FIRST)),
        refused("control_in_value", post11(&[CL, "X-A: b\x01c"], FIRST)),
        refused("escape_in_value", post11(&[CL, "X-A: b\x1bc"], FIRST)),
        refused("del_in_value", post11(&[CL, "X-A: b\x7fc"], FIRST)),
        refused("no_colon", post11(&[CL, "X-A b"], FIRST)),
        refused("space_in_name", post11(&[CL, "X A: b"], FIRST)),
        refused("obs_fold_other_header", post11(&[CL, "X-A: b\r\n c"], FIRST)),
        // A body on a GET the proxy answers itself: read by its framing, then the next request.
        Case { forwarded: false, ..ok("get_with_chunked_body", b"GET /healthz HTTP/1.1\r\nHost: proxy.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec()) },
        Case { forwarded: false, ..refused("get_with_cl_te", b"GET /healthz HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec()) },
    ];
    // Desynchronisation attempts: a request hyper frames one way and a naive watcher another,
    // followed by a CL+TE request that must still be refused.
    rows.push(Case {
        then: Then::Smuggle(SMUGGLED.to_owned()),
        ..ok(
            "long_zero_chunk_size_then_cl_te",
            post11(
                &[TE],
                &format!("0000000000000000019\r\n{FIRST}\r\n0\r\n\r\n"),
            ),
        )
    });
    // hyper ends a trailer line only at CRLF: bare LFs leave it inside the trailers, which then
    // swallow the head of the "next" request written after them.
    let wrapper = format!(
        "POST /refresh HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: {}\r\n\r\n{SMUGGLED}",
        SMUGGLED.len()
    );
    rows.push(Case {
        then: Then::Smuggle(wrapper.clone()),
        ..ok(
            "trailer_bare_lf_then_cl_te",
            post11(&[TE], &format!("19\r\n{FIRST}\r\n0\r\nX-T: 1\n\n")),
        )
    });
    rows.push(Case {
        then: Then::Smuggle(wrapper),
        ..ok(
            "last_chunk_bare_lf_then_cl_te",
            post11(&[TE], &format!("19\r\n{FIRST}\r\n0\r\n\n")),
        )
    });
    // hyper refuses a bare LF inside a chunk extension: the connection ends there.
    rows.push(Case {
        then: Then::Smuggle(SMUGGLED.to_owned()),
        ..refused(
            "chunk_extension_bare_lf_then_cl_te",
            post11(&[TE], &format!("19;a=\"\n\"\r\n{FIRST}\r\n0\r\n\r\n")),
        )
    });
    rows
}

/// Why a row failed: nothing when it passed.
async fn run(case: &Case) -> Vec<String> {
    let mut failures = Vec::new();
    let mut fail = |what: String| failures.push(format!("{}: {what}", case.name));

    // Alone: status, close, what was forwarded. (A desynchronisation row's request is
    // unfinished by itself in hyper's eyes: only its pipelined form means anything.)
    if matches!(case.then, Then::Second) {
        alone(case, &mut fail).await;
    }

    // Pipelined: the next request is its own request, or never reaches the central service.
    // Pipelined: the next request is its own request, or never reaches the central service.
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut raw = proxy.raw().await;
    let then = match &case.then {
        Then::Second => SECOND,
        Then::Smuggle(bytes) => bytes.as_str(),
    };
    let _ = raw
        .send([&case.request[..], then.as_bytes()].concat())
        .await;
    let mut statuses = Vec::new();
    while statuses.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(2), raw.next_response()).await {
            Ok(Some(got)) => statuses.push(got.status.as_u16()),
            _ => break,
        }
    }
    if let Some(status) = statuses.first() {
        if !case.status.contains(status) {
            fail(format!(
                "pipelined: status {status}, want {:?}",
                case.status
            ));
        }
    }
    let upstream = mock.requests();
    match &case.then {
        Then::Second => {
            let second = upstream
                .iter()
                .filter(|r| r.body.as_ref() == br#"{"refresh_token":"second"}"#)
                .count();
            let answered = statuses.len() == 2 && statuses[1] == 200;
            if second > usize::from(answered) {
                fail(format!(
                    "pipelined request forwarded {second} times, answers {statuses:?}"
                ));
            }
            if !case.closes && !answered {
                fail(format!(
                    "pipelined request not answered on an open connection: {statuses:?}"
                ));
            }
        }
        Then::Smuggle(_) => {
            let raw_bytes = mock.raw_received().concat();
            if raw_bytes.windows(8).any(|w| w == b"smuggled") {
                fail(format!(
                    "the CL+TE request reached the central service (answers {statuses:?})"
                ));
            }
        }
    }
    if let Err(why) = unambiguous(&mock.raw_received()) {
        fail(format!("pipelined upstream bytes: {why}"));
    }
    failures
}

/// The row's request alone: its status, whether the connection closes, what was forwarded.
async fn alone(case: &Case, fail: &mut impl FnMut(String)) {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut raw = proxy.raw().await;
    let _ = raw.send(&case.request).await;
    match tokio::time::timeout(WAIT, raw.next_response())
        .await
        .ok()
        .flatten()
    {
        Some(got) if case.status.contains(&got.status.as_u16()) => {}
        Some(got) => fail(format!(
            "status {} ({}), want {:?}",
            got.status,
            got.text(),
            case.status
        )),
        None => fail(format!("no response, want {:?}", case.status)),
    }
    let closed = raw
        .closed_within(if case.closes {
            WAIT
        } else {
            Duration::from_millis(150)
        })
        .await;
    if closed != case.closes {
        fail(format!("connection closed: {closed}, want {}", case.closes));
    }
    let first: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.body == FIRST.as_bytes())
        .collect();
    let want = usize::from(case.forwarded);
    if first.len() != want || mock.requests().len() != want {
        fail(format!(
            "forwarded {} requests ({} of them the row's), want {want}",
            mock.requests().len(),
            first.len()
        ));
    }
    if let Err(why) = unambiguous(&mock.raw_received()) {
        fail(format!("upstream bytes: {why}"));
    }
}

/// Each connection's bytes are whole requests, each framed by `Content-Length` alone (or no
/// body), with nothing left over: a server can read them only one way.
fn unambiguous(connections: &[Vec<u8>]) -> Result<(), String> {
    for bytes in connections {
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut request = httparse::Request::new(&mut slots);
            let Ok(httparse::Status::Complete(len)) = request.parse(rest) else {
                return Err(format!(
                    "not a whole request: {:?}",
                    String::from_utf8_lossy(rest)
                ));
            };
            let named = |n: &str| {
                request
                    .headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case(n))
                    .count()
            };
            if named("transfer-encoding") > 0 || named("content-length") > 1 {
                return Err(format!(
                    "framing headers: {:?}",
                    String::from_utf8_lossy(&rest[..len])
                ));
            }
            let length = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map_or(Some(0), |h| {
                    std::str::from_utf8(h.value).ok()?.parse::<usize>().ok()
                })
                .ok_or("unreadable Content-Length")?;
            rest = rest
                .get(len + length..)
                .ok_or("body shorter than its Content-Length")?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn smuggling_matrix() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        failures.extend(run(case).await);
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
