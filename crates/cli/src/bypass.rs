//! `baton run KEY --no-lock --reason TEXT -- COMMAND` (or
//! `BATON_BYPASS_LOCK=1` with `BATON_BYPASS_REASON`): an emergency run that
//! does not take the lock. It is never silent: the bypass is recorded on
//! the key first (who, when, why, host, CI run), where `status`, `list` and
//! chat show it, and baton warns loudly on stderr. The grant on the key and
//! its fence are left alone, so whoever holds the lock keeps it.

use std::os::unix::process::ExitStatusExt;

use baton_lock::LockClient;
use serde_json::json;

use crate::cli::RunArgs;
use crate::commands::acquire_request;
use crate::failure::{Failure, RUN_CANNOT_EXECUTE, RUN_ERROR, RUN_NOT_FOUND, signal_exit};
use crate::render::{self, Report, clean};
use crate::run::ENV_KEY;

/// Set for a command run without the lock, so it can tell.
pub const ENV_BYPASSED: &str = "BATON_LOCK_BYPASSED";

/// Checks a bypass's arguments before anything is written: a reason is
/// mandatory, and a run that takes no lock cannot wait, queue or test.
pub fn check(args: &RunArgs) -> Result<String, Failure> {
    if args.holder.queue || !args.holder.wait.is_zero() {
        return Err(Failure::usage(
            "--no-lock takes no lock, so it cannot --wait or --queue for one",
        ));
    }
    if args.test {
        return Err(Failure::usage(
            "--no-lock and --test: a test run takes its test key's lock; drop one",
        ));
    }
    args.reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            Failure::usage(
                "--no-lock needs --reason TEXT (or BATON_BYPASS_REASON): a run without the lock is recorded on the key with why",
            )
        })
}

/// Records the bypass on the key, warns, runs the command and passes its
/// exit status through (128+N when a signal ended it).
pub async fn run_without_lock(client: &LockClient, args: RunArgs) -> Result<Report, Failure> {
    let reason = check(&args)?;
    let request = acquire_request(&args.key, &args.holder, None);
    let bypass = client
        .record_bypass(
            &args.key,
            &request.owner,
            &reason,
            request.host.as_deref(),
            request.run_url.as_deref(),
        )
        .await?;
    for line in [
        format!(
            "WARNING: running WITHOUT the lock on {} (--no-lock): nothing stops another run of it at the same time",
            clean(&args.key)
        ),
        format!(
            "WARNING: recorded on the key as bypass #{} by {}: {}",
            bypass.count,
            clean(&bypass.by),
            clean(&bypass.reason)
        ),
    ] {
        render::eprintln_stderr(&format!("baton: {line}"));
    }
    let program = &args.command[0];
    let status = tokio::process::Command::new(program)
        .args(&args.command[1..])
        .env(ENV_KEY, &args.key)
        .env(ENV_BYPASSED, "1")
        .status()
        .await;
    let code = match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => u8::try_from(code).unwrap_or(RUN_ERROR),
            (None, Some(signo)) => signal_exit(signo),
            (None, None) => RUN_ERROR,
        },
        Err(e) => {
            let code = match e.kind() {
                std::io::ErrorKind::NotFound => RUN_NOT_FOUND,
                std::io::ErrorKind::PermissionDenied => RUN_CANNOT_EXECUTE,
                _ => RUN_ERROR,
            };
            return Err(Failure::new(
                code,
                "spawn_failed",
                format!("could not start `{}`: {e}", clean(program)),
            ));
        }
    };
    let mut json = serde_json::Map::new();
    json.insert("lockKey".into(), json!(args.key));
    json.insert("bypass".into(), json!(bypass));
    json.insert("exitCode".into(), json!(code));
    Ok(Report {
        json,
        human: None,
        code,
    })
}
