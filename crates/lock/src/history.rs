//! The history of a key's grants: what one change of a lock item says about
//! the grant it ended.
//!
//! The lock operations write only the lock item (one request each), so the
//! history is not written by them: it is derived afterwards from the item's
//! change stream, one (old image, new image) pair at a time, by
//! [`changes_between`]. A grant ends in exactly one change: the write that
//! released or forced it, the write that replaced it (a takeover, a
//! hand-off, an acquire over a lapsed lease), or the TTL deletion of an item
//! whose lease lapsed and that nobody took. Deriving from pairs keeps the
//! rule pure and testable without a table; [`crate::HistoryClient`] stores
//! what it yields.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::error::LockError;
use crate::record::{LockRecord, LockStatus};

/// How a grant ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// Released by its holder (or its run) as a success.
    Completed,
    /// Released as a failure, or ended by someone else (a takeover).
    Failed,
    /// Ended by `force-unlock`: `ended_by` and `reason` say who and why.
    Forced,
    /// Its lease lapsed: taken over by the next holder, or collected by TTL.
    Expired,
}

impl Outcome {
    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "COMPLETED",
            Outcome::Failed => "FAILED",
            Outcome::Forced => "FORCED",
            Outcome::Expired => "EXPIRED",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [
            Outcome::Completed,
            Outcome::Failed,
            Outcome::Forced,
            Outcome::Expired,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// One ended grant, as kept in the history table: immutable once written,
/// except for `next_*`, filled in when the key is next granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub lock_key: String,
    /// The grant's fence: with the key, what identifies it.
    pub fence: u64,
    pub lock_id: String,
    pub locked_by: String,
    pub locked_by_name: Option<String>,
    pub purpose: Option<String>,
    pub component: Option<String>,
    pub environment: Option<String>,
    pub run_url: Option<String>,
    /// RFC 3339, as on the lock item.
    pub granted_at: String,
    /// RFC 3339: when it was released or forced, or when its lease lapsed.
    pub ended_at: String,
    pub ended_at_ms: u64,
    /// From grant to end, in milliseconds.
    pub duration_ms: u64,
    pub outcome: Outcome,
    /// Who ended it, when someone did.
    pub ended_by: Option<String>,
    /// Why, when said.
    pub reason: Option<String>,
    /// Who was granted the key next, and under which fence, once known.
    pub next_holder: Option<String>,
    pub next_fence: Option<u64>,
}

/// What one change of a lock item adds to the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A grant ended in this change.
    Ended(Box<HistoryEntry>),
    /// The key was granted again after a grant that had already ended (and
    /// was recorded then): who came next.
    Next {
        lock_key: String,
        ended_fence: u64,
        next_holder: String,
        next_fence: u64,
    },
}

/// A raw item image, as a change stream carries it.
pub type Image = HashMap<String, AttributeValue>;

/// The history a change from `old` to `new` makes (either may be absent:
/// a first grant, a TTL deletion). Images that are not lock records (no
/// lock id) yield nothing; an unreadable lock record is an error.
pub fn changes_between(old: Option<&Image>, new: Option<&Image>) -> Result<Vec<Change>, LockError> {
    let old = LockRecord::from_optional_item(old)?;
    let new = LockRecord::from_optional_item(new)?;
    Ok(changes_of(old.as_ref(), new.as_ref()))
}

/// [`changes_between`] on parsed records.
pub fn changes_of(old: Option<&LockRecord>, new: Option<&LockRecord>) -> Vec<Change> {
    let Some(old) = old else {
        return Vec::new();
    };
    let was_held = old.status == LockStatus::InProgress;
    match new {
        // The same grant: it ended now if it was in progress before.
        Some(new) if new.lock_id == old.lock_id => {
            if was_held && new.status != LockStatus::InProgress {
                vec![Change::Ended(Box::new(ended_by_release(new)))]
            } else {
                Vec::new()
            }
        }
        // A new grant replaced a live or lapsed one in this very write.
        Some(new) if was_held => vec![Change::Ended(Box::new(replaced(old, new)))],
        // A new grant after one that ended (and was recorded) earlier.
        Some(new) => vec![Change::Next {
            lock_key: old.lock_key.clone(),
            ended_fence: old.fence,
            next_holder: new.locked_by.clone(),
            next_fence: new.fence,
        }],
        // Collected by TTL while still in progress: its lease lapsed.
        None if was_held => vec![Change::Ended(Box::new(entry(
            old,
            old.expires_at_ms,
            Outcome::Expired,
            None,
            None,
        )))],
        None => Vec::new(),
    }
}

/// A grant released or forced in place.
fn ended_by_release(record: &LockRecord) -> HistoryEntry {
    let outcome = match record.status {
        _ if record.forced => Outcome::Forced,
        LockStatus::Completed => Outcome::Completed,
        _ => Outcome::Failed,
    };
    let ended_ms = record
        .ended_at
        .as_deref()
        .and_then(rfc3339_millis)
        .unwrap_or(record.expires_at_ms);
    entry(
        record,
        ended_ms,
        outcome,
        record.released_by.clone(),
        record.release_reason.clone(),
    )
}

/// A grant replaced by `new` in one write: the new item's copy of its
/// predecessor says how it ended (a hand-off writes the release, a takeover
/// its actor, a forced end handed to a waiter `forcedLockId`; a lapse
/// leaves it in progress).
fn replaced(old: &LockRecord, new: &LockRecord) -> HistoryEntry {
    let granted_ms = rfc3339_millis(&new.locked_at).unwrap_or(old.expires_at_ms);
    let previous = new.previous.as_ref().filter(|p| p.lock_id == old.lock_id);
    let mut entry = match previous {
        Some(p) if p.status != LockStatus::InProgress => entry(
            old,
            granted_ms,
            if p.forced {
                Outcome::Forced
            } else if p.status == LockStatus::Completed {
                Outcome::Completed
            } else {
                Outcome::Failed
            },
            p.released_by.clone(),
            p.release_reason.clone(),
        ),
        // A takeover comes only after the lease ended: that is when it ended.
        _ => entry(old, old.expires_at_ms, Outcome::Expired, None, None),
    };
    entry.next_holder = Some(new.locked_by.clone());
    entry.next_fence = Some(new.fence);
    entry
}

fn entry(
    record: &LockRecord,
    ended_ms: u64,
    outcome: Outcome,
    ended_by: Option<String>,
    reason: Option<String>,
) -> HistoryEntry {
    let granted_ms = rfc3339_millis(&record.locked_at).unwrap_or(ended_ms);
    HistoryEntry {
        lock_key: record.lock_key.clone(),
        fence: record.fence,
        lock_id: record.lock_id.clone(),
        locked_by: record.locked_by.clone(),
        locked_by_name: record.locked_by_name.clone(),
        purpose: record.purpose.clone(),
        component: record.component.clone(),
        environment: record.environment.clone(),
        run_url: record.run_url.clone(),
        granted_at: record.locked_at.clone(),
        ended_at: crate::clock::iso_at_millis(ended_ms),
        ended_at_ms: ended_ms,
        duration_ms: ended_ms.saturating_sub(granted_ms),
        outcome,
        ended_by,
        reason,
        next_holder: None,
        next_fence: None,
    }
}

/// Epoch milliseconds of an RFC 3339 time, as the lock item stores them.
pub(crate) fn rfc3339_millis(text: &str) -> Option<u64> {
    let at = humantime::parse_rfc3339(text).ok()?;
    let since = at.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}
