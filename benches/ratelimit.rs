//! Criterion benches of login throttling in memory: what one `/login` pays for
//! `--login-rate-limit` (the check, its key hash, the client address), and nothing when it is off.

// A bench that cannot set itself up should stop loudly; there is no caller to hand an error to.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use auth_proxy::headers;
use auth_proxy::ratelimit::{parse_rate, LoginLimiter, Settings};
use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::FutureExt;
use http::{HeaderMap, HeaderValue};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
const USERNAME: &[u8] = b"user%40example.com";

fn limiter(per_user: &str, per_ip: Option<&str>) -> LoginLimiter {
    let rate = |r: &str| parse_rate(r).expect("rate");
    let settings = Settings::memory(Some(rate(per_user)), per_ip.map(rate));
    LoginLimiter::new(&settings).expect("limiter")
}

/// The memory store answers without awaiting: poll once.
fn check(limiter: &LoginLimiter, client: IpAddr, username: &[u8]) -> bool {
    limiter
        .check(client, username)
        .now_or_never()
        .expect("the memory store never waits")
        .is_ok()
}

fn bench_check(c: &mut Criterion) {
    let mut group = c.benchmark_group("login_limit");
    // A budget no bench run can use up: every check is allowed.
    let roomy = limiter("3000000000/h", None);
    group.bench_function("allowed/per_user", |b| {
        b.iter(|| check(&roomy, black_box(CLIENT), black_box(USERNAME)));
    });
    let both = limiter("3000000000/h", Some("3000000000/h"));
    group.bench_function("allowed/per_user_and_ip", |b| {
        b.iter(|| check(&both, black_box(CLIENT), black_box(USERNAME)));
    });
    let tight = limiter("1/h", None);
    check(&tight, CLIENT, USERNAME);
    group.bench_function("refused", |b| {
        b.iter(|| check(&tight, black_box(CLIENT), black_box(USERNAME)));
    });
    // A flood of new usernames against the default bound of 100,000 keys: inserts and evictions.
    let flooded = limiter("10/m", None);
    let mut n = 0u64;
    group.bench_function("new_username_each_time", |b| {
        b.iter(|| {
            n += 1;
            check(&flooded, CLIENT, n.to_string().as_bytes())
        });
    });
    group.finish();
}

fn bench_client_ip(c: &mut Criterion) {
    let trusted = vec!["10.0.0.0/8".parse().expect("cidr")];
    let mut behind_balancer = HeaderMap::new();
    behind_balancer.insert(
        headers::X_FORWARDED_FOR,
        HeaderValue::from_static("203.0.113.9, 198.51.100.7"),
    );
    let balancer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let mut group = c.benchmark_group("client_ip");
    group.bench_function("untrusted_peer", |b| {
        b.iter(|| headers::client_ip(black_box(&HeaderMap::new()), CLIENT, false, &trusted));
    });
    group.bench_function("behind_trusted_proxy", |b| {
        b.iter(|| headers::client_ip(black_box(&behind_balancer), balancer, true, &trusted));
    });
    group.finish();
}

criterion_group!(benches, bench_check, bench_client_ip);
criterion_main!(benches);
