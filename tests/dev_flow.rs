//! The built binary with `--dev`, end to end: the whole register → login → protected → refresh
//! flow through the proxy to the embedded auth service, and a log that never holds a secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{get, post_form, post_json, Received, WithHeader, H1};

const PASSWORD: &str = "pw-Secret-7f3a";
const CLIENT_SECRET: &str = "cs-Secret-91bd";
const COOKIE: &str = "sid=cookie-Secret-55e0";

/// `auth-proxy --dev` with stderr captured line by line.
struct DevProxy {
    child: Child,
    lines: mpsc::Receiver<String>,
    addr: SocketAddr,
    /// Lines read before `listening on` (or `metrics at`), kept for the secret check.
    early: Vec<String>,
}

impl DevProxy {
    fn start(extra: &[&str]) -> Self {
        Self::spawn(&[&["--dev"], extra].concat())
    }

    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_auth-proxy"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "trace")
            .env("LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start auth-proxy --dev");
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut early = Vec::new();
        let addr = wait_for(&lines, &mut early, "listening on http://")
            .parse()
            .expect("IP:PORT");
        DevProxy {
            child,
            lines,
            addr,
            early,
        }
    }

    /// The `metrics at http://IP:PORT/metrics` address (`--metrics-listen` given).
    fn metrics_addr(&mut self) -> SocketAddr {
        let at = wait_for(&self.lines, &mut self.early, "metrics at http://");
        at.trim_end_matches("/metrics").parse().expect("IP:PORT")
    }

    /// SIGTERM, then every remaining stderr line; asserts a clean exit.
    fn stop(mut self) -> Vec<String> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                Instant::now() < deadline,
                "auth-proxy did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(exit.success(), "exit status {exit:?}");
        let mut all = std::mem::take(&mut self.early);
        all.extend(self.lines.try_iter());
        all
    }
}

/// Reads stderr lines into `seen` until one holds `marker`; what follows it on that line.
fn wait_for(lines: &mpsc::Receiver<String>, seen: &mut Vec<String>, marker: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("a `{marker}` line"));
        seen.push(line.clone());
        if let Some((_, rest)) = line.split_once(marker) {
            return rest.trim().to_owned();
        }
    }
}

impl Drop for DevProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token(got: &Received, field: &str) -> String {
    let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {}", got.text()))
        .to_owned()
}

fn login_form(password: &str) -> String {
    format!("grant_type=password&username=Ada%40Example.COM&password={password}&client_id=cli&client_secret={CLIENT_SECRET}")
}

#[tokio::test]
async fn dev_flow_works_end_to_end_and_the_log_holds_no_secret() {
    let mut proxy = DevProxy::start(&["--metrics-listen", "127.0.0.1:0"]);
    let admin = proxy.metrics_addr();
    let mut c = H1::connect(proxy.addr).await;
    let register =
        format!(r#"{{"email":"Ada@Example.COM","password":"{PASSWORD}","is_admin":true}}"#);

    c.send(post_json("/register", &register))
        .await
        .assert_json(201, r#"{"message":"User registered successfully"}"#);
    c.send(post_json("/register", &register))
        .await
        .assert_json(400, r#"{"detail":"User already exists"}"#);
    c.send(post_form("/login", &login_form("wrong")))
        .await
        .assert_json(401, r#"{"detail":"Invalid credentials"}"#);
    let tokens = c.send(post_form("/login", &login_form(PASSWORD))).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    let (access, refresh) = (
        token(&tokens, "access_token"),
        token(&tokens, "refresh_token"),
    );
    assert_eq!(token(&tokens, "token_type"), "bearer");

    let bearer = |t: &str| {
        get("/protected")
            .with("authorization", &format!("Bearer {t}"))
            .with("cookie", COOKIE)
    };
    c.send(bearer(&access))
        .await
        .assert_json(200, r#"{"message":"Access granted to Ada@Example.COM"}"#);
    c.send(bearer(&refresh))
        .await
        .assert_json(401, r#"{"detail":"Invalid token"}"#);
    let renewed = c
        .send(post_json(
            "/refresh",
            &format!(r#"{{"refresh_token":"{refresh}"}}"#),
        ))
        .await;
    assert_eq!(renewed.status, 200, "{}", renewed.text());
    let new_access = token(&renewed, "access_token");
    c.send(bearer(&new_access))
        .await
        .assert_json(200, r#"{"message":"Access granted to Ada@Example.COM"}"#);
    c.send(post_json(
        "/refresh",
        &format!(r#"{{"refresh_token":"{access}"}}"#),
    ))
    .await
    .assert_json(401, r#"{"detail":"Invalid refresh token"}"#);
    drop(c);
    let metrics = H1::connect(admin).await.send(get("/metrics")).await.text();
    assert!(metrics.contains(r#"auth_proxy_requests_total{route="/protected",status="2xx"} 2"#));

    let mut log = proxy.stop();
    log.push(metrics);
    let access_lines: Vec<serde_json::Value> = log
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["target"] == "access")
        .collect();
    assert_eq!(
        access_lines.len(),
        9,
        "one access line per request: {log:#?}"
    );
    for event in &access_lines {
        for field in [
            "method",
            "route",
            "status",
            "duration_us",
            "request_id",
            "peer",
        ] {
            assert!(!event[field].is_null(), "{field} missing in {event}");
        }
    }
    assert_eq!(access_lines[3]["upstream_status"], 200);
    let secrets = [
        PASSWORD,
        CLIENT_SECRET,
        COOKIE,
        "cookie-Secret",
        &access,
        &refresh,
        &new_access,
    ];
    for line in &log {
        for secret in secrets {
            assert!(!line.contains(secret), "a secret reached the log: {line}");
        }
    }
}

/// The dev service's answer to a new user, as the central service's current code gives it.
fn assert_registered(got: &Received) {
    assert_eq!(got.status.as_u16(), 201, "{}", got.text());
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.text(), r#"{"message":"User registered successfully"}"#);
}

#[tokio::test]
async fn a_user_logs_in_with_the_email_exactly_as_registered() {
    // Issue 14: the proxy used to forward Pydantic's normalised address to /register and the
    // username verbatim to /login, so these users could never log in.
    let proxy = DevProxy::start(&[]);
    let mut c = H1::connect(proxy.addr).await;
    for email in [
        "Alice@Example.COM",
        "Ada <ada@example.com>",
        "u\u{308}ser@exa\u{308}mple.com",
    ] {
        let register = serde_json::json!({"email": email, "password": PASSWORD}).to_string();
        assert_registered(&c.send(post_json("/register", &register)).await);
        let form =
            serde_urlencoded::to_string([("username", email), ("password", PASSWORD)]).unwrap();
        let tokens = c.send(post_form("/login", &form)).await;
        assert_eq!(tokens.status, 200, "{email:?}: {}", tokens.text());
        assert_eq!(token(&tokens, "token_type"), "bearer");
        let access = token(&tokens, "access_token");
        let granted = serde_json::json!({"message": format!("Access granted to {email}")});
        c.send(get("/protected").with("authorization", &format!("Bearer {access}")))
            .await
            .assert_json(200, &granted.to_string());
    }
    // Another spelling of a registered address is another user at the central service.
    let lower = serde_json::json!({"email": "alice@example.com", "password": PASSWORD});
    assert_registered(&c.send(post_json("/register", &lower.to_string())).await);
    proxy.stop();
}

#[tokio::test]
async fn expired_access_tokens_are_refused_and_refresh_still_works() {
    let proxy = DevProxy::start(&["--access-ttl", "0s"]);
    let mut c = H1::connect(proxy.addr).await;
    c.send(post_json(
        "/register",
        r#"{"email":"bo@example.com","password":"pw"}"#,
    ))
    .await
    .assert_json(201, r#"{"message":"User registered successfully"}"#);
    let tokens = c
        .send(post_form("/login", "username=bo%40example.com&password=pw"))
        .await;
    let expired = token(&tokens, "access_token");
    c.send(get("/protected").with("authorization", &format!("Bearer {expired}")))
        .await
        .assert_json(401, r#"{"detail":"Token expired"}"#);
    let renewed = c
        .send(post_json(
            "/refresh",
            &format!(
                r#"{{"refresh_token":"{}"}}"#,
                token(&tokens, "refresh_token")
            ),
        ))
        .await;
    assert_eq!(renewed.status, 200, "{}", renewed.text());
    proxy.stop();
}

#[tokio::test]
async fn failures_on_every_route_are_explained_without_a_secret_in_the_log_or_metrics() {
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", refused.local_addr().unwrap());
    drop(refused);
    let mut proxy = DevProxy::spawn(&["--auth-url", &url, "--metrics-listen", "127.0.0.1:0"]);
    let admin = proxy.metrics_addr();
    let mut c = H1::connect(proxy.addr).await;
    let refresh = "rt-Secret-0c1d";
    let bearer = "at-Secret-77aa";
    let requests = [
        post_json(
            "/register",
            &format!(r#"{{"email":"ada@example.com","password":"{PASSWORD}"}}"#),
        ),
        post_form("/login", &login_form(PASSWORD)),
        post_json("/refresh", &format!(r#"{{"refresh_token":"{refresh}"}}"#)),
        get("/protected").with("authorization", &format!("Bearer {bearer}")),
    ];
    for request in requests {
        let got = c.send(request.with("cookie", COOKIE)).await;
        got.assert_json(502, r#"{"detail":"Central auth service is unreachable"}"#);
    }
    let metrics = H1::connect(admin).await.send(get("/metrics")).await.text();
    assert!(metrics.contains(r#"auth_proxy_upstream_errors_total{kind="connect_refused"} 4"#));
    drop(c);

    let log = proxy.stop();
    let events: Vec<serde_json::Value> = log
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let warned: Vec<_> = events
        .iter()
        .filter(|e| e["level"] == "WARN" && e["step"] == "dial")
        .collect();
    assert_eq!(warned.len(), 4, "one warn line per 502: {log:#?}");
    for warn in warned {
        assert_eq!(warn["error"], "connect_refused");
        assert!(warn["cause"]
            .as_str()
            .unwrap()
            .contains("Connection refused"));
    }
    let secrets = [
        PASSWORD,
        CLIENT_SECRET,
        COOKIE,
        "cookie-Secret",
        refresh,
        bearer,
    ];
    for line in log.iter().chain(std::iter::once(&metrics)) {
        for secret in secrets {
            assert!(
                !line.contains(secret),
                "a secret reached the log or metrics: {line}"
            );
        }
    }
}
