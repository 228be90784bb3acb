//! `baton run KEY -- COMMAND…`: hold a lock exactly as long as a command
//! runs. Acquire, start the command with the grant in its environment, renew
//! in the background, release as COMPLETED or FAILED by its exit status and
//! exit with that status. Signals to baton are forwarded to the command; a
//! lock lost mid-run stops the command, because it no longer holds the lock.

use std::process::ExitStatus;
use std::time::Duration;

use baton_lock::{LockClient, LockError, LockRecord, LockStatus, ReleaseRequest};
use serde_json::json;
use tokio::sync::oneshot;

use crate::cli::RunArgs;
use crate::commands::{acquire_interruptible, acquire_request, grant_kind_name, grant_text};
use crate::failure::{ERROR, Failure, signal_exit};
use crate::render::{self, Report, iso, record_fields};
use crate::signals::{self, Signals};

/// Environment variables the command sees, so it can fence its own writes.
pub const ENV_KEY: &str = "BATON_LOCK_KEY";
/// The grant's lock id (to `baton renew`/`annotate` from inside the command).
pub const ENV_LOCK_ID: &str = "BATON_LOCK_ID";
/// The grant's fencing token.
pub const ENV_FENCE: &str = "BATON_FENCE";

/// How the command's run ended, before the lock is released.
enum Ending {
    Exited(ExitStatus),
    /// baton itself received this signal (and forwarded it).
    Interrupted(i32),
    /// A renew found the grant ended or replaced.
    Lost(LockError),
}

/// Runs `args.command` under the lock `args.key`.
pub async fn run(client: &LockClient, mut args: RunArgs) -> Result<Report, Failure> {
    if args.holder.purpose.is_none() {
        args.holder.purpose = Some(shell_words(&args.command));
    }
    let request = acquire_request(&args.key, &args.holder, None);
    let mut signals = Signals::install()?;
    let grant = acquire_interruptible(client, &request, args.holder.wait, &mut signals).await?;
    let key = grant.record.lock_key.clone();
    let lock_id = grant.record.lock_id.clone();
    render::eprintln_stderr(&format!("baton: {}", grant_text(&grant)));

    let program = &args.command[0];
    let spawned = tokio::process::Command::new(program)
        .args(&args.command[1..])
        .env(ENV_KEY, &key)
        .env(ENV_LOCK_ID, &lock_id)
        .env(ENV_FENCE, grant.record.fence.to_string())
        .env("BATON_TABLE", client.table())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let reason = format!("could not start `{program}`: {e}");
            release(client, &key, &lock_id, LockStatus::Failed, reason.clone())
                .await
                .ok();
            // The shell's codes: 127 not found, 126 not executable.
            let code = match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                std::io::ErrorKind::PermissionDenied => 126,
                _ => ERROR,
            };
            return Err(Failure::new(code, "spawn_failed", reason));
        }
    };
    let pid = child.id().and_then(|p| i32::try_from(p).ok());

    let (lost_tx, mut lost_rx) = oneshot::channel();
    let renewer = tokio::spawn(keep_renewed(
        client.clone(),
        key.clone(),
        lock_id.clone(),
        args.holder.ttl,
        grant.record.expires_at,
        lost_tx,
    ));

    let mut interrupted: Option<i32> = None;
    let mut lost: Option<LockError> = None;
    let waited = loop {
        tokio::select! {
            status = child.wait() => break status,
            signo = signals.recv() => {
                render::eprintln_stderr(&format!("baton: received {}; forwarding it to the command", signals::name(signo)));
                interrupted.get_or_insert(signo);
                send_signal(pid, signo);
            }
            Ok(err) = &mut lost_rx, if lost.is_none() => {
                render::eprintln_stderr(&format!(
                    "baton: !!! LOCK LOST: {err}\n\
                     baton: !!! the command no longer holds `{key}`; sending it SIGTERM"
                ));
                send_signal(pid, libc::SIGTERM);
                lost = Some(err);
            }
        }
    };
    renewer.abort();

    let ending = match (lost, interrupted, waited) {
        (Some(err), _, _) => Ending::Lost(err),
        (None, Some(signo), _) => Ending::Interrupted(signo),
        (None, None, Ok(status)) => Ending::Exited(status),
        (None, None, Err(e)) => {
            let reason = format!("could not wait for the command: {e}");
            release(client, &key, &lock_id, LockStatus::Failed, reason.clone())
                .await
                .ok();
            return Err(Failure::new(ERROR, "wait_failed", reason));
        }
    };
    let (outcome, reason, code) = match ending {
        Ending::Lost(err) => return Err(lock_lost(err)),
        Ending::Interrupted(signo) => (
            LockStatus::Failed,
            Some(format!("interrupted by {}", signals::name(signo))),
            signal_exit(signo),
        ),
        Ending::Exited(status) => match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(0), _) => (LockStatus::Completed, None, 0),
            (Some(n), _) => (
                LockStatus::Failed,
                Some(format!("exit status {n}")),
                u8::try_from(n).unwrap_or(ERROR),
            ),
            (None, Some(signo)) => (
                LockStatus::Failed,
                Some(format!("killed by {}", signals::name(signo))),
                signal_exit(signo),
            ),
            (None, None) => (
                LockStatus::Failed,
                Some("ended without an exit status".into()),
                ERROR,
            ),
        },
    };

    let mut json = record_fields(&grant.record);
    json.insert("grant".into(), json!(grant_kind_name(&grant.kind)));
    match release(client, &key, &lock_id, outcome, reason.unwrap_or_default()).await {
        Ok(record) => {
            render::eprintln_stderr(&format!(
                "baton: released {key} as {}{} (fence {}); exiting with {code}",
                record.status,
                record
                    .release_reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default(),
                record.fence
            ));
            json.extend(record_fields(&record));
            json.insert("released".into(), json!(true));
        }
        Err(err @ (LockError::NotOwner { .. } | LockError::AlreadyEnded { .. })) => {
            return Err(lock_lost(err));
        }
        Err(err) => {
            render::eprintln_stderr(&format!(
                "baton: warning: could not release {key}: {err}; the lease ends by itself at {}",
                iso(grant
                    .record
                    .expires_at
                    .max(baton_lock::clock::now_epoch_secs()))
            ));
            json.insert("released".into(), json!(false));
            json.insert("releaseError".into(), json!(err.to_string()));
        }
    }
    json.insert("exitCode".into(), json!(code));
    Ok(Report {
        json,
        human: None,
        code,
    })
}

/// The command as a shell would show it: words with spaces or quotes are
/// single-quoted, so the recorded purpose reads back unambiguously.
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Ends the grant; an empty reason is recorded as none.
async fn release(
    client: &LockClient,
    key: &str,
    lock_id: &str,
    outcome: LockStatus,
    reason: String,
) -> Result<LockRecord, LockError> {
    let mut request = ReleaseRequest::new(key, lock_id, outcome);
    request.reason = Some(reason).filter(|r| !r.is_empty());
    client.release(&request).await
}

/// The failure for a grant that ended or was replaced while the command ran:
/// exit 1, nothing released (it is not ours any more).
fn lock_lost(err: LockError) -> Failure {
    let mut failure = Failure::from(err);
    failure.code = ERROR;
    failure.kind = "lock_lost";
    failure.message = format!(
        "the lock was lost while the command ran: {}",
        failure.message
    );
    failure
}

/// Sends `signo` to the command, if it has a pid (it is not reaped before
/// the wait loop ends, so the pid cannot have been reused).
fn send_signal(pid: Option<i32>, signo: i32) {
    if let Some(pid) = pid {
        // SAFETY: kill(2) has no memory-safety preconditions.
        let rc = unsafe { libc::kill(pid, signo) };
        if rc != 0 {
            tracing::warn!(pid, signo, error = %std::io::Error::last_os_error(), "could not signal the command");
        }
    }
}

/// Renews every ttl/3 until aborted. Ownership errors mean the lock is gone
/// and are reported once through `lost`; anything else (network, throttling)
/// is a warning and retried at the next tick, since the lease still has two
/// thirds of its length to run.
async fn keep_renewed(
    client: LockClient,
    key: String,
    lock_id: String,
    ttl: Duration,
    mut expires_at: u64,
    lost: oneshot::Sender<LockError>,
) {
    let every = (ttl / 3).max(Duration::from_millis(500));
    loop {
        tokio::time::sleep(every).await;
        match client.renew(&key, &lock_id, ttl).await {
            Ok(record) => {
                expires_at = record.expires_at;
                tracing::debug!(%key, expires_at, "lease renewed");
            }
            Err(err @ (LockError::NotOwner { .. } | LockError::AlreadyEnded { .. })) => {
                let _ = lost.send(err);
                return;
            }
            Err(err) => render::eprintln_stderr(&format!(
                "baton: warning: could not renew {key} (retrying in {}): {err}; the lease ends at {}",
                humantime::format_duration(every),
                iso(expires_at)
            )),
        }
    }
}
