//! Routes a request to the dev service's four endpoints and answers it the way the reference
//! central auth service's current code does: its FastAPI models' 422s (through the proxy's own
//! validation), its 400s, 401s and 201, its `OAuth2PasswordBearer`.

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use super::reply::{self, detail, Reply};
use super::tokens::{TokenError, TokenKind};
use super::users::RegisterError;
use super::DevAuth;
use crate::validate;

/// Longest email kept (RFC 5321: 64-byte local part, `@`, 255-byte domain). The proxy's
/// `EmailStr` check never sends longer ones; this only bounds the table's memory.
const MAX_EMAIL_BYTES: usize = 320;

/// Answers one request; never fails, never panics on input.
pub async fn handle(auth: &DevAuth, request: Request<Incoming>) -> Reply {
    let post = request.method() == Method::POST;
    // FastAPI's `@app.get` route takes GET only: HEAD is a 405 there too.
    let get = request.method() == Method::GET;
    match request.uri().path() {
        "/register" if post => register(auth, request).await,
        "/login" if post => login(auth, request).await,
        "/refresh" if post => refresh(auth, request).await,
        "/protected" if get => protected(auth, &request),
        "/register" | "/login" | "/refresh" => reply::method_not_allowed("POST"),
        "/protected" => reply::method_not_allowed("GET"),
        "/register/" | "/login/" | "/refresh/" | "/protected/" => {
            reply::redirect_without_slash(&request)
        }
        _ => reply::not_found(),
    }
}

/// `RegisterRequest {email: str, password: str}`: any string is an email here, as there.
async fn register(auth: &DevAuth, request: Request<Incoming>) -> Reply {
    let content_type = request.headers().get(CONTENT_TYPE).cloned();
    let body = match reply::read_body(request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let content_type = content_type.as_ref().map(http::HeaderValue::as_bytes);
    let [email, password] = match validate::str_model(content_type, &body, ["email", "password"]) {
        Ok(fields) => fields,
        Err(rejection) => return reply::rejection(rejection),
    };
    if email.is_empty() || password.is_empty() {
        return detail(StatusCode::BAD_REQUEST, "Email and password required");
    }
    if email.len() > MAX_EMAIL_BYTES {
        return detail(StatusCode::BAD_REQUEST, "Email too long");
    }
    match auth.users.register(email, password).await {
        Ok(()) => reply::json(
            StatusCode::CREATED,
            &json!({"message": "User registered successfully"}),
        ),
        Err(RegisterError::AlreadyExists) => detail(StatusCode::BAD_REQUEST, "User already exists"),
        Err(RegisterError::TableFull) => {
            detail(StatusCode::INSUFFICIENT_STORAGE, "User limit reached")
        }
        Err(RegisterError::Internal) => reply::internal_error(),
    }
}

/// `OAuth2PasswordRequestForm`, urlencoded or multipart, exactly as the proxy validates it.
async fn login(auth: &DevAuth, request: Request<Incoming>) -> Reply {
    let content_type = request.headers().get(CONTENT_TYPE).cloned();
    let body = match reply::read_body(request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let content_type = content_type.as_ref().map(http::HeaderValue::as_bytes);
    let form = match validate::login(content_type, &body) {
        Ok(form) => form,
        Err(rejection) => return reply::rejection(rejection),
    };
    let email = form.username.into_owned();
    if !auth.users.verify(&email, form.password.into_owned()).await {
        return detail(StatusCode::UNAUTHORIZED, "Invalid credentials");
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

/// `RefreshRequest {refresh_token: str}`: a new access token, and the refresh token that was
/// presented (the reference service does not rotate it, so a session still ends when the
/// refresh token issued at login expires).
async fn refresh(auth: &DevAuth, request: Request<Incoming>) -> Reply {
    let content_type = request.headers().get(CONTENT_TYPE).cloned();
    let body = match reply::read_body(request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let content_type = content_type.as_ref().map(http::HeaderValue::as_bytes);
    let [token] = match validate::str_model(content_type, &body, ["refresh_token"]) {
        Ok(fields) => fields,
        Err(rejection) => return reply::rejection(rejection),
    };
    let email = match auth.tokens.verify(&token, TokenKind::Refresh) {
        Ok(email) => email,
        Err(TokenError::Expired) => {
            return detail(StatusCode::UNAUTHORIZED, "Refresh token expired")
        }
        Err(TokenError::Invalid) => {
            return detail(StatusCode::UNAUTHORIZED, "Invalid refresh token")
        }
    };
    let Ok(access) = auth.tokens.issue(&email, TokenKind::Access) else {
        return reply::internal_error();
    };
    reply::json(
        StatusCode::OK,
        &json!({"access_token": access, "refresh_token": token}),
    )
}

/// `OAuth2PasswordBearer`: no usable scheme is "Not authenticated"; a bearer scheme with a
/// bad or empty token is the route's own "Invalid token".
fn protected(auth: &DevAuth, request: &Request<Incoming>) -> Reply {
    let authorization = request.headers().get(AUTHORIZATION);
    let Some(token) = validate::oauth2_bearer_token(authorization.map(http::HeaderValue::as_bytes))
    else {
        return reply::not_authenticated();
    };
    // A token that is not UTF-8 is no JWT: refused like any other bad token.
    let token = std::str::from_utf8(token).unwrap_or_default();
    match auth.tokens.verify(token, TokenKind::Access) {
        Ok(email) => reply::json(
            StatusCode::OK,
            &json!({"message": format!("Access granted to {email}")}),
        ),
        Err(TokenError::Expired) => detail(StatusCode::UNAUTHORIZED, "Token expired"),
        Err(TokenError::Invalid) => detail(StatusCode::UNAUTHORIZED, "Invalid token"),
    }
}
