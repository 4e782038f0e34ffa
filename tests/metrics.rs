//! `/metrics` on the admin listener (issue 15), scraped over a socket after a known mix of
//! requests and read with a real Prometheus text parser (`prometheus-parse`): exact counts.
//! The exposition format itself is linted by `promtool check metrics` in .ci/metrics-checks.sh.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::float_cmp)] // the samples compared are counts: small integers, exact in f64

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use auth_proxy::ratelimit::{args::RateLimitArgs, parse_rate, Settings};
use clap::Parser;
use http::Request;
use support::redis::RedisServer;
use support::{
    get, post_form, post_json, refused_port, spawn_proxy, within, MockUpstream, Proxy, Reply,
    WithHeader, H1, WAIT,
};

/// The proxy with metrics on, and its admin listener's address.
async fn proxy_with_metrics(
    url: &str,
    tweak: impl FnOnce(&mut auth_proxy::Config),
) -> (Proxy, SocketAddr) {
    let proxy = spawn_proxy(url, |c| {
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        tweak(c);
    })
    .await;
    let admin = auth_proxy::metrics::start("127.0.0.1:0".parse().unwrap(), &proxy.state)
        .await
        .unwrap();
    (proxy, admin)
}

/// Every sample of a scrape as `name{k="v",...}` (labels sorted) → value; a histogram as its
/// `_count` (the `+Inf` bucket).
async fn scrape(admin: SocketAddr) -> BTreeMap<String, f64> {
    let got = H1::connect(admin).await.send(get("/metrics")).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = got.text();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let mut samples = BTreeMap::new();
    for sample in scrape.samples {
        let labels = sample.labels.to_string();
        let (suffix, value) = match &sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => ("", *v),
            prometheus_parse::Value::Histogram(buckets) => {
                ("_count", buckets.last().map_or(0.0, |b| b.count))
            }
            prometheus_parse::Value::Summary(_) => continue,
        };
        samples.insert(format!("{}{suffix}{{{labels}}}", sample.metric), value);
    }
    samples
}

fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("no sample {key} in {samples:#?}"))
}

#[tokio::test]
async fn a_known_mix_of_requests_is_counted_exactly() {
    let mock = MockUpstream::replying(Reply::json(200, r#"{"ok":true}"#)).await;
    let (proxy, admin) = proxy_with_metrics(&mock.url(), |c| c.max_body_bytes = 100).await;
    let mut client = proxy.h1().await;
    let authorized = || get("/protected").with("authorization", "Bearer t");
    for _ in 0..3 {
        assert_eq!(client.send(authorized()).await.status, 200);
    }
    assert_eq!(client.send(get("/protected")).await.status, 401);
    for _ in 0..2 {
        let got = client
            .send(post_json("/register", r#"{"email":"nope"}"#))
            .await;
        assert_eq!(got.status, 422);
    }
    let big: Request<_> = post_form("/login", &"x".repeat(200));
    assert_eq!(client.send(big).await.status, 413);
    let mut client = proxy.h1().await; // the 413 closed the first connection
    assert_eq!(client.send(get("/nowhere")).await.status, 404);
    assert_eq!(client.send(get("/healthz")).await.status, 200);

    let m = scrape(admin).await;
    let requests = |route: &str, class: &str| {
        value(
            &m,
            &format!(r#"auth_proxy_requests_total{{route="{route}",status="{class}"}}"#),
        )
    };
    assert_eq!(requests("/protected", "2xx"), 3.0);
    assert_eq!(requests("/protected", "4xx"), 1.0);
    assert_eq!(requests("/protected", "5xx"), 0.0);
    assert_eq!(requests("/register", "4xx"), 2.0);
    assert_eq!(requests("/login", "4xx"), 1.0);
    assert_eq!(requests("unmatched", "4xx"), 1.0);
    assert_eq!(requests("/healthz", "2xx"), 1.0);
    let rejected = |route: &str, reason: &str| {
        value(
            &m,
            &format!(r#"auth_proxy_rejected_requests_total{{reason="{reason}",route="{route}"}}"#),
        )
    };
    assert_eq!(rejected("/protected", "not_authenticated"), 1.0);
    assert_eq!(rejected("/register", "validation"), 2.0);
    assert_eq!(rejected("/login", "body_too_large"), 1.0);
    assert_eq!(
        value(
            &m,
            r#"auth_proxy_request_duration_seconds_count{route="/protected"}"#
        ),
        4.0
    );
    assert_eq!(
        value(
            &m,
            r#"auth_proxy_upstream_request_duration_seconds_count{route="/protected"}"#
        ),
        3.0,
        "only forwarded requests have an upstream duration"
    );
    assert_eq!(value(&m, "auth_proxy_requests_in_flight{}"), 0.0);
    assert_eq!(
        value(&m, "auth_proxy_client_connections_accepted_total{}"),
        2.0
    );
    assert_eq!(value(&m, "auth_proxy_client_connections_open{}"), 1.0);
    assert_eq!(
        value(
            &m,
            r#"auth_proxy_upstream_connections_created_total{result="ok"}"#
        ),
        1.0
    );
    assert_eq!(
        value(&m, r#"auth_proxy_upstream_connections{state="idle"}"#),
        1.0
    );
    assert_eq!(
        value(&m, r#"auth_proxy_upstream_connections{state="busy"}"#),
        0.0
    );
    assert_eq!(
        value(&m, r#"auth_proxy_upstream_retries_total{reason="stale"}"#),
        0.0
    );
    assert_eq!(value(&m, r#"auth_proxy_build_info{version="0.1.0"}"#), 1.0);
    assert_eq!(value(&m, "auth_proxy_draining{}"), 0.0);
    assert!(value(&m, "process_resident_memory_bytes{}") > 1e6);
    assert!(value(&m, "process_open_fds{}") >= 3.0);
    assert!(m.contains_key("process_cpu_seconds_total{}"));
}

#[tokio::test]
async fn upstream_failures_are_counted_by_kind() {
    let url = format!("http://127.0.0.1:{}", refused_port());
    let (proxy, admin) = proxy_with_metrics(&url, |_| {}).await;
    let mut client = proxy.h1().await;
    for _ in 0..2 {
        let got = client
            .send(get("/protected").with("authorization", "Bearer t"))
            .await;
        assert_eq!(got.status, 502);
    }
    let m = scrape(admin).await;
    assert_eq!(
        value(
            &m,
            r#"auth_proxy_upstream_errors_total{kind="connect_refused"}"#
        ),
        2.0
    );
    assert_eq!(
        value(&m, r#"auth_proxy_upstream_errors_total{kind="tls"}"#),
        0.0
    );
    assert_eq!(
        value(
            &m,
            r#"auth_proxy_requests_total{route="/protected",status="5xx"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &m,
            r#"auth_proxy_upstream_connections_created_total{result="error"}"#
        ),
        2.0
    );
}

#[tokio::test]
async fn the_admin_listener_answers_probes_and_nothing_else() {
    let mock = MockUpstream::start_default().await;
    let (proxy, admin) = proxy_with_metrics(&mock.url(), |_| {}).await;
    let mut client = H1::connect(admin).await;
    client
        .send(get("/healthz"))
        .await
        .assert_json(200, r#"{"status":"ok"}"#);
    client
        .send(get("/readyz"))
        .await
        .assert_json(200, r#"{"status":"ready"}"#);
    client
        .send(get("/protected"))
        .await
        .assert_json(404, r#"{"detail":"Not Found"}"#);
    let got = client.send(post_json("/metrics", "{}")).await;
    assert_eq!(got.status, 405);
    // And the public listener has no /metrics.
    let got = proxy.h1().await.send(get("/metrics")).await;
    assert_eq!(got.status, 404);
    // Scrapes are not requests of the proxy's.
    let m = scrape(admin).await;
    let total: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("auth_proxy_requests_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, 1.0, "only the public /metrics 404");
}

#[tokio::test]
async fn without_metrics_listen_no_request_series_are_kept() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    assert!(proxy.state.metrics.is_none());
    let text = auth_proxy::metrics::render(&proxy.state);
    assert!(!text.contains("auth_proxy_requests_total"));
    assert!(text.contains("auth_proxy_build_info"));
}

fn login(username: &str) -> Request<http_body_util::Full<bytes::Bytes>> {
    post_form("/login", &format!("username={username}&password=pw"))
}

#[tokio::test]
async fn coalescing_cache_breaker_and_login_throttling_are_exported() {
    let mock = MockUpstream::replying(Reply::json(200, r#"{"ok":true}"#)).await;
    let (proxy, admin) = proxy_with_metrics(&mock.url(), |c| {
        c.shield.protected_cache_ttl = Duration::from_secs(60);
        c.login_limit = Some(Settings::memory(Some(parse_rate("1/m").unwrap()), None));
    })
    .await;
    let mut client = proxy.h1().await;
    for _ in 0..3 {
        let got = client
            .send(get("/protected").with("authorization", "Bearer t"))
            .await;
        assert_eq!(got.status, 200);
    }
    assert_eq!(client.send(login("ada")).await.status, 200);
    assert_eq!(client.send(login("ada")).await.status, 429);

    let m = scrape(admin).await;
    assert_eq!(value(&m, "auth_proxy_cache_misses_total{}"), 1.0);
    assert_eq!(value(&m, "auth_proxy_cache_hits_total{}"), 2.0);
    assert!(m.contains_key("auth_proxy_cache_entries{}"));
    assert!(m.contains_key("auth_proxy_cache_bytes{}"));
    for route in ["/protected", "/refresh"] {
        let key = format!(r#"auth_proxy_coalesced_total{{route="{route}"}}"#);
        assert_eq!(value(&m, &key), 0.0, "sequential requests share nothing");
    }
    let state = |s: &str| value(&m, &format!(r#"auth_proxy_breaker_state{{state="{s}"}}"#));
    assert_eq!(
        (state("closed"), state("open"), state("half_open")),
        (1.0, 0.0, 0.0)
    );
    assert_eq!(value(&m, "auth_proxy_breaker_opened_total{}"), 0.0);
    assert_eq!(value(&m, "auth_proxy_breaker_closed_total{}"), 0.0);
    assert_eq!(value(&m, "auth_proxy_breaker_rejected_total{}"), 0.0);
    let throttled = |scope: &str| {
        value(
            &m,
            &format!(r#"auth_proxy_login_throttled_total{{scope="{scope}"}}"#),
        )
    };
    assert_eq!((throttled("user"), throttled("ip")), (1.0, 0.0));
    assert_eq!(
        value(&m, r#"auth_proxy_rate_limit_memory_keys{scope="user"}"#),
        1.0
    );
    assert_eq!(
        value(&m, r#"auth_proxy_rate_limit_memory_keys{scope="ip"}"#),
        0.0
    );
    assert_eq!(
        value(&m, "auth_proxy_rate_limit_memory_evictions_total{}"),
        0.0
    );
    assert!(
        !m.keys()
            .any(|k| k.starts_with("auth_proxy_rate_limit_redis")),
        "no Redis series for an in-memory limiter"
    );
}

#[tokio::test]
async fn concurrent_identical_requests_are_counted_as_coalesced() {
    let mock = MockUpstream::builder()
        .reply(Reply::json(200, r#"{"ok":true}"#))
        .delay_head(Duration::from_millis(300))
        .start()
        .await;
    let (proxy, admin) = proxy_with_metrics(&mock.url(), |_| {}).await;
    let addr = proxy.addr;
    let send = move || {
        tokio::spawn(async move {
            H1::connect(addr)
                .await
                .send(get("/protected").with("authorization", "Bearer same"))
                .await
        })
    };
    let leader = send();
    mock.wait_for_requests(1).await;
    let waiters: Vec<_> = (0..3).map(|_| send()).collect();
    within(WAIT, "the waiters joining", async {
        while proxy.state.shield.stats().protected_coalesced < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    for task in std::iter::once(leader).chain(waiters) {
        assert_eq!(task.await.unwrap().status, 200);
    }
    let m = scrape(admin).await;
    assert_eq!(
        value(&m, r#"auth_proxy_coalesced_total{route="/protected"}"#),
        3.0
    );
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn an_open_breaker_is_exported_with_what_it_turned_away() {
    let url = format!("http://127.0.0.1:{}", refused_port());
    let (proxy, admin) = proxy_with_metrics(&url, |c| c.shield.breaker_failures = 2).await;
    let mut client = proxy.h1().await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let got = client
            .send(get("/protected").with("authorization", "Bearer t"))
            .await;
        statuses.push(got.status.as_u16());
    }
    assert_eq!(statuses, [502, 502, 503]);
    let m = scrape(admin).await;
    assert_eq!(value(&m, r#"auth_proxy_breaker_state{state="open"}"#), 1.0);
    assert_eq!(
        value(&m, r#"auth_proxy_breaker_state{state="closed"}"#),
        0.0
    );
    assert_eq!(value(&m, "auth_proxy_breaker_opened_total{}"), 1.0);
    assert_eq!(value(&m, "auth_proxy_breaker_rejected_total{}"), 1.0);
    assert_eq!(
        value(
            &m,
            r#"auth_proxy_upstream_errors_total{kind="upstream_unavailable"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            r#"auth_proxy_upstream_errors_total{kind="connect_refused"}"#
        ),
        2.0
    );
}

#[tokio::test]
async fn a_redis_login_limiter_exports_its_connection_and_failures() {
    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        limit: RateLimitArgs,
    }
    let mut redis = RedisServer::start();
    let url = redis.url();
    let flags = ["t", "--login-rate-limit", "5/m", "--rate-limit-redis", &url];
    let settings = Flags::try_parse_from(flags)
        .unwrap()
        .limit
        .settings()
        .unwrap();
    let mock = MockUpstream::start_default().await;
    let (proxy, admin) = proxy_with_metrics(&mock.url(), move |c| c.login_limit = settings).await;
    let limiter = proxy.state.login_limiter.as_ref().unwrap();
    within(WAIT, "the proxy connecting to Redis", async {
        while !limiter.redis_connected() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let mut client = proxy.h1().await;
    assert_eq!(client.send(login("ada")).await.status, 200);
    let m = scrape(admin).await;
    assert_eq!(value(&m, "auth_proxy_rate_limit_redis_connected{}"), 1.0);
    assert_eq!(
        value(&m, "auth_proxy_rate_limit_redis_failures_total{}"),
        0.0
    );
    assert!(
        !m.keys()
            .any(|k| k.starts_with("auth_proxy_rate_limit_memory")),
        "no memory series for a Redis limiter"
    );

    redis.kill();
    assert_eq!(client.send(login("ada")).await.status, 200, "fails open");
    let m = scrape(admin).await;
    assert_eq!(
        value(&m, "auth_proxy_rate_limit_redis_failures_total{}"),
        1.0
    );
}
