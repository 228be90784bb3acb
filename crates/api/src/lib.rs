//! # baton-api
//!
//! baton's locks over HTTP, for pipelines and tools that cannot run the
//! CLI (Jenkins without a binary, a cron job with only `curl`), and a web
//! dashboard of what is held and who waits.
//!
//! * `/v1/…`: the CLI's operations (acquire with wait or queue, release,
//!   renew, force unlock, status, list) with the CLI's semantics and its
//!   exit codes' meanings as statuses ([`failure`]), and the history of
//!   ended grants ([`history`]);
//! * `/api/v1alpha1/…`: Tracker's lock API, shape for shape ([`tracker`]);
//! * `/`: the dashboard ([`dashboard`]), reading `/v1` with a read token.
//!
//! Every route but the dashboard's static files needs an API token
//! ([`tokens`], [`scope`], [`auth`]). [`route`] maps requests to routes,
//! [`wire`] reads and checks request bodies, [`api`] ties them together,
//! [`app`] builds it from the environment and [`local`] serves it on
//! loopback (`--listen`).

pub mod answer;
pub mod api;
pub mod app;
pub mod auth;
pub mod dashboard;
pub mod failure;
pub mod history;
pub mod local;
pub mod openapi;
pub mod route;
pub mod scope;
pub mod tokens;
pub mod tracker;
pub mod tracker_id;
pub mod v1;
pub mod view;
pub mod wire;

pub use api::{Api, Settings};
pub use tokens::{Token, Tokens, hash_hex};
