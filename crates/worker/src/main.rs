//! `baton-worker`: the Lambda entry point, or `--event FILE` to process one
//! SQS event file without the runtime (replaying a dead-letter message) and
//! print the batch response.

use std::process::ExitCode;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};

const USAGE: &str = "usage: baton-worker            (run under the Lambda runtime)\n       baton-worker --event FILE  (process an SQS event file, print the batch response)";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => lambda().await,
        [flag, path] if flag == "--event" => replay(path).await,
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

async fn lambda() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(env_filter())
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .init();
    let worker = match baton_worker::worker_from_env().await {
        Ok(worker) => worker,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "worker init failed");
            return ExitCode::FAILURE;
        }
    };
    let worker = &worker;
    let handler = service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let _span = tracing::info_span!("batch", request_id = %event.context.request_id).entered();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        // Leave two seconds to return the batch response before the timeout.
        let left = Duration::from_millis(event.context.deadline.saturating_sub(now_ms))
            .saturating_sub(Duration::from_secs(2));
        let deadline = tokio::time::Instant::now() + left;
        Ok::<_, lambda_runtime::Error>(worker.handle_until(event.payload, deadline).await)
    });
    match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}

async fn replay(path: &str) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(env_filter())
        .with_writer(std::io::stderr)
        .init();
    let event: SqsEvent = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| format!("not an SQS event: {e}")))
    {
        Ok(event) => event,
        Err(e) => {
            eprintln!("baton-worker: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let worker = match baton_worker::worker_from_env().await {
        Ok(worker) => worker,
        Err(e) => {
            eprintln!("baton-worker: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let response = worker.handle(event).await;
    match serde_json::to_string(&response) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("baton-worker: cannot print the response: {e}");
            ExitCode::FAILURE
        }
    }
}

fn env_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}
