//! The one place a [`LockError`] becomes an HTTP answer. The statuses carry
//! the meanings of the CLI's exit codes (`crates/cli/src/failure.rs`), so a
//! script can move from `baton acquire` to `curl` and branch the same way:
//!
//! | lock error | CLI exit | HTTP | `error` |
//! |---|---|---|---|
//! | `Held` | 3 | 409 | `held` (with `holder`) |
//! | `WaitTimedOut` | 3 | 409 | `wait_timed_out` (with `holder`) |
//! | `LineFull` | 3 | 429 | `line_full` (with `holder`) |
//! | `NotWaiting` | 3 | 409 | `lost_place` |
//! | `NotOwner` with a record | 4 | 403 | `not_owner` |
//! | `NotOwner` with no record | 4 | 404 | `not_found` |
//! | `AlreadyEnded` | 4 | 409 | `already_ended` |
//! | `RequestSuperseded` | 4 | 409 | `request_superseded` |
//! | `NotHeld` (force unlock of a lock id no longer current) | 4 | 409 | `not_held` |
//! | `RequestEnded` | 5 | 409 | `already_ran` |
//! | `RequestLapsed` | 6 | 409 | `request_lapsed` |
//! | `InvalidInput` | 2 | 400 | `bad_input` |
//! | `LineBusy`, `Cancelled`, DynamoDB unreachable or throttled | 1 | 503 (`Retry-After: 1`) | `line_busy`, `cancelled`, `store_unavailable` |
//! | `TableNotFound`, `Corrupt`, other DynamoDB errors | 1 | 500 | `table_not_found`, `corrupt`, `store_error` |
//!
//! Records in answers are shown without lock ids ([`crate::view::foreign`]):
//! a refusal never hands the caller someone else's ownership token.

use baton_lock::LockError;
use lambda_http::http::{StatusCode, header};
use serde_json::Value;
use tracing::error;

use crate::answer::Answer;
use crate::view;

/// The answer for a failed lock operation.
pub fn answer(err: LockError) -> Answer {
    let (status, kind) = match &err {
        LockError::Held { .. } => (StatusCode::CONFLICT, "held"),
        // The API asks for no freeze check; should one refuse, the key may
        // not be taken now, like a held one.
        LockError::Frozen { .. } => (StatusCode::CONFLICT, "frozen"),
        LockError::WaitTimedOut { .. } => (StatusCode::CONFLICT, "wait_timed_out"),
        LockError::LineFull { .. } => (StatusCode::TOO_MANY_REQUESTS, "line_full"),
        LockError::NotWaiting { .. } => (StatusCode::CONFLICT, "lost_place"),
        LockError::NotOwner { current: None, .. } => (StatusCode::NOT_FOUND, "not_found"),
        LockError::NotOwner { .. } => (StatusCode::FORBIDDEN, "not_owner"),
        LockError::AlreadyEnded { .. } => (StatusCode::CONFLICT, "already_ended"),
        LockError::RequestSuperseded { .. } => (StatusCode::CONFLICT, "request_superseded"),
        LockError::NotHeld { .. } => (StatusCode::CONFLICT, "not_held"),
        LockError::RequestEnded { .. } => (StatusCode::CONFLICT, "already_ran"),
        LockError::RequestLapsed { .. } => (StatusCode::CONFLICT, "request_lapsed"),
        LockError::InvalidInput(_) => (StatusCode::BAD_REQUEST, "bad_input"),
        LockError::LineBusy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "line_busy"),
        LockError::Cancelled { .. } => (StatusCode::SERVICE_UNAVAILABLE, "cancelled"),
        LockError::Dynamo { .. } if err.is_transient() => {
            (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
        }
        LockError::Dynamo { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "store_error"),
        LockError::TableNotFound { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "table_not_found"),
        LockError::Corrupt { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "corrupt"),
    };
    if status.is_server_error() {
        error!(error = %err, kind, "lock store failed");
    }
    let field = match kind {
        "held" | "wait_timed_out" | "line_full" => "holder",
        _ => "current",
    };
    let record = err
        .current_record()
        .map(|r| Value::Object(view::foreign(r)));
    let mut answer = Answer::error(status, kind, message(&err));
    if let Some(record) = record {
        answer = answer.with_field(field, record);
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        answer = answer.with_header(header::RETRY_AFTER, "1");
    }
    answer
}

/// What to tell the caller. Built here rather than from `LockError`'s
/// `Display`, which names lock ids.
fn message(err: &LockError) -> String {
    match err {
        LockError::Held { holder } => format!(
            "lock `{}` is held by {} (fence {})",
            holder.lock_key,
            holder.holder_label(),
            holder.fence
        ),
        LockError::WaitTimedOut { key, .. } => {
            format!("timed out waiting for lock `{key}`; it is still held")
        }
        LockError::NotOwner { key, current, .. } => match current {
            Some(_) => format!("the lock id given is not the current grant of `{key}`"),
            None => format!("`{key}` has no lock record"),
        },
        LockError::AlreadyEnded { record } => format!(
            "the grant on `{}` (fence {}) already ended as {}",
            record.lock_key, record.fence, record.status
        ),
        LockError::NotHeld { key, .. } => {
            format!("the lock id given is not the grant holding `{key}`; nothing was unlocked")
        }
        LockError::RequestSuperseded { current, .. } => format!(
            "this request id already had its grant on `{}`; the key has been granted again since (fence {})",
            current.lock_key, current.fence
        ),
        LockError::RequestEnded { record } => format!(
            "already ran: this request id's grant on `{}` (fence {}) ended as {}; nothing was acquired",
            record.lock_key, record.fence, record.status
        ),
        LockError::RequestLapsed { record } => format!(
            "this request id's grant on `{}` (fence {}) lapsed without release or renewal; acquire with a new request id",
            record.lock_key, record.fence
        ),
        LockError::LineFull { key, holder } => format!(
            "the line for `{key}` is full ({} waiting); not queued",
            holder.waiters.len()
        ),
        LockError::NotWaiting { key, .. } => format!(
            "lost the place in the line for `{key}`: its turn came and was not claimed in time, or it was dropped"
        ),
        LockError::Dynamo { .. } | LockError::TableNotFound { .. } | LockError::Corrupt { .. } => {
            "the lock store failed; see the API's log".to_owned()
        }
        other => other.to_string(),
    }
}
