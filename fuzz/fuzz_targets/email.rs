//! `EmailStr` (`src/validate/email*.rs`): never panics; the one-pass fast path for plain
//! addresses agrees with the step-by-step port of python-email-validator 2.4; and `/register`
//! accepts exactly the addresses it accepts, else answers the 422 whose `msg` and
//! `ctx.reason` carry its reason, without the password.
#![no_main]

use auth_proxy::fuzzing::{email_check, email_check_faithfully};
use auth_proxy::validate::register;
use fuzz_checks::{check_rejection, Submitted};
use libfuzzer_sys::fuzz_target;

const PASSWORD: &str = "fuzz-password-9f3c";

fuzz_target!(|data: &[u8]| {
    let Ok(address) = std::str::from_utf8(data) else {
        return;
    };
    let checked = email_check(address);
    assert_eq!(
        checked,
        email_check_faithfully(address),
        "fast path and faithful port disagree on {address:?}"
    );
    let body = serde_json::json!({"email": address, "password": PASSWORD}).to_string();
    let result = register(Some(b"application/json"), body.as_bytes());
    match (&checked, result) {
        (Ok(()), Ok(valid)) => {
            assert_eq!(valid.email, address, "the email goes upstream as written");
            assert_eq!(valid.password, PASSWORD);
        }
        (Err(reason), Err(rejection)) => {
            let mut submitted = Submitted::default();
            submitted.field("email", address);
            submitted.field("password", PASSWORD);
            check_rejection(&rejection, &submitted);
            let auth_proxy::validate::Rejection::Unprocessable(bytes) = rejection else {
                panic!("an invalid email is a 422");
            };
            let v: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
            let e = &v["detail"][0];
            assert_eq!(e["type"], "value_error");
            assert_eq!(e["ctx"]["reason"], reason.as_str());
            assert_eq!(
                e["msg"],
                format!("value is not a valid email address: {reason}").as_str()
            );
            assert_eq!(e["input"], address);
        }
        (checked, result) => panic!(
            "EmailStr says {checked:?}, /register says {:?}",
            result.map(|r| r.email.into_owned())
        ),
    }
});
