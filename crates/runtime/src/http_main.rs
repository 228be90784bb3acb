//! The `main` of baton's HTTP functions (the router, the API), written once:
//! run under the Lambda runtime, or with `--listen 127.0.0.1:PORT` serve
//! plain HTTP on loopback and print `listening on http://ADDR` as the first
//! stdout line (for scripts and tests that asked for port 0). Logs are JSON
//! lines: on stdout in Lambda, on stderr with `--listen`.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use lambda_http::{Body, Request, Response, service_fn};
use tokio::net::TcpListener;

use crate::logging::{self, Logs};
use crate::serve::parse_listen_addr;

/// An HTTP function: answers Lambda HTTP events, and serves the same
/// routes on a loopback listener.
pub trait HttpFunction: Send + Sync + 'static {
    /// Answers one Lambda (Function URL / API Gateway / ALB) event.
    fn handle_lambda(&self, req: Request) -> impl Future<Output = Response<Body>> + Send;

    /// Serves `listener` until the task is dropped.
    fn serve_local(self: Arc<Self>, listener: TcpListener) -> impl Future<Output = ()> + Send;
}

/// How the binary was asked to run.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Lambda,
    Listen(String),
    Help,
}

/// `[--listen ADDR | --listen=ADDR | -h | --help]`; `None` for anything else.
fn mode_of(mut args: impl Iterator<Item = String>) -> Option<Mode> {
    let mode = match (args.next().as_deref(), args.next()) {
        (None, _) => Mode::Lambda,
        (Some("--listen"), Some(addr)) => Mode::Listen(addr),
        (Some(arg), None) if arg.starts_with("--listen=") => {
            Mode::Listen(arg["--listen=".len()..].to_owned())
        }
        (Some("-h" | "--help"), None) => Mode::Help,
        _ => return None,
    };
    args.next().is_none().then_some(mode)
}

/// Runs the binary `name`, building its function once with `build`: exit 0
/// when it stops, 1 with one `name: message: cause…` line on stderr when it
/// cannot start (in Lambda the failed cold start is also logged as JSON),
/// 2 on bad arguments.
pub async fn main<F, B, Fut>(name: &str, build: B) -> ExitCode
where
    F: HttpFunction,
    B: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<F>>,
{
    let usage = format!("usage: {name} [--listen 127.0.0.1:PORT]");
    let result = match mode_of(std::env::args().skip(1)) {
        None => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
        Some(Mode::Help) => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        Some(Mode::Lambda) => lambda(build).await,
        Some(Mode::Listen(addr)) => listen(&addr, build).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn lambda<F, B, Fut>(build: B) -> anyhow::Result<()>
where
    F: HttpFunction,
    B: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<F>>,
{
    logging::init(Logs::LambdaJson, "info");
    let function = match build().await {
        Ok(function) => Arc::new(function),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "cold start failed");
            return Err(e);
        }
    };
    lambda_http::run(service_fn(move |req: Request| {
        let function = function.clone();
        async move { Ok::<_, lambda_http::Error>(function.handle_lambda(req).await) }
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}

async fn listen<F, B, Fut>(addr: &str, build: B) -> anyhow::Result<()>
where
    F: HttpFunction,
    B: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<F>>,
{
    logging::init(Logs::StderrJson, "info");
    let addr = parse_listen_addr(addr)?;
    let function = Arc::new(build().await?);
    let listener = TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    tokio::select! {
        () = function.serve_local(listener) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(args: &[&str]) -> Option<Mode> {
        mode_of(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn arguments_pick_the_mode_and_nothing_else_is_accepted() {
        assert_eq!(mode(&[]), Some(Mode::Lambda));
        assert_eq!(
            mode(&["--listen", "127.0.0.1:0"]),
            Some(Mode::Listen("127.0.0.1:0".into()))
        );
        assert_eq!(
            mode(&["--listen=127.0.0.1:0"]),
            Some(Mode::Listen("127.0.0.1:0".into()))
        );
        assert_eq!(mode(&["--help"]), Some(Mode::Help));
        for bad in [
            &["--listen"][..],
            &["--listen", "a", "b"],
            &["--listen=a", "b"],
            &["serve"],
            &["-h", "x"],
        ] {
            assert_eq!(mode(bad), None, "{bad:?}");
        }
    }
}
