//! Exit codes and the one place where a [`LockError`] becomes one. CI scripts
//! branch on these numbers, so they are documented in `--help` (see
//! `cli::EXIT_CODES`) and the README, and never change meaning.
//!
//! Two families: the one-shot commands (`acquire`, `release`, …) use small
//! codes 0–6; `run` passes its command's status through, so its own failures
//! use reserved codes in the 12x range, as `timeout(1)` and `env(1)` do, and
//! a pipeline can tell "the deploy script failed with 3" from "the lock was
//! held".

use baton_lock::{LockError, LockRecord};

/// Success.
pub const OK: u8 = 0;
/// Anything that is not the caller's fault nor a conflict: network, missing
/// table, malformed record.
pub const ERROR: u8 = 1;
/// Bad arguments (clap uses 2 as well), including input the library refuses.
pub const USAGE: u8 = 2;
/// Someone else holds the key, or waiting for it timed out.
pub const HELD: u8 = 3;
/// The lock id is not the current grant, or the grant already ended
/// (`verify`: the grant is not current).
pub const NOT_OWNER: u8 = 4;
/// `acquire --request-id`: this owner's grant for that request id already
/// ended — the work it stood for already ran.
pub const ALREADY_RAN: u8 = 5;
/// `acquire --request-id`: this owner's grant for that request id lapsed
/// without release; it must not be used (acquire with a new request id).
pub const REQUEST_LAPSED: u8 = 6;

/// `run`: the lock was lost while the command ran (its lease could not be
/// renewed before it ended, or the grant was ended or taken over); the
/// command's process group was stopped.
pub const RUN_LOCK_LOST: u8 = 122;
/// `run`: someone else holds the key (no `--wait`); the command never started.
pub const RUN_HELD: u8 = 123;
/// `run`: `--wait` ran out while the key was held; the command never started.
pub const RUN_WAIT_TIMED_OUT: u8 = 124;
/// `run`: baton's own failure (usage, DynamoDB, table, …).
pub const RUN_ERROR: u8 = 125;
/// `run`: the command exists but could not be executed (as in a shell).
pub const RUN_CANNOT_EXECUTE: u8 = 126;
/// `run`: the command was not found (as in a shell).
pub const RUN_NOT_FOUND: u8 = 127;

/// Exit status for a process stopped by signal `signo`, as shells report it.
pub fn signal_exit(signo: i32) -> u8 {
    u8::try_from(128 + signo).unwrap_or(ERROR)
}

/// A failed command: what to print and which code to exit with.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    /// Stable machine name for `--json` (`"error"` field).
    pub kind: &'static str,
    pub message: String,
    /// The record that explains the failure and the JSON field it goes in:
    /// `holder` for conflicts, `current` when a lock id did not match.
    /// Printed without its lock id (see `render::print_failure`).
    pub record: Option<(&'static str, Box<LockRecord>)>,
}

impl Failure {
    /// A failure without a record.
    pub fn new(code: u8, kind: &'static str, message: impl Into<String>) -> Self {
        Failure {
            code,
            kind,
            message: message.into(),
            record: None,
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(USAGE, "usage", message)
    }

    /// The same failure with `run`'s reserved codes: the one-shot codes 1–6
    /// would be indistinguishable from the command's own statuses. Codes
    /// that are already `run`'s (12x, 128+N) are kept.
    pub fn for_run(mut self) -> Self {
        if (ERROR..=REQUEST_LAPSED).contains(&self.code) {
            self.code = match self.kind {
                "held" | "line_full" | "lost_place" => RUN_HELD,
                "wait_timed_out" => RUN_WAIT_TIMED_OUT,
                _ => RUN_ERROR,
            };
        }
        self
    }
}

/// One arm per `LockError` variant, each with its exit code and message:
/// long because the table is, not because it branches.
impl From<LockError> for Failure {
    fn from(err: LockError) -> Self {
        // Messages are built here rather than from `LockError`'s Display,
        // which names lock ids: these are printed to whoever asked.
        let message = match &err {
            LockError::Held { holder } => {
                format!("lock `{}` is held by someone else", holder.lock_key)
            }
            LockError::WaitTimedOut {
                key,
                holder: Some(_),
            } => {
                format!("timed out waiting for lock `{key}`; it is still held")
            }
            LockError::NotOwner {
                key,
                lock_id,
                current,
            } => format!(
                "lock id {lock_id} is not the current grant of `{key}`{}",
                if current.is_some() {
                    ""
                } else {
                    " (the key has no lock record)"
                }
            ),
            LockError::RequestEnded { record } => format!(
                "already ran: this request id's grant on `{}` (fence {}) ended as {}; nothing was acquired",
                record.lock_key, record.fence, record.status
            ),
            LockError::RequestLapsed { record } => format!(
                "this request id's grant on `{}` (fence {}) lapsed without release or renewal; it is not handed back — acquire with a new request id",
                record.lock_key, record.fence
            ),
            LockError::RequestSuperseded {
                request_id,
                current,
            } => format!(
                "request `{request_id}` already had its grant on `{}`; the key has been granted again since (fence {})",
                current.lock_key, current.fence
            ),
            LockError::AlreadyEnded { record } => format!(
                "the grant on `{}` (fence {}) already ended as {}",
                record.lock_key, record.fence, record.status
            ),
            LockError::NotHeld { key, .. } => {
                format!("lock `{key}` is not held by the given lock id")
            }
            LockError::LineFull { key, holder } => format!(
                "the line for `{key}` is full ({} waiting); not queued",
                holder.waiters.len()
            ),
            LockError::NotWaiting { key, .. } => format!(
                "lost the place in the line for `{key}`: its turn came and was not claimed in time, or it was dropped"
            ),
            other => other.to_string(),
        };
        let (code, kind, field) = match &err {
            LockError::Held { .. } => (HELD, "held", "holder"),
            // The CLI never asks for a freeze check; should it meet a
            // freeze, that is a key it may not take now, like a held one.
            LockError::Frozen { .. } => (HELD, "frozen", "current"),
            LockError::WaitTimedOut { .. } => (HELD, "wait_timed_out", "holder"),
            LockError::NotOwner { .. } => (NOT_OWNER, "not_owner", "current"),
            LockError::AlreadyEnded { .. } => (NOT_OWNER, "already_ended", "current"),
            LockError::RequestSuperseded { .. } => (NOT_OWNER, "request_superseded", "current"),
            LockError::RequestEnded { .. } => (ALREADY_RAN, "already_ran", "current"),
            LockError::RequestLapsed { .. } => (REQUEST_LAPSED, "request_lapsed", "current"),
            // Only reached with `force-unlock --lock-id` naming a grant that is
            // no longer current (nothing held at all is a success, see commands).
            LockError::NotHeld { .. } => (NOT_OWNER, "not_held", "current"),
            LockError::LineFull { .. } => (HELD, "line_full", "holder"),
            LockError::NotWaiting { .. } => (HELD, "lost_place", "current"),
            LockError::LineBusy { .. } => (ERROR, "line_busy", "current"),
            LockError::InvalidInput(_) => (USAGE, "invalid_input", "current"),
            LockError::Cancelled { .. } => (ERROR, "cancelled", "current"),
            LockError::TableNotFound { .. } => (ERROR, "table_not_found", "current"),
            LockError::Corrupt { .. } => (ERROR, "corrupt", "current"),
            LockError::Dynamo { .. } => (ERROR, "dynamodb", "current"),
        };
        let record = err.current_record().cloned().map(|r| (field, Box::new(r)));
        Failure {
            code,
            kind,
            message,
            record,
        }
    }
}
