//! Clients of the proxy: a raw HTTP/1 socket for exact bytes, and hyper's HTTP/1.1 and HTTP/2 clients.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::{within, WAIT};

/// A whole response as the client received it.
#[derive(Debug)]
pub struct Received {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    /// The single value of `name`, failing the test if it is repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.headers.get_all(name).iter();
        let first = values.next()?;
        assert!(values.next().is_none(), "{name} returned more than once");
        Some(first.to_str().expect("header value is text"))
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().expect("header value is text"))
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A JSON answer made by the proxy: `status`, `Content-Type: application/json`, exactly `body`.
    pub fn assert_json(&self, status: u16, body: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "status; body {:?}",
            self.text()
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(self.text(), body);
    }

    /// A JSON answer `{"detail": "<some text>"}` with `status`.
    pub fn assert_detail(&self, status: u16) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "status; body {:?}",
            self.text()
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        let body = super::json(&self.body);
        let object = body.as_object().expect("a JSON object");
        assert_eq!(object.len(), 1, "only `detail`: {body}");
        assert!(
            object["detail"].as_str().is_some_and(|s| !s.is_empty()),
            "detail is a message: {body}"
        );
    }

    async fn collect(response: Response<Incoming>) -> Self {
        let (parts, body) = response.into_parts();
        let body = within(WAIT, "response body", body.collect())
            .await
            .expect("response body")
            .to_bytes();
        Received {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
        }
    }
}

/// `GET path`.
pub fn get(path: &str) -> Request<Full<Bytes>> {
    request("GET", path, None, "")
}

/// `GET /protected` with `Authorization: Bearer {token}`.
pub fn protected(token: &str) -> Request<Full<Bytes>> {
    get("/protected").with("authorization", &format!("Bearer {token}"))
}

/// `POST path` with `Content-Type: application/json`.
pub fn post_json(path: &str, body: &str) -> Request<Full<Bytes>> {
    request("POST", path, Some("application/json"), body)
}

/// `POST path` with `Content-Type: application/x-www-form-urlencoded`.
pub fn post_form(path: &str, body: &str) -> Request<Full<Bytes>> {
    request(
        "POST",
        path,
        Some("application/x-www-form-urlencoded"),
        body,
    )
}

pub fn request(
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    builder
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request")
}

/// Adds a header to a request, builder-style.
pub trait WithHeader: Sized {
    #[must_use]
    fn with(self, name: &str, value: &str) -> Self;
}

impl WithHeader for Request<Full<Bytes>> {
    fn with(mut self, name: &str, value: &str) -> Self {
        self.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
        self
    }
}

/// A TCP connection to the proxy, for a hyper client.
async fn dial(addr: SocketAddr) -> TokioIo<TcpStream> {
    let stream = within(WAIT, "connect", TcpStream::connect(addr))
        .await
        .expect("connect to the proxy");
    TokioIo::new(stream)
}

/// One hyper HTTP/1.1 client connection.
pub struct H1 {
    addr: SocketAddr,
    sender: http1::SendRequest<Full<Bytes>>,
    connection: JoinHandle<hyper::Result<()>>,
}

impl H1 {
    pub async fn connect(addr: SocketAddr) -> Self {
        let (sender, connection) = http1::handshake(dial(addr).await)
            .await
            .expect("HTTP/1 handshake");
        H1 {
            addr,
            sender,
            connection: tokio::spawn(connection),
        }
    }

    /// Sends `request` (adding `Host` if it has none) and returns the response head, body unread.
    pub async fn try_send_streaming(
        &mut self,
        mut request: Request<Full<Bytes>>,
    ) -> hyper::Result<Response<Incoming>> {
        if !request.headers().contains_key(http::header::HOST) {
            let host = HeaderValue::from_str(&self.addr.to_string()).expect("host");
            request.headers_mut().insert(http::header::HOST, host);
        }
        within(WAIT, "response head", async {
            self.sender.ready().await?;
            self.sender.send_request(request).await
        })
        .await
    }

    pub async fn send_streaming(&mut self, request: Request<Full<Bytes>>) -> Response<Incoming> {
        self.try_send_streaming(request)
            .await
            .expect("a response from the proxy")
    }

    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Received {
        Received::collect(self.send_streaming(request).await).await
    }

    /// Whether the proxy closed this connection within `limit`.
    pub async fn closed_within(&mut self, limit: Duration) -> bool {
        tokio::time::timeout(limit, &mut self.connection)
            .await
            .is_ok()
    }
}

/// One hyper HTTP/2 prior-knowledge (h2c) client connection; requests may run concurrently.
pub struct H2 {
    addr: SocketAddr,
    sender: http2::SendRequest<Full<Bytes>>,
    connection: JoinHandle<hyper::Result<()>>,
}

impl H2 {
    pub async fn connect(addr: SocketAddr) -> Self {
        let (sender, connection) = http2::handshake(TokioExecutor::new(), dial(addr).await)
            .await
            .expect("HTTP/2 handshake");
        H2 {
            addr,
            sender,
            connection: tokio::spawn(connection),
        }
    }

    /// Sends `request` with its path made absolute (`:authority` = the proxy's address).
    pub async fn send(&self, mut request: Request<Full<Bytes>>) -> Received {
        let uri = format!("http://{}{}", self.addr, request.uri());
        *request.uri_mut() = uri.parse().expect("absolute URI");
        let mut sender = self.sender.clone();
        let response = within(WAIT, "HTTP/2 response head", async move {
            sender.ready().await?;
            sender.send_request(request).await
        })
        .await
        .expect("a response from the proxy");
        Received::collect(response).await
    }
}

impl Drop for H1 {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Drop for H2 {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// A raw TCP connection speaking HTTP/1 byte for byte, for what a client library would hide.
pub struct RawConn {
    stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl RawConn {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = within(WAIT, "connect", TcpStream::connect(addr))
            .await
            .expect("connect to the proxy");
        RawConn {
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Writes `bytes` as they are; an error means the proxy already closed the connection.
    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
        self.stream.write_all(bytes.as_ref()).await?;
        self.stream.flush().await
    }

    /// Reads one whole response; `None` if the connection ends first.
    pub async fn try_response(&mut self) -> Option<Received> {
        within(WAIT, "raw response", self.next_response()).await
    }

    pub async fn response(&mut self) -> Received {
        self.try_response()
            .await
            .expect("a response before the connection closed")
    }

    /// Whether the proxy closes the connection (EOF or reset) within `limit`; bytes read meanwhile are kept.
    pub async fn closed_within(&mut self, limit: Duration) -> bool {
        tokio::time::timeout(limit, async {
            while !self.eof {
                self.fill().await;
            }
        })
        .await
        .is_ok()
    }

    /// Bytes received but not yet consumed as a response.
    pub fn unread(&self) -> &[u8] {
        &self.buf
    }

    async fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        self.buf.reserve(16 * 1024);
        match self.stream.read_buf(&mut self.buf).await {
            Ok(0) | Err(_) => {
                self.eof = true;
                false
            }
            Ok(_) => true,
        }
    }

    /// Reads one whole response, however long it takes (wrap it in a timeout); `None` if the
    /// connection ends first.
    pub async fn next_response(&mut self) -> Option<Received> {
        let (status, headers, head_len) = loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut slots);
            if let httparse::Status::Complete(head_len) =
                parsed.parse(&self.buf).expect("a valid HTTP/1 response")
            {
                let status = StatusCode::from_u16(parsed.code?).expect("status code");
                let mut headers = HeaderMap::new();
                for h in parsed.headers.iter() {
                    headers.append(
                        HeaderName::from_bytes(h.name.as_bytes()).expect("header name"),
                        HeaderValue::from_bytes(h.value).expect("header value"),
                    );
                }
                break (status, headers, head_len);
            }
            if !self.fill().await {
                return None;
            }
        };
        self.buf.drain(..head_len);
        let body = self.read_body(&headers).await?;
        Some(Received {
            status,
            version: Version::HTTP_11,
            headers,
            body,
        })
    }

    async fn read_body(&mut self, headers: &HeaderMap) -> Option<Bytes> {
        let chunked = headers
            .get(http::header::TRANSFER_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
        if chunked {
            return self.read_chunked().await;
        }
        let Some(length) = headers.get(http::header::CONTENT_LENGTH) else {
            while self.fill().await {}
            return Some(Bytes::from(std::mem::take(&mut self.buf)));
        };
        let length: usize = length.to_str().ok()?.parse().ok()?;
        while self.buf.len() < length {
            if !self.fill().await {
                return None;
            }
        }
        Some(Bytes::from(self.buf.drain(..length).collect::<Vec<_>>()))
    }

    async fn read_chunked(&mut self) -> Option<Bytes> {
        let mut body = Vec::new();
        loop {
            if let Ok(httparse::Status::Complete((consumed, size))) =
                httparse::parse_chunk_size(&self.buf)
            {
                let size = usize::try_from(size).ok()?;
                let end = consumed + size + 2;
                if self.buf.len() >= end {
                    body.extend_from_slice(&self.buf[consumed..consumed + size]);
                    self.buf.drain(..end);
                    if size == 0 {
                        return Some(Bytes::from(body));
                    }
                    continue;
                }
            }
            if !self.fill().await {
                return None;
            }
        }
    }
}
