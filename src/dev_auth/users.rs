//! The dev service's bounded in-memory user table: emails mapped to Argon2id password hashes.
//!
//! Hashing is deliberately slow, so it runs on tokio's blocking pool, at most a few at a time
//! (each hash holds `MEMORY_KIB` of memory), never on the async worker threads.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// Argon2id cost: 4 MiB of memory, 2 passes, 1 lane. OWASP's floor for production is
/// 19 MiB/2 passes; this is a development service whose users are test fixtures, and tests and
/// benches log in often, so it trades strength for speed (a few ms per hash in release builds).
/// It is still a salted, memory-hard hash: the passwords are never kept in plain text.
const MEMORY_KIB: u32 = 4 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// Why a registration was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum RegisterError {
    AlreadyExists,
    /// `--max-users` reached.
    TableFull,
    /// The hash could not be computed (blocking pool gone, or an argon2 error).
    Internal,
}

/// Emails → PHC hash strings, never more than `max_users` of them.
pub struct UserTable {
    users: Mutex<HashMap<String, String>>,
    max_users: usize,
    hasher: Argon2<'static>,
    hashing: Semaphore,
    /// Verified against when the email is unknown, so a login takes as long whether or not
    /// the user exists (no user enumeration by timing).
    decoy_hash: Option<String>,
}

impl UserTable {
    pub fn new(max_users: usize) -> Self {
        let params = Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap_or_default();
        let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let decoy_hash = hash(&hasher, b"decoy password for unknown users");
        let lanes = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            users: Mutex::new(HashMap::new()),
            max_users,
            hasher,
            hashing: Semaphore::new(lanes.max(2)),
            decoy_hash,
        }
    }

    /// Stores `email` with a fresh salted hash of `password`.
    pub async fn register(&self, email: String, password: String) -> Result<(), RegisterError> {
        // Cheap refusals first, so a full table or a duplicate costs no hashing.
        self.check_room(&email)?;
        let hasher = self.hasher.clone();
        let phc = self
            .blocking(move || hash(&hasher, password.as_bytes()))
            .await
            .flatten()
            .ok_or(RegisterError::Internal)?;
        // Checked again: another registration may have won the race while we hashed.
        let mut users = self.lock();
        if users.contains_key(&email) {
            return Err(RegisterError::AlreadyExists);
        }
        if users.len() >= self.max_users {
            return Err(RegisterError::TableFull);
        }
        users.insert(email, phc);
        Ok(())
    }

    /// Whether `password` is the one `email` registered with.
    pub async fn verify(&self, email: &str, password: String) -> bool {
        let stored = self.lock().get(email).cloned();
        let known = stored.is_some();
        let Some(phc) = stored.or_else(|| self.decoy_hash.clone()) else {
            return false;
        };
        let hasher = self.hasher.clone();
        let matches = self
            .blocking(move || {
                PasswordHash::new(&phc).is_ok_and(|parsed| {
                    hasher.verify_password(password.as_bytes(), &parsed).is_ok()
                })
            })
            .await
            .unwrap_or(false);
        known && matches
    }

    fn check_room(&self, email: &str) -> Result<(), RegisterError> {
        let users = self.lock();
        if users.contains_key(email) {
            Err(RegisterError::AlreadyExists)
        } else if users.len() >= self.max_users {
            Err(RegisterError::TableFull)
        } else {
            Ok(())
        }
    }

    /// Runs slow hashing work on the blocking pool, a bounded number at a time.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let _permit = self.hashing.acquire().await.ok()?;
        tokio::task::spawn_blocking(work).await.ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // A panic while holding the lock cannot leave the map half-updated (one insert), so a
        // poisoned lock is still safe to use.
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn hash(hasher: &Argon2<'static>, password: &[u8]) -> Option<String> {
    hasher
        .hash_password(password)
        .ok()
        .map(|phc| phc.to_string())
}

#[cfg(test)]
mod tests {
    use super::{RegisterError, UserTable};

    #[tokio::test]
    async fn register_verify_duplicate_and_full() {
        let users = UserTable::new(1);
        let email = "a@example.com".to_owned();
        assert_eq!(users.register(email.clone(), "pw".into()).await, Ok(()));
        assert!(users.verify(&email, "pw".into()).await);
        assert!(!users.verify(&email, "wrong".into()).await);
        assert!(!users.verify("b@example.com", "pw".into()).await);
        assert_eq!(
            users.register(email, "pw".into()).await,
            Err(RegisterError::AlreadyExists)
        );
        assert_eq!(
            users.register("b@example.com".into(), "pw".into()).await,
            Err(RegisterError::TableFull)
        );
    }

    #[test]
    fn stored_hashes_are_salted_argon2id() {
        let users = UserTable::new(1);
        let first = super::hash(&users.hasher, b"pw").unwrap_or_default();
        let second = super::hash(&users.hasher, b"pw").unwrap_or_default();
        assert!(
            first.starts_with("$argon2id$v=19$m=4096,t=2,p=1$"),
            "{first}"
        );
        assert_ne!(first, second, "each hash has its own salt");
    }
}
