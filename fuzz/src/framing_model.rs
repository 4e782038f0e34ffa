//! A model of how hyper 1.12's HTTP/1 server frames a stream of requests, written from its
//! source (`proto/h1/role.rs` for heads, `proto/h1/decode.rs` for chunked bodies), for the
//! framing fuzz target to hold `framing::Tracker` against.

/// What hyper makes of a whole stream of client bytes.
#[derive(Debug, Default)]
pub struct Framed {
    /// Offset just past each complete request head, in order.
    pub head_ends: Vec<usize>,
    /// Offsets where a request (head and body) ends, 0 included: the request boundaries.
    pub boundaries: Vec<usize>,
    /// Index of the head carrying both `Content-Length` and `Transfer-Encoding`, if one does.
    pub ambiguous: Option<usize>,
    /// Up to where the tracker must agree exactly: past it hyper refused the stream (and
    /// closed the connection), so what a watcher concludes there no longer matters. A head
    /// hyper refuses for its framing headers (two lengths, TE on HTTP/1.0, TE not ending in
    /// chunked) ends the agreement just before its last byte.
    pub defined_until: usize,
}

/// hyper's default limit on headers in a head (and trailers in a chunked body).
const MAX_HEADERS: usize = 100;
/// hyper's limit on chunk extension bytes per body and on trailer bytes.
const CHUNK_LIMIT: usize = 16 * 1024;

pub fn frame(stream: &[u8]) -> Framed {
    let mut out = Framed {
        boundaries: vec![0],
        defined_until: stream.len(),
        ..Framed::default()
    };
    let mut pos = 0;
    while pos < stream.len() {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut slots);
        let len = match request.parse(&stream[pos..]) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return out,
            Err(_) => {
                out.defined_until = pos;
                return out;
            }
        };
        let head_end = pos + len;
        out.head_ends.push(head_end);
        let is_http_11 = request.version == Some(1);
        let (mut te, mut te_chunked, mut cl_seen, mut lengths) = (false, false, false, Vec::new());
        for h in request.headers.iter() {
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                te = true;
                te_chunked = std::str::from_utf8(h.value).is_ok_and(|v| {
                    v.rsplit(',')
                        .next()
                        .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"))
                });
            } else if h.name.eq_ignore_ascii_case("content-length") {
                cl_seen = true;
                lengths.push(from_digits(h.value));
            }
        }
        if te && cl_seen {
            // The smuggling shape: the tracker flags it and stops; the service answers 400
            // and the connection closes after it.
            out.ambiguous = Some(out.head_ends.len() - 1);
            return out;
        }
        let body_end = if te {
            if !is_http_11 || !te_chunked {
                out.defined_until = head_end - 1;
                return out;
            }
            match chunked(stream, head_end) {
                Chunked::End(end) => end,
                Chunked::Partial => return out,
                Chunked::Refused(at) => {
                    out.defined_until = at;
                    return out;
                }
            }
        } else if let Some(first) = lengths.first() {
            match first {
                Some(n) if lengths.iter().all(|l| l == &Some(*n)) => {
                    match usize::try_from(*n)
                        .ok()
                        .and_then(|n| head_end.checked_add(n))
                    {
                        Some(end) if end <= stream.len() => end,
                        _ => return out,
                    }
                }
                _ => {
                    out.defined_until = head_end - 1;
                    return out;
                }
            }
        } else {
            head_end
        };
        out.boundaries.push(body_end);
        pos = body_end;
    }
    out
}

/// hyper's `headers::from_digits`: ASCII digits only, no sign, no overflow.
fn from_digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))
            .flatten()
    })
}

enum Chunked {
    End(usize),
    Partial,
    Refused(usize),
}

/// hyper's `ChunkedState` machine over `stream[start..]`.
fn chunked(stream: &[u8], start: usize) -> Chunked {
    #[derive(Clone, Copy)]
    enum S {
        Start,
        Size,
        SizeLws,
        Extension,
        SizeLf,
        BodyCr,
        BodyLf,
        Trailer,
        TrailerLf,
        EndCr,
        EndLf,
    }
    let (mut state, mut size, mut extensions, mut trailers) = (S::Start, 0u64, 0usize, 0usize);
    let mut trailer_bytes = Vec::new();
    let mut i = start;
    let hex = |b: u8| char::from(b).to_digit(16).map(u64::from);
    while let Some(&b) = stream.get(i) {
        state = match state {
            S::Start | S::Size => match (state, b, hex(b)) {
                (_, _, Some(d)) => {
                    let Some(n) = size.checked_mul(16).and_then(|n| n.checked_add(d)) else {
                        return Chunked::Refused(i);
                    };
                    size = n;
                    S::Size
                }
                (S::Size, b'\t' | b' ', _) => S::SizeLws,
                (S::Size, b';', _) => S::Extension,
                (S::Size, b'\r', _) => S::SizeLf,
                _ => return Chunked::Refused(i),
            },
            S::SizeLws => match b {
                b'\t' | b' ' => S::SizeLws,
                b';' => S::Extension,
                b'\r' => S::SizeLf,
                _ => return Chunked::Refused(i),
            },
            S::Extension => match b {
                b'\r' => S::SizeLf,
                b'\n' => return Chunked::Refused(i),
                _ => {
                    extensions += 1;
                    if extensions >= CHUNK_LIMIT {
                        return Chunked::Refused(i);
                    }
                    S::Extension
                }
            },
            S::SizeLf if b == b'\n' && size == 0 => S::EndCr,
            S::SizeLf if b == b'\n' => {
                let left = stream.len() - i - 1;
                let Some(n) = usize::try_from(size).ok().filter(|&n| n <= left) else {
                    return Chunked::Partial;
                };
                i += n;
                S::BodyCr
            }
            S::BodyCr if b == b'\r' => S::BodyLf,
            S::BodyLf if b == b'\n' => {
                size = 0;
                S::Start
            }
            S::EndCr if b == b'\r' => S::EndLf,
            S::EndCr | S::Trailer => {
                trailer_bytes.push(b);
                if trailer_bytes.len() > CHUNK_LIMIT {
                    return Chunked::Refused(i);
                }
                if b == b'\r' {
                    S::TrailerLf
                } else {
                    S::Trailer
                }
            }
            S::TrailerLf if b == b'\n' => {
                trailers += 1;
                if trailers > MAX_HEADERS {
                    return Chunked::Refused(i);
                }
                trailer_bytes.push(b);
                S::EndCr
            }
            S::EndLf if b == b'\n' => {
                // hyper then parses the trailers as a header block; one it cannot read is an
                // error after the request was dispatched, and the connection closes.
                if !trailer_bytes.is_empty() {
                    trailer_bytes.extend_from_slice(b"\r\n");
                    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    if !matches!(
                        httparse::parse_headers(&trailer_bytes, &mut slots),
                        Ok(httparse::Status::Complete(_))
                    ) {
                        return Chunked::Refused(i);
                    }
                }
                return Chunked::End(i + 1);
            }
            S::SizeLf | S::BodyCr | S::BodyLf | S::TrailerLf | S::EndLf => {
                return Chunked::Refused(i)
            }
        };
        i += 1;
    }
    Chunked::Partial
}
