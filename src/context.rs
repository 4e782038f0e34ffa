//! Per-request facts known before routing: the request id, the peer, the start time.

use std::cell::RefCell;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

use crate::headers::X_REQUEST_ID;
use crate::trace::Trace;

/// Longest client-supplied request id kept, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// What the service knows about a request before it looks at the route.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub id: HeaderValue,
    pub peer: SocketAddr,
    pub start: Instant,
    /// The W3C trace this request belongs to (the client's, or one the proxy started).
    pub trace: Trace,
}

impl RequestCtx {
    pub fn new(headers: &HeaderMap, peer: SocketAddr) -> Self {
        RequestCtx {
            id: request_id(headers),
            peer,
            start: Instant::now(),
            trace: Trace::from_headers(headers),
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

/// Length of a generated id: 16 hex digits, a dash, 16 hex digits.
const ID_LEN: usize = 33;
/// Ids rendered at a time into one shared buffer.
const ID_BATCH: usize = 64;

/// A process-unique id: a random 64-bit prefix chosen once, then a counter.
///
/// Unique across restarts and replicas with overwhelming probability, and no syscall or RNG on
/// the hot path. Ids are rendered 64 at a time into one buffer that each id's header value
/// shares: one allocation per 64 requests instead of two per request (the copy, then the
/// promotion to a shared buffer on the first clone).
pub fn generate_id() -> HeaderValue {
    thread_local! {
        static BATCH: RefCell<(Bytes, usize)> = const { RefCell::new((Bytes::new(), 0)) };
    }
    BATCH.with_borrow_mut(|(ids, used)| {
        if *used == ids.len() {
            *ids = render_batch();
            *used = 0;
        }
        let id = ids.slice(*used..*used + ID_LEN);
        *used += ID_LEN;
        // Hex digits and a dash: always a valid header value.
        HeaderValue::from_maybe_shared(id).unwrap_or_else(|_| HeaderValue::from_static("0"))
    })
}

/// The next `ID_BATCH` ids, back to back.
fn render_batch() -> Bytes {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // `RandomState` is seeded from the OS once per process; hashing nothing yields its key.
    let prefix = *PREFIX.get_or_init(|| {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    });
    let first = COUNTER.fetch_add(ID_BATCH as u64, Ordering::Relaxed);
    let mut out = vec![b'-'; ID_LEN * ID_BATCH];
    for (n, id) in (first..).zip(out.chunks_exact_mut(ID_LEN)) {
        // By hand rather than `write!`: the formatting machinery cost ~1,000 instructions an id.
        hex_u64(&mut id[..16], prefix);
        hex_u64(&mut id[17..], n);
    }
    Bytes::from(out)
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
        // Across several batches and threads.
        let per_thread = || (0..3 * ID_BATCH).map(|_| generate_id()).collect::<Vec<_>>();
        let other = std::thread::spawn(per_thread);
        let mut ids = per_thread();
        ids.extend(other.join().unwrap());
        assert!(ids.iter().all(|id| is_acceptable_id(id.as_bytes())));
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), 6 * ID_BATCH);
    }
}
