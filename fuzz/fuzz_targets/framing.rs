//! The framing watch (`src/conn/framing.rs` `Tracker`) fed a stream of requests split at arbitrary
//! points agrees with hyper's own framing (`fuzz_checks::framing_model`: httparse for heads,
//! hyper's chunked decoder for bodies) at every split point: the same complete heads, the same
//! first `Content-Length` + `Transfer-Encoding` head, and "at a request boundary" exactly
//! where a request ends. Past the point where hyper refuses the stream (and closes the
//! connection) the watch may conclude anything.
#![no_main]

use auth_proxy::fuzzing::FramingProbe;
use fuzz_checks::framing_model::{frame, Framed};
use libfuzzer_sys::fuzz_target;

/// Compares the probe, having been fed `stream[..p]`, with the model.
fn agree(probe: &FramingProbe, model: &Framed, stream: &[u8], p: usize) {
    if p > model.defined_until {
        return;
    }
    let heads = model.head_ends.iter().filter(|&&end| end <= p).count() as u64;
    let ambiguous = model
        .ambiguous
        .filter(|&i| model.head_ends[i] <= p)
        .map(|i| i as u64);
    let boundary = model.boundaries.contains(&p);
    let shown = String::from_utf8_lossy(&stream[..p]);
    assert_eq!(probe.heads(), heads, "heads after {p} bytes: {shown:?}");
    assert_eq!(
        probe.first_ambiguous(),
        ambiguous,
        "ambiguous after {p} bytes: {shown:?}"
    );
    assert_eq!(
        probe.at_request_boundary(),
        boundary,
        "boundary after {p} bytes: {shown:?}"
    );
}

// Input: one byte choosing the read size, then the client's bytes (seeds in fuzz/seeds/framing
// are whole request streams; fuzz/http.dict gives the mutator HTTP's words).
fuzz_target!(|data: &[u8]| {
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let model = frame(stream);
    // Reads of `step` bytes, the last one shorter.
    let mut probe = FramingProbe::new();
    for (n, piece) in stream.chunks(usize::from(step) + 1).enumerate() {
        probe.feed(piece);
        let p = (n * (usize::from(step) + 1) + piece.len()).min(stream.len());
        agree(&probe, &model, stream, p);
    }
    // And byte by byte, checking every offset.
    if stream.len() <= 2048 {
        let mut probe = FramingProbe::new();
        agree(&probe, &model, stream, 0);
        for (i, byte) in stream.iter().enumerate() {
            probe.feed(std::slice::from_ref(byte));
            agree(&probe, &model, stream, i + 1);
        }
    }
});
