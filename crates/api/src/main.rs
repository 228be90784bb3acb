//! baton-api: the Lambda entry point, or a local HTTP server.
//!
//! ```text
//! baton-api                         # as a Lambda (Function URL / API Gateway)
//! baton-api --listen 127.0.0.1:8080 # plain HTTP on loopback; prints `listening on http://ADDR`
//! ```
//!
//! Configuration comes from the environment (see `baton_api::app`). Logs are
//! JSON lines: on stdout in Lambda, on stderr with `--listen` (so stdout
//! carries only the address line).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    baton_runtime::http_main::main("baton-api", baton_api::app::api_from_env).await
}
