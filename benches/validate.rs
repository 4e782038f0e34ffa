//! Decode + validate + re-encode cost per auth route (what the proxy pays per request): the
//! load test's bodies, a typical body and a worst-case 64 KiB body.

use std::hint::black_box;

use auth_proxy::validate;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const JSON: Option<&[u8]> = Some(b"application/json");
const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");
const LIMIT: usize = 64 * 1024;

/// One bench case: name, validator (the upstream body when accepted), content type, body.
type Case<'a> = (
    &'a str,
    fn(Option<&[u8]>, &Bytes) -> Option<Bytes>,
    Option<&'a [u8]>,
    &'a [u8],
);

/// A JSON object padded with an ignored field up to `LIMIT` bytes.
fn padded_json(head: &str) -> Vec<u8> {
    let mut s = format!("{{{head},\"pad\":\"");
    s.push_str(&"x".repeat(LIMIT - s.len() - 2));
    s.push_str("\"}");
    s.into_bytes()
}

/// The worst case for the slow path: an invalid 64 KiB document, wrong only at the very end.
fn invalid_json(head: &str) -> Vec<u8> {
    let mut body = padded_json(head);
    body.truncate(LIMIT - 1);
    body
}

/// The bodies `bench/wrk/register.lua` and `bench/wrk/login.lua` send.
const REGISTER_WRK: &[u8] = br#"{"email":"User@Example.com","password":"hunter2hunter2"}"#;
const LOGIN_WRK: &[u8] = b"grant_type=password&username=user%40example.com&password=hunter2hunter2&scope=&client_id=&client_secret=";

fn register(ct: Option<&[u8]>, body: &Bytes) -> Option<Bytes> {
    validate::register(ct, body)
        .ok()
        .map(|r| r.to_upstream_body())
}

/// What the route does: a ready form passes through, anything else is decoded and re-encoded.
fn login(ct: Option<&[u8]>, body: &Bytes) -> Option<Bytes> {
    validate::login_upstream_body(ct, body).ok()
}

fn refresh(ct: Option<&[u8]>, body: &Bytes) -> Option<Bytes> {
    validate::refresh(ct, body)
        .ok()
        .map(|r| r.to_upstream_body())
}

fn bench(c: &mut Criterion) {
    let register_ok =
        br#"{"email":"Alice.Example@Example.COM","password":"correct horse battery staple"}"#
            .to_vec();
    let register_big = padded_json(r#""email":"alice@example.com","password":"pw""#);
    let register_bad = invalid_json(r#""email":"alice@example.com","password":"pw""#);
    let login_ok =
        b"grant_type=password&username=alice%40example.com&password=correct+horse&scope=read+write"
            .to_vec();
    let mut login_big = b"username=alice&password=pw&scope=".to_vec();
    login_big.resize(LIMIT, b'a');
    let refresh_ok =
        br#"{"refresh_token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"}"#.to_vec();
    let refresh_big = padded_json(r#""refresh_token":"t""#);

    let mut g = c.benchmark_group("validate");
    // Valid, but not in `quote_plus`'s spelling: decoded and re-encoded.
    let login_reencoded =
        b"username=alice@example.com&password=correct%20horse&grant_type=password".to_vec();
    let cases: [Case<'_>; 10] = [
        ("register/wrk", register, JSON, REGISTER_WRK),
        ("login/wrk", login, FORM, LOGIN_WRK),
        ("register/typical", register, JSON, &register_ok),
        ("register/64KiB", register, JSON, &register_big),
        ("register/64KiB-invalid", register, JSON, &register_bad),
        ("login/typical", login, FORM, &login_ok),
        ("login/re-encoded", login, FORM, &login_reencoded),
        ("login/64KiB", login, FORM, &login_big),
        ("refresh/typical", refresh, JSON, &refresh_ok),
        ("refresh/64KiB", refresh, JSON, &refresh_big),
    ];
    for (name, run, ct, body) in cases {
        let body = &Bytes::copy_from_slice(body);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| b.iter(|| run(black_box(ct), black_box(body))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
