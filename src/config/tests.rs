//! Unit tests of CLI parsing, defaults and value syntax.

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("auth-proxy").chain(args.iter().copied()))
}

#[test]
fn durations_need_a_unit() {
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
    assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
    assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
    for bad in [
        "10",
        "",
        "s",
        "1.5s",
        "-1s",
        "5 s",
        "5sec",
        "99999999999999999999h",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
    }
}

#[test]
fn defaults_match_the_contract() {
    let cli = parse(&[]).expect("defaults parse");
    let config = Config::from_cli(&cli).expect("defaults are valid");
    assert_eq!(cli.listen, "127.0.0.1:8000".parse().expect("addr"));
    assert_eq!(config.auth_url.to_string(), DEFAULT_AUTH_URL);
    assert_eq!(config.connect_timeout, Duration::from_secs(3));
    assert_eq!(config.upstream_timeout, Duration::from_secs(10));
    assert_eq!(config.client_header_timeout, Duration::from_secs(10));
    assert_eq!(config.client_body_timeout, Duration::from_secs(10));
    assert_eq!(config.client_send_timeout, Duration::from_secs(10));
    assert_eq!(config.upstream_max_connections, 256);
    assert_eq!(config.shutdown_grace, Duration::from_secs(30));
    assert_eq!(config.shutdown_delay, Duration::ZERO);
    assert_eq!(config.max_body_bytes, 65_536);
    assert_eq!(config.max_connections, 25_000);
    assert_eq!(config.pool_idle_timeout, Duration::from_secs(4));
    assert!(config.trusted_proxies.is_empty());
    // `Config::new` (what tests and embedders start from) restates these defaults; keep the
    // two from drifting apart.
    let restated = Config::new(config.auth_url.clone());
    assert_eq!(format!("{restated:?}"), format!("{config:?}"));
}

#[test]
fn auth_url_keeps_its_path_prefix() {
    let url = parse_auth_url("https://h.example/api/").expect("valid");
    assert_eq!(url.path("/login"), "/api/login");
    assert_eq!(url.origin(), "https://h.example/");
    let url = parse_auth_url("http://127.0.0.1:9000").expect("valid");
    assert_eq!(url.path("/login"), "/login");
    assert_eq!(url.origin(), "http://127.0.0.1:9000/");
    assert_eq!(url.host, "127.0.0.1:9000");
}

#[test]
fn auth_url_rejects_other_schemes_and_queries() {
    for bad in [
        "ftp://h",
        "h.example",
        "https://h/api?x=1",
        "https://user:pw@h",
        "/path",
    ] {
        assert!(parse_auth_url(bad).is_err(), "{bad} should be rejected");
    }
}

#[test]
fn trusted_proxies_take_cidrs_and_addresses() {
    let cli = parse(&["--trusted-proxies", "10.0.0.0/8,::1,192.168.1.7"]).expect("valid");
    let shown: Vec<String> = cli
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(shown, ["10.0.0.0/8", "::1/128", "192.168.1.7/32"]);
    assert!(parse(&["--trusted-proxies", "10.0.0.0/33"]).is_err());
}

#[test]
fn bare_numbers_and_unknown_flags_are_errors() {
    assert!(parse(&["--upstream-timeout", "10"]).is_err());
    assert!(parse(&["--no-such-flag"]).is_err());
    assert!(parse(&["--max-connections", "0"]).is_err());
}

#[test]
fn ca_file_must_exist_and_hold_a_certificate() {
    let missing = std::path::Path::new("/nonexistent/ca.pem");
    assert!(load_ca_file(missing).is_err());
    let dir = std::env::temp_dir().join(format!("auth-proxy-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").expect("write");
    let err = load_ca_file(&empty).expect_err("no certificate");
    assert!(err.contains("holds no certificate"), "{err}");
}

#[test]
fn sizes_take_bytes_or_units() {
    assert_eq!(parse_size("1024"), Ok(1024));
    assert_eq!(parse_size("64KiB"), Ok(65_536));
    assert_eq!(parse_size("1MiB"), Ok(1_048_576));
    assert_eq!(parse_size("2KB"), Ok(2000));
    for bad in ["", "KiB", "1.5KiB", "-1", "1GiB", "99999999999999999999MiB"] {
        assert!(parse_size(bad).is_err(), "{bad} should be rejected");
    }
}
