//! A whole request, in memory, as `service.rs` takes it apart: any method and path through
//! `router::route`, then any `Content-Type` and body through the route's validation
//! (`validate::register/login/refresh`, the central service's `str_model`, the bearer parsers).
//! Every rejection has FastAPI's shape and echoes no submitted secret; every accepted body
//! goes upstream as exactly the fields that were validated. (The service itself needs a
//! runtime, sockets and an upstream pool; `tests/smuggling.rs` drives it over real sockets.)
#![no_main]

use auth_proxy::fuzzing::{form_parse, json_loads, FormValue, JsonValue};
use auth_proxy::router::{route, Route, Routed};
use auth_proxy::validate::{
    bearer_token, login, login_upstream_body, oauth2_bearer_token, refresh, register, str_model,
};
use fuzz_checks::{check_rejection, Submitted};
use http::Method;
use libfuzzer_sys::fuzz_target;

/// One request: `METHOD PATH`, `Content-Type` (`-` for none), `Authorization` (`-` for
/// none), each on its own line, then the body; readable seeds live in fuzz/seeds/request.
struct Input<'a> {
    method: &'a [u8],
    path: String,
    content_type: Option<&'a [u8]>,
    authorization: Option<&'a [u8]>,
    body: &'a [u8],
}

fn split<'a>(data: &'a [u8]) -> Option<Input<'a>> {
    let mut lines = data.splitn(4, |&b| b == b'\n');
    let (request_line, content_type, authorization) = (lines.next()?, lines.next()?, lines.next()?);
    let mut words = request_line.splitn(2, |&b| b == b' ');
    let (method, path) = (words.next()?, words.next().unwrap_or(b"/"));
    let present = |v: &'a [u8]| (v != b"-").then_some(v);
    Some(Input {
        method,
        path: String::from_utf8_lossy(path).into_owned(),
        content_type: present(content_type),
        authorization: present(authorization),
        body: lines.next().unwrap_or_default(),
    })
}

/// The fields a client submitted in a JSON route's body, as the route decodes it.
fn submitted_json(content_type: Option<&[u8]>, body: &[u8]) -> Submitted {
    let mut out = Submitted::default();
    // A body the route does not decode as JSON is echoed as text: a secret in it appears
    // there only by coincidence, which contract §3 allows.
    if let Some(Ok(value)) = is_json(content_type).then(|| json_loads(body)) {
        strings(&value, &mut out.others);
        if let JsonValue::Object(fields) = &value {
            for (name, value) in fields {
                if let JsonValue::Str(text) = value {
                    out.field(name, text);
                }
            }
        }
    }
    out
}

/// The fields a client submitted in `/login`'s form body.
fn submitted_form(content_type: Option<&[u8]>, body: &[u8]) -> Submitted {
    let mut out = Submitted::default();
    let _ = form_parse(content_type, body, |name, value| match value {
        FormValue::Text(text) => out.field(&name, &text),
        FormValue::File { filename, .. } => out.others.extend([name.into_owned(), filename]),
    });
    out
}

/// Whether FastAPI decodes the body as JSON: `application/json` or `application/*+json`
/// (parameters ignored). Trims less than Python does, so it never says yes where the route
/// says no; where it says no wrongly, the secret check is only weaker.
fn is_json(content_type: Option<&[u8]>) -> bool {
    let Some(raw) = content_type else {
        return false;
    };
    let media = raw.split(|&b| b == b';').next().unwrap_or_default();
    let media = String::from_utf8_lossy(media.trim_ascii()).to_ascii_lowercase();
    media
        .strip_prefix("application/")
        .is_some_and(|sub| !sub.contains('/') && (sub == "json" || sub.ends_with("+json")))
}

/// Every string and key inside a decoded JSON value except the values of secret fields.
fn strings(value: &JsonValue, out: &mut Vec<String>) {
    match value {
        JsonValue::Str(s) => out.push(s.clone()),
        JsonValue::Array(items) => items.iter().for_each(|v| strings(v, out)),
        JsonValue::Object(fields) => {
            for (k, v) in fields {
                out.push(k.clone());
                let secret = matches!(k.as_str(), "password" | "client_secret" | "refresh_token");
                if !(secret && matches!(v, JsonValue::Str(_))) {
                    strings(v, out);
                }
            }
        }
        _ => {}
    }
}

fn upstream_json(body: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::from_slice(body) {
        Ok(serde_json::Value::Object(fields)) => fields,
        other => panic!("upstream body is not a JSON object: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = split(data) else {
        return;
    };
    let Ok(method) = Method::from_bytes(input.method) else {
        return;
    };
    let routed = route(&method, &input.path);
    match routed {
        Routed::RedirectSlash => assert!(input.path.len() > 1 && input.path.ends_with('/')),
        Routed::MethodNotAllowed(allow) => {
            assert!(
                !allow.split(", ").any(|m| m == method.as_str()),
                "{method} allowed yet 405"
            );
        }
        Routed::Found(_) | Routed::NotFound => {}
    }
    let ct = input.content_type;
    let body = input.body;
    // Each route decodes the body its own way; what it does not decode it may echo as text.
    let submitted = submitted_json(ct, body);
    let submitted_form = submitted_form(ct, body);
    // Every validating route, whatever the path said: the body is the client's either way.
    match register(ct, body) {
        Err(rejection) => check_rejection(&rejection, &submitted),
        Ok(valid) => {
            let sent = upstream_json(&valid.to_upstream_body());
            assert_eq!(sent.len(), 2, "exactly email and password go upstream");
            assert_eq!(sent["email"], *valid.email);
            assert_eq!(sent["password"], *valid.password);
        }
    }
    match refresh(ct, body) {
        Err(rejection) => check_rejection(&rejection, &submitted),
        Ok(valid) => {
            let sent = upstream_json(&valid.to_upstream_body());
            assert_eq!(sent.len(), 1);
            assert_eq!(sent["refresh_token"], *valid.refresh_token);
        }
    }
    match login(ct, body) {
        Err(rejection) => {
            check_rejection(&rejection, &submitted_form);
            let bytes = bytes::Bytes::copy_from_slice(body);
            assert!(
                login_upstream_body(ct, &bytes).is_err(),
                "login refused, upstream body made"
            );
        }
        Ok(_) => {
            let bytes = bytes::Bytes::copy_from_slice(body);
            assert!(
                login_upstream_body(ct, &bytes).is_ok(),
                "login valid, no upstream body"
            );
        }
    }
    if let Err(rejection) = str_model(ct, body, ["email", "password"]) {
        check_rejection(&rejection, &submitted);
    }
    if matches!(routed, Routed::Found(Route::Protected)) || input.authorization.is_some() {
        let header = input.authorization;
        if let Some(token) = bearer_token(header) {
            assert!(
                !token.is_empty() && token.trim() == token,
                "token {token:?}"
            );
        }
        if let (Some(token), Some(header)) = (oauth2_bearer_token(header), header) {
            assert!(header.len() >= token.len(), "token longer than its header");
        }
    }
});
