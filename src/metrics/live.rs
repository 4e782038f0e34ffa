//! The metrics read at scrape time from the layers' own counters (server, parking, upstream pool) and from /proc: nothing here is counted twice.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::process;
use crate::state::AppState;

type Label = [(&'static str, &'static str); 1];

/// A registry made for one scrape, filled with the values as of now.
pub(super) struct Now(Registry);

impl Now {
    pub(super) fn gauge(&mut self, name: &str, help: &str, value: i64) {
        let gauge = Gauge::<i64>::default();
        gauge.set(value);
        self.0.register(name, help, gauge);
    }

    fn gauge_f64(&mut self, name: &str, help: &str, value: f64) {
        let gauge = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        gauge.set(value);
        self.0.register(name, help, gauge);
    }

    /// `name` without `_total`: the encoder appends it.
    pub(super) fn counter(&mut self, name: &str, help: &str, value: u64) {
        let counter = Counter::<u64>::default();
        counter.inc_by(value);
        self.0.register(name, help, counter);
    }

    pub(super) fn counters(
        &mut self,
        name: &str,
        help: &str,
        label: &'static str,
        values: &[(&'static str, u64)],
    ) {
        let family = Family::<Label, Counter>::default();
        for &(value, n) in values {
            family.get_or_create(&[(label, value)]).inc_by(n);
        }
        self.0.register(name, help, family);
    }

    pub(super) fn gauges(
        &mut self,
        name: &str,
        help: &str,
        label: &'static str,
        values: &[(&'static str, u64)],
    ) {
        let family = Family::<Label, Gauge>::default();
        for &(value, n) in values {
            family.get_or_create(&[(label, value)]).set(signed(n));
        }
        self.0.register(name, help, family);
    }
}

pub(super) fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The whole `/metrics` text: the request series, then what is read now.
pub fn render(state: &AppState) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let encoded = state
        .metrics
        .as_ref()
        .map_or(Ok(()), |metrics| metrics.encode(&mut out))
        .and_then(|()| encode(&mut out, state));
    if encoded.is_err() {
        // Writing to a String does not fail; if the encoder ever did, say so rather than
        // serve half an exposition.
        out.clear();
        out.push_str("# encoding failed\n");
    }
    out
}

/// Appends the scrape-time metrics to `out`.
pub fn encode(out: &mut String, state: &AppState) -> std::fmt::Result {
    let mut now = Now(Registry::default());
    let build = Family::<Label, Gauge>::default();
    build
        .get_or_create(&[("version", env!("CARGO_PKG_VERSION"))])
        .set(1);
    now.0.register(
        "auth_proxy_build_info",
        "The running auth-proxy's version",
        build,
    );
    now.gauge(
        "auth_proxy_draining",
        "1 once SIGTERM/SIGINT arrived (readyz answers 503)",
        i64::from(state.shutdown.is_requested()),
    );
    connections(&mut now, state);
    upstream(&mut now, state);
    super::guards::encode(&mut now, state);
    process(&mut now);
    prometheus_text::encode(out, &now.0)
}

fn connections(now: &mut Now, state: &AppState) {
    let (accepted, open, at_cap, header_timeouts) = state.conns.snapshot();
    now.gauge(
        "auth_proxy_client_connections_open",
        "Client connections open",
        signed(open),
    );
    now.gauge(
        "auth_proxy_client_connections_parked",
        "Idle HTTP/1 client connections parked (hyper's state dropped, the socket kept)",
        signed(state.conns.parked_now()),
    );
    now.counter(
        "auth_proxy_client_connections_accepted",
        "Client connections accepted",
        accepted,
    );
    now.counter(
        "auth_proxy_client_connections_at_cap",
        "Clients accepted at --max-connections that had to wait for a slot (accepting paused meanwhile; new clients wait in the backlog)",
        at_cap,
    );
    now.counter(
        "auth_proxy_client_header_timeouts",
        "Client connections closed for sending no request head within --client-header-timeout",
        header_timeouts,
    );
}

fn upstream(now: &mut Now, state: &AppState) {
    let up = state.upstream.snapshot();
    now.counters(
        "auth_proxy_upstream_connections_created",
        "Connections to the central service opened, by result (error: dial, TLS or HTTP/2 preface failed)",
        "result",
        &[("ok", up.connected), ("error", up.connect_failed)],
    );
    let (busy_http1, h2_streams) = if up.http2 {
        (0, up.in_flight)
    } else {
        (up.in_flight, 0)
    };
    now.gauges(
        "auth_proxy_upstream_connections",
        "HTTP/1 connections to the central service: idle in the pool, or busy with a request",
        "state",
        &[("idle", up.idle_http1), ("busy", busy_http1)],
    );
    now.gauge(
        "auth_proxy_upstream_h2_streams",
        "Requests in flight on the HTTP/2 connections to the central service (one per worker)",
        signed(h2_streams),
    );
    now.gauge(
        "auth_proxy_upstream_requests_waiting",
        "Requests waiting for a place under --upstream-max-connections",
        signed(up.waiting),
    );
    now.counters(
        "auth_proxy_upstream_retries",
        "Requests sent again: unsent on a closed pooled connection, stale (idempotent, lost on a reused connection), refused (HTTP/2)",
        "reason",
        &up.retries,
    );
}

fn process(now: &mut Now) {
    if let Some(p) = process::read() {
        let cpu = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        cpu.inc_by(p.cpu_seconds);
        now.0.register(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds",
            cpu,
        );
        now.gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            signed(p.resident_bytes),
        );
        now.gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            signed(p.virtual_bytes),
        );
        now.gauge(
            "process_open_fds",
            "Open file descriptors",
            signed(p.open_fds),
        );
        if let Some(max) = p.max_fds {
            now.gauge(
                "process_max_fds",
                "Limit on open file descriptors",
                signed(max),
            );
        }
        if let Some(start) = p.start_time_seconds {
            now.gauge_f64(
                "process_start_time_seconds",
                "Start time since the Unix epoch, in seconds",
                start,
            );
        }
    }
}
