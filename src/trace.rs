//! W3C trace context (`traceparent`): the client's kept as it is, or a new trace started, so that the central service's logs and the access line share a trace id.
//!
//! A valid `traceparent` (and its `tracestate`) goes upstream unchanged (headers.rs forwards
//! both as end-to-end headers). Without one, or with one that does not parse, the proxy starts
//! a trace: a new trace id and parent id, the sampled flag off (the proxy records nothing to
//! sample), and an invalid `tracestate` goes with the invalid parent (W3C Trace Context §3.3).
//! No span is exported: see the README for adding an OpenTelemetry exporter.

use std::cell::RefCell;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// `00-` + 32 hex trace id + `-` + 16 hex parent id + `-` + 2 hex flags.
const LEN: usize = 55;
/// Traceparents rendered at a time into one shared buffer (as request ids are, see context.rs).
const BATCH: usize = 64;

/// A request's trace: the `traceparent` that goes upstream, and whether the proxy made it.
#[derive(Debug, Clone)]
pub struct Trace {
    pub traceparent: HeaderValue,
    /// The proxy started this trace: `traceparent` (and no `tracestate`) replace the client's.
    pub started: bool,
}

impl Trace {
    /// The client's trace if its `traceparent` is valid, else a new one.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(TRACEPARENT).iter();
        match (values.next(), values.next()) {
            (Some(value), None) if is_valid(value.as_bytes()) => Trace {
                traceparent: value.clone(),
                started: false,
            },
            _ => Trace {
                traceparent: generate(),
                started: true,
            },
        }
    }

    /// The 32 hex digits of the trace id, for the access line.
    pub fn trace_id(&self) -> &str {
        let traceparent = self.traceparent.to_str().unwrap_or_default();
        traceparent.get(3..35).unwrap_or("-")
    }
}

/// W3C Trace Context §3.2: `version-traceid-parentid-flags`, lower-case hex, neither id all
/// zeros, version `ff` invalid; a later version may append `-` and more, which is kept.
fn is_valid(v: &[u8]) -> bool {
    let hex = |s: &[u8]| s.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let zero = |s: &[u8]| s.iter().all(|&b| b == b'0');
    if v.len() < LEN || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return false;
    }
    let (version, trace, parent, flags) = (&v[..2], &v[3..35], &v[36..52], &v[53..55]);
    let shape = hex(version) && hex(trace) && hex(parent) && hex(flags);
    let length_ok = match version {
        b"00" => v.len() == LEN,
        b"ff" => false,
        _ => v.len() == LEN || v[LEN] == b'-',
    };
    shape && length_ok && !zero(trace) && !zero(parent)
}

/// A new `traceparent`, sampled flag off. Ids are a per-process random key mixed with a counter
/// through a bijection (so unique within the process, and random-looking across processes).
pub fn generate() -> HeaderValue {
    thread_local! {
        static RENDERED: RefCell<(Bytes, usize)> = const { RefCell::new((Bytes::new(), 0)) };
    }
    RENDERED.with_borrow_mut(|(batch, used)| {
        if *used == batch.len() {
            *batch = render_batch();
            *used = 0;
        }
        let one = batch.slice(*used..*used + LEN);
        *used += LEN;
        HeaderValue::from_maybe_shared(one).unwrap_or_else(|_| HeaderValue::from_static("-"))
    })
}

fn render_batch() -> Bytes {
    static KEY: OnceLock<(u64, u64)> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let (high, key) = *KEY.get_or_init(|| {
        let seed = || {
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        };
        (seed() | 1, seed())
    });
    let first = COUNTER.fetch_add(BATCH as u64, Ordering::Relaxed);
    let mut out = Vec::with_capacity(LEN * BATCH);
    for n in first..first + BATCH as u64 {
        let low = mix(n ^ key);
        let parent = mix(low ^ high) | 1;
        out.extend_from_slice(b"00-");
        push_hex(&mut out, high);
        push_hex(&mut out, low);
        out.push(b'-');
        push_hex(&mut out, parent);
        out.extend_from_slice(b"-00");
    }
    Bytes::from(out)
}

/// splitmix64's finaliser: a bijection on u64 that scatters consecutive inputs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `n` as 16 lower-case hex digits. Rendered into an array and appended once: a `push` per
/// digit checked the capacity 16 times, about 250 instructions per request.
fn push_hex(out: &mut Vec<u8>, n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 16];
    for (i, digit) in hex.iter_mut().enumerate() {
        *digit = DIGITS[usize::try_from((n >> (60 - 4 * i)) & 0xf).unwrap_or(0)];
    }
    out.extend_from_slice(&hex);
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn with(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(TRACEPARENT, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn a_valid_client_traceparent_is_kept() {
        let trace = Trace::from_headers(&with(&[CLIENT]));
        assert!(!trace.started);
        assert_eq!(trace.traceparent, CLIENT);
        assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let later = format!("01{}-extra", &CLIENT[2..]);
        assert!(!Trace::from_headers(&with(&[&later])).started);
    }

    #[test]
    fn invalid_or_absent_traceparents_start_a_trace() {
        let zero_trace = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
        let upper = CLIENT.to_uppercase();
        let long = format!("{CLIENT}-x");
        let ff = format!("ff{}", &CLIENT[2..]);
        for headers in [
            with(&[]),
            with(&[zero_trace]),
            with(&[&upper]),
            with(&[&long]),
            with(&[&ff]),
            with(&[CLIENT, CLIENT]),
        ] {
            let trace = Trace::from_headers(&headers);
            assert!(trace.started, "{headers:?}");
            assert!(is_valid(trace.traceparent.as_bytes()));
            assert!(trace.traceparent.to_str().unwrap().ends_with("-00"));
        }
    }

    #[test]
    fn started_traces_are_distinct_across_batches() {
        let ids: std::collections::HashSet<_> = (0..3 * BATCH)
            .map(|_| Trace::from_headers(&HeaderMap::new()).trace_id().to_owned())
            .collect();
        assert_eq!(ids.len(), 3 * BATCH);
    }
}
