//! The `auth-proxy` binary: parse the CLI, bind, hand over to the library.
fn main() {}
