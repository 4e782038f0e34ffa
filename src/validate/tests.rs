#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

use super::*;

const JSON: Option<&[u8]> = Some(b"application/json");
const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");

fn body422(r: Result<impl Sized, Rejection>) -> String {
    match r {
        Err(Rejection::Unprocessable(b)) => String::from_utf8(b.to_vec()).unwrap(),
        _ => panic!("expected a 422"),
    }
}

#[test]
fn register_forwards_the_email_as_written_and_only_two_fields() {
    let r = register(
        JSON,
        br#"{"email":"A@Example.COM","password":"p\u00e9","role":"admin"}"#,
    )
    .unwrap();
    assert_eq!(r.email, "A@Example.COM");
    assert_eq!(
        &r.to_upstream_body()[..],
        r#"{"email":"A@Example.COM","password":"pé"}"#.as_bytes()
    );
}

#[test]
fn register_forwards_what_emailstr_would_normalise_unchanged() {
    // Each is valid to EmailStr, which would forward the second column (pydantic 2.14,
    // email-validator 2.4); the proxy forwards the first, the JSON string's value.
    let cases = [
        ("Ada <ada@example.com>", "ada@example.com"),
        (r#""Ada L" <Ada@Example.com>"#, "Ada@example.com"),
        (" a@example.com ", "a@example.com"),
        ("u\u{308}ser@example.com", "\u{fc}ser@example.com"),
        ("user@exa\u{308}mple.com", "user@ex\u{e4}mple.com"),
        ("Postmaster@Example.com", "postmaster@example.com"),
        (
            "a@XN--E1AFMKFD.xn--p1ai",
            "a@\u{43f}\u{440}\u{438}\u{43c}\u{435}\u{440}.\u{440}\u{444}",
        ),
    ];
    for (sent, normalised) in cases {
        assert_eq!(email::validate(sent).unwrap(), normalised, "{sent:?}");
        let body = serde_json::json!({"email": sent, "password": "pw"}).to_string();
        // The fast path (serde) and the slow one (a duplicate key sends it there).
        let slow = format!(r#"{{"email":"x",{}"#, &body[1..]);
        for body in [body.as_bytes(), slow.as_bytes()] {
            let upstream = register(JSON, body).unwrap().to_upstream_body();
            assert_eq!(
                serde_json::from_slice::<serde_json::Value>(&upstream).unwrap(),
                serde_json::json!({"email": sent, "password": "pw"}),
                "{sent:?}"
            );
        }
    }
}

#[test]
fn register_slow_path_takes_what_serde_refuses() {
    // Duplicate keys (last wins), NaN in an unknown field, a UTF-8 BOM: all fine in Python.
    let r = register(
        JSON,
        br#"{"email":"x","email":"a@b.co","password":"p","n":NaN}"#,
    )
    .unwrap();
    assert_eq!(r.email, "a@b.co");
    assert!(register(
        JSON,
        b"\xEF\xBB\xBF{\"email\":\"a@b.co\",\"password\":\"p\"}"
    )
    .is_ok());
}

#[test]
fn secrets_are_never_echoed() {
    let out = body422(register(JSON, br#"{"password":"hunter2"}"#));
    assert!(!out.contains("hunter2"), "{out}");
    let out = body422(register(
        JSON,
        br#"{"email":"a@b.co","password":["hunter2"]}"#,
    ));
    assert!(!out.contains("hunter2"), "{out}");
    let out = body422(refresh(JSON, br#"{"refresh_token":{"t":"hunter2"}}"#));
    assert!(!out.contains("hunter2"), "{out}");
}

#[test]
fn huge_integers_and_nonfinite_floats() {
    let big = format!("{{\"email\":{}}}", "9".repeat(4301));
    assert!(matches!(
        register(JSON, big.as_bytes()),
        Err(Rejection::BadRequest(_))
    ));
    let out = body422(register(JSON, br#"{"email":1e400,"password":"p"}"#));
    assert!(out.contains(r#""input":null"#), "{out}");
}

#[test]
fn json_errors_report_code_point_positions() {
    let out = body422(register(JSON, "{\"é\": x}".as_bytes()));
    assert!(out.contains(r#""loc":["body",6]"#), "{out}");
}

#[test]
fn login_takes_last_repeated_value_and_keeps_scope() {
    let l = login(
        FORM,
        b"username=a&username=b%20c&password=p+q&scope=x+y&grant_type=password",
    )
    .unwrap();
    assert_eq!(
        (&*l.username, &*l.password, &*l.scope),
        ("b c", "p q", "x y")
    );
    assert_eq!(
        &l.to_upstream_body()[..],
        b"grant_type=password&username=b+c&password=p+q&scope=x+y".as_slice()
    );
    assert!(!format!("{l:?}").contains("p q"));
}

#[test]
fn login_upstream_body_passes_a_ready_form_through_without_copying() {
    for ready in [
        "grant_type=password&username=user%40example.com&password=hunter2&scope=&client_id=&client_secret=",
        "username=u&password=p",
        "grant_type=&username=a+b&password=%21~%2A&scope=read+write&client_secret=s",
        "username=u&password=p&client_id=c",
    ] {
        let body = bytes::Bytes::from(ready);
        let out = login_upstream_body(FORM, &body).unwrap();
        assert_eq!(out, body, "{ready}");
        assert_eq!(out.as_ptr(), body.as_ptr(), "{ready}: copied");
    }
    // Anything else is decoded and re-encoded (or refused) exactly as before.
    for (sent, want) in [
        ("password=p&username=u", Ok("username=u&password=p&scope=")),
        (
            "username=u&username=v&password=p",
            Ok("username=v&password=p&scope="),
        ),
        (
            "username=%75&password=p",
            Ok("username=u&password=p&scope="),
        ),
        (
            "username=u%2a&password=p",
            Ok("username=u%2A&password=p&scope="),
        ),
        (
            "username=u%7E&password=p",
            Ok("username=u~&password=p&scope="),
        ),
        (
            "username=a%20b&password=p",
            Ok("username=a+b&password=p&scope="),
        ),
        (
            "username=%C3%A9&password=p",
            Ok("username=%C3%A9&password=p&scope="),
        ),
        (
            "username=u&password=p&&scope=",
            Ok("username=u&password=p&scope="),
        ),
        (
            "username=u&password=p&x=1",
            Ok("username=u&password=p&scope="),
        ),
        (
            "username=u@x&password=p",
            Ok("username=u%40x&password=p&scope="),
        ),
        ("username=u&password=", Err(())),
        ("username=u", Err(())),
        ("grant_type=token&username=u&password=p", Err(())),
    ] {
        let body = bytes::Bytes::from(sent);
        let out = login_upstream_body(FORM, &body).map_err(drop);
        assert_eq!(out, want.map(bytes::Bytes::from), "{sent}");
    }
    let body = bytes::Bytes::from_static(b"username=u&password=p");
    let with_charset = Some(b"application/x-www-form-urlencoded; charset=utf-8".as_slice());
    let out = login_upstream_body(with_charset, &body).unwrap();
    assert_eq!(out, "username=u&password=p&scope=");
}

#[test]
fn login_multipart_and_missing_boundary() {
    let body = b"--X\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nu\r\n--X\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\np\r\n--X--\r\n";
    let l = login(Some(b"multipart/form-data; boundary=X"), body).unwrap();
    assert_eq!((&*l.username, &*l.password), ("u", "p"));
    assert_eq!(
        login(Some(b"multipart/form-data"), body).map(drop),
        Err(Rejection::BadRequest(
            r#"{"detail":"Missing boundary in multipart."}"#.into()
        ))
    );
}

#[test]
fn bearer_follows_http_bearer() {
    assert_eq!(bearer_token(Some(b"Bearer abc")), Some("abc"));
    assert_eq!(bearer_token(Some(b"bEaReR   abc  ")), Some("abc"));
    assert_eq!(bearer_token(Some(b"Bearer ")), None);
    assert_eq!(bearer_token(Some(b"Bearer")), None);
    assert_eq!(bearer_token(Some(b"Basic abc")), None);
    assert_eq!(bearer_token(None), None);
}

#[test]
fn oauth2_bearer_follows_oauth2_password_bearer() {
    let token = |value: &'static [u8]| oauth2_bearer_token(Some(value));
    assert_eq!(token(b"Bearer abc"), Some(&b"abc"[..]));
    assert_eq!(token(b"bEaReR \xa0 abc\x1c "), Some(&b"abc"[..]));
    // Unlike HTTPBearer, a bearer scheme with no token still reaches the route.
    assert_eq!(token(b"Bearer "), Some(&b""[..]));
    assert_eq!(token(b"Bearer"), Some(&b""[..]));
    assert_eq!(token(b"Bearer a b"), Some(&b"a b"[..]));
    for refused in [&b"Basic abc"[..], b"Bearerabc", b" Bearer abc", b""] {
        assert_eq!(token(refused), None, "{refused:?}");
    }
    assert_eq!(oauth2_bearer_token(None), None);
}

/// The central service's own models, with the bytes its FastAPI 0.165 answered (secrets
/// redacted as everywhere else).
#[test]
fn str_model_reports_as_the_central_models_do() {
    let register = |ct, body| str_model(ct, body, ["email", "password"]);
    let values = register(JSON, br#"{"email":"nope","password":"","x":1}"#);
    assert_eq!(values.ok(), Some(["nope".to_owned(), String::new()]));
    assert_eq!(
        body422(register(JSON, b"")),
        r#"{"detail":[{"type":"missing","loc":["body"],"msg":"Field required","input":null}]}"#
    );
    let not_an_object = r#"{"detail":[{"type":"model_attributes_type","loc":["body"],"msg":"Input should be a valid dictionary or object to extract fields from","input":"#;
    assert_eq!(
        body422(register(JSON, b"[1]")),
        format!("{not_an_object}[1]}}]}}")
    );
    assert_eq!(
        body422(register(FORM, b"email=a&password=b")),
        format!(r#"{not_an_object}"email=a&password=b"}}]}}"#)
    );
    assert_eq!(
        body422(register(JSON, br#"{"email":5,"password":"pw"}"#)),
        r#"{"detail":[{"type":"string_type","loc":["body","email"],"msg":"Input should be a valid string","input":5}]}"#
    );
    assert_eq!(
        body422(register(JSON, br#"{"email":"x@y.z"}"#)),
        r#"{"detail":[{"type":"missing","loc":["body","password"],"msg":"Field required"}]}"#
    );
    assert_eq!(
        body422(str_model(JSON, b"{}", ["refresh_token"])),
        r#"{"detail":[{"type":"missing","loc":["body","refresh_token"],"msg":"Field required"}]}"#
    );
}

#[test]
fn debug_redacts_secrets() {
    let r = Refresh {
        refresh_token: "tok".into(),
    };
    assert!(!format!("{r:?}").contains("s3cr3t"));
    let reg = Register {
        email: "a@b.co".into(),
        password: "pw-secret".into(),
    };
    assert!(!format!("{reg:?}").contains("pw-secret"));
}

#[test]
fn login_username_is_one_spelling_however_the_form_came() {
    let form = Some(b"application/x-www-form-urlencoded".as_slice());
    let username = |ct: Option<&[u8]>, body: &'static [u8]| {
        let out = login_upstream_body(ct, &bytes::Bytes::from_static(body)).unwrap();
        login_upstream_username(&out).to_vec()
    };
    let canonical = username(form, b"username=ada%40example.com&password=p");
    assert_eq!(canonical, b"ada%40example.com");
    // Spelled differently (a raw '@', lower-case escapes, fields reordered), or multipart.
    assert_eq!(
        username(form, b"password=p&username=ada@example.com"),
        canonical
    );
    assert_eq!(
        username(form, b"username=ada%40example%2ecom&password=p"),
        canonical
    );
    let multipart = b"--X\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nada@example.com\r\n--X\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\np\r\n--X--\r\n";
    assert_eq!(
        username(Some(b"multipart/form-data; boundary=X"), multipart),
        canonical
    );
    // As sent: no case folding.
    assert_eq!(
        username(form, b"username=Ada%40example.com&password=p"),
        b"Ada%40example.com"
    );
    assert_eq!(username(form, b"username=%C3%A9&password=p"), b"%C3%A9");
}
