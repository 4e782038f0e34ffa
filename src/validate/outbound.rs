//! Serialises validated input into the bodies the central auth service gets (compact JSON, `quote_plus` forms).

use super::echo;

/// A flat JSON object of string fields, compact, non-ASCII kept as UTF-8.
pub fn json_object(fields: &[(&str, &str)]) -> bytes::Bytes {
    if fields
        .iter()
        .all(|(k, v)| !needs_json_escape(k) && !needs_json_escape(v))
    {
        return plain_json_object(fields);
    }
    let mut out = String::with_capacity(
        16 + fields
            .iter()
            .map(|(k, v)| k.len() + v.len() + 6)
            .sum::<usize>(),
    );
    out.push('{');
    for (n, (k, v)) in fields.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        echo::string(&mut out, k);
        out.push(':');
        echo::string(&mut out, v);
    }
    out.push('}');
    out.into()
}

/// [`json_object`] when no string needs an escape (the usual case): written into a buffer of
/// exactly its length, so that it becomes `Bytes` without a second allocation.
fn plain_json_object(fields: &[(&str, &str)]) -> bytes::Bytes {
    // `{` `}`, and per field `"k":"v"` and a comma (one too many, for the last field).
    let len = 1 + fields
        .iter()
        .map(|(k, v)| k.len() + v.len() + 6)
        .sum::<usize>();
    let mut out = Vec::with_capacity(len.max(2));
    out.push(b'{');
    for (n, (k, v)) in fields.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":\"");
        out.extend_from_slice(v.as_bytes());
        out.push(b'"');
    }
    out.push(b'}');
    out.into()
}

/// Whether a JSON string literal of `s` has an escape ([`echo::is_escaped`]).
fn needs_json_escape(s: &str) -> bool {
    s.bytes().any(echo::is_escaped)
}

/// `application/x-www-form-urlencoded` as Python's `urlencode` (`quote_plus`) writes it;
/// `None` fields are left out.
pub fn urlencoded(fields: &[(&str, Option<&str>)]) -> bytes::Bytes {
    // Room for every byte as it is and a few escapes (the usual `%40`) without growing.
    let plain: usize = fields
        .iter()
        .filter_map(|(k, v)| Some(k.len() + v.as_ref()?.len() + 2))
        .sum();
    let mut out = Vec::with_capacity(plain + 16);
    for (k, v) in fields {
        let Some(v) = v else { continue };
        if !out.is_empty() {
            out.push(b'&');
        }
        // Field names are this crate's own literals, all unreserved: nothing to quote.
        debug_assert!(k.bytes().all(unreserved), "{k}");
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        quote_plus(&mut out, v);
    }
    out.into()
}

/// `quote_plus` with its default safe set: unreserved bytes as they are (copied a run at a
/// time), a space as `+`, every other byte of the UTF-8 as `%XX`.
fn quote_plus(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut rest = s.as_bytes();
    while let Some(pos) = rest.iter().position(|&b| !unreserved(b)) {
        let (plain, tail) = rest.split_at(pos);
        out.extend_from_slice(plain);
        let Some((&b, after)) = tail.split_first() else {
            break;
        };
        match b {
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]),
        }
        rest = after;
    }
    out.extend_from_slice(rest);
}

/// `quote_plus`'s safe set: ASCII letters and digits and `_.-~`.
pub fn unreserved(b: u8) -> bool {
    UNRESERVED[usize::from(b)]
}

/// [`unreserved`] as a table, for other tables built from it.
pub const UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut c: u8 = 0;
    loop {
        table[c as usize] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'~');
        if c == u8::MAX {
            break table;
        }
        c += 1;
    }
};
