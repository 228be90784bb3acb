//! Exit codes and the one place where a [`LockError`] becomes one. CI scripts
//! branch on these numbers, so they are documented in `--help` and never
//! change meaning.

use baton_lock::{LockError, LockRecord};

/// Success.
pub const OK: u8 = 0;
/// Anything that is not the caller's fault nor a conflict: network, missing
/// table, malformed record, lock lost while `run` held it.
pub const ERROR: u8 = 1;
/// Bad arguments (clap uses 2 as well), including input the library refuses.
pub const USAGE: u8 = 2;
/// Someone else holds the key, or waiting for it timed out.
pub const HELD: u8 = 3;
/// The lock id is not the current grant, or the grant already ended.
pub const NOT_OWNER: u8 = 4;

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
}

impl From<LockError> for Failure {
    fn from(err: LockError) -> Self {
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
            other => other.to_string(),
        };
        let (code, kind, field) = match &err {
            LockError::Held { .. } => (HELD, "held", "holder"),
            LockError::WaitTimedOut { .. } => (HELD, "wait_timed_out", "holder"),
            LockError::NotOwner { .. } => (NOT_OWNER, "not_owner", "current"),
            LockError::AlreadyEnded { .. } => (NOT_OWNER, "already_ended", "current"),
            LockError::RequestSuperseded { .. } => (NOT_OWNER, "request_superseded", "current"),
            // Only reached with `force-unlock --lock-id` naming a grant that is
            // no longer current (nothing held at all is a success, see commands).
            LockError::NotHeld { .. } => (NOT_OWNER, "not_held", "current"),
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
