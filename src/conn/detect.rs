//! Protocol detection: whether a client's first bytes are HTTP/1 or may be the HTTP/2 preface.
//!
//! hyper-util's auto builder reads up to the 24-byte HTTP/2 connection preface (RFC 9113 §3.4)
//! and chooses HTTP/2 only on the whole preface. A connection whose first bytes already differ
//! from the preface is HTTP/1 to it too, and is served here by hyper's HTTP/1 server directly
//! (so that it can be parked); everything else — the preface, a prefix of it, nothing at all —
//! is left to the auto builder. As in linkerd2-proxy's `detect`, the verdict is a pure function
//! of the bytes read so far, tested below over reads split at every byte.

/// The HTTP/2 connection preface (RFC 9113 §3.4), as hyper-util's auto builder looks for it.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The most bytes [`protocol`] needs to see.
pub const PREFIX_LEN: usize = H2_PREFACE.len();

/// What the first bytes of a connection say about its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Not a prefix of the HTTP/2 preface: hyper-util's auto builder would choose HTTP/1 too.
    Http1,
    /// The HTTP/2 preface, a prefix of it, or nothing at all: left to the auto builder.
    Unsure,
}

/// The protocol `head`, the first bytes the client sent (at most [`PREFIX_LEN`] are looked at),
/// points to.
pub fn protocol(head: &[u8]) -> Protocol {
    let head = &head[..head.len().min(PREFIX_LEN)];
    if !head.is_empty() && !H2_PREFACE.starts_with(head) {
        Protocol::Http1
    } else {
        Protocol::Unsure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes a client might open with, and the verdict on all of them.
    const CASES: &[(&[u8], Protocol)] = &[
        (
            b"GET /protected HTTP/1.1\r\nHost: x\r\n\r\n",
            Protocol::Http1,
        ),
        (b"POST /login HTTP/1.1\r\n", Protocol::Http1),
        // As far as it goes, a prefix of the preface: the auto builder decides.
        (b"PRI * HTTP/2.0\r\n", Protocol::Unsure),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Protocol::Unsure),
        (
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00",
            Protocol::Unsure,
        ),
        // Differs from the preface only late: HTTP/1 once that byte is in.
        (b"PRI * HTTP/1.1\r\n\r\n", Protocol::Http1),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r!", Protocol::Http1),
        (b"P", Protocol::Unsure),
        (b"", Protocol::Unsure),
    ];

    /// Reads as a socket delivers them: the bytes so far, capped at what a peek keeps.
    fn verdicts_over(reads: &[&[u8]]) -> Vec<Protocol> {
        let mut seen = Vec::new();
        reads
            .iter()
            .map(|read| {
                seen.extend_from_slice(read);
                protocol(&seen)
            })
            .collect()
    }

    #[test]
    fn whole_heads_get_their_verdict() {
        for &(bytes, expected) in CASES {
            assert_eq!(
                protocol(bytes),
                expected,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    /// Split in two at every byte: the verdict after the last read is the verdict on the
    /// whole, and an HTTP/1 verdict, once given, never changes with more bytes.
    #[test]
    fn a_head_split_at_every_byte_gets_the_same_verdict() {
        for &(bytes, expected) in CASES {
            for at in 0..=bytes.len() {
                let (first, second) = bytes.split_at(at);
                let verdicts = verdicts_over(&[first, second]);
                assert_eq!(verdicts[1], expected, "split at {at} of {bytes:?}");
                if verdicts[0] == Protocol::Http1 {
                    assert_eq!(verdicts[1], Protocol::Http1, "changed its mind at {at}");
                }
            }
        }
    }

    /// One byte per read: the first byte off the preface decides HTTP/1, and only it.
    #[test]
    fn byte_by_byte_http1_is_decided_at_the_first_byte_off_the_preface() {
        for &(bytes, expected) in CASES {
            let reads: Vec<&[u8]> = bytes.chunks(1).collect();
            let verdicts = verdicts_over(&reads);
            let off = bytes.iter().zip(H2_PREFACE).position(|(a, b)| a != b);
            for (i, verdict) in verdicts.iter().enumerate() {
                let decided = off.is_some_and(|off| i >= off);
                let want = if decided {
                    Protocol::Http1
                } else {
                    Protocol::Unsure
                };
                assert_eq!(*verdict, want, "byte {i} of {bytes:?}");
            }
            if let Some(last) = verdicts.last() {
                assert_eq!(*last, expected);
            }
        }
    }
}
