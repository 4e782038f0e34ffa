//! The proxy's self-description: the `OpenAPI` 3.1 document served at `/openapi.json` and a
//! Swagger UI at `/docs` whose files are embedded in the binary, so nothing is fetched from a
//! CDN at run time (assets: `assets/swagger-ui/`, see its README for version and refresh).

use std::sync::LazyLock;

use bytes::Bytes;

mod minify;

/// The document as written (pretty, reviewable); served minified, as `FastAPI` serves it.
const OPENAPI_SOURCE: &str = include_str!("openapi.json");
const VERSION_PLACEHOLDER: &str = "@CARGO_PKG_VERSION@";

static OPENAPI: LazyLock<Bytes> = LazyLock::new(|| {
    let document = OPENAPI_SOURCE.replace(VERSION_PLACEHOLDER, env!("CARGO_PKG_VERSION"));
    Bytes::from(minify::json(&document))
});

/// A Content-Security-Policy under which `/docs` works: every script and stylesheet comes from
/// this origin; Swagger UI itself needs inline styles and `data:` images. Offered for the
/// `/docs` responses; the page does not depend on it.
pub const DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The `OpenAPI` 3.1.0 document of the proxy's routes, as `FastAPI` would publish it (compact JSON).
pub fn openapi_json() -> Bytes {
    OPENAPI.clone()
}

/// The `/docs` page: `FastAPI`'s `get_swagger_ui_html`, with local assets.
pub fn docs_page() -> Bytes {
    Bytes::from_static(include_bytes!("swagger-ui.html"))
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// Every file under `/docs/`: path → (content type, bytes). `oauth2-redirect` is where Swagger
/// UI's OAuth 2 flows return to, as in `FastAPI`.
static ASSETS: [(&str, &str, &[u8]); 6] = [
    (
        "/docs/swagger-ui-bundle.js",
        JS,
        include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
    ),
    (
        "/docs/swagger-ui.css",
        CSS,
        include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
    ),
    (
        "/docs/swagger-ui-init.js",
        JS,
        include_bytes!("swagger-ui-init.js"),
    ),
    (
        "/docs/oauth2-redirect",
        HTML,
        include_bytes!("../../assets/swagger-ui/oauth2-redirect.html"),
    ),
    (
        "/docs/oauth2-redirect.js",
        JS,
        include_bytes!("../../assets/swagger-ui/oauth2-redirect.js"),
    ),
    (
        "/docs/favicon-32x32.png",
        "image/png",
        include_bytes!("../../assets/swagger-ui/favicon-32x32.png"),
    ),
];

/// The embedded file at `path` (e.g. `/docs/swagger-ui-bundle.js`), with its content type.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(asset_path, _, _)| *asset_path == path)
        .map(|(_, content_type, bytes)| (*content_type, *bytes))
}

#[cfg(test)]
mod tests;
