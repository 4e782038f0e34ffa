//! The development central auth service over real sockets: the reference API's flow, status
//! codes and exact bodies, token kinds and expiry, and its bounds. (`tests/dev_parity.rs`
//! replays requests recorded from the reference service itself.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth_proxy::dev_auth::{self, DevAuth, DevAuthArgs};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// `unwrap` for test set-up steps, with the error in the panic message.
trait Must<T> {
    fn must(self) -> T;
}

impl<T, E: std::fmt::Display> Must<T> for Result<T, E> {
    fn must(self) -> T {
        self.unwrap_or_else(|e| panic!("{e}"))
    }
}

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

/// A running dev service; dropping it shuts the service down.
struct DevService {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn spawn_dev_auth(args: DevAuthArgs) -> DevService {
    let listener = TcpListener::bind("127.0.0.1:0").await.must();
    let addr = listener.local_addr().must();
    let (stop, stopped) = oneshot::channel::<()>();
    let auth = Arc::new(DevAuth::new(&args));
    tokio::spawn(dev_auth::serve(listener, auth, async move {
        let _ = stopped.await;
    }));
    DevService { addr, _stop: stop }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    /// Asserts status, `content-type: application/json` and the exact body bytes.
    fn assert(&self, status: StatusCode, body: &str) {
        assert_eq!(self.status, status, "body: {:?}", self.body);
        assert_eq!(self.headers["content-type"], "application/json");
        assert_eq!(std::str::from_utf8(&self.body), Ok(body));
    }

    /// Asserts status, content type and the body `{"detail":"<message>"}`.
    fn detail(&self, status: StatusCode, message: &str) {
        self.assert(status, &format!(r#"{{"detail":"{message}"}}"#));
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    fn token(&self, name: &str) -> String {
        self.json()[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name}"))
            .to_owned()
    }
}

impl DevService {
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let stream = TcpStream::connect(self.addr).await.must();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .must();
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "dev");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body.to_owned()))).must();
        let response = sender.send_request(request).await.must();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.must().to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    async fn register(&self, body: &str) -> Answer {
        self.send(Method::POST, "/register", JSON, body).await
    }

    async fn login(&self, form: &str) -> Answer {
        let urlencoded = [("content-type", "application/x-www-form-urlencoded")];
        self.send(Method::POST, "/login", &urlencoded, form).await
    }

    async fn refresh(&self, token: &str) -> Answer {
        let body = serde_json::json!({ "refresh_token": token }).to_string();
        self.send(Method::POST, "/refresh", JSON, &body).await
    }

    async fn protected(&self, token: &str) -> Answer {
        let bearer = format!("Bearer {token}");
        self.send(Method::GET, "/protected", &[("authorization", &bearer)], "")
            .await
    }
}

const ALICE: &str = r#"{"email":"alice@example.com","password":"s3cret"}"#;
const ALICE_FORM: &str = "grant_type=password&username=alice%40example.com&password=s3cret";

const REGISTERED: &str = r#"{"message":"User registered successfully"}"#;
const EXISTS: &str = "User already exists";
const BAD_LOGIN: &str = "Invalid credentials";
const GRANTED: &str = r#"{"message":"Access granted to alice@example.com"}"#;
const INVALID_TOKEN: &str = "Invalid token";

/// Registers alice and logs her in: (access token, refresh token).
async fn alice_tokens(dev: &DevService) -> (String, String) {
    dev.register(ALICE)
        .await
        .assert(StatusCode::CREATED, REGISTERED);
    let login = dev.login(ALICE_FORM).await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.headers["content-type"], "application/json");
    assert_eq!(login.json()["token_type"], "bearer");
    (login.token("access_token"), login.token("refresh_token"))
}

#[tokio::test]
async fn register_once_then_login_with_the_right_password_only() {
    let dev = spawn_dev_auth(DevAuthArgs::default()).await;
    let (access, _) = alice_tokens(&dev).await;
    dev.register(ALICE)
        .await
        .detail(StatusCode::BAD_REQUEST, EXISTS);
    let wrong = dev.login("username=alice%40example.com&password=wrong");
    wrong.await.detail(StatusCode::UNAUTHORIZED, BAD_LOGIN);
    let unknown = dev.login("username=bob%40example.com&password=s3cret");
    unknown.await.detail(StatusCode::UNAUTHORIZED, BAD_LOGIN);
    dev.protected(&access).await.assert(StatusCode::OK, GRANTED);
}

#[tokio::test]
async fn login_takes_multipart_forms_as_browsers_send_them() {
    let dev = spawn_dev_auth(DevAuthArgs::default()).await;
    dev.register(ALICE)
        .await
        .assert(StatusCode::CREATED, REGISTERED);
    let boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    let form = |password: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice@example.com\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n{password}\r\n--{boundary}--\r\n"
        )
    };
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let multipart = [("content-type", content_type.as_str())];
    let login = dev
        .send(Method::POST, "/login", &multipart, &form("s3cret"))
        .await;
    assert_eq!(login.status, StatusCode::OK, "body: {:?}", login.body);
    assert_eq!(login.headers["content-type"], "application/json");
    dev.protected(&login.token("access_token"))
        .await
        .assert(StatusCode::OK, GRANTED);
    dev.send(Method::POST, "/login", &multipart, &form("wrong"))
        .await
        .detail(StatusCode::UNAUTHORIZED, BAD_LOGIN);
}

#[tokio::test]
async fn login_input_is_validated_as_oauth2_password_request_form() {
    let dev = spawn_dev_auth(DevAuthArgs::default()).await;
    dev.login("password=s3cret").await.assert(
        StatusCode::UNPROCESSABLE_ENTITY,
        r#"{"detail":[{"type":"missing","loc":["body","username"],"msg":"Field required","input":null}]}"#,
    );
    dev.login("grant_type=client_credentials&username=a&password=b")
        .await
        .assert(
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"detail":[{"type":"string_pattern_mismatch","loc":["body","grant_type"],"msg":"String should match pattern '^password$'","input":"client_credentials","ctx":{"pattern":"^password$"}}]}"#,
        );
    let no_boundary = [("content-type", "multipart/form-data")];
    dev.send(Method::POST, "/login", &no_boundary, "x")
        .await
        .detail(StatusCode::BAD_REQUEST, "Missing boundary in multipart.");
}

#[tokio::test]
async fn access_and_refresh_tokens_only_do_their_own_job() {
    let dev = spawn_dev_auth(DevAuthArgs::default()).await;
    let (access, refresh) = alice_tokens(&dev).await;
    dev.protected(&refresh)
        .await
        .detail(StatusCode::UNAUTHORIZED, INVALID_TOKEN);
    dev.protected("not.a.jwt")
        .await
        .detail(StatusCode::UNAUTHORIZED, INVALID_TOKEN);
    let invalid_refresh = r#"{"detail":"Invalid refresh token"}"#;
    dev.refresh(&access)
        .await
        .assert(StatusCode::UNAUTHORIZED, invalid_refresh);

    let renewed = dev.refresh(&refresh).await;
    assert_eq!(renewed.status, StatusCode::OK);
    assert_eq!(renewed.headers["content-type"], "application/json");
    let json = renewed.json();
    let keys: Vec<&String> = json
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["access_token", "refresh_token"]);
    let new_access = renewed.token("access_token");
    dev.protected(&new_access)
        .await
        .assert(StatusCode::OK, GRANTED);
    // As the reference service, /refresh hands back the refresh token it was given: a session
    // still ends when the refresh token issued at login expires.
    assert_eq!(renewed.token("refresh_token"), refresh);
}

#[tokio::test]
async fn register_refuses_empty_strings_with_400_as_the_reference_does() {
    let dev = spawn_dev_auth(DevAuthArgs::default()).await;
    for body in [
        r#"{"email":"","password":"x"}"#,
        r#"{"email":"a@example.com","password":""}"#,
        r#"{"email":"","password":"","x":1}"#,
    ] {
        dev.register(body)
            .await
            .detail(StatusCode::BAD_REQUEST, "Email and password required");
    }
}

#[tokio::test]
async fn register_and_refresh_bodies_get_their_models_422s() {
    let dev = spawn_dev_auth(DevAuthArgs::default()).await;
    let not_an_object = r#"{"detail":[{"type":"model_attributes_type","loc":["body"],"msg":"Input should be a valid dictionary or object to extract fields from","input":"#;
    let missing_body =
        r#"{"detail":[{"type":"missing","loc":["body"],"msg":"Field required","input":null}]}"#;
    for (body, expected) in [
        (r#"{"email":"a@example.com"}"#.to_owned(), r#"{"detail":[{"type":"missing","loc":["body","password"],"msg":"Field required"}]}"#.to_owned()),
        ("[1]".to_owned(), format!("{not_an_object}[1]}}]}}")),
        (String::new(), missing_body.to_owned()),
        ("{".to_owned(), r#"{"detail":[{"type":"json_invalid","loc":["body",1],"msg":"JSON decode error","input":{},"ctx":{"error":"Expecting property name enclosed in double quotes"}}]}"#.to_owned()),
    ] {
        dev.register(&body)
            .await
            .assert(StatusCode::UNPROCESSABLE_ENTITY, &expected);
    }
    let form = [("content-type", "application/x-www-form-urlencoded")];
    dev.send(Method::POST, "/register", &form, "email=a&password=b")
        .await
        .assert(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!(r#"{not_an_object}"email=a&password=b"}}]}}"#),
        );
    dev.send(Method::POST, "/refresh", JSON, "")
        .await
        .assert(StatusCode::UNPROCESSABLE_ENTITY, missing_body);
    dev.send(Method::POST, "/refresh", JSON, "{}").await.assert(
        StatusCode::UNPROCESSABLE_ENTITY,
        r#"{"detail":[{"type":"missing","loc":["body","refresh_token"],"msg":"Field required"}]}"#,
    );
}

#[tokio::test]
async fn a_missing_or_foreign_scheme_is_not_authenticated() {
    let dev = spawn_dev_auth(DevAuthArgs::default()).await;
    let not_authenticated = "Not authenticated";
    let none = dev.send(Method::GET, "/protected", &[], "").await;
    none.detail(StatusCode::UNAUTHORIZED, not_authenticated);
    assert_eq!(none.headers["www-authenticate"], "Bearer");
    for value in ["Basic abc", "Bearerabc", ""] {
        let answer = dev
            .send(Method::GET, "/protected", &[("authorization", value)], "")
            .await;
        answer.detail(StatusCode::UNAUTHORIZED, not_authenticated);
        assert_eq!(answer.headers["www-authenticate"], "Bearer");
    }
    // OAuth2PasswordBearer lets a bearer scheme without a token through to the route.
    let empty = dev
        .send(
            Method::GET,
            "/protected",
            &[("authorization", "Bearer")],
            "",
        )
        .await;
    empty.detail(StatusCode::UNAUTHORIZED, INVALID_TOKEN);
    assert!(!empty.headers.contains_key("www-authenticate"));
}

#[tokio::test]
async fn expired_tokens_are_refused_with_their_own_message() {
    let args = DevAuthArgs {
        access_ttl: Duration::ZERO,
        refresh_ttl: Duration::ZERO,
        ..DevAuthArgs::default()
    };
    let dev = spawn_dev_auth(args).await;
    dev.register(ALICE)
        .await
        .assert(StatusCode::CREATED, REGISTERED);
    let login = dev.login(ALICE_FORM).await;
    assert_eq!(login.status, StatusCode::OK);
    let expired = dev.protected(&login.token("access_token")).await;
    expired.detail(StatusCode::UNAUTHORIZED, "Token expired");
    let expired = dev.refresh(&login.token("refresh_token")).await;
    expired.detail(StatusCode::UNAUTHORIZED, "Refresh token expired");
}

#[tokio::test]
async fn a_full_user_table_refuses_with_507() {
    let dev = spawn_dev_auth(DevAuthArgs {
        max_users: 1,
        ..DevAuthArgs::default()
    })
    .await;
    dev.register(ALICE)
        .await
        .assert(StatusCode::CREATED, REGISTERED);
    let bob = r#"{"email":"bob@example.com","password":"pw"}"#;
    dev.register(bob)
        .await
        .detail(StatusCode::INSUFFICIENT_STORAGE, "User limit reached");
    // Full is not a reason to lose track of who exists.
    dev.register(ALICE)
        .await
        .detail(StatusCode::BAD_REQUEST, EXISTS);
}

#[tokio::test]
async fn unknown_paths_wrong_methods_and_big_bodies() {
    let dev = spawn_dev_auth(DevAuthArgs::default()).await;
    dev.send(Method::GET, "/nope", &[], "")
        .await
        .detail(StatusCode::NOT_FOUND, "Not Found");
    let wrong = dev.send(Method::GET, "/login", &[], "").await;
    wrong.detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    assert_eq!(wrong.headers["allow"], "POST");
    let wrong = dev.send(Method::POST, "/protected", &[], "").await;
    assert_eq!(wrong.headers["allow"], "GET");
    let huge = format!(
        r#"{{"email":"a@example.com","password":"{}"}}"#,
        "x".repeat(20_000)
    );
    dev.register(&huge)
        .await
        .detail(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
}

#[tokio::test]
async fn serve_returns_once_shutdown_resolves() {
    let listener = TcpListener::bind("127.0.0.1:0").await.must();
    let auth = Arc::new(DevAuth::new(&DevAuthArgs::default()));
    let served = dev_auth::serve(listener, auth, async {});
    let result = tokio::time::timeout(Duration::from_secs(5), served).await;
    assert!(
        matches!(result, Ok(Ok(()))),
        "serve did not stop: {result:?}"
    );
}
