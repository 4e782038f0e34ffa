//! Text as Python sees it: the code points `json.loads(bytes)` decodes, `str.isspace()`, latin-1 header strings.
//!
//! `json.loads` on bytes picks an encoding with `json.detect_encoding` (BOMs, then the
//! pattern of NUL bytes, default UTF-8) and decodes with `errors="surrogatepass"`, so a
//! lone surrogate can reach the decoder. Code points are kept as `u32` for that reason.
//! A decode failure is a `UnicodeDecodeError` in Python, which FastAPI answers with 400.

/// The body could not be decoded as text (Python: `UnicodeDecodeError`).
#[derive(Debug, PartialEq, Eq)]
pub struct Undecodable;

/// Decodes `body` the way `json.loads(body)` does before it starts scanning.
pub fn decode(body: &[u8]) -> Result<Vec<u32>, Undecodable> {
    match detect(body) {
        Encoding::Utf8 => utf8_surrogatepass(body),
        Encoding::Utf8Sig => utf8_surrogatepass(body.get(3..).unwrap_or_default()),
        Encoding::Utf16 { big_endian, bom } => utf16(
            body.get(usize::from(bom) * 2..).unwrap_or_default(),
            big_endian,
        ),
        Encoding::Utf32 { big_endian, bom } => utf32(
            body.get(usize::from(bom) * 4..).unwrap_or_default(),
            big_endian,
        ),
    }
}

enum Encoding {
    Utf8,
    Utf8Sig,
    Utf16 { big_endian: bool, bom: bool },
    Utf32 { big_endian: bool, bom: bool },
}

/// CPython `json.detect_encoding`.
fn detect(b: &[u8]) -> Encoding {
    if b.starts_with(&[0, 0, 0xFE, 0xFF]) {
        return Encoding::Utf32 {
            big_endian: true,
            bom: true,
        };
    }
    if b.starts_with(&[0xFF, 0xFE, 0, 0]) {
        return Encoding::Utf32 {
            big_endian: false,
            bom: true,
        };
    }
    if b.starts_with(&[0xFE, 0xFF]) {
        return Encoding::Utf16 {
            big_endian: true,
            bom: true,
        };
    }
    if b.starts_with(&[0xFF, 0xFE]) {
        return Encoding::Utf16 {
            big_endian: false,
            bom: true,
        };
    }
    if b.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Encoding::Utf8Sig;
    }
    match *b {
        [0, b1, _, _, ..] => {
            if b1 == 0 {
                Encoding::Utf32 {
                    big_endian: true,
                    bom: false,
                }
            } else {
                Encoding::Utf16 {
                    big_endian: true,
                    bom: false,
                }
            }
        }
        [_, 0, b2, b3, ..] => {
            if b2 != 0 || b3 != 0 {
                Encoding::Utf16 {
                    big_endian: false,
                    bom: false,
                }
            } else {
                Encoding::Utf32 {
                    big_endian: false,
                    bom: false,
                }
            }
        }
        [0, _] => Encoding::Utf16 {
            big_endian: true,
            bom: false,
        },
        [_, 0] => Encoding::Utf16 {
            big_endian: false,
            bom: false,
        },
        _ => Encoding::Utf8,
    }
}

/// Strict UTF-8, except that encoded surrogates (`ED A0..BF 80..BF`) pass, as with
/// Python's `surrogatepass` handler.
fn utf8_surrogatepass(mut b: &[u8]) -> Result<Vec<u32>, Undecodable> {
    let mut out = Vec::with_capacity(b.len());
    loop {
        match std::str::from_utf8(b) {
            Ok(s) => {
                out.extend(s.chars().map(u32::from));
                return Ok(out);
            }
            Err(e) => {
                let (good, rest) = b.split_at(e.valid_up_to());
                out.extend(String::from_utf8_lossy(good).chars().map(u32::from));
                match *rest {
                    [0xED, b1 @ 0xA0..=0xBF, b2 @ 0x80..=0xBF, ..] => {
                        out.push(0xD000 | (u32::from(b1 & 0x3F) << 6) | u32::from(b2 & 0x3F));
                        b = rest.get(3..).unwrap_or_default();
                    }
                    _ => return Err(Undecodable),
                }
            }
        }
    }
}

fn utf16(b: &[u8], big_endian: bool) -> Result<Vec<u32>, Undecodable> {
    if b.len() % 2 != 0 {
        return Err(Undecodable);
    }
    let units = b.chunks_exact(2).map(|c| {
        let pair = [c[0], c[1]];
        if big_endian {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        }
    });
    let mut out = Vec::with_capacity(b.len() / 2);
    let mut pending_high: Option<u32> = None;
    for unit in units.map(u32::from) {
        if let Some(high) = pending_high.take() {
            if (0xDC00..=0xDFFF).contains(&unit) {
                out.push(0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00));
                continue;
            }
            out.push(high);
        }
        if (0xD800..=0xDBFF).contains(&unit) {
            pending_high = Some(unit);
        } else {
            out.push(unit);
        }
    }
    out.extend(pending_high);
    Ok(out)
}

fn utf32(b: &[u8], big_endian: bool) -> Result<Vec<u32>, Undecodable> {
    if b.len() % 4 != 0 {
        return Err(Undecodable);
    }
    b.chunks_exact(4)
        .map(|c| {
            let quad = [c[0], c[1], c[2], c[3]];
            let cp = if big_endian {
                u32::from_be_bytes(quad)
            } else {
                u32::from_le_bytes(quad)
            };
            if cp > 0x10_FFFF {
                Err(Undecodable)
            } else {
                Ok(cp)
            }
        })
        .collect()
}

/// Python's `str.isspace()` for the characters Starlette can put in a header string (latin-1).
pub fn is_python_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | '\u{1C}'..='\u{1F}' | ' ' | '\u{85}' | '\u{A0}'
    )
}

/// A header value as Starlette sees it: each byte one latin-1 character.
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure
mod tests {
    use super::*;

    fn s(v: &[u32]) -> String {
        v.iter().filter_map(|&c| char::from_u32(c)).collect()
    }

    #[test]
    fn utf8_with_and_without_bom() {
        assert_eq!(s(&decode(b"{}").unwrap()), "{}");
        assert_eq!(s(&decode(b"\xEF\xBB\xBF{}").unwrap()), "{}");
        assert_eq!(s(&decode("é".as_bytes()).unwrap()), "é");
    }

    #[test]
    fn invalid_utf8_is_undecodable_but_surrogates_pass() {
        assert_eq!(decode(b"\xff"), Err(Undecodable));
        assert_eq!(decode(b"a\xc3"), Err(Undecodable));
        assert_eq!(decode(b"\xed\xa0\x80").unwrap(), vec![0xD800]);
    }

    #[test]
    fn utf16_and_utf32_are_detected() {
        let le: Vec<u8> = "{\"a\":1}"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(s(&decode(&le).unwrap()), "{\"a\":1}");
        let mut bom = vec![0xFE, 0xFF];
        bom.extend("[1]".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(s(&decode(&bom).unwrap()), "[1]");
        let be32: Vec<u8> = "[]"
            .chars()
            .flat_map(|c| u32::from(c).to_be_bytes())
            .collect();
        assert_eq!(s(&decode(&be32).unwrap()), "[]");
        assert_eq!(decode(&[0, b'[', 0, b']', 0]), Err(Undecodable));
    }
}
