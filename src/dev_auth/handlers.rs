//! Routes a request to the dev service's four endpoints and answers it the way the reference
//! central auth service does.

use http::header::AUTHORIZATION;
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::reply::{self, detail, Reply};
use super::tokens::{TokenError, TokenKind};
use super::users::RegisterError;
use super::DevAuth;

/// Longest email kept (RFC 5321: 64-byte local part, `@`, 255-byte domain). The proxy's
/// `EmailStr` check never sends longer ones; this only bounds the table's memory.
const MAX_EMAIL_BYTES: usize = 320;

/// Answers one request; never fails, never panics on input.
pub async fn handle(auth: &DevAuth, request: Request<Incoming>) -> Reply {
    let post = request.method() == Method::POST;
    let get = request.method() == Method::GET;
    match request.uri().path() {
        "/register" if post => register(auth, request).await,
        "/login" if post => login(auth, request).await,
        "/refresh" if post => refresh(auth, request).await,
        "/protected" if get => protected(auth, &request),
        "/register" | "/login" | "/refresh" => reply::method_not_allowed("POST"),
        "/protected" => reply::method_not_allowed("GET"),
        _ => reply::not_found(),
    }
}

async fn register(auth: &DevAuth, request: Request<Incoming>) -> Reply {
    let body = match reply::read_body(request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (Some(email), Some(password)) = (
        non_empty_str(&value, "email"),
        non_empty_str(&value, "password"),
    ) else {
        return detail(StatusCode::BAD_REQUEST, "Email and password required");
    };
    if email.len() > MAX_EMAIL_BYTES {
        return detail(StatusCode::BAD_REQUEST, "Email too long");
    }
    match auth
        .users
        .register(email.to_owned(), password.to_owned())
        .await
    {
        Ok(()) => reply::json(
            StatusCode::OK,
            &json!({"message": "User registered successfully"}),
        ),
        Err(RegisterError::AlreadyExists) => detail(StatusCode::BAD_REQUEST, "User already exists"),
        Err(RegisterError::TableFull) => {
            detail(StatusCode::INSUFFICIENT_STORAGE, "User limit reached")
        }
        Err(RegisterError::Internal) => reply::internal_error(),
    }
}

async fn login(auth: &DevAuth, request: Request<Incoming>) -> Reply {
    let body = match reply::read_body(request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let invalid = || detail(StatusCode::UNAUTHORIZED, "Invalid credentials");
    // OAuth2 password form (RFC 6749 §4.3.2): the email travels as `username`.
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |name: &str| {
        fields
            .iter()
            .rev() // the last value wins, as Starlette's form parser does
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let (Some(email), Some(password)) = (field("username"), field("password")) else {
        return invalid();
    };
    if !auth.users.verify(&email, password).await {
        return invalid();
    }
    let issued = (
        auth.tokens.issue(&email, TokenKind::Access),
        auth.tokens.issue(&email, TokenKind::Refresh),
    );
    let (Ok(access), Ok(refresh)) = issued else {
        return reply::internal_error();
    };
    let body = json!({"access_token": access, "refresh_token": refresh, "token_type": "bearer"});
    reply::json(StatusCode::OK, &body)
}

async fn refresh(auth: &DevAuth, request: Request<Incoming>) -> Reply {
    let body = match reply::read_body(request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let token = value
        .get("refresh_token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let email = match auth.tokens.verify(token, TokenKind::Refresh) {
        Ok(email) => email,
        Err(TokenError::Expired) => {
            return detail(StatusCode::UNAUTHORIZED, "Refresh token expired")
        }
        Err(TokenError::Invalid) => {
            return detail(StatusCode::UNAUTHORIZED, "Invalid refresh token")
        }
    };
    let issued = (
        auth.tokens.issue(&email, TokenKind::Access),
        auth.tokens.issue(&email, TokenKind::Refresh),
    );
    let (Ok(access), Ok(refresh)) = issued else {
        return reply::internal_error();
    };
    reply::json(
        StatusCode::OK,
        &json!({"access_token": access, "refresh_token": refresh}),
    )
}

fn protected(auth: &DevAuth, request: &Request<Incoming>) -> Reply {
    let Some(token) = bearer_token(request) else {
        return reply::not_authenticated();
    };
    match auth.tokens.verify(token, TokenKind::Access) {
        Ok(email) => reply::json(
            StatusCode::OK,
            &json!({"message": format!("Access granted to {email}")}),
        ),
        Err(TokenError::Expired) => detail(StatusCode::UNAUTHORIZED, "Token expired"),
        Err(TokenError::Invalid) => detail(StatusCode::UNAUTHORIZED, "Invalid token"),
    }
}

/// The credentials of `Authorization: Bearer <token>`, parsed as `FastAPI`'s `HTTPBearer` does:
/// scheme case-insensitive, split at the first space, token trimmed and non-empty.
fn bearer_token<B>(request: &Request<B>) -> Option<&str> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn non_empty_str<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::bearer_token;
    use http::Request;

    fn with_auth(value: &str) -> Request<()> {
        Request::builder()
            .header("authorization", value)
            .body(())
            .unwrap_or_default()
    }

    #[test]
    fn bearer_parsing_follows_http_bearer() {
        assert_eq!(bearer_token(&with_auth("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&with_auth("bEaReR  abc ")), Some("abc"));
        for refused in ["Bearer", "Bearer ", "Basic abc", "Bearerabc", "Token abc"] {
            assert_eq!(bearer_token(&with_auth(refused)), None, "{refused}");
        }
        assert_eq!(bearer_token(&Request::new(())), None);
    }
}
