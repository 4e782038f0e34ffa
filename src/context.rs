//! Per-request facts known before routing: the request id, the peer, the start time.

use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use http::{HeaderMap, HeaderValue};

use crate::headers::X_REQUEST_ID;

/// Longest client-supplied request id kept, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// What the service knows about a request before it looks at the route.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub id: HeaderValue,
    pub peer: SocketAddr,
    pub start: Instant,
}

impl RequestCtx {
    pub fn new(headers: &HeaderMap, peer: SocketAddr) -> Self {
        RequestCtx {
            id: request_id(headers),
            peer,
            start: Instant::now(),
        }
    }
}

/// The client's `X-Request-Id` if it is 1–128 visible ASCII characters, else a fresh one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    match headers.get(X_REQUEST_ID) {
        Some(value) if is_acceptable_id(value.as_bytes()) => value.clone(),
        _ => generate_id(),
    }
}

fn is_acceptable_id(bytes: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&bytes.len())
        && bytes.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// A process-unique id: a random 64-bit prefix chosen once, then a counter.
///
/// Unique across restarts and replicas with overwhelming probability, and costs one atomic
/// increment per request — no syscall, no RNG on the hot path.
pub fn generate_id() -> HeaderValue {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // `RandomState` is seeded from the OS once per process; hashing nothing yields its key.
    let prefix = *PREFIX.get_or_init(|| {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // By hand rather than `write!`: the formatting machinery cost ~1,000 instructions a request.
    let mut id = [b'-'; 33];
    hex_u64(&mut id[..16], prefix);
    hex_u64(&mut id[17..], n);
    // Hex digits and a dash: always a valid header value.
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// `n` as 16 lower-case hex digits into `out` (16 bytes).
fn hex_u64(out: &mut [u8], n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, slot) in out.iter_mut().enumerate() {
        let shift = 60 - 4 * i;
        *slot = DIGITS[usize::try_from((n >> shift) & 0xf).unwrap_or(0)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_id(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            X_REQUEST_ID,
            HeaderValue::from_bytes(value).expect("header value"),
        );
        headers
    }

    #[test]
    fn client_ids_of_visible_ascii_up_to_128_are_kept() {
        for ok in [&b"a"[..], b"abc-123_XYZ:/=+", &[b'x'; 128]] {
            assert_eq!(request_id(&with_id(ok)).as_bytes(), ok);
        }
    }

    #[test]
    fn hex_matches_the_formatter() {
        for n in [0, 1, 0xabc, u64::MAX, 0x0123_4567_89ab_cdef] {
            let mut out = [0u8; 16];
            hex_u64(&mut out, n);
            assert_eq!(std::str::from_utf8(&out).unwrap(), format!("{n:016x}"));
        }
    }

    #[test]
    fn generated_ids_share_a_prefix_and_count_up() {
        let parse = |id: &HeaderValue| {
            let (prefix, n) = id.to_str().unwrap().split_once('-').unwrap();
            assert_eq!((prefix.len(), n.len()), (16, 16));
            (
                prefix.to_owned(),
                u64::from_str_radix(n, 16).expect("lower-case hex"),
            )
        };
        let (first, second) = (parse(&generate_id()), parse(&generate_id()));
        assert_eq!(first.0, second.0);
        assert!(second.1 > first.1);
    }

    #[test]
    fn other_ids_are_replaced() {
        for bad in [
            &b""[..],
            b"has space",
            b"tab\there",
            &[b'x'; 129],
            "é".as_bytes(),
        ] {
            let id = request_id(&with_id(bad));
            assert_ne!(id.as_bytes(), bad);
            assert_eq!(id.len(), 33);
        }
        assert_eq!(request_id(&HeaderMap::new()).len(), 33);
    }

    #[test]
    fn generated_ids_are_unique() {
        let a = generate_id();
        let b = generate_id();
        assert_ne!(a, b);
        assert!(is_acceptable_id(a.as_bytes()));
    }
}
