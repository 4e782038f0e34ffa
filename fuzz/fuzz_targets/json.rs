//! The CPython-faithful JSON decoder (`src/validate/json.rs`): never panics, says only
//! CPython 3.11's `JSONDecodeError` messages at a position inside the text, and on valid UTF-8
//! accepts exactly what serde_json accepts, with the same value, apart from the documented
//! differences below (each one is Python's behaviour, which FastAPI inherits).
#![no_main]

use auth_proxy::fuzzing::{json_loads, JsonDecodeError, JsonValue};
use libfuzzer_sys::fuzz_target;
use serde_json::Value as Serde;

/// CPython 3.11 `json.decoder` / `_json.c` messages (`JSONDecodeError.msg`).
const CPYTHON_MESSAGES: [&str; 10] = [
    "Expecting value",
    "Expecting property name enclosed in double quotes",
    "Expecting ':' delimiter",
    "Expecting ',' delimiter",
    "Unterminated string starting at",
    "Invalid control character at",
    "Invalid \\escape",
    "Invalid \\uXXXX escape",
    "Extra data",
    // Reserved so that the list is CPython's whole vocabulary (3.13 adds trailing-comma ones).
    "Illegal trailing comma before end of object",
];

/// serde_json's default recursion limit.
const SERDE_DEPTH: usize = 128;

fuzz_target!(|data: &[u8]| {
    let ours = json_loads(data);
    if let Err(JsonDecodeError::Syntax { msg, pos }) = &ours {
        assert!(
            CPYTHON_MESSAGES.contains(msg),
            "not a CPython message: {msg}"
        );
        // Code-point positions (JSONDecodeError.pos) never point past the text.
        assert!(
            *pos <= data.len(),
            "position {pos} past {} bytes",
            data.len()
        );
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Documented differences, where the two are not both defined:
    // - `json.loads(bytes)` sniffs UTF-16/32 from NUL bytes among the first four, and takes a
    //   UTF-8 BOM (serde_json reads UTF-8 only);
    if data.iter().take(4).any(|&b| b == 0) || text.starts_with('\u{feff}') {
        return;
    }
    let theirs: Result<Serde, _> = serde_json::from_str(text);
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => assert!(same(a, b), "values differ: ours {a:?}, serde_json {b:?}"),
        (Err(_), Err(_)) => {}
        // - Python takes NaN, Infinity, -Infinity and overflows 1e999 to inf;
        // - Python nests up to its recursion limit (we: MAX_DEPTH), serde_json 128 levels;
        // - Python integers are unbounded; serde_json reads one past u64 as an f64 and
        //   refuses it past f64's range (1.8e308).
        (Ok(a), Err(_)) if has_non_finite(a) || depth(a) >= SERDE_DEPTH || has_huge_int(a) => {}
        // - Python refuses integer literals over 4300 digits (ValueError, FastAPI's 400);
        // - we refuse a lone surrogate escape Python would carry (and serde_json refuses).
        (Err(JsonDecodeError::Unparsable), Ok(b)) if has_long_int(text) => {
            let _ = b;
        }
        _ => panic!(
            "accept differs: ours {:.300}, serde_json {theirs:?} on {text:.300?}",
            format!("{ours:?}")
        ),
    }
});

fn same(a: &JsonValue, b: &Serde) -> bool {
    match (a, b) {
        (JsonValue::Null, Serde::Null) => true,
        (JsonValue::Bool(x), Serde::Bool(y)) => x == y,
        (JsonValue::Int(digits), Serde::Number(n)) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => *digits == i.to_string(),
            (_, Some(u), _) => *digits == u.to_string(),
            // Past u64, serde_json reads an integer as the nearest float, and `-0` as -0.0
            // (a Python int has no negative zero: compare numerically, not bit for bit).
            (_, _, Some(f)) => digits.parse::<f64>().is_ok_and(|d| d == f),
            _ => false,
        },
        (JsonValue::Float(x), Serde::Number(n)) => n.as_f64().is_some_and(|y| close(*x, y)),
        (JsonValue::Str(x), Serde::String(y)) => x == y,
        (JsonValue::Array(xs), Serde::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same(x, y))
        }
        // Both keep a repeated key at its first position with its last value.
        (JsonValue::Object(xs), Serde::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .zip(ys)
                    .all(|((kx, vx), (ky, vy))| kx == ky && same(vx, vy))
        }
        _ => false,
    }
}

/// Bit-equal: CPython's `float()` is correctly rounded, and so is serde_json with its
/// `float_roundtrip` feature (its default parser can be one step off: fuzz/seeds/json/float-*).
fn close(x: f64, y: f64) -> bool {
    x.to_bits() == y.to_bits()
}

fn has_non_finite(v: &JsonValue) -> bool {
    match v {
        JsonValue::Float(f) => !f.is_finite(),
        JsonValue::Array(items) => items.iter().any(has_non_finite),
        JsonValue::Object(fields) => fields.iter().any(|(_, v)| has_non_finite(v)),
        _ => false,
    }
}

fn has_huge_int(v: &JsonValue) -> bool {
    match v {
        JsonValue::Int(digits) => digits.trim_start_matches('-').len() > 308,
        JsonValue::Array(items) => items.iter().any(has_huge_int),
        JsonValue::Object(fields) => fields.iter().any(|(_, v)| has_huge_int(v)),
        _ => false,
    }
}

fn depth(v: &JsonValue) -> usize {
    match v {
        JsonValue::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        JsonValue::Object(fields) => 1 + fields.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        _ => 0,
    }
}

fn has_long_int(text: &str) -> bool {
    let mut run = 0;
    text.bytes().any(|b| {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        run > 4300
    })
}
