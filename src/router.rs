//! Maps (method, path) to a route; knows nothing else.

use http::Method;

/// Every endpoint the proxy serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Register,
    Login,
    Refresh,
    Protected,
    Healthz,
    Readyz,
    OpenApi,
    Docs,
    /// A Swagger UI asset under `/docs/`.
    DocsAsset,
}

/// The router's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    Found(Route),
    NotFound,
    /// Known path, wrong method; carries the `Allow` header value.
    MethodNotAllowed(&'static str),
    /// A known path with a trailing slash: Starlette's `redirect_slashes` answers 307 to the
    /// path without it, whatever the method.
    RedirectSlash,
}

/// Starlette adds `HEAD` to every `GET` route; the proxy does the same.
const GET_ALLOW: &str = "GET, HEAD";
const POST_ALLOW: &str = "POST";

pub fn route(method: &Method, path: &str) -> Routed {
    match exact(method, path) {
        Routed::NotFound if path.len() > 1 && path.ends_with('/') => {
            match exact(method, &path[..path.len() - 1]) {
                Routed::NotFound | Routed::RedirectSlash => Routed::NotFound,
                Routed::Found(_) | Routed::MethodNotAllowed(_) => Routed::RedirectSlash,
            }
        }
        routed => routed,
    }
}

fn exact(method: &Method, path: &str) -> Routed {
    let (route, allow) = match path {
        "/register" => (Route::Register, POST_ALLOW),
        "/login" => (Route::Login, POST_ALLOW),
        "/refresh" => (Route::Refresh, POST_ALLOW),
        "/protected" => (Route::Protected, GET_ALLOW),
        "/healthz" => (Route::Healthz, GET_ALLOW),
        "/readyz" => (Route::Readyz, GET_ALLOW),
        "/openapi.json" => (Route::OpenApi, GET_ALLOW),
        "/docs" => (Route::Docs, GET_ALLOW),
        p if p.len() > "/docs/".len() && p.starts_with("/docs/") => (Route::DocsAsset, GET_ALLOW),
        _ => return Routed::NotFound,
    };
    let allowed = if allow == POST_ALLOW {
        method == Method::POST
    } else {
        method == Method::GET || method == Method::HEAD
    };
    if allowed {
        Routed::Found(route)
    } else {
        Routed::MethodNotAllowed(allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_method_and_path() {
        let cases = [
            (Method::POST, "/register", Routed::Found(Route::Register)),
            (Method::POST, "/login", Routed::Found(Route::Login)),
            (Method::POST, "/refresh", Routed::Found(Route::Refresh)),
            (Method::GET, "/protected", Routed::Found(Route::Protected)),
            (Method::HEAD, "/protected", Routed::Found(Route::Protected)),
            (Method::GET, "/healthz", Routed::Found(Route::Healthz)),
            (Method::GET, "/readyz", Routed::Found(Route::Readyz)),
            (Method::GET, "/openapi.json", Routed::Found(Route::OpenApi)),
            (Method::GET, "/docs", Routed::Found(Route::Docs)),
            (
                Method::GET,
                "/docs/swagger-ui.css",
                Routed::Found(Route::DocsAsset),
            ),
            (Method::GET, "/register", Routed::MethodNotAllowed("POST")),
            (Method::PUT, "/login", Routed::MethodNotAllowed("POST")),
            (
                Method::POST,
                "/protected",
                Routed::MethodNotAllowed("GET, HEAD"),
            ),
            (Method::GET, "/nope", Routed::NotFound),
            (Method::GET, "/", Routed::NotFound),
            (Method::POST, "/register/", Routed::RedirectSlash),
            (Method::GET, "/register/", Routed::RedirectSlash),
            (Method::GET, "/nope/", Routed::NotFound),
            (Method::GET, "/docs/", Routed::RedirectSlash),
            (Method::GET, "/register//", Routed::NotFound),
            (Method::POST, "/REGISTER", Routed::NotFound),
        ];
        for (method, path, expected) in cases {
            assert_eq!(route(&method, path), expected, "{method} {path}");
        }
    }
}
