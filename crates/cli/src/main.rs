//! `baton`: DynamoDB leases for builds and deploys, from any CI pipeline.
//! This file only wires things up: parse, log to stderr, build the client,
//! dispatch, print, exit with the documented code.

mod bypass;
mod caller;
mod cli;
mod commands;
mod failure;
mod group;
mod history;
mod identity;
mod render;
mod run;
mod signals;

use std::process::ExitCode;

use baton_lock::LockClient;
use clap::Parser;
use clap::error::ErrorKind;

use crate::cli::{Cli, Command, TableCommand};
use crate::failure::{Failure, USAGE};
use crate::render::{Report, emit, print_failure};

fn main() -> ExitCode {
    // `run`'s group watcher is this same binary; it needs no parsing,
    // logging or runtime (see `group`).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == group::WATCH_ARG)
    {
        return ExitCode::from(group::watch_main());
    }
    init_logging();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return ExitCode::from(usage_error(err)),
    };
    let json = cli.json;
    let is_run = matches!(cli.command, Command::Run(_));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let failure = Failure::new(failure::ERROR, "runtime", format!("cannot start: {e}"));
            let failure = if is_run { failure.for_run() } else { failure };
            print_failure(&failure, json);
            return ExitCode::from(failure.code);
        }
    };
    let mut result = runtime.block_on(dispatch(cli));
    if is_run {
        result = result.map_err(Failure::for_run);
    }
    ExitCode::from(emit(result, json))
}

/// Logs go to stderr (stdout is for results and `--json`), at `RUST_LOG`
/// or `warn`.
fn init_logging() {
    baton_runtime::logging::init(baton_runtime::logging::Logs::StderrText, "warn");
}

/// Prints clap's message (help and version go to stdout with exit 0) and,
/// when `--json` was on the command line, the JSON error object too.
fn usage_error(err: clap::Error) -> u8 {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = err.print();
        return failure::OK;
    }
    let _ = err.print();
    let code = if subcommand_is_run() {
        failure::RUN_ERROR
    } else {
        USAGE
    };
    let json = std::env::args()
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if json {
        let message = err
            .kind()
            .as_str()
            .unwrap_or("invalid arguments")
            .to_owned();
        render::print_json(&serde_json::json!({
            "ok": false,
            "error": "usage",
            "exitCode": code,
            "message": message,
        }));
    }
    code
}

/// Whether the command line names `run` as its subcommand, for a usage
/// error that clap reports before there is a parsed command: `run`'s own
/// failures use its reserved codes so they never pass for the command's.
fn subcommand_is_run() -> bool {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--table" {
            args.next();
        } else if !arg.starts_with('-') {
            return arg == "run";
        }
    }
    false
}

async fn dispatch(cli: Cli) -> Result<Report, Failure> {
    let Some(table) = cli.table.filter(|t| !t.trim().is_empty()) else {
        return Err(Failure::usage(
            "no lock table given: pass --table NAME or set BATON_TABLE (create one with `baton table create`)",
        ));
    };
    let config = baton_runtime::sdk::sdk_config().await;
    let client = LockClient::new(aws_sdk_dynamodb::Client::new(&config), table);
    // Only commands that make or force-end a grant record who called, and
    // they ask once, before their first write.
    let records_caller = match &cli.command {
        Command::Acquire(_) | Command::ForceUnlock(_) => true,
        Command::Run(args) => !args.no_lock,
        _ => false,
    };
    let caller = if records_caller {
        let lookup = caller::lookup(&identity::ProcessEnv)?;
        caller::resolve(&config, lookup).await?
    } else {
        None
    };
    match cli.command {
        Command::Acquire(args) => commands::acquire(&client, args, caller).await,
        Command::Release(args) => commands::release(&client, args).await,
        Command::Renew(args) => commands::renew(&client, args).await,
        Command::Status(args) => commands::status(&client, &args.key).await,
        Command::Queue(args) => commands::queue(&client, &args.key).await,
        Command::History(args) => history::history(&client, args).await,
        Command::List(args) => commands::list(&client, args).await,
        Command::Wait(args) => commands::wait(&client, args).await,
        Command::ForceUnlock(args) => commands::force_unlock(&client, args, caller).await,
        Command::Verify(args) => commands::verify(&client, args).await,
        Command::Run(args) if args.no_lock => bypass::run_without_lock(&client, args).await,
        Command::Run(args) => run::run(&client, args, caller).await,
        Command::Table(TableCommand::Create) => commands::table_create(&client).await,
    }
}
