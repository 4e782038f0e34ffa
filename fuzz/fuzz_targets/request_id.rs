//! Request-id handling (`src/context.rs`): a client's `X-Request-Id` is kept exactly when its
//! first value is 1–128 visible ASCII characters; otherwise a fresh id is made, which is itself
//! an acceptable client id (33 characters of lower-case hex around a dash) and unique.
#![no_main]

use arbitrary::Arbitrary;
use auth_proxy::context::{generate_id, request_id, RequestCtx, MAX_REQUEST_ID_LEN};
use auth_proxy::headers::X_REQUEST_ID;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    values: Vec<Vec<u8>>,
}

fn acceptable(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len()) && id.iter().all(|b| b.is_ascii_graphic())
}

fn generated(id: &[u8]) -> bool {
    id.len() == 33
        && id[16] == b'-'
        && id
            .iter()
            .enumerate()
            .all(|(i, b)| i == 16 || matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fuzz_target!(|input: Input| {
    let mut headers = HeaderMap::new();
    for value in &input.values {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(X_REQUEST_ID, value);
        }
    }
    let id = request_id(&headers);
    match headers.get(X_REQUEST_ID) {
        Some(sent) if acceptable(sent.as_bytes()) => assert_eq!(&id, sent, "kept as sent"),
        _ => {
            assert!(generated(id.as_bytes()), "generated id {id:?}");
            assert!(
                acceptable(id.as_bytes()),
                "a generated id is a valid client id"
            );
            assert_ne!(id, generate_id(), "ids are unique");
        }
    }
    let ctx = RequestCtx::new(&headers, ([127, 0, 0, 1], 9).into());
    if headers
        .get(X_REQUEST_ID)
        .is_some_and(|v| acceptable(v.as_bytes()))
    {
        assert_eq!(ctx.id, id);
    }
});
