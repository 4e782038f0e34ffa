//! A `Content-Length` too large for hyper: answered 413 JSON, as every length over the limit is, instead of hyper's 431.
//!
//! hyper keeps two `u64` values for "chunked" and "until close", so it refuses a length of
//! 2^64 − 2 or 2^64 − 1 as `Parse::TooLarge` and answers it with its automatic, empty
//! `431 Request Header Fields Too Large` — the status of an oversized *head* — while 2^64 − 3
//! reaches the service and gets the proxy's `413 {"detail":"Request body too large"}`, and
//! 2^64 (not a `u64`) gets hyper's 400. The head never reaches the service, so the only place
//! to answer is the socket: [`FramingWatch`](super::FramingWatch) flags such a head when it
//! follows it, and when hyper then writes exactly its automatic 431 head for it (the last
//! thing hyper writes before it closes), writes this answer instead. hyper writes that head
//! only once the previous exchange is flushed (`Conn::on_parse_error` needs `Writing::Init`),
//! so the write holds nothing else. `tests/edge_requests.rs` fails if hyper's answer changes.

use bytes::Bytes;

/// The largest `Content-Length` hyper's HTTP/1 server accepts (`body::length::MAX_LEN`).
pub const HYPER_MAX_LENGTH: u64 = u64::MAX - 2;

/// The proxy's answer to a body over `--max-body-bytes` (`ProxyError::BodyTooLarge`).
pub const TOO_LARGE_BODY: &[u8] = br#"{"detail":"Request body too large"}"#;

/// hyper's automatic answer to `Parse::TooLarge`, up to its headers.
const HYPER_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n";

/// If `written` is exactly hyper's automatic 431 head (`connection: close`,
/// `content-length: 0`, `date`, nothing else), its `date` value.
///
/// Read by hand rather than with httparse: a second caller of httparse's response parser
/// made LLVM stop inlining it into hyper's client, about 80 instructions on every request.
pub fn hyper_refusal_date(written: &[u8]) -> Option<&[u8]> {
    let headers = written.strip_prefix(HYPER_431)?.strip_suffix(b"\r\n\r\n")?;
    let mut date = None;
    for line in headers.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        match name {
            b"connection" if value == b"close" => {}
            b"content-length" if value == b"0" => {}
            b"date" if value.iter().all(|&b| b == b' ' || b.is_ascii_graphic()) => {
                date = Some(value);
            }
            _ => return None,
        }
    }
    date
}

/// The 413 JSON answer, closing the connection, dated as hyper dated its own.
pub fn too_large_answer(date: &[u8]) -> Bytes {
    let head = format!(
        "HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\nconnection: close\r\n\
         content-length: {}\r\ndate: ",
        TOO_LARGE_BODY.len()
    );
    [head.as_bytes(), date, b"\r\n\r\n", TOO_LARGE_BODY]
        .concat()
        .into()
}
