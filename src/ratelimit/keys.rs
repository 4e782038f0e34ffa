//! What a login attempt is counted under: the client reduced to what one client controls, and
//! keyed hashes of (client, username) so that no store ever holds a username.

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The HMAC key naming Redis keys when `--rate-limit-key` is not given. Public, so the names it
/// makes are pseudonyms only (a reader of Redis who guesses a username can test it); it is
/// fixed so that every replica names the same user's key alike without any setup.
pub const BUILT_IN_KEY: &[u8] = b"auth-proxy login rate limit, built-in key v1";

/// Prefix of every Redis key this proxy writes.
pub const REDIS_PREFIX: &str = "auth-proxy:login:";

/// A client as the limiter counts it: an IPv4 address (also when it arrived IPv4-mapped), or
/// the /64 network of an IPv6 address (one subscriber's usual allocation: a client that
/// rotates addresses inside its /64 is still one client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey([u8; 16]);

impl ClientKey {
    pub fn new(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientKey(v4.to_ipv6_mapped().octets()),
            IpAddr::V6(v6) => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                ClientKey(octets)
            }
        }
    }

    pub fn octets(&self) -> &[u8; 16] {
        &self.0
    }
}

/// A 64-bit SipHash of (client, username) under this process's random key: the in-memory
/// per-user key. A collision only merges two counters, and the key makes one unforgeable.
pub fn memory_key(hasher: &std::hash::RandomState, client: ClientKey, username: &[u8]) -> u64 {
    let mut h = hasher.build_hasher();
    h.write(client.octets());
    h.write(username);
    h.finish()
}

/// Names the Redis keys of an attempt: `PREFIX{u|ip}:` and 32 hex digits of HMAC-SHA256
/// under the `--rate-limit-key` (128 bits: collisions are out of reach, and neither the
/// username nor the address can be read back without the key).
#[derive(Clone)]
pub struct Namer(Hmac<Sha256>);

impl Namer {
    pub fn new(key: &[u8]) -> Result<Self, String> {
        <Hmac<Sha256> as Mac>::new_from_slice(key)
            .map(Namer)
            .map_err(|_| "--rate-limit-key: unusable HMAC key".to_owned())
    }

    /// `(per-user key, per-ip key)` of one attempt.
    pub fn names(&self, client: ClientKey, username: &[u8]) -> (String, String) {
        (
            self.name("u", &[client.octets(), username]),
            self.name("ip", &[client.octets()]),
        )
    }

    fn name(&self, kind: &str, parts: &[&[u8]]) -> String {
        let mut mac = self.0.clone();
        mac.update(kind.as_bytes());
        for part in parts {
            mac.update(part);
        }
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(REDIS_PREFIX.len() + kind.len() + 33);
        out.push_str(REDIS_PREFIX);
        out.push_str(kind);
        out.push(':');
        for byte in digest.iter().take(16) {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 15)]));
        }
        out
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_and_its_mapped_form_are_one_client() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(ClientKey::new(v4), ClientKey::new(mapped));
        assert_ne!(
            ClientKey::new(v4),
            ClientKey::new("192.0.2.8".parse().unwrap())
        );
    }

    #[test]
    fn ipv6_counts_per_64() {
        let parse = |s: &str| ClientKey::new(s.parse().unwrap());
        assert_eq!(parse("2001:db8:1:2:aaaa::1"), parse("2001:db8:1:2:ffff::9"));
        assert_ne!(parse("2001:db8:1:2::1"), parse("2001:db8:1:3::1"));
    }

    #[test]
    fn redis_names_hide_the_username_and_depend_on_the_key() {
        let client = ClientKey::new(IpAddr::from([198, 51, 100, 1]));
        let namer = Namer::new(b"0123456789abcdef").unwrap();
        let (user, ip) = namer.names(client, b"ada%40example.com");
        assert!(user.starts_with("auth-proxy:login:u:"), "{user}");
        assert_eq!(user.len(), "auth-proxy:login:u:".len() + 32);
        assert!(ip.starts_with("auth-proxy:login:ip:"), "{ip}");
        assert!(!user.contains("ada"));
        let (again, _) = Namer::new(b"0123456789abcdef")
            .unwrap()
            .names(client, b"ada%40example.com");
        assert_eq!(user, again, "replicas with one key agree");
        let (other_key, _) = Namer::new(b"fedcba9876543210")
            .unwrap()
            .names(client, b"ada%40example.com");
        assert_ne!(user, other_key);
        let (other_user, same_ip) = namer.names(client, b"bob");
        assert_ne!(user, other_user);
        assert_eq!(ip, same_ip);
    }
}
