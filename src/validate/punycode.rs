//! Punycode (RFC 3492) exactly as CPython's `punycode` codec decodes and encodes it, over code
//! points (a decoded label may hold a lone surrogate, which Python carries).

/// `T(j, bias)`: the threshold of the `j`-th digit.
fn threshold(j: u64, bias: u64) -> u64 {
    (36 * (j + 1)).saturating_sub(bias).clamp(1, 26)
}

/// `adapt`: the bias after a delta.
fn adapt(delta: u64, first: bool, numchars: u64) -> u64 {
    let mut delta = if first { delta / 700 } else { delta / 2 };
    delta += delta / numchars.max(1);
    let mut divisions = 0;
    while delta > 455 {
        delta /= 35;
        divisions += 36;
    }
    divisions + 36 * delta / (delta + 38)
}

/// `punycode_decode(text, "strict")`: `None` where CPython raises (a digit that is not one,
/// a number cut short, a code point past U+10FFFF). Python's integers do not overflow; a
/// saturated `u64` here is past U+10FFFF after the division as well, so it fails the same way.
pub fn decode(text: &[u8]) -> Option<Vec<u32>> {
    let (mut base, extended): (Vec<u32>, &[u8]) = match text.iter().rposition(|&b| b == b'-') {
        Some(dash) => (
            text.get(..dash)?.iter().map(|&b| u32::from(b)).collect(),
            text.get(dash + 1..)?,
        ),
        None => (Vec::new(), text),
    };
    let (mut char, mut pos, mut bias) = (0x80u64, 0u64, 72u64);
    let mut first = true;
    let mut digits = extended.iter();
    while !digits.as_slice().is_empty() {
        let (mut delta, mut w, mut j) = (0u64, 1u64, 0u64);
        loop {
            let digit = match digits.next()? {
                b @ b'a'..=b'z' => u64::from(b - b'a'),
                b @ b'A'..=b'Z' => u64::from(b - b'A'),
                b @ b'0'..=b'9' => u64::from(b - b'0') + 26,
                _ => return None,
            };
            let t = threshold(j, bias);
            delta = delta.saturating_add(digit.saturating_mul(w));
            if digit < t {
                break;
            }
            w = w.saturating_mul(36 - t);
            j += 1;
        }
        // CPython starts `pos` at -1 and adds `delta + 1`: the first insertion lands at `delta`.
        pos = if first {
            delta
        } else {
            pos.saturating_add(delta).saturating_add(1)
        };
        let len = base.len() as u64 + 1;
        char = char.saturating_add(pos / len);
        if char > 0x10_FFFF {
            return None;
        }
        pos %= len;
        base.insert(usize::try_from(pos).ok()?, u32::try_from(char).ok()?);
        bias = adapt(delta, first, base.len() as u64);
        first = false;
    }
    Some(base)
}

/// `punycode_encode(text)`: the basic code points, `-` if there were any, then the deltas.
pub fn encode(text: &[u32]) -> Vec<u8> {
    const DIGITS: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out: Vec<u8> = text
        .iter()
        .filter_map(|&c| u8::try_from(c).ok().filter(u8::is_ascii))
        .collect();
    let base_len = out.len() as u64;
    if !out.is_empty() {
        out.push(b'-');
    }
    let mut extended: Vec<u32> = text.iter().copied().filter(|&c| c >= 0x80).collect();
    extended.sort_unstable();
    extended.dedup();
    let (mut old_char, mut old_index, mut bias, mut points) = (0x80i64, -1i64, 72u64, 0u64);
    for &c in &extended {
        let below = i64::try_from(text.iter().filter(|&&x| x < c).count()).unwrap_or(i64::MAX);
        // Signed: a later character can sit at a smaller index than the one before it.
        let mut delta = (below + 1) * (i64::from(c) - old_char);
        let mut index = -1i64;
        for &x in text {
            if x < c {
                index += 1;
            } else if x == c {
                index += 1;
                delta += index - old_index;
                // `generate_generalized_integer(delta - 1, bias)`, then `adapt`. The sum is
                // never below 1 here (RFC 3492 §6.3), so the conversion cannot fail.
                let delta_1 = u64::try_from(delta - 1).unwrap_or_default();
                let mut n = delta_1;
                let mut j = 0;
                loop {
                    let t = threshold(j, bias);
                    if n < t {
                        out.push(DIGITS[usize::try_from(n).unwrap_or_default()]);
                        break;
                    }
                    let digit = t + (n - t) % (36 - t);
                    out.push(DIGITS[usize::try_from(digit).unwrap_or_default()]);
                    n = (n - t) / (36 - t);
                    j += 1;
                }
                bias = adapt(delta_1, points == 0, base_len + points + 1);
                points += 1;
                old_index = index;
                delta = 0;
            }
        }
        old_char = i64::from(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cps(s: &str) -> Vec<u32> {
        s.chars().map(u32::from).collect()
    }

    #[test]
    fn round_trips_like_cpython() {
        // `"bücher".encode("punycode")` and friends, from CPython 3.11.
        for (text, code) in [
            ("bücher", "bcher-kva"),
            ("пример", "e1afmkfd"),
            ("\u{80}", "a"),
            ("ü", "tda"),
            ("a-ü", "a--yka"),
            ("-ä", "--0fa"),
        ] {
            assert_eq!(encode(&cps(text)), code.as_bytes(), "{text}");
            assert_eq!(decode(code.as_bytes()), Some(cps(text)), "{code}");
        }
        // A lone surrogate decodes (Python carries it); junk, cut-short numbers and code
        // points past U+10FFFF do not.
        assert_eq!(decode(b"ib9b"), Some(vec![0xD800]));
        assert_eq!(encode(&[0x61, 0xDFFF]), b"a-qo7g");
        assert_eq!(decode(b"99a"), Some(vec![0x56C]));
        for bad in [&b"a!"[..], b"99999999", b"zz", b"-9", b"8g", b"b"] {
            assert_eq!(decode(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
