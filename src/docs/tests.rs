//! The document and the page stay what `/openapi.json` and `/docs` promise.

use super::{asset, docs_page, minify, openapi_json, OPENAPI_SOURCE};
use serde_json::Value;

fn document() -> Value {
    serde_json::from_slice(&openapi_json()).unwrap_or_else(|e| panic!("openapi.json: {e}"))
}

#[test]
fn openapi_is_3_1_json_and_minifying_changes_nothing() {
    let served = document();
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(served["info"]["version"], env!("CARGO_PKG_VERSION"));
    let source: Value = serde_json::from_str(
        &OPENAPI_SOURCE.replace(super::VERSION_PLACEHOLDER, env!("CARGO_PKG_VERSION")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(served, source);
    assert!(!openapi_json().contains(&b'\n'));
}

#[test]
fn openapi_has_every_route_with_its_method() {
    let doc = document();
    for (path, method) in [
        ("/register", "post"),
        ("/login", "post"),
        ("/refresh", "post"),
        ("/protected", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    let login = &doc["paths"]["/login"]["post"]["requestBody"]["content"];
    assert!(login["application/x-www-form-urlencoded"].is_object());
    let form = &doc["components"]["schemas"]["Body_login_login_post"];
    assert_eq!(
        form["properties"]["grant_type"]["anyOf"][0]["pattern"],
        "^password$"
    );
    assert_eq!(form["properties"]["scope"]["default"], "");
    let user = &doc["components"]["schemas"]["User"];
    assert_eq!(user["properties"]["email"]["format"], "email");
}

#[test]
fn register_documents_the_central_services_201() {
    // The central service answers a registration 201 and the proxy passes it through.
    let responses = &document()["paths"]["/register"]["post"]["responses"];
    assert_eq!(
        responses["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Message"
    );
    assert!(responses["200"].is_null(), "no 200 is documented");
}

#[test]
fn protected_uses_the_oauth2_password_flow_against_login() {
    let doc = document();
    let scheme = &doc["components"]["securitySchemes"]["OAuth2PasswordBearer"];
    assert_eq!(scheme["flows"]["password"]["tokenUrl"], "login");
    let security = &doc["paths"]["/protected"]["get"]["security"][0];
    assert!(security["OAuth2PasswordBearer"].is_array());
}

#[test]
fn every_reference_resolves() {
    let doc = document();
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap_or_default();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
}

#[test]
fn assets_are_found_with_their_content_types() {
    let (content_type, bundle) = asset("/docs/swagger-ui-bundle.js").unwrap_or(("", b""));
    assert_eq!(content_type, "text/javascript; charset=utf-8");
    assert!(
        bundle.len() > 100_000,
        "the real Swagger UI bundle is embedded"
    );
    assert_eq!(
        asset("/docs/swagger-ui.css").map(|a| a.0),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(
        asset("/docs/oauth2-redirect").map(|a| a.0),
        Some("text/html; charset=utf-8")
    );
    assert!(asset("/docs/oauth2-redirect.js").is_some());
    assert!(asset("/docs/swagger-ui-init.js").is_some());
    assert_eq!(
        asset("/docs/favicon-32x32.png").map(|a| a.0),
        Some("image/png")
    );
    for missing in [
        "/docs",
        "/docs/",
        "/docs/../Cargo.toml",
        "/docs/swagger-ui-bundle.js.map",
        "swagger-ui.css",
    ] {
        assert!(asset(missing).is_none(), "{missing}");
    }
}

#[test]
fn the_page_loads_only_local_assets_that_exist() {
    let page = String::from_utf8(docs_page().to_vec()).unwrap_or_default();
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("//cdn"));
    let mut references = 0;
    for attribute in ["src=\"", "href=\""] {
        for piece in page.split(attribute).skip(1) {
            let target = piece.split('"').next().unwrap_or_default();
            assert!(asset(target).is_some(), "{target} is not embedded");
            references += 1;
        }
    }
    assert_eq!(references, 4, "css, favicon, bundle, init script");
    let (_, init) = asset("/docs/swagger-ui-init.js").unwrap_or(("", b""));
    let init = String::from_utf8_lossy(init);
    assert!(init.contains("url: '/openapi.json'") && init.contains("'/docs/oauth2-redirect'"));
}

#[test]
fn minify_keeps_the_document_parseable() {
    assert!(serde_json::from_str::<Value>(&minify::json(OPENAPI_SOURCE)).is_ok());
}
