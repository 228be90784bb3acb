//! baton-router: the Lambda entry point, or a local HTTP server.
//!
//! ```text
//! baton-router                         # as a Lambda (Function URL / API Gateway)
//! baton-router --listen 127.0.0.1:3000 # plain HTTP on loopback; prints `listening on http://ADDR`
//! ```
//!
//! Configuration comes from the environment (see `baton_router::app`).
//! Logs are JSON lines: on stdout in Lambda, on stderr with `--listen` (so
//! stdout carries only the address line).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    baton_runtime::http_main::main("baton-router", baton_router::app::router_from_env).await
}
