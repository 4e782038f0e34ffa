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

/// The paths, each written once: the router matches them, the access log and metrics name
/// routes by them, and the upstream URIs end with them.
const REGISTER: &str = "/register";
const LOGIN: &str = "/login";
const REFRESH: &str = "/refresh";
const PROTECTED: &str = "/protected";
const HEALTHZ: &str = "/healthz";
const READYZ: &str = "/readyz";
const OPENAPI: &str = "/openapi.json";
const DOCS: &str = "/docs";
/// Swagger UI assets are the paths under this prefix.
const DOCS_PREFIX: &str = "/docs/";

impl Route {
    /// The route's path (for [`Route::DocsAsset`], the prefix of its paths).
    pub fn path(self) -> &'static str {
        match self {
            Route::Register => REGISTER,
            Route::Login => LOGIN,
            Route::Refresh => REFRESH,
            Route::Protected => PROTECTED,
            Route::Healthz => HEALTHZ,
            Route::Readyz => READYZ,
            Route::OpenApi => OPENAPI,
            Route::Docs => DOCS,
            Route::DocsAsset => DOCS_PREFIX,
        }
    }
}

impl Routed {
    /// Every label [`Routed::label`] gives, in [`Routed::index`] order (metrics make one
    /// series set per label up front).
    pub const LABELS: [&'static str; 12] = [
        REGISTER,
        LOGIN,
        REFRESH,
        PROTECTED,
        HEALTHZ,
        READYZ,
        OPENAPI,
        DOCS,
        "/docs/*",
        "unmatched",
        "method-not-allowed",
        "redirect-slash",
    ];

    /// The route as the access log and metrics name it (never the raw path: unmatched paths
    /// are unbounded, and may carry secrets).
    pub fn label(self) -> &'static str {
        Self::LABELS[self.index()]
    }

    /// This verdict's place in [`Routed::LABELS`].
    pub fn index(self) -> usize {
        match self {
            Routed::Found(Route::Register) => 0,
            Routed::Found(Route::Login) => 1,
            Routed::Found(Route::Refresh) => 2,
            Routed::Found(Route::Protected) => 3,
            Routed::Found(Route::Healthz) => 4,
            Routed::Found(Route::Readyz) => 5,
            Routed::Found(Route::OpenApi) => 6,
            Routed::Found(Route::Docs) => 7,
            Routed::Found(Route::DocsAsset) => 8,
            Routed::NotFound => 9,
            Routed::MethodNotAllowed(_) => 10,
            Routed::RedirectSlash => 11,
        }
    }
}

/// The methods a path answers.
#[derive(Clone, Copy)]
enum Methods {
    /// FastAPI's `@app.post`.
    Post,
    /// FastAPI's `@app.get` (an `APIRoute`): GET alone, no implicit HEAD (FastAPI 0.165).
    Get,
    /// A plain Starlette `Route` with GET, which adds HEAD: FastAPI's own `/openapi.json` and
    /// `/docs`; the proxy's health checks and Swagger UI files too, for load balancers and caches.
    GetHead,
}

impl Methods {
    fn permit(self, method: &Method) -> bool {
        match self {
            Methods::Post => method == Method::POST,
            Methods::Get => method == Method::GET,
            Methods::GetHead => method == Method::GET || method == Method::HEAD,
        }
    }

    /// The `Allow` header of a 405, as Starlette writes it.
    fn allow(self) -> &'static str {
        match self {
            Methods::Post => "POST",
            Methods::Get => "GET",
            Methods::GetHead => "GET, HEAD",
        }
    }
}

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
    let (route, methods) = match path {
        REGISTER => (Route::Register, Methods::Post),
        LOGIN => (Route::Login, Methods::Post),
        REFRESH => (Route::Refresh, Methods::Post),
        PROTECTED => (Route::Protected, Methods::Get),
        HEALTHZ => (Route::Healthz, Methods::GetHead),
        READYZ => (Route::Readyz, Methods::GetHead),
        OPENAPI => (Route::OpenApi, Methods::GetHead),
        DOCS => (Route::Docs, Methods::GetHead),
        p if p.len() > DOCS_PREFIX.len() && p.starts_with(DOCS_PREFIX) => {
            (Route::DocsAsset, Methods::GetHead)
        }
        _ => return Routed::NotFound,
    };
    if methods.permit(method) {
        Routed::Found(route)
    } else {
        Routed::MethodNotAllowed(methods.allow())
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
            (Method::HEAD, "/protected", Routed::MethodNotAllowed("GET")),
            (Method::HEAD, "/healthz", Routed::Found(Route::Healthz)),
            (Method::HEAD, "/openapi.json", Routed::Found(Route::OpenApi)),
            (Method::HEAD, "/docs", Routed::Found(Route::Docs)),
            (Method::POST, "/docs", Routed::MethodNotAllowed("GET, HEAD")),
            (Method::HEAD, "/register", Routed::MethodNotAllowed("POST")),
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
            (Method::POST, "/protected", Routed::MethodNotAllowed("GET")),
            (
                Method::OPTIONS,
                "/protected",
                Routed::MethodNotAllowed("GET"),
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
