//! The Grafana dashboard (deploy/grafana/auth-proxy.json) and the alert rules
//! (deploy/prometheus/alerts.yml) query only metrics the proxy exports, so neither can drift
//! from the code: every `auth_proxy_*` / `process_*` name in a query must appear in a scrape.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use auth_proxy::config::parse_auth_url;
use auth_proxy::{AppState, Config};

/// Every series name a scrape of a proxy with metrics on holds.
fn exported() -> BTreeSet<String> {
    let mut config = Config::new(parse_auth_url("http://127.0.0.1:9").unwrap());
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let state = AppState::new(config).unwrap();
    auth_proxy::metrics::render(&state)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

/// The metric names a PromQL expression uses (ours and the standard `process_*` ones).
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("auth_proxy_") || t.starts_with("process_"))
        .map(str::to_owned)
        .collect()
}

fn file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).expect(path)
}

#[test]
fn every_dashboard_query_names_metrics_the_proxy_exports() {
    let exported = exported();
    let dashboard: serde_json::Value =
        serde_json::from_str(&file("deploy/grafana/auth-proxy.json"))
            .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(
        panels.len() >= 8,
        "request rate, p50/p99, errors, upstream, pool, connections"
    );
    let mut used = BTreeSet::new();
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{} has no query", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().expect("expr");
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{expr} names no metric of ours");
            for name in names {
                assert!(exported.contains(&name), "{expr}: {name} is not exported");
                used.insert(name);
            }
        }
    }
    // The issue's minimum: rate and latency by route, errors by kind, upstream latency, pool
    // and connection gauges.
    for needed in [
        "auth_proxy_requests_total",
        "auth_proxy_request_duration_seconds_bucket",
        "auth_proxy_upstream_errors_total",
        "auth_proxy_upstream_request_duration_seconds_bucket",
        "auth_proxy_upstream_connections",
        "auth_proxy_client_connections_open",
    ] {
        assert!(
            used.contains(needed),
            "the dashboard does not show {needed}"
        );
    }
}

#[test]
fn every_alert_rule_names_metrics_the_proxy_exports() {
    let exported = exported();
    let rules = file("deploy/prometheus/alerts.yml");
    let names: Vec<String> = rules
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(metric_names)
        .collect();
    assert!(names.len() >= 6, "{names:?}");
    for name in names {
        assert!(
            exported.contains(&name),
            "alerts.yml: {name} is not exported"
        );
    }
}

#[test]
fn the_checker_would_notice_a_misspelt_metric() {
    assert_eq!(
        metric_names(r#"sum(rate(auth_proxy_request_total{route="/login"}[5m]))"#),
        ["auth_proxy_request_total"]
    );
    assert!(!exported().contains("auth_proxy_request_total"));
}
