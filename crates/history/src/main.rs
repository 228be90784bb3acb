//! `baton-history`: the Lambda on the lock table's stream (no arguments),
//! `--event FILE` to record one stream event file and print the batch
//! response, or `--follow` to read the stream itself until interrupted
//! (local runs against DynamoDB Local).

use std::process::ExitCode;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event;
use baton_history::consume;
use baton_history::follow::Follower;
use baton_history::settings::Settings;
use baton_history::writer::HistoryWriter;
use baton_runtime::Env;
use baton_runtime::logging::{self, Logs};
use lambda_runtime::{LambdaEvent, service_fn};

const USAGE: &str = "usage: baton-history              (run under the Lambda runtime, on the table's stream)\n       baton-history --event FILE  (record one stream event file, print the batch response)\n       baton-history --follow      (read the table's stream until interrupted)";

/// How often `--follow` reads the stream.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => lambda().await,
        [flag, path] if flag == "--event" => replay(path).await,
        [flag] if flag == "--follow" => follow().await,
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

/// The settings and a history client built once per process.
async fn setup() -> anyhow::Result<(Settings, aws_config::SdkConfig, HistoryWriter)> {
    let settings = Settings::from_env(&Env::process())?;
    let config = baton_runtime::sdk::sdk_config().await;
    let history = HistoryWriter::new(
        aws_sdk_dynamodb::Client::new(&config),
        &settings.history_table,
        settings.retention,
    );
    Ok((settings, config, history))
}

async fn lambda() -> ExitCode {
    logging::init(Logs::LambdaJson, "info");
    let (_, _, history) = match setup().await {
        Ok(parts) => parts,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "history consumer init failed");
            return ExitCode::FAILURE;
        }
    };
    let history = &history;
    let handler = service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, lambda_runtime::Error>(consume::handle(history, event.payload).await)
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
    let event: Event = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| {
            serde_json::from_str(&text).map_err(|e| format!("not a DynamoDB stream event: {e}"))
        }) {
        Ok(event) => event,
        Err(e) => {
            eprintln!("baton-history: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (_, _, history) = match setup().await {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("baton-history: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let response = consume::handle(&history, event).await;
    match serde_json::to_string(&response) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("baton-history: cannot print the response: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn follow() -> ExitCode {
    logging::init(Logs::StderrText, "info");
    let (settings, config, history) = match setup().await {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("baton-history: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let streams = aws_sdk_dynamodbstreams::Client::new(&config);
    let follower = match Follower::new(history.dynamodb(), streams, &settings.lock_table).await {
        Ok(follower) => follower,
        Err(e) => {
            eprintln!("baton-history: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match follower.run(&history, FOLLOW_EVERY, stop).await {
        Ok(tally) => {
            eprintln!("baton-history: stopped; {tally:?}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("baton-history: {e}");
            ExitCode::FAILURE
        }
    }
}
