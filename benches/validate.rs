//! Decode + validate cost per auth route: a typical body and a worst-case 64 KiB body.

use std::hint::black_box;

use auth_proxy::validate;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const JSON: Option<&[u8]> = Some(b"application/json");
const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");
const LIMIT: usize = 64 * 1024;

/// One bench case: name, validator (true when accepted), content type, body.
type Case<'a> = (
    &'a str,
    fn(Option<&[u8]>, &[u8]) -> bool,
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
    let cases: [Case<'_>; 7] = [
        (
            "register/typical",
            |ct, b| validate::register(ct, b).is_ok(),
            JSON,
            &register_ok,
        ),
        (
            "register/64KiB",
            |ct, b| validate::register(ct, b).is_ok(),
            JSON,
            &register_big,
        ),
        (
            "register/64KiB-invalid",
            |ct, b| validate::register(ct, b).is_ok(),
            JSON,
            &register_bad,
        ),
        (
            "login/typical",
            |ct, b| validate::login(ct, b).is_ok(),
            FORM,
            &login_ok,
        ),
        (
            "login/64KiB",
            |ct, b| validate::login(ct, b).is_ok(),
            FORM,
            &login_big,
        ),
        (
            "refresh/typical",
            |ct, b| validate::refresh(ct, b).is_ok(),
            JSON,
            &refresh_ok,
        ),
        (
            "refresh/64KiB",
            |ct, b| validate::refresh(ct, b).is_ok(),
            JSON,
            &refresh_big,
        ),
    ];
    for (name, run, ct, body) in cases {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| b.iter(|| run(black_box(ct), black_box(body))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
