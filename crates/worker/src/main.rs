//! `baton-worker`: the Lambda entry point (an SQS batch, or the scheduled
//! `{"action": "reconcile"}`), `--event FILE` to process one SQS event file
//! without the runtime (replaying a dead-letter message) and print the batch
//! response, or `--reconcile` for one reconciler pass.

use std::process::ExitCode;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use baton_runtime::logging::{self, Logs};
use lambda_runtime::{LambdaEvent, service_fn};

const USAGE: &str = "usage: baton-worker            (run under the Lambda runtime)\n       baton-worker --event FILE  (process an SQS event file, print the batch response)\n       baton-worker --reconcile   (one reconciler pass, print what it did)";

/// What the function is invoked with: the schedule's fixed input, or an SQS
/// batch. Deserialised straight from the invocation payload.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Invocation {
    Scheduled(Scheduled),
    Sqs(SqsEvent),
}

/// The schedule's input, exactly `{"action": "reconcile"}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Scheduled {
    #[allow(dead_code)] // its only value is matched by deserialisation
    action: ScheduledAction,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum ScheduledAction {
    Reconcile,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => lambda().await,
        [flag, path] if flag == "--event" => replay(path).await,
        [flag] if flag == "--reconcile" => reconcile_once().await,
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
    logging::init(Logs::LambdaJson, "info");
    let worker = match baton_worker::worker_from_env().await {
        Ok(worker) => worker,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "worker init failed");
            return ExitCode::FAILURE;
        }
    };
    let worker = &worker;
    let handler = service_fn(move |event: LambdaEvent<Invocation>| async move {
        let _span = tracing::info_span!("batch", request_id = %event.context.request_id).entered();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        // Leave two seconds to return the batch response before the timeout.
        let left = Duration::from_millis(event.context.deadline.saturating_sub(now_ms))
            .saturating_sub(Duration::from_secs(2));
        let deadline = tokio::time::Instant::now() + left;
        let answer = match event.payload {
            Invocation::Sqs(batch) => {
                serde_json::to_value(worker.handle_until(batch, deadline).await)
            }
            Invocation::Scheduled(_) => serde_json::to_value(worker.reconcile(deadline).await),
        };
        answer.map_err(lambda_runtime::Error::from)
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
    logging::init(Logs::StderrText, "info");
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

async fn reconcile_once() -> ExitCode {
    logging::init(Logs::StderrText, "info");
    let worker = match baton_worker::worker_from_env().await {
        Ok(worker) => worker,
        Err(e) => {
            eprintln!("baton-worker: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let report = worker
        .reconcile(tokio::time::Instant::now() + Duration::from_secs(60))
        .await;
    match serde_json::to_string(&report) {
        Ok(json) => {
            println!("{json}");
            if report.incomplete {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("baton-worker: cannot print the report: {e}");
            ExitCode::FAILURE
        }
    }
}
