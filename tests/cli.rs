//! The `auth-proxy` binary as an operator meets it: `--help`, invalid configuration, the `listening on` line, signals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_auth-proxy");
const WAIT: Duration = Duration::from_secs(5);

/// A loopback `AUTH_URL` where nothing listens: the binary never reaches off this machine.
fn local_auth_url() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

/// The binary with a clean environment plus `env`, so the caller's variables cannot leak in.
fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for `child` to exit, at most `limit`; kills it (and fails) if it does not.
fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("auth-proxy did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs the binary to completion, bounded by [`WAIT`].
fn run(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut child = command(args, env).spawn().expect("start auth-proxy");
    let status = wait_exit(&mut child, WAIT);
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Finished {
        status,
        stdout,
        stderr,
    }
}

/// A file in the temp directory, unique to this test process and `name`.
fn temp_file(name: &str, contents: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("auth-proxy-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn help_lists_every_flag_with_its_env_var_and_default() {
    let out = run(&["--help"], &[]);
    assert!(out.status.success());
    let help = out.stdout;
    // (flag, env var, default as written in `--help`; None where the contract has no default)
    let flags: [(&str, Option<&str>, &[&str]); 14] = [
        ("--listen", Some("LISTEN_ADDR"), &["127.0.0.1:8000"]),
        (
            "--auth-url",
            Some("AUTH_URL"),
            &["https://auth-central-challange.vercel.app"],
        ),
        ("--upstream-ca", Some("AUTH_CA_FILE"), &[]),
        ("--dev", None, &[]),
        ("--connect-timeout", Some("CONNECT_TIMEOUT"), &["3s"]),
        ("--upstream-timeout", Some("UPSTREAM_TIMEOUT"), &["10s"]),
        (
            "--client-header-timeout",
            Some("CLIENT_HEADER_TIMEOUT"),
            &["10s"],
        ),
        ("--shutdown-delay", Some("SHUTDOWN_DELAY"), &["0s"]),
        ("--shutdown-grace", Some("SHUTDOWN_GRACE"), &["30s"]),
        (
            "--max-body-bytes",
            Some("MAX_BODY_BYTES"),
            &["64KiB", "65536"],
        ),
        ("--max-connections", Some("MAX_CONNECTIONS"), &["25000"]),
        ("--pool-idle-timeout", Some("POOL_IDLE_TIMEOUT"), &["4s"]),
        ("--trusted-proxies", Some("TRUSTED_PROXIES"), &[]),
        ("--help", None, &[]),
    ];
    for (flag, env, defaults) in flags {
        let entry = help_entry(&help, flag)
            .unwrap_or_else(|| panic!("--help does not document {flag}:\n{help}"));
        if let Some(env) = env {
            assert!(entry.contains(&format!("env: {env}")), "{flag}: {entry}");
        }
        if !defaults.is_empty() {
            assert!(
                defaults
                    .iter()
                    .any(|d| entry.contains(&format!("[default: {d}]"))),
                "{flag} default {defaults:?}: {entry}"
            );
        }
    }
}

/// The text of `flag`'s entry in `--help`: its line and the indented lines below it.
fn help_entry(help: &str, flag: &str) -> Option<String> {
    let mut lines = help.lines().skip_while(|line| {
        let line = line.trim_start();
        !(line.starts_with(&format!("{flag} "))
            || line == flag
            || line.contains(&format!(", {flag}")))
    });
    let first = lines.next()?;
    let mut entry = first.to_owned();
    for line in lines {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('-') {
            break;
        }
        entry.push(' ');
        entry.push_str(trimmed);
    }
    Some(entry)
}

/// Exit status 2, exactly one stderr line naming one of `names`, and nothing bound.
fn assert_config_error(args: &[&str], env: &[(&str, &str)], names: &[&str]) {
    let out = run(args, env);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?} {env:?}: status; stderr {:?}",
        out.stderr
    );
    assert_eq!(
        lines.len(),
        1,
        "{args:?} {env:?}: one stderr line, got {lines:?}"
    );
    assert!(
        names.iter().any(|name| lines[0].contains(name)),
        "{args:?} {env:?}: {:?} names none of {names:?}",
        lines[0]
    );
    assert!(!out.stderr.contains("listening on"), "nothing is bound");
}

#[test]
fn invalid_flag_values_exit_2_with_one_line_naming_the_flag() {
    let auth = local_auth_url();
    let base = ["--listen", "127.0.0.1:0", "--auth-url", auth.as_str()];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    let cases: [(&[&str], &str); 7] = [
        (&["--connect-timeout", "5"], "--connect-timeout"),
        (&["--shutdown-grace", "30"], "--shutdown-grace"),
        (&["--max-connections", "0"], "--max-connections"),
        (&["--max-body-bytes", "lots"], "--max-body-bytes"),
        (&["--trusted-proxies", "not-a-cidr"], "--trusted-proxies"),
        (&["--no-such-flag"], "--no-such-flag"),
        (&["--upstream-ca", "/nonexistent/ca.pem"], "--upstream-ca"),
    ];
    for (extra, name) in cases {
        assert_config_error(&with(extra), &[], &[name]);
    }
    assert_config_error(
        &["--listen", "127.0.0.1:0", "--auth-url", "ftp://127.0.0.1/"],
        &[],
        &["--auth-url"],
    );
}

#[test]
fn invalid_env_values_exit_2_with_one_line_naming_the_variable() {
    let auth = local_auth_url();
    let base = [("LISTEN_ADDR", "127.0.0.1:0"), ("AUTH_URL", auth.as_str())];
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "UPSTREAM_TIMEOUT",
            "10",
            &["UPSTREAM_TIMEOUT", "--upstream-timeout"],
        ),
        (
            "AUTH_CA_FILE",
            "/nonexistent/ca.pem",
            &["AUTH_CA_FILE", "--upstream-ca"],
        ),
        (
            "TRUSTED_PROXIES",
            "10.0.0.0/33",
            &["TRUSTED_PROXIES", "--trusted-proxies"],
        ),
        (
            "MAX_CONNECTIONS",
            "many",
            &["MAX_CONNECTIONS", "--max-connections"],
        ),
    ];
    for (var, value, names) in cases {
        let mut env = base.to_vec();
        env.push((var, value));
        assert_config_error(&[], &env, names);
    }
    assert_config_error(
        &[],
        &[
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("AUTH_URL", "localhost:8000"),
        ],
        &["AUTH_URL", "--auth-url"],
    );
}

#[test]
fn upstream_ca_file_without_a_certificate_exits_2() {
    let auth = local_auth_url();
    let empty = temp_file("no-cert.pem", "this file holds no certificate\n");
    let path = empty.to_str().unwrap();
    assert_config_error(
        &[
            "--listen",
            "127.0.0.1:0",
            "--auth-url",
            &auth,
            "--upstream-ca",
            path,
        ],
        &[],
        &["--upstream-ca", "AUTH_CA_FILE"],
    );
    std::fs::remove_file(empty).unwrap();
}

#[test]
fn listen_address_in_use_exits_2_naming_listen() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let auth = local_auth_url();
    assert_config_error(
        &["--listen", &addr, "--auth-url", &auth],
        &[],
        &["--listen", "LISTEN_ADDR"],
    );
}

/// A running binary whose stderr is read line by line on a thread.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(command(args, env))
    }

    /// The binary on `127.0.0.1:0` in front of `auth` (a loopback `AUTH_URL`), plus `extra`.
    fn on_loopback(auth: &str, extra: &[&str]) -> Self {
        let mut args = vec!["--listen", "127.0.0.1:0", "--auth-url", auth];
        args.extend_from_slice(extra);
        Self::start(&args, &[])
    }

    /// Starts the binary from a shell that first runs `limits` (`ulimit` commands) and then
    /// `exec`s it, so that it runs as the same process with those limits.
    fn start_with_limits(limits: &str, args: &[&str]) -> Self {
        let script = format!("{limits} && exec \"$0\" \"$@\"");
        let mut shell = Command::new("bash");
        shell
            .arg("-c")
            .arg(script)
            .arg(BIN)
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Self::spawn(shell)
    }

    fn spawn(mut command: Command) -> Self {
        let mut child = command.spawn().expect("start auth-proxy");
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for the `listening on http://IP:PORT` line and returns the address.
    fn listening(&mut self) -> SocketAddr {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no `listening on` line; stderr so far {:?}", self.seen)
            });
            self.seen.push(line.clone());
            if let Some((_, rest)) = line.split_once("listening on http://") {
                let addr = rest.split_whitespace().next().unwrap();
                return addr.parse().expect("IP:PORT after `listening on http://`");
            }
        }
    }

    /// Waits for the `metrics at http://IP:PORT/metrics` line and returns the address.
    fn metrics_addr(&mut self) -> SocketAddr {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no `metrics at` line; stderr so far {:?}", self.seen));
            self.seen.push(line.clone());
            if let Some((_, rest)) = line.split_once("metrics at http://") {
                let at = rest.trim_end_matches("/metrics");
                return at.parse().expect("IP:PORT before /metrics");
            }
        }
    }

    /// Sends `signal` (by name, e.g. `TERM`) with the `kill` command.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for exit; returns the status and every stderr line.
    fn finish(mut self) -> (ExitStatus, Vec<String>) {
        let status = wait_exit(&mut self.child, WAIT);
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
            self.seen.push(line);
        }
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over a fresh connection; returns the raw response.
fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn assert_serves_healthz(addr: SocketAddr) {
    let response = http_get(addr, "/healthz");
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    assert!(response.ends_with(r#"{"status":"ok"}"#), "{response}");
}

#[test]
fn listen_on_port_0_prints_one_listening_line_serves_and_exits_0_on_sigterm() {
    let auth = local_auth_url();
    let mut proxy = Running::on_loopback(&auth, &[]);
    let addr = proxy.listening();
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    assert_serves_healthz(addr);

    proxy.signal("TERM");
    let (status, stderr) = proxy.finish();
    assert_eq!(status.code(), Some(0), "stderr {stderr:?}");
    let listening = stderr.iter().filter(|l| l.contains("listening on")).count();
    assert_eq!(listening, 1, "exactly one `listening on` line: {stderr:?}");
}

#[test]
fn env_vars_configure_the_binary_and_sigint_exits_0() {
    let auth = local_auth_url();
    let mut proxy = Running::start(&[], &[("LISTEN_ADDR", "127.0.0.1:0"), ("AUTH_URL", &auth)]);
    let addr = proxy.listening();
    assert_serves_healthz(addr);

    proxy.signal("INT");
    let (status, stderr) = proxy.finish();
    assert_eq!(status.code(), Some(0), "stderr {stderr:?}");
}

#[test]
fn a_flag_beats_its_env_var() {
    let auth = local_auth_url();
    // The env values are invalid; the flags that override them are not, so the binary starts.
    let mut proxy = Running::start(
        &["--listen", "127.0.0.1:0", "--connect-timeout", "1s"],
        &[
            ("LISTEN_ADDR", "not an address"),
            ("CONNECT_TIMEOUT", "5"),
            ("AUTH_URL", &auth),
        ],
    );
    let addr = proxy.listening();
    assert_serves_healthz(addr);
    proxy.signal("TERM");
    assert_eq!(proxy.finish().0.code(), Some(0));
}

#[test]
fn dev_flag_serves_through_an_in_process_dev_auth_service() {
    let mut proxy = Running::start(&["--dev", "--listen", "127.0.0.1:0"], &[]);
    let addr = proxy.listening();
    assert_serves_healthz(addr);
    // The central service is the in-process one on loopback, so the proxy is ready.
    let ready = http_get(addr, "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200 "), "{ready}");

    proxy.signal("TERM");
    let (status, stderr) = proxy.finish();
    assert_eq!(status.code(), Some(0), "stderr {stderr:?}");
    let dev: Vec<&String> = stderr
        .iter()
        .filter(|l| l.contains("dev auth service at http://127.0.0.1:"))
        .collect();
    assert_eq!(dev.len(), 1, "one `dev auth service at` line: {stderr:?}");
    let listening = stderr.iter().filter(|l| l.contains("listening on")).count();
    assert_eq!(listening, 1, "exactly one `listening on` line: {stderr:?}");
}

/// The `Max open files` soft and hard limits of a running process, from `/proc/PID/limits`.
fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let mut fields = line["Max open files".len()..].split_whitespace();
    let soft = fields.next().unwrap().to_owned();
    let hard = fields.next().unwrap().to_owned();
    (soft, hard)
}

#[test]
fn open_file_soft_limit_is_raised_to_the_hard_limit_at_start() {
    let auth = local_auth_url();
    let mut proxy = Running::start_with_limits(
        "ulimit -Sn 256 && ulimit -Hn 4096",
        &[
            "--listen",
            "127.0.0.1:0",
            "--auth-url",
            &auth,
            "--max-connections",
            "1000",
        ],
    );
    let addr = proxy.listening();
    let (soft, hard) = open_file_limits(proxy.child.id());
    assert_eq!((soft.as_str(), hard.as_str()), ("4096", "4096"));
    assert_serves_healthz(addr);
    proxy.signal("TERM");
    let (status, stderr) = proxy.finish();
    assert_eq!(status.code(), Some(0), "stderr {stderr:?}");
    assert!(
        !stderr.iter().any(|l| l.contains("open-file limit")),
        "1000 connections fit in 4096: {stderr:?}"
    );
}

#[test]
fn open_file_hard_limit_below_max_connections_logs_one_warning() {
    let auth = local_auth_url();
    // One worker: each further one reserves a few descriptors more (rlimit::reserved).
    let mut proxy = Running::start_with_limits(
        "ulimit -n 512",
        &[
            "--listen",
            "127.0.0.1:0",
            "--auth-url",
            &auth,
            "--worker-threads",
            "1",
        ],
    );
    let addr = proxy.listening();
    assert_serves_healthz(addr);
    proxy.signal("TERM");
    let (status, stderr) = proxy.finish();
    assert_eq!(status.code(), Some(0), "stderr {stderr:?}");
    let warnings: Vec<&String> = stderr
        .iter()
        .filter(|l| l.contains("open-file limit"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning line: {stderr:?}");
    let line = warnings[0];
    assert!(line.contains("WARN"), "{line}");
    // 25000 default connections + 256 upstream + 64 reserved.
    for part in ["open-file limit 512 ", "= 25320", "--max-connections"] {
        assert!(line.contains(part), "{part:?} in {line}");
    }
}

/// The LISTEN sockets on `port` in `/proc/net/tcp` (state `0A`): one per worker.
fn listening_sockets(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let mut fields = l.split_whitespace().skip(1);
            fields.next() == Some(local.as_str()) && fields.nth(1) == Some("0A")
        })
        .count()
}

/// One keep-alive `GET /healthz` on `stream`; the response, or the read error (a timeout).
fn keep_alive_healthz(stream: &mut TcpStream, limit: Duration) -> std::io::Result<String> {
    stream.set_read_timeout(Some(limit))?;
    write!(stream, "GET /healthz HTTP/1.1\r\nHost: proxy\r\n\r\n")?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(br#"{"status":"ok"}"#) {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

/// The value of the sample `series` (name and labels, as printed) in a Prometheus scrape.
fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in {scrape}"))
        .trim()
        .parse()
        .unwrap()
}

/// Reads until the `/healthz` answer is complete; the bytes so far on EOF or error.
fn read_healthz(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(br#"{"status":"ok"}"#) {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// `POST /register` for `email` over a fresh connection; asserts the dev service's 201.
fn register_once(addr: SocketAddr, email: &str) {
    let mut stream = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let body = format!(r#"{{"email":"{email}","password":"long-enough-password"}}"#);
    write!(
        stream,
        "POST /register HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 201 Created\r\n"),
        "{response}"
    );
    assert!(
        response.ends_with("\r\n\r\n{\"message\":\"User registered successfully\"}"),
        "{response}"
    );
}

#[test]
fn two_workers_share_one_port_one_connection_cap_and_one_shutdown() {
    let mut proxy = Running::start(
        &[
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--worker-threads",
            "2",
            "--max-connections",
            "2",
            "--upstream-max-connections",
            "1",
        ],
        &[],
    );
    let addr = proxy.listening();
    let metrics = proxy.metrics_addr();
    assert_eq!(listening_sockets(addr.port()), 2, "a listener per worker");

    // Two clients hold the cap, whichever worker took each.
    let mut first = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    let mut second = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    for stream in [&mut first, &mut second] {
        let response = keep_alive_healthz(stream, WAIT).unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    }
    // Six more wait (one accepted per worker, the rest in the listen backlogs): with a cap per
    // worker rather than one for the process, those the kernel gave the other worker would be
    // served at once.
    let mut waiting: Vec<TcpStream> = (0..6)
        .map(|_| TcpStream::connect_timeout(&addr, WAIT).unwrap())
        .collect();
    for stream in &mut waiting {
        // `Connection: close`: each frees its slot for the next once answered.
        write!(
            stream,
            "GET /healthz HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    for stream in &mut waiting {
        stream.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let read = stream.read(&mut byte);
        let nothing = read
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock);
        assert!(nothing, "served past the shared cap: {read:?}");
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
    }
    // Once the two close, every waiting client is served, two at a time.
    drop((first, second));
    for stream in &mut waiting {
        let response = read_healthz(stream);
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.ends_with(r#"{"status":"ok"}"#), "{response}");
    }
    drop(waiting);

    // Requests through the central service from many connections, spread by the kernel over
    // both workers, each worker with its own upstream pool.
    for n in 0..16 {
        register_once(addr, &format!("w{n}@example.com"));
    }
    // Both pools dialled (the kernel spread 16 connections over both listeners; all on one
    // has odds of 1 in 32768), yet at most one connection stays open to the central service:
    // `--upstream-max-connections` holds for every pool together.
    let scrape = http_get(metrics, "/metrics");
    let created = sample(
        &scrape,
        r#"auth_proxy_upstream_connections_created_total{result="ok"}"#,
    );
    assert!(created >= 2.0, "one pool did all the work: {scrape}");
    let idle = sample(&scrape, r#"auth_proxy_upstream_connections{state="idle"}"#);
    assert!(idle <= 1.0, "{idle} idle upstream connections, cap 1");

    proxy.signal("TERM");
    let (status, stderr) = proxy.finish();
    assert_eq!(status.code(), Some(0), "stderr {stderr:?}");
    let drained = stderr
        .iter()
        .filter(|l| l.contains("shutdown complete"))
        .count();
    assert_eq!(drained, 2, "each worker drained: {stderr:?}");
    let listening = stderr.iter().filter(|l| l.contains("listening on")).count();
    assert_eq!(listening, 1, "exactly one `listening on` line: {stderr:?}");
}

#[test]
fn a_client_waiting_at_the_cap_is_served_during_the_shutdown_delay() {
    let auth = local_auth_url();
    let mut proxy = Running::on_loopback(
        &auth,
        &[
            "--worker-threads",
            "1",
            "--max-connections",
            "1",
            "--shutdown-delay",
            "3s",
        ],
    );
    let addr = proxy.listening();
    let mut holder = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    let response = keep_alive_healthz(&mut holder, WAIT).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    let mut waiting = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    write!(waiting, "GET /healthz HTTP/1.1\r\nHost: proxy\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    proxy.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    // The slot frees during --shutdown-delay: the client accepted at the cap gets it.
    drop(holder);
    waiting.set_read_timeout(Some(WAIT)).unwrap();
    let response = read_healthz(&mut waiting);
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with(r#"{"status":"ok"}"#), "{response}");
    drop(waiting);
    let (status, stderr) = proxy.finish();
    assert_eq!(status.code(), Some(0), "stderr {stderr:?}");
}

#[test]
fn a_second_proxy_on_a_port_in_use_exits_2_whatever_the_worker_count() {
    let auth = local_auth_url();
    let mut proxy = Running::on_loopback(&auth, &["--worker-threads", "2"]);
    let addr = proxy.listening();
    let port = addr.to_string();
    for workers in ["1", "2"] {
        let second = run(
            &[
                "--listen",
                &port,
                "--auth-url",
                &auth,
                "--worker-threads",
                workers,
            ],
            &[],
        );
        assert_eq!(second.status.code(), Some(2), "{}", second.stderr);
        assert!(
            second.stderr.contains("--listen/LISTEN_ADDR: cannot bind")
                && second.stderr.contains("in use"),
            "{}",
            second.stderr
        );
    }
    assert_eq!(
        listening_sockets(addr.port()),
        2,
        "still only the first proxy's two"
    );
    proxy.signal("TERM");
    assert_eq!(proxy.finish().0.code(), Some(0));
}
