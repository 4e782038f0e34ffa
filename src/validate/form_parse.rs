//! Starlette's `Request.form()`: the content-type switch, python-multipart's querystring
//! parser with `unquote_plus`, and multipart via `multer`, with Starlette's limits and 400s.

use std::borrow::Cow;
use std::convert::Infallible;

use futures_util::FutureExt;

use super::errors;
use super::pytext::latin1;
use super::Rejection;

/// Starlette's default `max_fields` / `max_files`.
const MAX_FIELDS: usize = 1000;
const MAX_FILES: usize = 1000;

/// One form value: text (borrowed from the body when it needed no decoding), or an uploaded
/// file (a part with a `filename`).
pub enum FormValue<'a> {
    Text(Cow<'a, str>),
    File { filename: String, size: usize },
}

impl FormValue<'_> {
    /// FastAPI treats "" and a browser's empty file input as "not sent".
    pub fn is_empty_input(&self) -> bool {
        match self {
            FormValue::Text(s) => s.is_empty(),
            FormValue::File { filename, size } => filename.is_empty() && *size == 0,
        }
    }
}

/// `await request.form()`, field by field: `each` gets every field in order. Anything but the
/// two form types is an empty form. After an error, the fields already passed mean nothing.
pub fn parse<'a>(
    content_type: Option<&[u8]>,
    body: &'a [u8],
    mut each: impl FnMut(Cow<'a, str>, FormValue<'a>),
) -> Result<(), Rejection> {
    let raw = content_type.unwrap_or_default();
    if is_plain_urlencoded(raw) {
        return urlencoded(body, each);
    }
    let header = latin1(raw);
    let (ctype, params) = options_header(&header);
    match ctype.as_str() {
        "multipart/form-data" => multipart(&params, body, &mut each),
        "application/x-www-form-urlencoded" => urlencoded(body, each),
        _ => Ok(()),
    }
}

/// The usual header, read off the bytes without decoding it: no parameters, and (trimmed of
/// spaces and tabs, as [`options_header`] does then) `application/x-www-form-urlencoded` in any
/// case. Only ASCII can match, and no latin-1 letter lower-cases to ASCII, so a `true` here is
/// what `options_header` would say; anything else takes that exact path.
pub fn is_plain_urlencoded(raw: &[u8]) -> bool {
    let mut ctype = raw;
    while let [b' ' | b'\t', rest @ ..] = ctype {
        ctype = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = ctype {
        ctype = rest;
    }
    !raw.contains(&b';') && ctype.eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
}

/// python-multipart `parse_options_header`: lower-cased type, `;`-separated parameters
/// (quotes respected), lower-cased keys, RFC 2231 `key*` parameters ignored.
pub fn options_header(value: &str) -> (String, Vec<(String, String)>) {
    if !value.contains(';') {
        return (
            value.to_lowercase().trim_matches([' ', '\t']).to_owned(),
            Vec::new(),
        );
    }
    let mut segments = split_params(value).into_iter();
    let ctype = segments.next().unwrap_or_default().to_lowercase();
    let mut params = Vec::new();
    for seg in segments {
        let (key, val) = seg.split_once('=').unwrap_or((seg.as_str(), ""));
        let key = key.trim_end().to_lowercase();
        if key.contains('*') {
            continue;
        }
        let val = val.trim_start();
        let mut val = match val.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(inner) if val.len() >= 2 => inner.replace("\\\\", "\\").replace("\\\"", "\""),
            _ => val.to_owned(),
        };
        // python-multipart's IE6 workaround: a filename sent as a full Windows path keeps only
        // its last component (`C:\dir\f.txt` and `\\host\f.txt` are `f.txt`).
        if key == "filename"
            && (val.chars().skip(1).take(2).eq([':', '\\']) || val.starts_with("\\\\"))
        {
            if let Some(last) = val.rfind('\\') {
                val.drain(..=last);
            }
        }
        params.retain(|(k, _)| *k != key);
        params.push((key, val));
    }
    (ctype, params)
}

/// `_parseparam`: split at `;` outside double quotes, each piece stripped.
fn split_params(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    for c in value.chars() {
        match c {
            ';' if !in_quotes => out.push(std::mem::take(&mut current).trim().to_owned()),
            '"' if !escaped => {
                in_quotes = !in_quotes;
                current.push(c);
            }
            _ => current.push(c),
        }
        escaped = c == '\\' && !escaped;
    }
    out.push(current.trim().to_owned());
    out
}

/// python-multipart 0.0.34's `QuerystringParser` (non-strict), as Starlette's `FormParser`
/// drives it: fields are separated by `&` alone (`;` is data: 0.0.20 and older also split on
/// it), empty pieces are skipped, a field is split at its first `=`, and a field without `=`
/// (at the end of the body too) is a name with an empty value. Then Starlette's latin-1 +
/// `unquote_plus`. The oracle is `tests/vectors/forms-0.0.34.jsonl`, recorded from the real
/// parser by `tests/vectors/forms.py`.
fn urlencoded<'a>(
    body: &'a [u8],
    mut each: impl FnMut(Cow<'a, str>, FormValue<'a>),
) -> Result<(), Rejection> {
    // The usual body is ASCII: checked and converted once, so that a name or value that needs
    // no decoding is a slice of it rather than a UTF-8 check of its own.
    let text = if body.is_ascii() {
        std::str::from_utf8(body).ok()
    } else {
        None
    };
    let decode = |from: usize, to: usize| -> Cow<'a, str> {
        match text.and_then(|text| text.get(from..to)) {
            Some(plain) if !plain.bytes().any(|b| b == b'%' || b == b'+') => Cow::Borrowed(plain),
            _ => unquote_plus(body.get(from..to).unwrap_or_default()),
        }
    };
    let mut start = 0;
    let mut fields = 0;
    while start < body.len() {
        let rest = body.get(start..).unwrap_or_default();
        let len = memchr::memchr(b'&', rest).unwrap_or(rest.len());
        let (from, to) = (start, start + len);
        start = to + 1; // past the `&`
        let Some(piece) = rest.get(..len).filter(|piece| !piece.is_empty()) else {
            continue;
        };
        if fields == MAX_FIELDS {
            return Err(errors::bad_request(
                "Too many fields. Maximum number of fields is 1000.",
            ));
        }
        fields += 1;
        let (name, value) = match memchr::memchr(b'=', piece) {
            Some(eq) => (decode(from, from + eq), decode(from + eq + 1, to)),
            None => (decode(from, to), Cow::Borrowed("")),
        };
        each(name, FormValue::Text(value));
    }
    Ok(())
}

/// `urllib.parse.unquote_plus(raw.decode("latin-1"))`: `+` is a space; `%XX` escapes in each
/// ASCII run decode as UTF-8 with replacement; raw non-ASCII bytes stay latin-1 characters.
fn unquote_plus(raw: &[u8]) -> Cow<'_, str> {
    if raw.is_ascii() && !raw.contains(&b'%') && !raw.contains(&b'+') {
        if let Ok(text) = std::str::from_utf8(raw) {
            return Cow::Borrowed(text); // plain ASCII (so always UTF-8): nothing to decode
        }
    }
    let mut out = String::new();
    let mut run: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b >= 0x80 {
            out.push_str(&String::from_utf8_lossy(&run));
            run.clear();
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let hex = |j: usize| raw.get(j).and_then(|&h| char::from(h).to_digit(16));
        let escape = if b == b'%' {
            hex(i + 1).zip(hex(i + 2))
        } else {
            None
        };
        match (b, escape) {
            (_, Some((hi, lo))) => {
                run.push(u8::try_from(hi * 16 + lo).unwrap_or_default());
                i += 3;
            }
            (b'+', None) => {
                run.push(b' ');
                i += 1;
            }
            _ => {
                run.push(b);
                i += 1;
            }
        }
    }
    if out.is_empty() {
        // No raw non-ASCII byte, so one ASCII run (the usual case): its bytes become the text.
        return Cow::Owned(
            String::from_utf8(run)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        );
    }
    out.push_str(&String::from_utf8_lossy(&run));
    Cow::Owned(out)
}

/// Starlette's `MultiPartParser` over `multer`, driven to completion on one ready chunk.
fn multipart<'a>(
    params: &[(String, String)],
    body: &[u8],
    mut each: impl FnMut(Cow<'a, str>, FormValue<'a>),
) -> Result<(), Rejection> {
    let Some((_, boundary)) = params.iter().find(|(k, _)| k == "boundary") else {
        return Err(errors::bad_request("Missing boundary in multipart."));
    };
    let charset = params
        .iter()
        .find(|(k, _)| k == "charset")
        .map(|(_, v)| v.to_ascii_lowercase());
    let latin1_only = charset
        .as_deref()
        .is_some_and(|c| matches!(c, "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1"));
    let decode = |data: &[u8]| match std::str::from_utf8(data) {
        Ok(s) if !latin1_only => s.to_owned(),
        _ => latin1(data),
    };
    let invalid = || errors::bad_request("Invalid multipart data.");
    // The header was read as latin-1, and python-multipart encodes the boundary back to
    // latin-1: these are the bytes the body holds. multer takes a `String`, so a boundary whose
    // bytes are not UTF-8 cannot be followed (Python can: documented in the README).
    let boundary = latin1_bytes(boundary);
    if !starts_with_boundary(body, &boundary).map_err(|()| invalid())? {
        return Ok(());
    }
    let (body, boundary) = python_delimited(body, &boundary).map_err(|()| invalid())?;
    let chunk = bytes::Bytes::from(body);
    let stream = futures_util::stream::once(async move { Ok::<_, Infallible>(chunk) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let (mut files, mut fields) = (0usize, 0usize);
    loop {
        let field = match parts.next_field().now_or_never().ok_or_else(invalid)? {
            Ok(Some(field)) => field,
            Ok(None)
            | Err(multer::Error::IncompleteStream | multer::Error::IncompleteFieldData { .. }) => {
                break
            }
            Err(_) => return Err(invalid()),
        };
        // Starlette reads the part's last Content-Disposition with python-multipart's
        // `parse_options_header` (quotes, escapes, the IE6 path rule), not multer's reading.
        let disposition = field
            .headers()
            .get_all(http::header::CONTENT_DISPOSITION)
            .iter()
            .next_back()
            .map(|v| latin1(v.as_bytes()))
            .unwrap_or_default();
        let (_, options) = options_header(&disposition);
        let option = |key: &str| {
            options
                .iter()
                .rfind(|(k, _)| k == key)
                .map(|(_, v)| decode(&latin1_bytes(v)))
        };
        let Some(name) = option("name") else {
            return Err(errors::bad_request(
                "The Content-Disposition header field \"name\" must be provided.",
            ));
        };
        let filename = option("filename");
        if filename.is_some() {
            files += 1;
            if files > MAX_FILES {
                return Err(errors::bad_request(
                    "Too many files. Maximum number of files is 1000.",
                ));
            }
        } else {
            fields += 1;
            if fields > MAX_FIELDS {
                return Err(errors::bad_request(
                    "Too many fields. Maximum number of fields is 1000.",
                ));
            }
        }
        let data = match field.bytes().now_or_never().ok_or_else(invalid)? {
            Ok(data) => data,
            // python-multipart only yields a part once its closing boundary arrives.
            Err(multer::Error::IncompleteStream | multer::Error::IncompleteFieldData { .. }) => {
                break
            }
            Err(_) => return Err(invalid()),
        };
        let value = match filename {
            Some(filename) => FormValue::File {
                filename,
                size: data.len(),
            },
            None => FormValue::Text(Cow::Owned(decode(&data))),
        };
        each(Cow::Owned(name), value);
    }
    Ok(())
}

/// The bytes of a string read as latin-1 (every character is below U+0100).
fn latin1_bytes(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// The body re-delimited where python-multipart's part-data state ends each part, under a
/// fresh boundary that occurs nowhere in it, so that multer (which ends a part at any
/// `CRLF--boundary`) splits it in the same places. python-multipart ends a part only at
/// `CRLF--boundary` followed by CRLF, by `--` (the last part), or by spaces and tabs then CRLF
/// (anything else after those is a 400); followed by any other byte it is part data. A body
/// that stops inside a delimiter leaves its part unfinished, never yielded: that part is handed
/// on without a delimiter, and multer drops it the same way. The body is known to open with the
/// boundary ([`starts_with_boundary`]).
fn python_delimited(body: &[u8], boundary: &[u8]) -> Result<(Vec<u8>, String), ()> {
    let mut delimiter = b"\r\n--".to_vec();
    delimiter.extend_from_slice(boundary);
    // The first part starts after the opening `--boundary` CRLF (leading CR/LF skipped to `-`).
    let open = body.iter().position(|&b| b == b'-').unwrap_or(body.len());
    let mut at = open + delimiter.len() - 2;
    let fresh = fresh_boundary(body);
    let mut out = Vec::with_capacity(body.len() + 64);
    if !matches!(body.get(at..at + 2), Some(b"\r\n")) {
        // `--boundary--`, or a body that stops inside the opening delimiter: no part.
        out.extend_from_slice(b"--");
        out.extend_from_slice(fresh.as_bytes());
        out.extend_from_slice(b"--");
        return Ok((out, fresh));
    }
    at += 2;
    out.extend_from_slice(b"--");
    out.extend_from_slice(fresh.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut part_start = at;
    // Part data starts after the headers' blank line; a delimiter before it is header text.
    let mut search = data_start(body, part_start);
    loop {
        let Some(found) = body
            .get(search..)
            .and_then(|rest| memchr::memmem::find(rest, &delimiter))
            .map(|i| search + i)
        else {
            out.extend_from_slice(body.get(part_start..).unwrap_or_default());
            return Ok((out, fresh));
        };
        let after = found + delimiter.len();
        let tail = body.get(after..).unwrap_or_default();
        let next = match tail {
            [b'\r', b'\n', ..] => Some(after + 2),
            [b'-', b'-', ..] => None,
            [] | [b'-' | b'\r'] => {
                // The body stops inside the delimiter: the part is never finished.
                out.extend_from_slice(body.get(part_start..found).unwrap_or_default());
                return Ok((out, fresh));
            }
            [b' ' | b'\t', ..] => {
                let pad = tail
                    .iter()
                    .take_while(|&&b| b == b' ' || b == b'\t')
                    .count();
                match tail.get(pad..) {
                    Some([b'\r', b'\n', ..]) => Some(after + pad + 2),
                    Some([] | [b'\r']) => {
                        out.extend_from_slice(body.get(part_start..found).unwrap_or_default());
                        return Ok((out, fresh));
                    }
                    _ => return Err(()),
                }
            }
            _ => {
                search = found + 1;
                continue;
            }
        };
        out.extend_from_slice(body.get(part_start..found).unwrap_or_default());
        out.extend_from_slice(b"\r\n--");
        out.extend_from_slice(fresh.as_bytes());
        let Some(start) = next else {
            out.extend_from_slice(b"--");
            return Ok((out, fresh));
        };
        out.extend_from_slice(b"\r\n");
        part_start = start;
        search = data_start(body, part_start);
    }
}

/// Where python-multipart's part data starts: after a blank line right at the part's start,
/// else after the first CRLF CRLF (the end of its headers), else nowhere (the body's end).
fn data_start(body: &[u8], part_start: usize) -> usize {
    let rest = body.get(part_start..).unwrap_or_default();
    if rest.starts_with(b"\r\n") {
        return part_start + 2;
    }
    memchr::memmem::find(rest, b"\r\n\r\n").map_or(body.len(), |i| part_start + i + 4)
}

/// A boundary whose delimiter (`--` and it) occurs nowhere in `body`, found in one pass:
/// the 16 hex digits after each `--auth-proxy-` in the body are set aside and the first
/// counter not among them is taken (at most one try more than there are occurrences), so a
/// body that spells out the candidates costs linear time, not a scan per candidate.
fn fresh_boundary(body: &[u8]) -> String {
    const PREFIX: &[u8] = b"--auth-proxy-";
    let taken: std::collections::HashSet<&[u8]> = memchr::memmem::find_iter(body, PREFIX)
        .filter_map(|at| body.get(at + PREFIX.len()..at + PREFIX.len() + 16))
        .collect();
    let mut n = 0u64;
    loop {
        let candidate = format!("auth-proxy-{n:016x}");
        if !taken.contains(&candidate.as_bytes()[PREFIX.len() - 2..]) {
            return candidate;
        }
        n += 1;
    }
}

/// python-multipart's start states: leading CR/LF skip to the next `-`, then `--boundary`
/// and CRLF (or `--`, the end: one `-` and anything else is a 400) must follow. `Ok(false)`:
/// the body ends before any part could start. An empty boundary (`boundary=""`) is `--`.
fn starts_with_boundary(body: &[u8], boundary: &[u8]) -> Result<bool, ()> {
    let rest = match body.first() {
        Some(b'\r' | b'\n') => match body.iter().position(|&b| b == b'-') {
            Some(dash) => body.get(dash..).unwrap_or_default(),
            None => return Ok(false),
        },
        _ => body,
    };
    let mut expected = b"--".to_vec();
    expected.extend_from_slice(boundary);
    if rest.len() <= expected.len() {
        return if expected.starts_with(rest) {
            Ok(false)
        } else {
            Err(())
        };
    }
    match rest.get(expected.len()..) {
        Some(after)
            if rest.starts_with(&expected)
                && matches!(
                    after,
                    [b'-' | b'\r'] | [b'-', b'-', ..] | [b'\r', b'\n', ..]
                ) =>
        {
            Ok(true)
        }
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests;
