//! # baton-runtime
//!
//! What every baton binary does at its edge, written once: build the AWS SDK
//! config, read settings from the environment (naming what a missing or
//! wrong one should hold), fetch secrets from SSM or the environment into a
//! type that never prints, load the command config, set up logging, and
//! serve HTTP on loopback.
//!
//! The domain crates (`baton-lock`, `baton-chatops`) know none of this; the
//! binaries call it once at start-up.

pub mod config;
pub mod http_main;
pub mod logging;
pub mod sdk;
pub mod secret;
pub mod serve;
pub mod settings;

pub use secret::{Secret, SecretSource};
pub use settings::Env;
