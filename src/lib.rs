//! auth-proxy: a validating, streaming passthrough proxy in front of a central auth service.

pub mod config;
pub mod validate;
