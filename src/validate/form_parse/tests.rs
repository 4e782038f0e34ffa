#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

use proptest::prelude::*;

use super::*;

#[test]
fn unquote_plus_matches_python() {
    assert_eq!(unquote_plus(b"a+b%21"), "a b!");
    assert_eq!(unquote_plus(b"%zz%4"), "%zz%4");
    assert_eq!(unquote_plus(b"%ff"), "\u{FFFD}");
    // Raw non-ASCII bytes are latin-1 characters (Starlette decodes before unquoting).
    assert_eq!(unquote_plus("é".as_bytes()), "Ã©");
}

#[test]
fn options_header_like_python_multipart() {
    let (ct, params) = options_header("Multipart/Form-Data; Boundary=\"a;b\"; name*=x");
    assert_eq!(ct, "multipart/form-data");
    assert_eq!(params, vec![("boundary".to_owned(), "a;b".to_owned())]);
}

#[test]
fn too_many_fields_is_a_400() {
    let body = "a&".repeat(1001);
    assert!(matches!(
        urlencoded(body.as_bytes(), |_, _| ()),
        Err(Rejection::BadRequest(_))
    ));
    let mut fields = 0;
    assert!(urlencoded("a&".repeat(1000).as_bytes(), |_, _| fields += 1).is_ok());
    assert_eq!(fields, 1000);
}

/// `unquote_plus` as CPython words it: each maximal ASCII run of the latin-1 text is
/// percent-decoded to bytes and decoded as UTF-8 with replacement; other characters stay.
fn python_unquote_plus(raw: &[u8]) -> String {
    let mut out = String::new();
    for run in raw.chunk_by(|a, b| a.is_ascii() == b.is_ascii()) {
        if !run.is_ascii() {
            out.extend(run.iter().map(|&b| char::from(b)));
            continue;
        }
        let text = std::str::from_utf8(run).unwrap().replace('+', " ");
        let mut bytes = Vec::new();
        let mut rest = text.as_str();
        while let Some(pct) = rest.find('%') {
            bytes.extend_from_slice(&rest.as_bytes()[..pct]);
            let hex = rest
                .get(pct + 1..pct + 3)
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
            if let Some(h) = hex {
                bytes.push(u8::from_str_radix(h, 16).unwrap());
                rest = &rest[pct + 3..];
            } else {
                bytes.push(b'%');
                rest = &rest[pct + 1..];
            }
        }
        bytes.extend_from_slice(rest.as_bytes());
        out.push_str(&String::from_utf8_lossy(&bytes));
    }
    out
}

/// python-multipart 0.0.20's `QuerystringParser._internal_write` (non-strict, one chunk),
/// transliterated state by state: the (name, value) byte ranges it reports.
fn python_querystring_fields(data: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    enum State {
        BeforeField,
        FieldName,
        FieldData,
    }
    let find = |needle: u8, from: usize| {
        data[from..]
            .iter()
            .position(|&b| b == needle)
            .map(|p| from + p)
    };
    let mut fields = Vec::new();
    let mut state = State::BeforeField;
    let mut name = Vec::new();
    // Python's loop ends each step with `i += 1` after some states set `i = x - 1`; here each
    // state sets the next `i` itself.
    let mut i = 0;
    while i < data.len() {
        match state {
            State::BeforeField => {
                if matches!(data[i], b'&' | b';') {
                    i += 1;
                } else {
                    state = State::FieldName;
                }
            }
            State::FieldName => {
                let sep = find(b'&', i).or_else(|| find(b';', i));
                let equals = find(b'=', i).filter(|&e| sep.is_none_or(|s| e < s));
                match (equals, sep) {
                    (Some(e), _) => {
                        name = data[i..e].to_vec();
                        i = e + 1;
                        state = State::FieldData;
                    }
                    (None, Some(s)) => {
                        fields.push((data[i..s].to_vec(), Vec::new()));
                        i = s;
                        state = State::BeforeField;
                    }
                    // The name is the rest of the body, and the field is never ended:
                    // `finalize` ends a field only in the data state.
                    (None, None) => i = data.len(),
                }
            }
            State::FieldData => {
                let sep = find(b'&', i).or_else(|| find(b';', i));
                let end = sep.unwrap_or(data.len());
                fields.push((std::mem::take(&mut name), data[i..end].to_vec()));
                i = end;
                state = State::BeforeField;
            }
        }
    }
    // A name with `=` at the very end of the body: its (empty) data never comes, but
    // `finalize` ends the field.
    if let State::FieldData = state {
        fields.push((name, Vec::new()));
    }
    fields
}

#[test]
fn semicolons_separate_fields_only_where_no_ampersand_follows() {
    let fields = |body: &[u8]| {
        let mut got = Vec::new();
        urlencoded(body, |n, v| {
            let FormValue::Text(v) = v else {
                unreachable!()
            };
            got.push(format!("{n}={v}"));
        })
        .unwrap();
        got
    };
    assert_eq!(
        fields(b"username=u;password=p"),
        ["username=u", "password=p"]
    );
    assert_eq!(fields(b"a=1;b=2&c=3"), ["a=1;b=2", "c=3"]);
    assert_eq!(fields(b"a=1&b=2;c;;d=4"), ["a=1", "b=2", "c=", "d=4"]);
    assert_eq!(fields(b";&;x="), ["x="]);
    // A last name without `=` is never ended, so never a field.
    assert_eq!(fields(b"a&b"), ["a="]);
    assert_eq!(
        fields(b"username=a&password=p&username"),
        ["username=a", "password=p"]
    );
}

fn form_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        proptest::sample::select(b"az09AFf%%+ =&;\x80\xa9\xc3\xe9\xff".to_vec()),
        0..24,
    )
}

/// Bodies that take the all-ASCII path.
fn ascii_form_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::sample::select(b"az09AFf%%+ =&&;".to_vec()), 0..32)
}

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[ \t]{0,2}(?i:application/x-www-form-urlencoded)[ \t;]{0,2}(charset=utf-8)?"
            .prop_map(String::into_bytes),
        proptest::collection::vec(
            proptest::sample::select(b"aApPx-/; \t\"\xa0\xc0".to_vec()),
            0..12
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn unquote_plus_matches_pythons_wording(raw in form_bytes()) {
        prop_assert_eq!(unquote_plus(&raw), python_unquote_plus(&raw));
    }

    /// The field loop (ASCII bodies sliced as one `&str`) gives python-multipart's fields.
    #[test]
    fn urlencoded_fields_match_pythons(raw in prop_oneof![form_bytes(), ascii_form_bytes()]) {
        let mut got = Vec::new();
        urlencoded(&raw, |name, value| {
            let FormValue::Text(value) = value else { unreachable!("no files in a urlencoded body") };
            got.push((name.into_owned(), value.into_owned()));
        })
        .unwrap();
        let want: Vec<(String, String)> = python_querystring_fields(&raw)
            .iter()
            .map(|(name, value)| (python_unquote_plus(name), python_unquote_plus(value)))
            .collect();
        prop_assert_eq!(got, want);
    }

    /// The byte-level header check only says "urlencoded" where `options_header` would.
    #[test]
    fn plain_urlencoded_agrees_with_options_header(raw in header_bytes()) {
        if is_plain_urlencoded(&raw) {
            let (ctype, _) = options_header(&latin1(&raw));
            prop_assert_eq!(ctype, "application/x-www-form-urlencoded");
        }
    }
}
