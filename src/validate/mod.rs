//! Input validation (interim): minimal checks until the FastAPI-exact validators land.

use bytes::Bytes;

/// Why input was refused, with the response body already rendered.
pub enum Rejection {
    Unprocessable(Bytes),
    BadRequest(Bytes),
}

pub struct Register {
    pub email: String,
    pub password: String,
}

pub struct Login {
    pub username: String,
    pub password: String,
}

pub struct Refresh {
    pub refresh_token: String,
}

fn unprocessable() -> Rejection {
    Rejection::Unprocessable(Bytes::from_static(
        br#"{"detail":[{"type":"missing","loc":["body"],"msg":"Field required","input":null}]}"#,
    ))
}

#[derive(serde::Deserialize)]
struct RegisterJson {
    email: String,
    password: String,
}

#[derive(serde::Deserialize)]
struct RefreshJson {
    refresh_token: String,
}

#[derive(serde::Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

pub fn register(_content_type: Option<&[u8]>, body: &[u8]) -> Result<Register, Rejection> {
    let json: RegisterJson = serde_json::from_slice(body).map_err(|_| unprocessable())?;
    Ok(Register {
        email: json.email,
        password: json.password,
    })
}

pub fn login(_content_type: Option<&[u8]>, body: &[u8]) -> Result<Login, Rejection> {
    let form: LoginForm = serde_urlencoded::from_bytes(body).map_err(|_| unprocessable())?;
    Ok(Login {
        username: form.username,
        password: form.password,
    })
}

pub fn refresh(_content_type: Option<&[u8]>, body: &[u8]) -> Result<Refresh, Rejection> {
    let json: RefreshJson = serde_json::from_slice(body).map_err(|_| unprocessable())?;
    Ok(Refresh {
        refresh_token: json.refresh_token,
    })
}

impl Register {
    pub fn to_upstream_body(&self) -> Bytes {
        Bytes::from(serde_json::json!({"email": self.email, "password": self.password}).to_string())
    }
}

impl Login {
    pub fn to_upstream_body(&self) -> Bytes {
        let pairs = [
            ("grant_type", ""),
            ("username", self.username.as_str()),
            ("password", self.password.as_str()),
            ("scope", ""),
        ];
        Bytes::from(serde_urlencoded::to_string(pairs).unwrap_or_default())
    }
}

impl Refresh {
    pub fn to_upstream_body(&self) -> Bytes {
        Bytes::from(serde_json::json!({"refresh_token": self.refresh_token}).to_string())
    }
}

/// FastAPI's `HTTPBearer`: scheme `bearer` (any case), a non-empty token after the first space.
pub fn bearer_token(authorization: Option<&[u8]>) -> Option<&str> {
    let value = std::str::from_utf8(authorization?).ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
