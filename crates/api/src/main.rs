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
use std::sync::Arc;

use baton_api::{app, local};
use baton_runtime::logging::{self, Logs};
use baton_runtime::serve::parse_listen_addr;
use lambda_http::{Request, service_fn};

const USAGE: &str = "usage: baton-api [--listen 127.0.0.1:PORT]";

enum Mode {
    Lambda,
    Listen(String),
}

fn parse_args() -> Result<Mode, String> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next(), args.next()) {
        (None, _, _) => Ok(Mode::Lambda),
        (Some("--listen"), Some(addr), None) => Ok(Mode::Listen(addr)),
        (Some(arg), None, _) if arg.starts_with("--listen=") => {
            Ok(Mode::Listen(arg["--listen=".len()..].to_string()))
        }
        (Some("-h" | "--help"), _, _) => Err(String::new()),
        _ => Err(USAGE.to_string()),
    }
}

/// Errors print as one `baton-api: <message>: <cause>…` line on stderr
/// (exit 1); in Lambda mode a failed cold start is also logged as JSON.
#[tokio::main]
async fn main() -> ExitCode {
    let mode = match parse_args() {
        Ok(m) => m,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    match run(mode).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baton-api: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(mode: Mode) -> anyhow::Result<()> {
    match mode {
        Mode::Lambda => {
            logging::init(Logs::LambdaJson, "info");
            let api = match app::api_from_env().await {
                Ok(api) => Arc::new(api),
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "cold start failed");
                    return Err(e);
                }
            };
            lambda_http::run(service_fn(move |req: Request| {
                let api = api.clone();
                async move { Ok::<_, lambda_http::Error>(api.handle_lambda(req).await) }
            }))
            .await
            .map_err(|e| anyhow::anyhow!(e))
        }
        Mode::Listen(addr) => {
            logging::init(Logs::StderrJson, "info");
            let addr = parse_listen_addr(&addr)?;
            let api = Arc::new(app::api_from_env().await?);
            let listener = tokio::net::TcpListener::bind(addr).await?;
            // The first stdout line is the bound address, for scripts and
            // tests that asked for port 0.
            println!("listening on http://{}", listener.local_addr()?);
            tokio::select! {
                () = local::serve(listener, api) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            Ok(())
        }
    }
}
