//! Prometheus metrics: the request path's series (made once, each request touches its own handles), and the text a scrape of `--metrics-listen` gets.
//!
//! Off unless `--metrics-listen` is set; then [`Metrics`] holds one counter per (route, status
//! class) and two histograms per route, resolved at start-up, so that a request costs a few
//! atomic adds and two uncontended histogram locks, never a label lookup. Everything else
//! (connections, the upstream pool, the process, and in [`guards`] coalescing, the cache, the
//! breaker and login throttling) is read from the layers' own counters at scrape time by
//! [`live`], not counted a second time.

use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::router::Routed;
use crate::upstream::KINDS;

mod guards;
mod listener;
mod live;
mod process;

pub use listener::{serve, start};
pub use live::render;

/// The `Content-Type` of what `/metrics` answers.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Request and upstream latency buckets, in seconds: 0.5 ms (a local central service) to 10 s
/// (the default `--upstream-timeout`).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Status classes, as the `status` label writes them.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Answers the proxy made itself because the client's request was unacceptable.
const REJECTIONS: [&str; 3] = ["validation", "body_too_large", "not_authenticated"];

/// `/register`, `/login`, `/refresh`, `/protected`: the first four of [`Routed::LABELS`].
const FORWARDING: usize = 4;

type Labels = [(&'static str, &'static str); 2];
type Label = [(&'static str, &'static str); 1];

/// One route's series.
struct RouteSeries {
    by_class: [Counter; CLASSES.len()],
    duration: Histogram,
    /// Only the four routes that forward have these.
    upstream_duration: Option<Histogram>,
    rejected: Option<[Counter; REJECTIONS.len()]>,
}

/// The series the request path updates.
pub struct Metrics {
    registry: Registry,
    routes: Vec<RouteSeries>,
    in_flight: Gauge,
    upstream_errors: [Counter; KINDS.len()],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Why the proxy answered a request itself, as far as the series tell causes apart
/// (`ProxyError::counted_as` sorts its variants into these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A 422 or 400 from validation.
    Invalid,
    BodyTooLarge,
    NotAuthenticated,
    /// The central service failed; one of [`KINDS`].
    Upstream(&'static str),
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<Labels, Counter>::default();
        let duration = Family::<Label, Histogram>::new_with_constructor(latency as fn() -> _);
        let upstream = Family::<Label, Histogram>::new_with_constructor(latency as fn() -> _);
        let rejected = Family::<Labels, Counter>::default();
        let errors = Family::<Label, Counter>::default();
        let in_flight = Gauge::default();
        let routes = Routed::LABELS
            .iter()
            .enumerate()
            .map(|(i, &route)| (i < FORWARDING, route))
            .map(|(forwards, route)| RouteSeries {
                by_class: CLASSES.map(|class| {
                    requests.get_or_create_owned(&[("route", route), ("status", class)])
                }),
                duration: duration.get_or_create_owned(&[("route", route)]),
                upstream_duration: forwards
                    .then(|| upstream.get_or_create_owned(&[("route", route)])),
                rejected: forwards.then(|| {
                    REJECTIONS.map(|why| {
                        rejected.get_or_create_owned(&[("route", route), ("reason", why)])
                    })
                }),
            })
            .collect();
        let upstream_errors = KINDS.map(|kind| errors.get_or_create_owned(&[("kind", kind)]));
        registry.register(
            "auth_proxy_requests",
            "Requests answered, by route and status class (499: the client left first)",
            requests,
        );
        registry.register(
            "auth_proxy_request_duration_seconds",
            "Time from request head to response head, by route",
            duration,
        );
        registry.register(
            "auth_proxy_requests_in_flight",
            "Requests received and not yet answered",
            in_flight.clone(),
        );
        registry.register(
            "auth_proxy_upstream_request_duration_seconds",
            "Time from sending to the central service to its response head, by route",
            upstream,
        );
        registry.register(
            "auth_proxy_upstream_errors",
            "Central service failures by kind (the access log's error field), bodies cut included",
            errors,
        );
        registry.register(
            "auth_proxy_rejected_requests",
            "Requests the proxy answered itself: 422/400 validation, 413, 401; by route and reason",
            rejected,
        );
        Metrics {
            registry,
            routes,
            in_flight,
            upstream_errors,
        }
    }

    /// A request head arrived.
    pub fn started(&self) {
        self.in_flight.inc();
    }

    /// A request was answered (`status` 499: its client left first).
    pub fn answered(
        &self,
        routed: Routed,
        status: u16,
        took: Duration,
        upstream: Option<Duration>,
    ) {
        let Some(series) = self.routes.get(routed.index()) else {
            return;
        };
        let class = usize::from(status / 100).clamp(1, CLASSES.len()) - 1;
        series.by_class[class].inc();
        series.duration.observe(took.as_secs_f64());
        if let (Some(upstream), Some(histogram)) = (upstream, &series.upstream_duration) {
            histogram.observe(upstream.as_secs_f64());
        }
    }

    /// A request's future ended (answered or not).
    pub fn ended(&self) {
        self.in_flight.dec();
    }

    /// The proxy answered itself, for this reason.
    pub fn failed(&self, routed: Routed, failure: Failure) {
        let rejection = match failure {
            Failure::Invalid => 0,
            Failure::BodyTooLarge => 1,
            Failure::NotAuthenticated => 2,
            Failure::Upstream(kind) => return self.upstream_failed(kind),
        };
        let series = self.routes.get(routed.index());
        if let Some(rejected) = series.and_then(|s| s.rejected.as_ref()) {
            rejected[rejection].inc();
        }
    }

    /// The central service failed (`kind` is one of [`KINDS`]).
    pub fn upstream_failed(&self, kind: &str) {
        if let Some(i) = KINDS.iter().position(|&k| k == kind) {
            self.upstream_errors[i].inc();
        }
    }

    fn encode(&self, out: &mut String) -> std::fmt::Result {
        prometheus_text::encode(out, &self.registry)
    }
}

fn latency() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}
