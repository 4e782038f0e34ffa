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

/// A body that spells out the proxy's own boundary candidates one after another costs one
/// pass, and the boundary chosen still occurs nowhere in it (found by a review: each candidate
/// used to be a scan of the whole body, quadratic in what a client sends).
#[test]
fn fresh_boundary_is_absent_and_found_in_one_pass() {
    let mut body = Vec::new();
    for n in 0..5_000u64 {
        body.extend_from_slice(format!("--auth-proxy-{n:016x}\r\n").as_bytes());
    }
    let boundary = fresh_boundary(&body);
    assert_eq!(boundary, format!("auth-proxy-{:016x}", 5_000));
    let delimiter = format!("--{boundary}");
    assert!(memchr::memmem::find(&body, delimiter.as_bytes()).is_none());
    assert_eq!(fresh_boundary(b"plain"), "auth-proxy-0000000000000000");
    // A candidate cut short at the body's end is not a delimiter in it.
    assert_eq!(
        fresh_boundary(b"--auth-proxy-00000000000000"),
        "auth-proxy-0000000000000000"
    );
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

/// python-multipart 0.0.34's `QuerystringParser._internal_write` and `finalize` (non-strict,
/// one chunk), transliterated state by state with Starlette's `FormParser` callbacks: the raw
/// (name, value) bytes of each field it ends.
#[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)]
fn python_querystring_fields(data: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    #[derive(PartialEq)]
    enum State {
        BeforeField,
        FieldName,
        FieldData,
    }
    let length = data.len() as isize;
    // `data.find(needle, from, to)`: -1 when absent.
    let find = |needle: u8, from: isize, to: isize| -> isize {
        data[from as usize..to as usize]
            .iter()
            .position(|&b| b == needle)
            .map_or(-1, |p| from + p as isize)
    };
    let (mut fields, mut name, mut value) = (Vec::new(), Vec::new(), Vec::new());
    let mut state = State::BeforeField;
    let (mut i, mut sep_pos): (isize, isize) = (0, -1);
    while i < length {
        match state {
            State::BeforeField => {
                if data[i as usize] != b'&' {
                    (name, value) = (Vec::new(), Vec::new()); // on_field_start
                    i -= 1;
                    state = State::FieldName;
                }
            }
            State::FieldName => {
                sep_pos = find(b'&', i, length);
                let equals_pos = find(b'=', i, if sep_pos == -1 { length } else { sep_pos });
                if equals_pos != -1 {
                    name.extend_from_slice(&data[i as usize..equals_pos as usize]);
                    i = equals_pos;
                    state = State::FieldData;
                } else if sep_pos != -1 {
                    name.extend_from_slice(&data[i as usize..sep_pos as usize]);
                    fields.push((std::mem::take(&mut name), std::mem::take(&mut value)));
                    i = sep_pos - 1;
                    state = State::BeforeField;
                } else {
                    name.extend_from_slice(&data[i as usize..]);
                    i = length;
                }
            }
            State::FieldData => {
                if sep_pos < i {
                    sep_pos = find(b'&', i, length);
                }
                if sep_pos == -1 {
                    value.extend_from_slice(&data[i as usize..]);
                    i = length;
                } else {
                    value.extend_from_slice(&data[i as usize..sep_pos as usize]);
                    fields.push((std::mem::take(&mut name), std::mem::take(&mut value)));
                    if sep_pos + 1 < length && data[(sep_pos + 1) as usize] != b'&' {
                        (name, value) = (Vec::new(), Vec::new()); // on_field_start
                        i = sep_pos;
                        state = State::FieldName;
                    } else {
                        i = sep_pos - 1;
                        state = State::BeforeField;
                    }
                }
            }
        }
        i += 1;
    }
    if state != State::BeforeField {
        fields.push((name, value)); // `finalize` ends a field in either of the other states
    }
    fields
}

fn fields(body: &[u8]) -> Result<Vec<(String, String)>, Rejection> {
    let mut got = Vec::new();
    urlencoded(body, |n, v| {
        let FormValue::Text(v) = v else {
            unreachable!("no files in a urlencoded body")
        };
        got.push((n.into_owned(), v.into_owned()));
    })?;
    Ok(got)
}

#[test]
fn only_ampersands_separate_fields() {
    let pairs = |body: &[u8]| -> Vec<String> {
        fields(body)
            .unwrap()
            .into_iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect()
    };
    assert_eq!(pairs(b"username=u;password=p"), ["username=u;password=p"]);
    assert_eq!(pairs(b"password=t;"), ["password=t;"]);
    assert_eq!(pairs(b"a=1;b=2&c=3"), ["a=1;b=2", "c=3"]);
    assert_eq!(pairs(b";&;x="), [";=", ";x="]);
    // A name without `=` is a field with an empty value, at the end of the body too.
    assert_eq!(pairs(b"a&b"), ["a=", "b="]);
    assert_eq!(
        pairs(b"username=a&password=p&username"),
        ["username=a", "password=p", "username="]
    );
    assert_eq!(pairs(b"&&a==b&&"), ["a==b"]);
}

/// Every body of the recorded vectors gives the fields (or the 400) that python-multipart
/// 0.0.34 and Starlette gave.
#[test]
fn urlencoded_matches_the_recorded_python_multipart_fields() {
    for line in super::super::form_vectors::lines() {
        let got = fields(&line.body);
        match (&line.fields, &line.form_error) {
            (Some(want), None) => assert_eq!(got.as_ref().ok(), Some(want), "{:?}", line.text),
            (None, Some(message)) => {
                assert_eq!(
                    got.err(),
                    Some(errors::bad_request(message)),
                    "{:?}",
                    line.text
                );
            }
            _ => panic!("a vector has fields or a form error: {:?}", line.text),
        }
        // The transliteration below (the proptest's reference) agrees with the recording.
        if let Some(want) = &line.fields {
            let reference: Vec<(String, String)> = python_querystring_fields(&line.body)
                .iter()
                .map(|(n, v)| (python_unquote_plus(n), python_unquote_plus(v)))
                .collect();
            assert_eq!(&reference, want, "{:?}", line.text);
        }
    }
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
        let got = fields(&raw).unwrap();
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

/// Multipart bodies on which `bench/diff_fuzz.py` found the proxy apart from Starlette on
/// python-multipart 0.0.34 (part headers read by multer rather than `parse_options_header`:
/// quotes, escapes, upper-case keys, the last of two Content-Dispositions, the IE6 filename
/// rule; a boundary outside ASCII), recorded from Python by `diff_fuzz.py --record`.
#[test]
fn multipart_matches_the_recorded_differential_findings() {
    const VECTORS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/multipart-0.0.34.jsonl"
    ));
    let latin1_bytes = |v: &serde_json::Value| -> Vec<u8> {
        v.as_str()
            .unwrap()
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap())
            .collect()
    };
    let mut count = 0;
    for line in VECTORS.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let (ct, body) = (
            latin1_bytes(&v["ct_latin1"]),
            latin1_bytes(&v["body_latin1"]),
        );
        let mut got = Vec::new();
        let parsed = parse(Some(&ct), &body, |name, value| {
            got.push(match value {
                FormValue::Text(text) => serde_json::json!([name, text]),
                FormValue::File { filename, size } => {
                    serde_json::json!([name, {"file": filename, "size": size}])
                }
            });
        });
        match (parsed, v["detail"].as_str()) {
            (Ok(()), None) => assert_eq!(serde_json::Value::Array(got), v["fields"], "{line}"),
            (Err(Rejection::BadRequest(body)), Some(want)) => {
                let want = serde_json::json!({ "detail": want });
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(body, want, "{line}");
            }
            (other, _) => panic!("{line}: {}", other.is_ok()),
        }
        count += 1;
    }
    assert_eq!(count, 32);
}

/// python-multipart yields a part only at a whole delimiter (CRLF or `--` after
/// `CRLF--boundary`): a body cut inside it loses its last part, without an error.
#[test]
fn a_body_cut_inside_the_last_delimiter_drops_the_last_part() {
    let names = |body: &[u8]| {
        let mut names = Vec::new();
        parse(Some(b"multipart/form-data; boundary=b"), body, |name, _| {
            names.push(name.into_owned());
        })
        .map(|()| names)
    };
    let parts = b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b\r\n\
                  Content-Disposition: form-data; name=c\r\n\r\ny";
    for tail in [&b"\r\n--b"[..], b"\r\n--b-", b"\r\n--b\r"] {
        let body = [&parts[..], tail].concat();
        assert_eq!(names(&body).ok(), Some(vec!["a".to_owned()]), "{tail:?}");
    }
    for tail in [&b"\r\n--b--"[..], b"\r\n--b\r\n", b"\r\n--b--\r\n\r\n--b"] {
        let body = [&parts[..], tail].concat();
        let both = Some(vec!["a".to_owned(), "c".to_owned()]);
        assert_eq!(names(&body).ok(), both, "{tail:?}");
    }
}

#[test]
fn filename_as_a_windows_path_keeps_its_last_component() {
    let filename = |header: &str| {
        options_header(header)
            .1
            .into_iter()
            .find(|(k, _)| k == "filename")
            .map(|(_, v)| v)
    };
    assert_eq!(
        filename(r#"form-data; filename="C:\\d\\f.txt""#).unwrap(),
        "f.txt"
    );
    assert_eq!(
        filename(r"form-data; filename=\\host\f.txt").unwrap(),
        "f.txt"
    );
    assert_eq!(
        filename(r"form-data; filename=a\b.txt").unwrap(),
        r"a\b.txt"
    );
    assert_eq!(filename("form-data; filename=é:\\x").unwrap(), "x");
}

/// python-multipart's opening delimiter: `--boundary-` is the start of the end, `--boundary--`,
/// so any other byte after its `-` is a 400; an empty boundary (`boundary=""`) makes it `--`.
#[test]
fn opening_delimiter_with_one_hyphen_must_be_the_end() {
    let parse_with = |ct: &[u8], body: &[u8]| {
        let mut names = Vec::new();
        parse(Some(ct), body, |name, _| names.push(name.into_owned())).map(|()| names)
    };
    let part = b"\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n----\r\n";
    for ct in [
        &b"multipart/form-data; boundary=\"\""[..],
        b"multipart/form-data; boundary=",
    ] {
        let empty = [&b"--"[..], part].concat();
        assert_eq!(parse_with(ct, &empty).ok(), Some(vec!["a".to_owned()]));
        let dash = [&b"---"[..], part].concat();
        assert!(matches!(
            parse_with(ct, &dash),
            Err(Rejection::BadRequest(_))
        ));
    }
    let ct = b"multipart/form-data; boundary=b";
    assert!(matches!(
        parse_with(ct, b"--b-x"),
        Err(Rejection::BadRequest(_))
    ));
    assert_eq!(parse_with(ct, b"--b-").ok(), Some(vec![]));
    assert_eq!(parse_with(ct, b"--b--x").ok(), Some(vec![]));
}

/// Inside part data, python-multipart takes `CRLF--boundary` for a delimiter only before
/// CRLF, `--`, or spaces and tabs then CRLF; before anything else it is data (multer would end
/// the part there), and padding followed by anything but CRLF is a 400.
#[test]
fn a_delimiter_lookalike_inside_part_data_is_data() {
    let fields = |body: &[u8]| {
        let mut fields = Vec::new();
        parse(
            Some(b"multipart/form-data; boundary=b"),
            body,
            |name, value| {
                if let FormValue::Text(text) = value {
                    fields.push((name.into_owned(), text.into_owned()));
                }
            },
        )
        .map(|()| fields)
    };
    let part =
        |value: &str| format!("--b\r\nContent-Disposition: form-data; name=a\r\n\r\n{value}");
    for value in ["x\r\n--bx", "x\r\n--b-x", "x\r\n--b\rx"] {
        let body = format!("{}\r\n--b--\r\n", part(value));
        let want = vec![("a".to_owned(), value.to_owned())];
        assert_eq!(fields(body.as_bytes()).ok(), Some(want), "{value:?}");
    }
    let padded = format!("{}\r\n--b \t\r\n{}\r\n--b--", part("x"), &part("y")[5..]);
    let want = vec![
        ("a".to_owned(), "x".to_owned()),
        ("a".to_owned(), "y".to_owned()),
    ];
    assert_eq!(fields(padded.as_bytes()).ok(), Some(want));
    let bad = format!("{}\r\n--b  x\r\n--b--", part("x"));
    assert!(matches!(
        fields(bad.as_bytes()),
        Err(Rejection::BadRequest(_))
    ));
}
