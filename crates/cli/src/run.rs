//! `baton run KEY -- COMMAND…`: hold a lock exactly as long as a command
//! runs. Acquire, start the command in a process group of its own with the
//! grant in its environment, renew in the background, release as COMPLETED
//! or FAILED by its exit status and exit with that status.
//!
//! The command never runs without the lock: baton keeps a local lease
//! deadline, and when it cannot renew before the lease ends (minus a safety
//! margin) it stops the whole group — SIGTERM, then SIGKILL before the lease
//! ends — and exits with a reserved code. Signals to baton go to the whole
//! group; baton's own death takes the group with it (see [`crate::group`]).

use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use baton_lock::{Grant, LockClient, LockError, LockRecord, LockStatus, ReleaseRequest};
use serde_json::json;
use tokio::sync::{oneshot, watch};

use crate::cli::{OnLeaseLost, RunArgs};
use crate::commands::{acquire_interruptible, acquire_request, grant_kind_name, grant_text};
use crate::failure::{
    Failure, RUN_CANNOT_EXECUTE, RUN_ERROR, RUN_LOCK_LOST, RUN_NOT_FOUND, signal_exit,
};
use crate::group::{self, Group, Watcher};
use crate::render::{self, Report, clean, iso, record_fields};
use crate::signals::{self, Signals};

/// Environment variables the command sees, so it can fence its own writes.
pub const ENV_KEY: &str = "BATON_LOCK_KEY";
/// The grant's lock id (to `baton renew`/`verify` from inside the command).
pub const ENV_LOCK_ID: &str = "BATON_LOCK_ID";
/// The grant's fencing token.
pub const ENV_FENCE: &str = "BATON_FENCE";

/// How often baton checks whether the rest of the group is gone once the
/// command itself has exited.
const GROUP_POLL: Duration = Duration::from_millis(20);
/// How long baton waits for SIGKILLed processes to disappear before it
/// leaves them to the watcher (a process stuck in uninterruptible sleep).
const REAP_LIMIT: Duration = Duration::from_secs(5);
/// Upper bound for the best-effort release after the lease was lost: the
/// endpoint is probably unreachable, and the lease ends by itself anyway.
const LOST_RELEASE_LIMIT: Duration = Duration::from_secs(3);

/// The lease as baton knows it: when it ends, on baton's monotonic clock.
#[derive(Debug, Clone, Copy)]
struct Lease {
    end: Instant,
    expires_at: u64,
}

impl Lease {
    /// The lease ending at `expires_at` (epoch seconds, as stored).
    fn until(expires_at: u64) -> Lease {
        let end_wall = UNIX_EPOCH + Duration::from_secs(expires_at);
        let left = end_wall
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        Lease {
            end: Instant::now() + left,
            expires_at,
        }
    }
}

/// Timing derived from the ttl: when to renew, and how long before the
/// lease's end baton gives up on it.
#[derive(Debug, Clone, Copy)]
struct Timing {
    ttl: Duration,
    /// Stop the command this long before the lease ends if no renewal landed.
    margin: Duration,
    /// Renew this often while renewals work.
    every: Duration,
    /// Retry this soon after a failed renewal.
    retry: Duration,
}

impl Timing {
    fn new(ttl: Duration) -> Timing {
        let margin = (ttl / 5)
            .clamp(Duration::from_secs(1), Duration::from_secs(60))
            .min(ttl / 2);
        let every = (ttl.saturating_sub(margin) / 3).max(Duration::from_millis(200));
        let retry = (every / 4).max(Duration::from_millis(200));
        Timing {
            ttl,
            margin,
            every,
            retry,
        }
    }

    /// When to start stopping the command if the lease is not renewed.
    fn stop_at(&self, lease: Lease) -> Instant {
        lease.end.checked_sub(self.margin).unwrap_or(lease.end)
    }

    /// The latest moment for SIGKILL: half the margin before the lease ends.
    fn kill_by(&self, lease: Lease) -> Instant {
        lease.end.checked_sub(self.margin / 2).unwrap_or(lease.end)
    }
}

/// Why baton stopped the command, if it did.
enum Cause {
    /// baton itself received this signal (and sent it to the group).
    Signal(i32),
    /// A renew found the grant ended or replaced (the failure to report).
    Lost(Box<Failure>),
    /// No renewal landed before the lease's end minus the margin.
    LeaseLost,
}

/// The program's name without its directory: the default purpose. Arguments
/// are never recorded by default — they hold passwords and tokens, and the
/// record is shown to everyone who looks at the lock.
fn program_name(program: &str) -> String {
    std::path::Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| program.to_owned())
}

/// Prints one of baton's lines on stderr.
fn say(text: &str) {
    render::eprintln_stderr(&format!("baton: {text}"));
}

/// Runs `args.command` under the lock `args.key`.
///
/// Longer than the rest on purpose: its body is one `select!` loop, the
/// supervisor's state machine (child exit, signals, SIGKILL escalation,
/// the local lease deadline, renewals, a lost lock), whose arms share the
/// same few variables; split up, each arm would need all of them passed in.
pub async fn run(
    client: &LockClient,
    mut args: RunArgs,
    caller: Option<String>,
) -> Result<Report, Failure> {
    if args.reason.is_some() {
        return Err(Failure::usage(
            "--reason goes with --no-lock (a run that bypasses the lock); a locked run's purpose is --purpose",
        ));
    }
    if args.test {
        args.key = format!("{}#test", args.key);
        say(&format!(
            "test mode: holding {}, not the real key; real runs neither wait for it nor block it",
            clean(&args.key)
        ));
    }
    let program = args.command[0].clone();
    if args.holder.purpose.is_none() {
        args.holder.purpose = Some(program_name(&program));
    }
    let timing = Timing::new(args.holder.ttl);
    let mut request = acquire_request(&args.key, &args.holder, None);
    request.caller_arn = caller;
    let mut signals = Signals::install()?;
    let grant = acquire_interruptible(client, &request, &args.holder, &mut signals).await?;
    let key = grant.record.lock_key.clone();
    let lock_id = grant.record.lock_id.clone();
    say(&grant_text(&grant));

    group::become_subreaper();
    let mut watcher = Watcher::start();
    let (mut child, group) = match spawn(client, &args, &program, &grant, watcher.as_ref()).await {
        Ok(started) => started,
        Err(failure) => {
            if let Some(w) = watcher {
                w.done();
            }
            return Err(failure);
        }
    };
    // The child told the watcher itself (Linux); elsewhere baton does, now.
    if let Some(w) = watcher.as_mut() {
        w.watch(group);
    }

    let (lease_tx, mut lease_rx) = watch::channel(Lease::until(grant.record.expires_at));
    let (lost_tx, mut lost_rx) = oneshot::channel();
    let renewer = tokio::spawn(keep_renewed(
        client.clone(),
        key.clone(),
        lock_id.clone(),
        timing,
        lease_tx,
        lost_tx,
    ));

    let mut cause: Option<Cause> = None;
    let mut status: Option<std::io::Result<ExitStatus>> = None;
    let mut kill_at: Option<Instant> = None;
    let mut killed_at: Option<Instant> = None;
    let mut renewing = true;
    let mut lapse_handled = false;
    let mut lost_seen = false;
    let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    loop {
        if status.is_some() {
            group.reap();
            if !group.alive() {
                break;
            }
            if kill_at.is_none() {
                say("the command exited but left processes in its group; sending them SIGTERM");
                group.signal(libc::SIGTERM);
                kill_at = Some(
                    (Instant::now() + args.kill_after).min(timing.kill_by(*lease_rx.borrow())),
                );
            }
            if killed_at.is_some_and(|k| k.elapsed() > REAP_LIMIT) {
                say(
                    "warning: processes of the command's group did not disappear after SIGKILL; leaving them to the watcher",
                );
                break;
            }
        }
        let lease = *lease_rx.borrow();
        tokio::select! {
            waited = child.wait(), if status.is_none() => status = Some(waited),
            signo = signals.recv() => {
                say(&format!("received {}; sending it to the command's process group", signals::name(signo)));
                group.signal(signo);
                cause.get_or_insert(Cause::Signal(signo));
                kill_at.get_or_insert(Instant::now() + args.kill_after);
            }
            _ = tokio::time::sleep_until(kill_at.unwrap_or(far).into()), if kill_at.is_some() && killed_at.is_none() => {
                say("the command's process group is still running; sending it SIGKILL");
                group.signal(libc::SIGKILL);
                killed_at = Some(Instant::now());
            }
            _ = tokio::time::sleep(GROUP_POLL), if status.is_some() => {}
            _ = tokio::time::sleep_until(timing.stop_at(lease).into()), if !lapse_handled => {
                lapse_handled = true;
                match args.on_lease_lost {
                    OnLeaseLost::Stop => {
                        say(&format!(
                            "!!! LEASE LOST: could not renew `{}` before its lease ends at {}; stopping the command's process group (SIGTERM, then SIGKILL)",
                            clean(&key), iso(lease.expires_at)
                        ));
                        renewer.abort();
                        renewing = false;
                        group.signal(libc::SIGTERM);
                        if cause.is_none() || matches!(cause, Some(Cause::Signal(_))) {
                            cause = Some(Cause::LeaseLost);
                        }
                        let by = timing.kill_by(lease).max(Instant::now());
                        kill_at = Some(kill_at.map_or(by, |k| k.min(by)));
                    }
                    OnLeaseLost::Warn => say(&format!(
                        "!!! WARNING: could not renew `{}`; its lease ends at {} and the command keeps running WITHOUT THE LOCK (--on-lease-lost warn); another holder may start at any moment",
                        clean(&key), iso(lease.expires_at)
                    )),
                }
            }
            changed = lease_rx.changed(), if renewing => {
                if changed.is_err() {
                    renewing = false;
                } else if lapse_handled && args.on_lease_lost == OnLeaseLost::Warn {
                    say("lease renewed again; the command holds the lock once more (unless someone took it over meanwhile)");
                    lapse_handled = false;
                }
            }
            // The sender is dropped unused when the renewer is aborted: that
            // answer is consumed too, as a oneshot may be polled only once.
            received = &mut lost_rx, if !lost_seen => {
                lost_seen = true;
                if let Ok(err) = received {
                    let failure = lock_lost(err);
                    say(&format!(
                        "!!! LOCK LOST: {}\nbaton: !!! the command no longer holds `{}`; stopping its process group",
                        clean(&failure.message), clean(&key)
                    ));
                    group.signal(libc::SIGTERM);
                    let by = (Instant::now() + args.kill_after).min(timing.kill_by(lease)).max(Instant::now());
                    kill_at = Some(kill_at.map_or(by, |k| k.min(by)));
                    cause = Some(Cause::Lost(Box::new(failure)));
                }
            }
        }
    }
    renewer.abort();
    let group_gone = !group.alive();
    if let (Some(w), true) = (watcher, group_gone) {
        w.done();
    }

    conclude(client, &grant, cause, status, &lease_rx).await
}

/// Starts the command in a process group of its own, with the grant in its
/// environment. When it cannot start, the grant is released as FAILED and
/// the shell's exit codes say why (127 not found, 126 not executable).
async fn spawn(
    client: &LockClient,
    args: &RunArgs,
    program: &str,
    grant: &Grant,
    watcher: Option<&Watcher>,
) -> Result<(tokio::process::Child, Group), Failure> {
    let key = &grant.record.lock_key;
    let lock_id = &grant.record.lock_id;
    let mut command = tokio::process::Command::new(program);
    command
        .args(&args.command[1..])
        .env(ENV_KEY, key)
        .env(ENV_LOCK_ID, lock_id)
        .env(ENV_FENCE, grant.record.fence.to_string())
        .env("BATON_TABLE", client.table());
    group::isolate(&mut command, watcher);
    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let reason = format!("could not start `{}`: {e}", clean(program));
            release(client, key, lock_id, LockStatus::Failed, reason.clone())
                .await
                .ok();
            // The shell's codes: 127 not found, 126 not executable.
            let code = match e.kind() {
                std::io::ErrorKind::NotFound => RUN_NOT_FOUND,
                std::io::ErrorKind::PermissionDenied => RUN_CANNOT_EXECUTE,
                _ => RUN_ERROR,
            };
            return Err(Failure::new(code, "spawn_failed", reason));
        }
    };
    let group = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .map(Group::new)
        // Only when the child was already reaped, which cannot happen
        // before the first wait; treat it as baton's own error.
        .ok_or_else(|| {
            Failure::new(
                RUN_ERROR,
                "spawn_failed",
                "the command started without a process id",
            )
        })?;
    Ok((child, group))
}

/// After the command and its group are gone: release the grant by how the
/// command ended, and report it (or the lost lock) with the exit code. One
/// arm per way a run can end, then the one release; kept together so the
/// exit code and the released status are decided in one place.
async fn conclude(
    client: &LockClient,
    grant: &Grant,
    cause: Option<Cause>,
    status: Option<std::io::Result<ExitStatus>>,
    lease_rx: &watch::Receiver<Lease>,
) -> Result<Report, Failure> {
    let key = &grant.record.lock_key;
    let lock_id = &grant.record.lock_id;
    let (outcome, reason, code) = match (cause, status) {
        (Some(Cause::Lost(failure)), _) => return Err(*failure),
        (Some(Cause::LeaseLost), _) => {
            return Err(lease_lost(client, key, lock_id, lease_rx.borrow().expires_at).await);
        }
        (Some(Cause::Signal(signo)), _) => (
            LockStatus::Failed,
            Some(format!("interrupted by {}", signals::name(signo))),
            signal_exit(signo),
        ),
        (None, Some(Ok(status))) => exit_outcome(status),
        (None, Some(Err(e))) => {
            let reason = format!("could not wait for the command: {e}");
            release(client, key, lock_id, LockStatus::Failed, reason.clone())
                .await
                .ok();
            return Err(Failure::new(RUN_ERROR, "wait_failed", reason));
        }
        (None, None) => (
            LockStatus::Failed,
            Some("ended without an exit status".into()),
            RUN_ERROR,
        ),
    };

    let mut json = record_fields(&grant.record);
    json.insert("grant".into(), json!(grant_kind_name(&grant.kind)));
    match release(client, key, lock_id, outcome, reason.unwrap_or_default()).await {
        Ok(record) => {
            say(&format!(
                "released {} as {}{} (fence {}); exiting with {code}",
                clean(key),
                record.status,
                record
                    .release_reason
                    .as_deref()
                    .map(|r| format!(": {}", clean(r)))
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
            say(&format!(
                "warning: could not release {}: {}; the lease ends by itself at {}",
                clean(key),
                clean(&err.to_string()),
                iso(lease_rx.borrow().expires_at)
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

/// The lease ended before a renewal landed and the group was stopped:
/// release as FAILED if DynamoDB answers in time (the lease ends by itself
/// anyway), and say which happened.
async fn lease_lost(client: &LockClient, key: &str, lock_id: &str, expires_at: u64) -> Failure {
    let released = tokio::time::timeout(
        LOST_RELEASE_LIMIT,
        release(
            client,
            key,
            lock_id,
            LockStatus::Failed,
            "lease lost".into(),
        ),
    )
    .await;
    let note = match released {
        Ok(Ok(_)) => "released as FAILED (lease lost)".to_owned(),
        Ok(Err(e)) => format!("could not release: {}", clean(&e.to_string())),
        Err(_) => "could not release: no answer from DynamoDB".to_owned(),
    };
    Failure::new(
        RUN_LOCK_LOST,
        "lease_lost",
        format!(
            "lease lost: `{}` could not be renewed before its lease ended at {}; the command's process group was stopped; {note}",
            clean(key),
            iso(expires_at)
        ),
    )
}

/// The outcome, release reason and exit code for the command's own status.
fn exit_outcome(status: ExitStatus) -> (LockStatus, Option<String>, u8) {
    match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(0), _) => (LockStatus::Completed, None, 0),
        (Some(n), _) => (
            LockStatus::Failed,
            Some(format!("exit status {n}")),
            u8::try_from(n).unwrap_or(RUN_ERROR),
        ),
        (None, Some(signo)) => (
            LockStatus::Failed,
            Some(format!("killed by {}", signals::name(signo))),
            signal_exit(signo),
        ),
        (None, None) => (
            LockStatus::Failed,
            Some("ended without an exit status".into()),
            RUN_ERROR,
        ),
    }
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
    client.release(&request).await.map(|ended| ended.record)
}

/// The failure for a grant that ended or was replaced while the command ran:
/// exit 122, nothing released (it is not ours any more).
fn lock_lost(err: LockError) -> Failure {
    let mut failure = Failure::from(err);
    failure.code = RUN_LOCK_LOST;
    failure.kind = "lock_lost";
    failure.message = format!(
        "the lock was lost while the command ran: {}",
        failure.message
    );
    failure
}

/// Renews every `timing.every` until aborted, publishing each new lease
/// end. Ownership errors mean the lock is gone and are reported once through
/// `lost`. Anything else (network, throttling, no answer in time) is a
/// warning and retried soon; whether the lease still holds is decided by
/// the run loop's deadline, not here, so a hung request cannot keep the
/// command running past its lease.
async fn keep_renewed(
    client: LockClient,
    key: String,
    lock_id: String,
    timing: Timing,
    lease: watch::Sender<Lease>,
    lost: oneshot::Sender<LockError>,
) {
    let limit = timing.every.max(Duration::from_secs(1));
    let mut pause = timing.every;
    loop {
        tokio::time::sleep(pause).await;
        match tokio::time::timeout(limit, client.renew(&key, &lock_id, timing.ttl)).await {
            Ok(Ok(record)) => {
                lease.send_replace(Lease::until(record.expires_at));
                tracing::debug!(%key, expires_at = record.expires_at, "lease renewed");
                pause = timing.every;
            }
            Ok(Err(err @ (LockError::NotOwner { .. } | LockError::AlreadyEnded { .. }))) => {
                let _ = lost.send(err);
                return;
            }
            Ok(Err(err)) => {
                say(&format!(
                    "warning: could not renew {} (retrying in {}): {}; the lease ends at {}",
                    clean(&key),
                    humantime::format_duration(timing.retry),
                    clean(&err.to_string()),
                    iso(lease.borrow().expires_at)
                ));
                pause = timing.retry;
            }
            Err(_) => {
                say(&format!(
                    "warning: no answer to renewing {} within {} (retrying); the lease ends at {}",
                    clean(&key),
                    humantime::format_duration(limit),
                    iso(lease.borrow().expires_at)
                ));
                pause = timing.retry;
            }
        }
    }
}
