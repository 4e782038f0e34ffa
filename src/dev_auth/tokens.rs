//! Issues and checks the dev service's HS256 JWTs: access and refresh tokens that cannot
//! stand in for each other.

use std::fmt::Write as _;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Which job a token was issued for; carried in the `typ` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

/// Why a presented token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Well-formed, signed by us, of the right kind, but past its `exp`.
    Expired,
    /// Anything else: bad signature, malformed, wrong kind, wrong algorithm.
    Invalid,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    iat: u64,
    typ: TokenKind,
    /// Random, so two tokens issued in the same second still differ.
    jti: String,
}

/// Signs and verifies tokens with one HS256 key.
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

impl TokenIssuer {
    pub fn new(key: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        // `exp <= now` is expired (the library alone only rejects `exp < now`), so a 0s TTL
        // yields tokens that are expired at once: expiry is testable without sleeping.
        validation.reject_tokens_expiring_in_less_than = 1;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            access_ttl,
            refresh_ttl,
        }
    }

    /// A signed token of `kind` for `subject`, valid from now for that kind's TTL.
    pub fn issue(
        &self,
        subject: &str,
        kind: TokenKind,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let ttl = match kind {
            TokenKind::Access => self.access_ttl,
            TokenKind::Refresh => self.refresh_ttl,
        };
        let iat = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: subject.to_owned(),
            exp: iat.saturating_add(ttl.as_secs()),
            iat,
            typ: kind,
            jti: random_id(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The subject of a valid token of `kind`.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<String, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        if data.claims.typ == kind {
            Ok(data.claims.sub)
        } else {
            Err(TokenError::Invalid)
        }
    }
}

/// 128 random bits as hex. If the OS RNG fails the id is empty: that costs uniqueness only,
/// never safety, since the signature still covers every claim.
fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        return String::new();
    }
    bytes
        .iter()
        .fold(String::with_capacity(32), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use super::{TokenError, TokenIssuer, TokenKind};
    use std::time::Duration;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn issuer(access_secs: u64) -> TokenIssuer {
        TokenIssuer::new(
            KEY,
            Duration::from_secs(access_secs),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn a_token_verifies_only_as_its_own_kind() {
        let issuer = issuer(60);
        let access = issuer
            .issue("a@example.com", TokenKind::Access)
            .unwrap_or_default();
        let refresh = issuer
            .issue("a@example.com", TokenKind::Refresh)
            .unwrap_or_default();
        assert_eq!(
            issuer.verify(&access, TokenKind::Access),
            Ok("a@example.com".into())
        );
        assert_eq!(
            issuer.verify(&refresh, TokenKind::Refresh),
            Ok("a@example.com".into())
        );
        assert_eq!(
            issuer.verify(&access, TokenKind::Refresh),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            issuer.verify(&refresh, TokenKind::Access),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn zero_ttl_is_expired_at_once() {
        let issuer = issuer(0);
        let access = issuer
            .issue("a@example.com", TokenKind::Access)
            .unwrap_or_default();
        assert_eq!(
            issuer.verify(&access, TokenKind::Access),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn foreign_keys_and_garbage_are_invalid() {
        let other = TokenIssuer::new(&[7u8; 32], Duration::from_secs(60), Duration::ZERO);
        let token = other
            .issue("a@example.com", TokenKind::Access)
            .unwrap_or_default();
        let issuer = issuer(60);
        assert_eq!(
            issuer.verify(&token, TokenKind::Access),
            Err(TokenError::Invalid)
        );
        for junk in ["", "abc", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
            assert_eq!(
                issuer.verify(junk, TokenKind::Access),
                Err(TokenError::Invalid)
            );
        }
    }

    #[test]
    fn tokens_issued_together_differ() {
        let issuer = issuer(60);
        let first = issuer
            .issue("a@example.com", TokenKind::Access)
            .unwrap_or_default();
        let second = issuer
            .issue("a@example.com", TokenKind::Access)
            .unwrap_or_default();
        assert_ne!(first, second);
    }
}
