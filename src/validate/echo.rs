//! Writes values the way Starlette's `JSONResponse` does: `json.dumps(..., ensure_ascii=False,
//! separators=(",", ":"))`, so echoed `input`s are byte-identical to FastAPI's.

use std::fmt::Write as _;

use super::json::Value;

/// Appends `value` as Python's `json.dumps` would print it.
///
/// Python's `allow_nan=False` makes FastAPI answer 500 for a non-finite float in an echo; we
/// print `null` in its place and keep the 422 (a client error stays a client error).
pub fn value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Int(digits) => out.push_str(digits),
        Value::Float(f) => float(out, *f),
        Value::Str(s) => string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                self::value(out, item);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            out.push('{');
            for (n, (k, v)) in fields.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                string(out, k);
                out.push(':');
                self::value(out, v);
            }
            out.push('}');
        }
    }
}

/// Whether a byte of a JSON string literal is escaped by [`string`]: a control character,
/// `"` or `\`.
pub fn is_escaped(b: u8) -> bool {
    b < b' ' || b == b'"' || b == b'\\'
}

/// A JSON string literal with `ensure_ascii=False` escaping (CPython `ESCAPE_DCT`).
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    let mut rest = s;
    // The characters to escape are all ASCII, so a byte search finds them (and only them).
    while let Some(pos) = rest.bytes().position(is_escaped) {
        let (plain, tail) = rest.split_at(pos);
        out.push_str(plain);
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{08}' => out.push_str("\\b"),
                '\u{0C}' => out.push_str("\\f"),
                c => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
            }
        }
        rest = chars.as_str();
    }
    out.push_str(rest);
    out.push('"');
}

/// Python `float.__repr__`: shortest round-trip digits, exponent form when the decimal
/// point would sit before the 4th leading zero or past the 16th digit.
pub fn float(out: &mut String, f: f64) {
    if !f.is_finite() {
        out.push_str("null");
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. "-1.2345e-7".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = mantissa
        .strip_prefix('-')
        .map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = half_even(f.abs(), digits, exp);
    let decpt = exp + 1; // value = 0.DIGITS × 10^decpt
    out.push_str(sign);
    if decpt <= -4 || decpt > 16 {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let e = decpt - 1;
        let _ = write!(
            out,
            "e{}{:02}",
            if e < 0 { '-' } else { '+' },
            e.unsigned_abs()
        );
    } else if decpt <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', decpt.unsigned_abs() as usize));
        out.push_str(&digits);
    } else {
        let point = decpt.unsigned_abs() as usize;
        if digits.len() <= point {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', point - digits.len()));
            out.push_str(".0");
        } else {
            let (int, frac) = digits.split_at(point);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        }
    }
}

/// Rust's shortest digits settle a tie half up, Python's `repr` (David Gay's dtoa) half to
/// even: where `f` lies exactly halfway between two `n`-digit numbers that both read back as
/// `f`, take the one whose last digit is even (`845682013503740.25` is `845682013503740.2`).
/// `digits` (one before the point) × 10^`exp` is Rust's shortest form of `f`, positive.
fn half_even(f: f64, digits: String, exp: i32) -> String {
    let n = digits.len();
    if n < 15 {
        return digits; // both neighbours of a shorter form never read back as `f`
    }
    // Exact: no f64 has more than 767 significant digits.
    let exact = format!("{f:.800e}");
    let Some((mantissa, exact_exp)) = exact.split_once('e') else {
        return digits;
    };
    if exact_exp.parse::<i32>().ok() != Some(exp) {
        return digits;
    }
    let all: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let Some((lower, rest)) = all.split_at_checked(n) else {
        return digits;
    };
    let mut rest = rest.bytes();
    if rest.next() != Some(b'5') || !rest.all(|b| b == b'0') {
        return digits;
    }
    let Some(last) = lower.bytes().last() else {
        return digits;
    };
    let even = if last % 2 == 0 {
        lower.to_owned()
    } else if last == b'9' {
        return digits; // the upper neighbour carries into another length: keep Rust's
    } else {
        let mut up = lower.as_bytes().to_vec();
        if let Some(d) = up.last_mut() {
            *d += 1;
        }
        String::from_utf8(up).unwrap_or_default()
    };
    let reads_back = format!("0.{even}e{}", exp + 1)
        .parse::<f64>()
        .is_ok_and(|back| back.to_bits() == f.to_bits());
    if reads_back {
        even
    } else {
        digits
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure
mod tests {
    use super::*;

    fn repr(f: f64) -> String {
        let mut s = String::new();
        float(&mut s, f);
        s
    }

    #[test]
    fn floats_print_like_python_repr() {
        let cases = [
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (100_000.0, "100000.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1.5, "1.5"),
            (123_456_789_012_345_680.0, "1.2345678901234568e+17"),
            (1e22, "1e+22"),
            (1.5e-7, "1.5e-07"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
            (-2.5e-10, "-2.5e-10"),
            (1_234.567, "1234.567"),
            (f64::INFINITY, "null"),
            // Ties go to the even digit, as in Python (found by bench/diff_fuzz.py).
            (845_682_013_503_740.0 + 0.25, "845682013503740.2"),
            (845_682_013_503_740.0 + 0.75, "845682013503740.8"),
            (600_000_000_000_000.0 + 0.25, "600000000000000.2"),
            (-845_682_013_503_741.0 - 0.25, "-845682013503741.2"),
        ];
        for (f, want) in cases {
            assert_eq!(repr(f), want, "{f:e}");
        }
    }

    /// FastAPI's 422s echoing floats, recorded by `bench/diff_fuzz.py --record`
    /// (`tests/vectors/float-echo-0.165.jsonl`): the same bytes from `/register`.
    #[test]
    fn float_echoes_match_the_recorded_fastapi_answers() {
        const VECTORS: &str = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/float-echo-0.165.jsonl"
        ));
        let mut n = 0;
        for line in VECTORS.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let body = v["body"].as_str().unwrap();
            let Err(crate::validate::Rejection::Unprocessable(got)) =
                crate::validate::register(Some(b"application/json"), body.as_bytes())
            else {
                panic!("{body}: not a 422");
            };
            assert_eq!(
                std::str::from_utf8(&got).unwrap(),
                v["fastapi_body"].as_str().unwrap(),
                "{body}"
            );
            n += 1;
        }
        assert_eq!(n, 10);
    }

    #[test]
    fn strings_escape_like_ensure_ascii_false() {
        let mut s = String::new();
        string(&mut s, "a\"b\\c\n\u{1}\u{7f}é\u{2028}");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001\u{7f}é\u{2028}\"");
    }

    #[test]
    fn containers_are_compact() {
        let v = Value::Object(vec![
            (
                "a".into(),
                Value::Array(vec![Value::Int("1".into()), Value::Null]),
            ),
            ("b".into(), Value::Bool(false)),
        ]);
        let mut s = String::new();
        value(&mut s, &v);
        assert_eq!(s, r#"{"a":[1,null],"b":false}"#);
    }
}
