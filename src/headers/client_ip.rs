//! The client's address for per-client decisions: the peer, or behind `--trusted-proxies` the
//! rightmost `X-Forwarded-For` entry that is not itself a trusted proxy (nginx's `real_ip`
//! with `real_ip_recursive on`).
//!
//! Entries left of the first untrusted one were written by whoever that client is, so they are
//! never believed: a client cannot pick the address it is throttled under. An entry that is
//! not an address ends the walk at the trusted hop that passed it on.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

use super::X_FORWARDED_FOR;

/// Whether `ip` is inside `--trusted-proxies` (IPv4-mapped IPv6 compared as IPv4).
pub fn is_trusted_proxy(proxies: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    proxies.iter().any(|net| net.contains(&ip))
}

/// The client of a request from `peer` (`peer_trusted`: inside `proxies`, decided per connection).
pub fn client_ip(
    incoming: &HeaderMap,
    peer: IpAddr,
    peer_trusted: bool,
    proxies: &[IpNet],
) -> IpAddr {
    let mut client = peer.to_canonical();
    if !peer_trusted {
        return client;
    }
    // Later lines were appended by later hops: walk the lines, then their entries, from the right.
    for value in incoming.get_all(X_FORWARDED_FOR).iter().rev() {
        let Ok(text) = value.to_str() else {
            return client;
        };
        for entry in text.rsplit(',').map(str::trim).filter(|e| !e.is_empty()) {
            let Some(ip) = parse_entry(entry) else {
                return client;
            };
            client = ip;
            if !is_trusted_proxy(proxies, ip) {
                return client;
            }
        }
    }
    client
}

/// An address, bare or with a port (`192.0.2.1:443`, `[2001:db8::1]:443`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn proxies() -> Vec<IpNet> {
        vec![
            "10.0.0.0/8".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ]
    }

    fn client(xff: &[&str], peer: &str) -> String {
        let mut headers = HeaderMap::new();
        for line in xff {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(line).unwrap());
        }
        let peer: IpAddr = peer.parse().unwrap();
        let trusted = is_trusted_proxy(&proxies(), peer);
        client_ip(&headers, peer, trusted, &proxies()).to_string()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        assert_eq!(client(&["198.51.100.7"], "203.0.113.5"), "203.0.113.5");
        assert_eq!(client(&[], "::ffff:203.0.113.5"), "203.0.113.5");
    }

    #[test]
    fn the_rightmost_untrusted_entry_behind_trusted_proxies() {
        assert_eq!(client(&["198.51.100.7"], "10.0.0.1"), "198.51.100.7");
        // A spoofed entry left of the real client is never believed.
        assert_eq!(
            client(&["1.1.1.1, 198.51.100.7, 10.0.0.2"], "10.0.0.1"),
            "198.51.100.7"
        );
        // Several lines are one list, in order.
        assert_eq!(
            client(&["1.1.1.1, 198.51.100.7", "10.0.0.2"], "10.0.0.1"),
            "198.51.100.7"
        );
        assert_eq!(
            client(&["[2001:db9::1]:443", "2001:db8::5"], "10.0.0.1"),
            "2001:db9::1"
        );
        assert_eq!(client(&["198.51.100.7:5555"], "10.0.0.1"), "198.51.100.7");
    }

    #[test]
    fn all_trusted_or_garbage_stops_at_the_last_trusted_hop() {
        assert_eq!(client(&["10.1.1.1, 10.2.2.2"], "10.0.0.1"), "10.1.1.1");
        assert_eq!(client(&[], "10.0.0.1"), "10.0.0.1");
        assert_eq!(client(&["198.51.100.7, unknown"], "10.0.0.1"), "10.0.0.1");
        assert_eq!(
            client(&["198.51.100.7, garbage, 10.0.0.3"], "10.0.0.1"),
            "10.0.0.3"
        );
    }
}
