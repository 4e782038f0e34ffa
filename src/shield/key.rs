//! Keys for coalescing and the cache: a keyed 128-bit hash of a credential, never the credential.
//!
//! SipHash-1-3 with a random 128-bit key drawn once per process: nobody outside the process can
//! compute a key or aim two credentials at one, and 128 bits leave no birthday collision to find
//! among the few hundred thousand credentials a replica sees. Tokens themselves are never
//! stored, so a heap dump of the map or the cache holds no credential.

use std::hash::{BuildHasherDefault, Hasher};

use siphasher::sip128::{Hasher128, SipHasher13};

/// A credential's keyed hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(u128);

/// What a key is of: the same bytes as a bearer token and as a refresh body are different keys.
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
pub enum Domain {
    ProtectedToken = 1,
    RefreshBody = 2,
}

/// The per-process hash key.
pub struct Keyer {
    k0: u64,
    k1: u64,
}

impl Keyer {
    /// A fresh random key from the OS.
    pub fn random() -> Result<Self, String> {
        let mut seed = [0u8; 16];
        getrandom::fill(&mut seed).map_err(|e| format!("no randomness for cache keys: {e}"))?;
        let (k0, k1) = seed.split_at(8);
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
        Ok(Keyer {
            k0: word(k0),
            k1: word(k1),
        })
    }

    pub fn key(&self, domain: Domain, credential: &[u8]) -> Key {
        let mut hasher = SipHasher13::new_with_keys(self.k0, self.k1);
        hasher.write_u8(domain as u8);
        hasher.write(credential);
        Key(hasher.finish128().as_u128())
    }
}

/// Keys are already uniformly random: maps index them by their low 64 bits as they are.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached if a key is hashed some other way than `write_u128`; still spreads.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    #[allow(clippy::cast_possible_truncation)] // the low half, on purpose
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

pub type BuildKeyHasher = BuildHasherDefault<KeyHasher>;

#[cfg(test)]
impl Key {
    pub fn from_test(n: u128) -> Self {
        Key(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_the_process_key_the_domain_and_every_byte() {
        let (a, b) = (Keyer::random().unwrap(), Keyer::random().unwrap());
        let token = b"eyJhbGciOiJIUzI1NiJ9.e30.sig";
        assert_eq!(
            a.key(Domain::ProtectedToken, token),
            a.key(Domain::ProtectedToken, token)
        );
        assert_ne!(
            a.key(Domain::ProtectedToken, token),
            b.key(Domain::ProtectedToken, token)
        );
        assert_ne!(
            a.key(Domain::ProtectedToken, token),
            a.key(Domain::RefreshBody, token)
        );
        assert_ne!(
            a.key(Domain::ProtectedToken, token),
            a.key(Domain::ProtectedToken, b"eyJhbGciOiJIUzI1NiJ9.e30.sih")
        );
    }

    #[test]
    fn a_key_never_shows_the_credential() {
        let keyer = Keyer::random().unwrap();
        let key = keyer.key(Domain::ProtectedToken, b"secret-token");
        assert!(!format!("{key:?}").contains("secret"));
    }
}
