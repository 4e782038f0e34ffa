//! Watches HTTP/1 request framing on the wire to refuse `Content-Length` + `Transfer-Encoding`.
//!
//! A request carrying both is the classic request-smuggling shape (RFC 9112 §6.3: "ought to be
//! handled as an error"). hyper follows the RFC's lenient branch — `Transfer-Encoding` wins,
//! `Content-Length` is dropped before the service sees the request, and the connection closes
//! afterwards — so by the time a request reaches `service.rs` the evidence is gone. A load
//! balancer in front of us that framed the same bytes by `Content-Length` would disagree with
//! us about where the next request starts; we refuse such a request with 400 instead, as nginx
//! does, and forward nothing.
//!
//! [`FramingWatch`] wraps the client socket and follows the byte stream with httparse (hyper's
//! own parser): each request head, then its body by `Content-Length` or chunk sizes, so it knows
//! where the next head starts. It never changes a byte. Any input it cannot follow (HTTP/2,
//! a malformed head, which hyper rejects anyway) switches it off for that connection.
//!
//! It also turns hyper's 431 for a `Content-Length` hyper cannot represent into the 413 any
//! other too-large length gets (see [`length`]).
//!
//! The watch hands its verdict to the request itself: the connection's service passes every
//! request hyper dispatches through [`Verdicts::mark`], which counts it and marks an ambiguous
//! one with [`AmbiguousFraming`] (the handler answers it with 400).
//!
//! The same watch tells `park.rs` when an idle HTTP/1 connection may be parked
//! ([`Verdicts::parkable`]): whether every byte read so far belongs to a complete request the
//! service was handed, and whether a write is still waiting for the client.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Version};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest head or chunk-size line followed; the server's own head limit is lower.
const MAX_BUFFERED: usize = 64 * 1024;
/// Headers per request head, as hyper's default.
const MAX_HEADERS: usize = 100;

/// What the watcher found, read by the service as hyper dispatches requests in order, and by
/// `park.rs` between polls of the connection.
///
/// Everything here is written and read by the one task that serves the connection (hyper
/// polls the socket inside that task's polls), so `Relaxed` suffices; atomics make it `Sync`.
#[derive(Debug)]
pub struct Verdicts {
    /// Index of the first request head carrying both framing headers, or `u64::MAX`.
    ambiguous: AtomicU64,
    /// Index of the first request head whose `Content-Length` hyper refuses as too large
    /// (over [`length::HYPER_MAX_LENGTH`]), or `u64::MAX`.
    oversized: AtomicU64,
    /// Requests the service has taken so far.
    dispatched: AtomicU64,
    /// Request heads the watcher has seen so far.
    heads: AtomicU64,
    /// Whether the bytes read so far are whole requests and nothing more (none being replayed).
    boundary: AtomicBool,
    /// Whether the last write-side call on the socket returned `Pending` and no flush has
    /// completed since.
    write_blocked: AtomicBool,
}

impl Verdicts {
    pub fn new() -> Arc<Self> {
        Arc::new(Verdicts {
            ambiguous: AtomicU64::new(u64::MAX),
            oversized: AtomicU64::new(u64::MAX),
            dispatched: AtomicU64::new(0),
            heads: AtomicU64::new(0),
            boundary: AtomicBool::new(true),
            write_blocked: AtomicBool::new(false),
        })
    }

    /// Whether nothing is half-way on the wire: every byte read belongs to a complete request
    /// (head and body) that the service has already been handed, so nothing of a next request
    /// has arrived; and no write is waiting for the client. hyper drains its write buffer
    /// completely before it calls `poll_flush` on the socket, so a completed flush with no
    /// `Pending` write after it means hyper holds no unsent bytes.
    pub fn parkable(&self) -> bool {
        self.boundary.load(Ordering::Relaxed)
            && !self.write_blocked.load(Ordering::Relaxed)
            && self.heads.load(Ordering::Relaxed) == self.dispatched.load(Ordering::Relaxed)
    }

    /// HTTP/1 requests the service has taken on this connection so far.
    pub fn dispatched(&self) -> u64 {
        self.dispatched.load(Ordering::Relaxed)
    }

    /// Whether the next head hyper parses is one whose length it will refuse (every earlier
    /// head has been handed to the service).
    fn next_head_is_oversized(&self) -> bool {
        self.oversized.load(Ordering::Relaxed) == self.dispatched.load(Ordering::Relaxed)
    }

    /// Request heads the watcher has seen so far (for the fuzz targets' model check).
    pub(crate) fn heads(&self) -> u64 {
        self.heads.load(Ordering::Relaxed)
    }

    /// Index of the first head carrying both framing headers, if any (fuzz targets).
    pub(crate) fn first_ambiguous(&self) -> Option<u64> {
        let index = self.ambiguous.load(Ordering::Acquire);
        (index != u64::MAX).then_some(index)
    }

    /// Called once per HTTP/1 request, in order, by [`Verdicts::mark`] alone: whether this
    /// request's head was ambiguous.
    fn next_request_is_ambiguous(&self) -> bool {
        let index = self.dispatched.fetch_add(1, Ordering::Relaxed);
        self.ambiguous.load(Ordering::Acquire) == index
    }

    /// Takes `request`, the next one hyper dispatches on the watched socket: counts it (which
    /// [`Verdicts::parkable`] needs) and marks it with [`AmbiguousFraming`] if its head was.
    /// The connection's service calls this for every request before it hands it on.
    pub fn mark(&self, request: &mut Request<Incoming>) {
        // Only HTTP/1 requests come through the watched bytes in order; HTTP/2 ones have none.
        if request.version() <= Version::HTTP_11 && self.next_request_is_ambiguous() {
            request.extensions_mut().insert(AmbiguousFraming);
        }
    }
}

/// In an HTTP/1 request's extensions: its head carried both `Content-Length` and
/// `Transfer-Encoding`, so a front end may have framed it differently (answer 400, forward
/// nothing).
#[derive(Debug, Clone, Copy)]
pub struct AmbiguousFraming;

/// Where in the request stream the watcher is.
#[derive(Debug)]
enum State {
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd(u8),
    Trailers(Trailer),
    Off,
}

/// Where in the trailer section (after the last chunk) the watcher is. hyper's chunked
/// decoder ends a trailer line only at CRLF — a bare LF is part of the line — and the section
/// at an empty CRLF line; anything else after a CR is an error that closes the connection.
#[derive(Debug, Clone, Copy)]
enum Trailer {
    /// At the start of a line: CR begins the final CRLF, anything else a trailer line.
    LineStart,
    /// Inside a trailer line, until its CR.
    InLine,
    /// After a trailer line's CR.
    LineCr,
    /// After the CR of the final empty line.
    EndCr,
}

/// The framing follower; pure, so it is tested without sockets.
#[derive(Debug)]
pub struct Tracker {
    state: State,
    /// Bytes of a head or chunk-size line split across reads.
    pending: Vec<u8>,
    heads: u64,
    verdicts: Arc<Verdicts>,
}

impl Tracker {
    pub fn new(verdicts: Arc<Verdicts>) -> Self {
        Tracker {
            state: State::Head,
            pending: Vec::new(),
            heads: 0,
            verdicts,
        }
    }

    /// Follows `data`, the next bytes the client sent.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let used = match self.state {
                State::Off => return,
                State::Head => self.head(data),
                State::Body(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    self.state = if n as u64 == left {
                        State::Head
                    } else {
                        State::Body(left - n as u64)
                    };
                    n
                }
                State::ChunkSize => self.chunk_size(data),
                State::ChunkData(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    self.state = if n as u64 == left {
                        State::ChunkEnd(2)
                    } else {
                        State::ChunkData(left - n as u64)
                    };
                    n
                }
                State::ChunkEnd(left) => {
                    let n = usize::from(left).min(data.len());
                    self.state = if n == usize::from(left) {
                        State::ChunkSize
                    } else {
                        State::ChunkEnd(1)
                    };
                    n
                }
                State::Trailers(at) => self.trailers(data, at),
            };
            data = &data[used..];
        }
    }

    /// Consumes head bytes; returns how many of `data` were used.
    fn head(&mut self, data: &[u8]) -> usize {
        let (parsed, offset) = if self.pending.is_empty() {
            (parse_head(data), 0)
        } else {
            let offset = self.pending.len();
            self.pending.extend_from_slice(data);
            (parse_head(&self.pending), offset)
        };
        match parsed {
            Head::Partial => {
                if offset == 0 {
                    self.pending.extend_from_slice(data);
                }
                if self.pending.len() > MAX_BUFFERED {
                    self.off();
                }
                data.len()
            }
            Head::Invalid => {
                self.off();
                data.len()
            }
            Head::Complete { len, framing } => {
                self.pending.clear();
                let index = self.heads;
                self.heads += 1;
                self.verdicts.heads.store(self.heads, Ordering::Relaxed);
                self.state = match framing {
                    Framing::Ambiguous => {
                        self.verdicts.ambiguous.store(index, Ordering::Release);
                        State::Off
                    }
                    Framing::Oversized => {
                        self.verdicts.oversized.store(index, Ordering::Relaxed);
                        State::Off
                    }
                    Framing::Chunked => State::ChunkSize,
                    Framing::Length(0) => State::Head,
                    Framing::Length(n) => State::Body(n),
                    Framing::Unknown => State::Off,
                };
                len - offset
            }
        }
    }

    fn chunk_size(&mut self, data: &[u8]) -> usize {
        let Some(newline) = data.iter().position(|&b| b == b'\n') else {
            self.pending.extend_from_slice(data);
            if self.pending.len() > MAX_BUFFERED {
                self.off();
            }
            return data.len();
        };
        self.pending.extend_from_slice(&data[..=newline]);
        self.state = match chunk_size_line(&self.pending) {
            Some(0) => State::Trailers(Trailer::LineStart),
            Some(size) => State::ChunkData(size),
            None => State::Off,
        };
        self.pending.clear();
        newline + 1
    }

    /// Follows the trailer section byte by byte, as hyper's decoder reads it (see [`Trailer`]).
    fn trailers(&mut self, data: &[u8], mut at: Trailer) -> usize {
        for (i, &b) in data.iter().enumerate() {
            at = match (at, b) {
                (Trailer::LineStart, b'\r') => Trailer::EndCr,
                (Trailer::InLine, b'\r') => Trailer::LineCr,
                (Trailer::LineStart | Trailer::InLine, _) => Trailer::InLine,
                (Trailer::LineCr, b'\n') => Trailer::LineStart,
                (Trailer::EndCr, b'\n') => {
                    self.state = State::Head;
                    return i + 1;
                }
                // hyper refuses the body and closes the connection.
                (Trailer::LineCr | Trailer::EndCr, _) => {
                    self.off();
                    return data.len();
                }
            };
        }
        self.state = State::Trailers(at);
        data.len()
    }

    fn off(&mut self) {
        self.state = State::Off;
        self.pending = Vec::new();
    }

    /// Whether the bytes fed so far are whole requests, heads and bodies, and nothing more.
    pub fn at_request_boundary(&self) -> bool {
        matches!(self.state, State::Head) && self.pending.is_empty()
    }
}

/// The size of a chunk from its whole size line (up to and including its LF), as hyper's
/// chunked decoder reads it: hex digits (any number, leading zeros included, as long as the
/// value fits in a u64), optional spaces or tabs, an optional `;` extension without CR, then
/// CRLF. `None` for anything hyper refuses. (httparse's `parse_chunk_size` is not hyper's
/// reading: it refuses more than 16 digits and takes a bare LF, so following it let a request
/// with a long zero-padded chunk size switch the watch off for the rest of the connection.)
fn chunk_size_line(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r\n")?;
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return None;
    }
    let (hex, rest) = line.split_at(digits);
    let size = hex.iter().try_fold(0u64, |size, &b| {
        let digit = char::from(b).to_digit(16)?;
        size.checked_mul(16)?.checked_add(u64::from(digit))
    })?;
    let lws = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    match &rest[lws..] {
        [] => Some(size),
        [b';', extension @ ..] if !extension.contains(&b'\r') => Some(size),
        _ => None,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    Ambiguous,
    /// A `Content-Length` over [`length::HYPER_MAX_LENGTH`], which hyper answers with 431.
    Oversized,
    /// Something hyper rejects (bad length, non-chunked coding): stop following.
    Unknown,
}

#[derive(Debug, PartialEq, Eq)]
enum Head {
    Partial,
    Invalid,
    Complete { len: usize, framing: Framing },
}

fn parse_head(bytes: &[u8]) -> Head {
    scan_head(bytes).unwrap_or_else(|| parse_head_fully(bytes))
}

/// The usual head, read without a full parse: an `HTTP/1.x` request line and CRLF-terminated
/// `name: value` lines. `None` for anything else (bare LF, folded lines, leading blank lines,
/// too many headers, no end yet), which httparse then decides exactly as before. Where the
/// two could disagree — a head httparse refuses — hyper refuses it too and closes the
/// connection, so no request is ever read with the other framing. About a quarter of
/// httparse's instructions on a typical head.
fn scan_head(bytes: &[u8]) -> Option<Head> {
    let mut line_ends = memchr::memchr_iter(b'\n', bytes);
    let first_end = line_ends.next()?;
    let request_line = bytes[..first_end].strip_suffix(b"\r")?;
    if !(request_line.ends_with(b" HTTP/1.1") || request_line.ends_with(b" HTTP/1.0")) {
        return None;
    }
    let mut start = first_end + 1;
    let mut found = FramingHeaders::default();
    for (n, end) in line_ends.enumerate() {
        let line = bytes[start..end].strip_suffix(b"\r")?;
        start = end + 1;
        if line.is_empty() {
            return Some(Head::Complete {
                len: start,
                framing: found.framing(),
            });
        }
        if n == MAX_HEADERS || matches!(line[0], b' ' | b'\t') {
            return None;
        }
        let colon = memchr::memchr(b':', line)?;
        found.header(&line[..colon], &line[colon + 1..]);
    }
    None
}

fn parse_head_fully(bytes: &[u8]) -> Head {
    // Uninitialised slots, as hyper parses: initialising 100 empty headers (3.2 KB of stores)
    // per request cost more than the parse itself.
    let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    match request.parse_with_uninit_headers(bytes, &mut headers) {
        Ok(httparse::Status::Complete(len)) => {
            let mut found = FramingHeaders::default();
            for header in &*request.headers {
                found.header(header.name.as_bytes(), header.value);
            }
            Head::Complete {
                len,
                framing: found.framing(),
            }
        }
        Ok(httparse::Status::Partial) => Head::Partial,
        Err(_) => Head::Invalid,
    }
}

/// The framing headers of one head, gathered line by line.
#[derive(Default)]
struct FramingHeaders {
    length: Option<u64>,
    /// Whether the last `Transfer-Encoding` coding is `chunked`.
    chunked: Option<bool>,
    /// A `Content-Length` hyper refuses.
    bad_length: bool,
    /// The first `Content-Length`, the one hyper checks first, is a number too large for hyper.
    oversized: bool,
}

impl FramingHeaders {
    fn header(&mut self, name: &[u8], value: &[u8]) {
        if name.eq_ignore_ascii_case(b"content-length") {
            // ASCII trimming: a header value is bytes, and `str::trim`'s Unicode tables cost
            // more than the rest of this function on a typical head.
            match std::str::from_utf8(value.trim_ascii())
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
            {
                Some(n) => {
                    let first = self.length.is_none() && !self.bad_length;
                    self.oversized |= first && n > length::HYPER_MAX_LENGTH;
                    self.length = Some(n);
                }
                None => self.bad_length = true,
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
            self.chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        }
    }

    fn framing(&self) -> Framing {
        let has_length = self.length.is_some() || self.bad_length;
        match (has_length, self.chunked) {
            // Any `Content-Length` line beside `Transfer-Encoding`, even one we cannot read
            // (`5\u{a0}`, `+5`, `5, 5`): hyper drops it and frames by chunks, while a front end
            // may read it as a length. That disagreement is the smuggling shape.
            (true, Some(_)) => Framing::Ambiguous,
            (false, Some(true)) => Framing::Chunked,
            (false, Some(false)) => Framing::Unknown,
            (true, None) if self.oversized => Framing::Oversized,
            (true, None) => self
                .length
                .filter(|_| !self.bad_length)
                .map_or(Framing::Unknown, Framing::Length),
            (false, None) => Framing::Length(0),
        }
    }
}

/// A client socket whose reads are followed by a [`Tracker`]; writes pass straight through.
pub struct FramingWatch<T> {
    inner: T,
    tracker: Tracker,
    /// Bytes read from `inner` earlier and handed back unparsed (by a parked hyper connection);
    /// served before `inner` is read again, and not fed to the tracker a second time.
    replay: Bytes,
    /// Our answer in place of hyper's 431 to an oversized length, still to be written.
    answer: Bytes,
}

impl<T> FramingWatch<T> {
    pub fn new(inner: T, verdicts: Arc<Verdicts>) -> Self {
        FramingWatch {
            inner,
            tracker: Tracker::new(verdicts),
            replay: Bytes::new(),
            answer: Bytes::new(),
        }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// What this watch has found, for the connection's service and `park`.
    pub fn verdicts(&self) -> &Arc<Verdicts> {
        &self.tracker.verdicts
    }

    /// Queues `bytes`, already read and tracked, to be read again before anything new.
    pub fn replay(&mut self, bytes: Bytes) {
        debug_assert!(self.replay.is_empty(), "one replay at a time");
        self.replay = bytes;
        self.publish_boundary();
    }

    fn publish_boundary(&self) {
        let boundary = self.replay.is_empty() && self.tracker.at_request_boundary();
        self.tracker
            .verdicts
            .boundary
            .store(boundary, Ordering::Relaxed);
    }

    /// Writes what is left of [`Self::answer`].
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>
    where
        T: AsyncWrite + Unpin,
    {
        while !self.answer.is_empty() {
            let polled = Pin::new(&mut self.inner).poll_write(cx, &self.answer);
            match std::task::ready!(self.note_write(polled)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    let _ = self.answer.split_to(n);
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    fn note_write<R>(&self, polled: Poll<R>) -> Poll<R> {
        if polled.is_pending() {
            self.tracker
                .verdicts
                .write_blocked
                .store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for FramingWatch<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.replay.is_empty() {
            let n = this.replay.len().min(buf.remaining());
            buf.put_slice(&this.replay.split_to(n));
            this.publish_boundary();
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.tracker.feed(&buf.filled()[before..]);
            this.publish_boundary();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FramingWatch<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.tracker.verdicts.next_head_is_oversized() {
            if let Some(date) = length::hyper_refusal_date(buf) {
                this.answer = length::too_large_answer(date);
                // Written by the flush hyper makes next; hyper's own bytes count as written.
                return Poll::Ready(Ok(buf.len()));
            }
        }
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.note_write(polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.note_write(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_answer(cx))?;
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = polled {
            this.tracker
                .verdicts
                .write_blocked
                .store(false, Ordering::Relaxed);
        }
        this.note_write(polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_answer(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

mod length;

#[cfg(test)]
mod tests;
