//! The development central auth service: an in-process stand-in for the reference central
//! auth service (`/register`, `/login`, `/refresh`, `/protected`) that answers as that
//! service's current code does: 201 on registration, its models' FastAPI 422s (validated by
//! the proxy's own `validate` module: `RegisterRequest {email: str, password: str}`,
//! `OAuth2PasswordRequestForm` urlencoded or multipart, `RefreshRequest`), its 400s and 401s,
//! `OAuth2PasswordBearer` on `/protected`, the presented refresh token returned by `/refresh`.
//! The proxy's request path never imports this module; `--dev` and `auth-proxy dev-auth`
//! start it beside the proxy.
//!
//! Deliberately safer than the reference (the README lists these for its users):
//! - Tokens are HS256 JWTs with `sub`, `exp`, `iat`, `jti` and `typ` (`access` | `refresh`)
//!   claims, signed with a random 256-bit key from the OS for each process unless
//!   `--jwt-secret` is given; a refresh token is refused where an access token is expected
//!   and the other way round. Expiry has no leeway, and `exp <= now` counts as expired.
//! - Passwords are kept only as salted Argon2id hashes (4 MiB, 2 passes, 1 lane: see
//!   `users.rs` for why so light), computed on the blocking pool, a few at a time; an unknown
//!   email costs a login as long as a known one.
//! - The user table holds at most `--max-users` users; once full, `/register` answers
//!   `507 {"detail":"User limit reached"}` (507 Insufficient Storage, RFC 4918 §11.5: the
//!   request was fine, the server has no room for it; retrying will not help, unlike 503).
//! - Request bodies are capped at 16 KiB (413), emails at 320 bytes (400 "Email too long").
//! - A 422 leaves out an `input` that is or holds a secret, as the proxy's own 422s do.
//! - Nothing is logged but method, path and status.

mod args;
mod handlers;
mod reply;
mod server;
mod tokens;
mod users;

pub use args::{parse_ttl, DevAuthArgs, JwtSecret};
pub use server::serve;

use tokens::TokenIssuer;
use users::UserTable;

/// The dev service's shared state: the user table and the token signing key.
pub struct DevAuth {
    users: UserTable,
    tokens: TokenIssuer,
}

/// The OS random number generator failed, so no signing key could be made.
#[derive(Debug)]
pub struct KeyError(getrandom::Error);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot draw a JWT signing key from the OS: {}", self.0)
    }
}

impl std::error::Error for KeyError {}

impl DevAuth {
    /// Builds the service state from its flags.
    ///
    /// # Panics
    /// If `--jwt-secret` is absent and the OS random number generator fails; use
    /// [`DevAuth::try_new`] to handle that instead.
    pub fn new(args: &DevAuthArgs) -> Self {
        match Self::try_new(args) {
            Ok(auth) => auth,
            Err(err) => panic!("{err}"),
        }
    }

    /// Builds the service state, drawing a random signing key unless one was given.
    pub fn try_new(args: &DevAuthArgs) -> Result<Self, KeyError> {
        let mut random_key = [0u8; 32];
        let key: &[u8] = if let Some(secret) = &args.jwt_secret {
            secret.bytes()
        } else {
            getrandom::fill(&mut random_key).map_err(KeyError)?;
            &random_key
        };
        Ok(Self {
            users: UserTable::new(args.max_users),
            tokens: TokenIssuer::new(key, args.access_ttl, args.refresh_ttl),
        })
    }
}

impl std::fmt::Debug for DevAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevAuth").finish_non_exhaustive()
    }
}
