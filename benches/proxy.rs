//! Criterion benches of the request path: the pure hot paths one by one, then the whole proxy
//! end to end over real loopback sockets (keep-alive client → `auth_proxy::serve` → stub service).
//!
//! Load numbers against nginx come from `bench/run.sh`, not from here: these benches catch
//! regressions in our own code, where a run on a busy laptop is still comparable to the last one.

// A bench that cannot set itself up should stop loudly; there is no caller to hand an error to.
#![allow(clippy::expect_used)]

use std::convert::Infallible;
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use auth_proxy::config::{parse_auth_url, AccessLog, Config};
use auth_proxy::context;
use auth_proxy::error::ProxyError;
use auth_proxy::headers::{self, Credentials, Origin};
use auth_proxy::router;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyQGV4YW1wbGUuY29tIiwiZXhwIjoxOTAwMDAwMDAwfQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU";
const LOGIN_FORM: &str = "grant_type=password&username=user%40example.com&password=hunter2hunter2&scope=&client_id=&client_secret=";
const REGISTER_JSON: &str = r#"{"email":"User@Example.com","password":"hunter2hunter2"}"#;
/// What the stub central service answers to everything (a token pair, as the real one does).
const STUB_ANSWER: &str = r#"{"access_token":"eyJhbGciOiJIUzI1NiJ9.e30.sig","refresh_token":"eyJhbGciOiJIUzI1NiJ9.e30.ref","token_type":"bearer"}"#;

/// The headers a browser-ish client sends to `/protected` through a load balancer.
fn client_headers() -> HeaderMap {
    let pairs = [
        ("host", "auth.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        ("accept", "application/json"),
        ("accept-language", "en-US,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br"),
        ("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"),
        ("connection", "keep-alive, x-hop"),
        ("x-hop", "dropped"),
        ("keep-alive", "timeout=5"),
        ("x-forwarded-for", "203.0.113.9"),
        ("x-request-id", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("cookie", "session=abc; theme=dark"),
    ];
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    map
}

/// The headers a central service answers with, hop-by-hop ones included.
fn upstream_response_headers() -> HeaderMap {
    let pairs = [
        ("content-type", "application/json"),
        ("content-length", "112"),
        ("date", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ("server", "uvicorn"),
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("set-cookie", "a=1; Path=/; HttpOnly"),
        ("set-cookie", "b=2; Path=/; HttpOnly"),
        ("x-vercel-id", "fra1::abcde-1700000000000-0123456789ab"),
    ];
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    map
}

fn bench_router(c: &mut Criterion) {
    let mut group = c.benchmark_group("router");
    for (name, method, path) in [
        ("protected", Method::GET, "/protected"),
        ("login", Method::POST, "/login"),
        ("not_found", Method::GET, "/wp-admin/install.php"),
        ("method_not_allowed", Method::GET, "/register"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| router::route(black_box(&method), black_box(path)));
        });
    }
    group.finish();
}

fn bench_headers(c: &mut Criterion) {
    let incoming = client_headers();
    let host = HeaderValue::from_static("auth.internal:8080");
    let id = HeaderValue::from_static("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
    let bearer = HeaderValue::from_static("Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig");
    let client_host = incoming.get(header::HOST).cloned();
    let peer_ip = headers::peer_ip_value(SocketAddr::from((Ipv4Addr::new(10, 1, 2, 3), 54321)));
    let origin = Origin {
        peer_ip: &peer_ip,
        trusted: false,
        scheme: "http",
        host: client_host.as_ref(),
    };
    let trusted = Origin {
        trusted: true,
        ..origin
    };
    let mut group = c.benchmark_group("headers");
    group.bench_function("outbound_request/untrusted_bearer", |b| {
        b.iter(|| {
            headers::outbound_request(
                black_box(&incoming),
                &origin,
                &host,
                &id,
                Credentials::Bearer(&bearer),
            )
        });
    });
    group.bench_function("outbound_request/trusted_none", |b| {
        b.iter(|| {
            headers::outbound_request(
                black_box(&incoming),
                &trusted,
                &host,
                &id,
                Credentials::None,
            )
        });
    });
    let response = upstream_response_headers();
    group.bench_function("sanitize_response", |b| {
        b.iter_batched_ref(
            || response.clone(),
            |h| headers::sanitize_response(black_box(h)),
            criterion::BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn bench_request_id(c: &mut Criterion) {
    let with_id = client_headers();
    let without_id = HeaderMap::new();
    let mut group = c.benchmark_group("request_id");
    group.bench_function("kept", |b| {
        b.iter(|| context::request_id(black_box(&with_id)));
    });
    group.bench_function("generated", |b| {
        b.iter(|| context::request_id(black_box(&without_id)));
    });
    group.finish();
}

fn bench_errors(c: &mut Criterion) {
    let invalid = Bytes::from_static(
        br#"{"detail":[{"type":"missing","loc":["body","username"],"msg":"Field required","input":null}]}"#,
    );
    let mut group = c.benchmark_group("error_response");
    group.bench_function("401", |b| {
        b.iter(|| ProxyError::NotAuthenticated.into_response());
    });
    group.bench_function("404", |b| {
        b.iter(|| ProxyError::NotFound.into_response());
    });
    group.bench_function("422", |b| {
        b.iter(|| {
            ProxyError::Invalid(StatusCode::UNPROCESSABLE_ENTITY, black_box(invalid.clone()))
                .into_response()
        });
    });
    group.finish();
}

/// A central service that answers every request with the same small JSON, over HTTP/1.1 keep-alive.
async fn spawn_stub() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind stub");
    let addr = listener.local_addr().expect("stub address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                    // Drain the request body as a real service would before answering.
                    let _ = request.into_body().collect().await;
                    let mut response =
                        Response::new(Full::new(Bytes::from_static(STUB_ANSWER.as_bytes())));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// The proxy on a free loopback port, pointed at `upstream`, access log off (as in production
/// benchmarks: the log's cost is measured separately by `bench/run.sh`).
async fn spawn_proxy(upstream: SocketAddr) -> SocketAddr {
    let url = parse_auth_url(&format!("http://{upstream}")).expect("stub url");
    let mut config = Config::new(url);
    config.access_log = AccessLog::Off;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind proxy");
    let addr = listener.local_addr().expect("proxy address");
    tokio::spawn(auth_proxy::serve(
        listener,
        config,
        std::future::pending::<()>(),
    ));
    addr
}

async fn connect(proxy: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(proxy).await.expect("connect to proxy");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    sender
}

/// One request of each kind the load harness drives.
#[derive(Clone, Copy)]
enum Call {
    Protected,
    Login,
    Register,
}

impl Call {
    fn request(self) -> Request<Full<Bytes>> {
        let builder = Request::builder().header(header::HOST, "auth.example.com");
        let built = match self {
            Call::Protected => builder
                .method(Method::GET)
                .uri("/protected")
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .body(Full::new(Bytes::new())),
            Call::Login => builder
                .method(Method::POST)
                .uri("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from_static(LOGIN_FORM.as_bytes()))),
            Call::Register => builder
                .method(Method::POST)
                .uri("/register")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from_static(REGISTER_JSON.as_bytes()))),
        };
        built.expect("request")
    }
}

async fn round_trip(sender: &mut SendRequest<Full<Bytes>>, call: Call) {
    sender.ready().await.expect("connection ready");
    let response = sender.send_request(call.request()).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK, "proxy answered an error");
    let body = response.into_body().collect().await.expect("body");
    black_box(body.to_bytes());
}

fn bench_end_to_end(c: &mut Criterion) {
    // One thread for client, proxy and stub: the number is the CPU cost of a whole exchange,
    // not a race between threads on a loaded machine.
    let runtime: Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut sender = runtime.block_on(async {
        let stub = spawn_stub().await;
        let proxy = spawn_proxy(stub).await;
        connect(proxy).await
    });
    let mut group = c.benchmark_group("end_to_end");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    for (name, call) in [
        ("get_protected", Call::Protected),
        ("post_login_form", Call::Login),
        ("post_register_json", Call::Register),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        round_trip(&mut sender, call).await;
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_router,
    bench_headers,
    bench_request_id,
    bench_errors,
    bench_end_to_end
);
criterion_main!(benches);
