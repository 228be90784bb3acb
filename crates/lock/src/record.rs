//! The lock record as stored in DynamoDB, and how to read one back.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use crate::error::LockError;
use crate::line::Waiter;
use crate::schema::attr;

/// Raw DynamoDB item.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// Lifecycle of a grant. Ended records stay in the table as the audit trail of
/// the last run and are free to acquire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LockStatus {
    InProgress,
    Completed,
    Failed,
}

impl LockStatus {
    /// The string stored in the `status` attribute (the values existing dashboards read).
    pub fn as_str(self) -> &'static str {
        match self {
            LockStatus::InProgress => "IN_PROGRESS",
            LockStatus::Completed => "COMPLETED",
            LockStatus::Failed => "FAILED",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "IN_PROGRESS" => Some(LockStatus::InProgress),
            "COMPLETED" => Some(LockStatus::Completed),
            "FAILED" => Some(LockStatus::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for LockStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a reader should conclude from a record at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockState {
    /// `IN_PROGRESS` and the lease has not ended: someone holds it.
    Held,
    /// `IN_PROGRESS` but the lease ended: the holder is presumed dead and the
    /// next acquire takes it over at once.
    Expired,
    /// Released as `COMPLETED` or `FAILED`: free.
    Ended,
}

/// The grant a record replaced, copied onto the item by the same write that
/// made the new grant, so the audit trail survives without a second request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviousGrant {
    pub lock_id: String,
    /// The request id that made that grant, so a late duplicate of it is
    /// recognised even after the key was granted again.
    pub request_id: Option<String>,
    pub locked_by: String,
    pub status: LockStatus,
    pub expires_at: u64,
    /// Who ended that grant, when it ended (released, forced or taken over).
    pub released_by: Option<String>,
    /// Why it ended, when said (a takeover's reason).
    pub release_reason: Option<String>,
    /// True when that grant was ended by a force unlock or an operator's
    /// takeover (its lock id is the item's `forcedLockId`).
    pub forced: bool,
}

/// The pipeline a grant was made for: the repository and workflow the
/// grant dispatches, and the run once its id is known. Completions, renewals
/// by the reconciler and takeovers are all decided against this binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRun {
    /// `owner/name` of the repository.
    pub repository: String,
    /// The workflow file, e.g. `deploy.yml`.
    pub workflow: String,
    /// The run's id; `None` until the dispatch answer (or a search) names it.
    pub run_id: Option<u64>,
}

/// One lock key's item. Field names serialise to the table's attribute names
/// so `--json` output matches what dashboards read from DynamoDB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LockRecord {
    pub lock_key: String,
    /// Unique per grant: the ownership token every later write must present.
    pub lock_id: String,
    /// Idempotency key of the request that made this grant (e.g. an SQS message id).
    pub request_id: Option<String>,
    /// Fencing token: strictly increases with every grant of this key.
    pub fence: u64,
    pub status: LockStatus,
    pub locked_by: String,
    pub locked_by_name: Option<String>,
    /// ISO-8601 UTC time of the grant.
    pub locked_at: String,
    /// Lease end in epoch seconds, rounded up (for people and dashboards).
    pub expires_at: u64,
    /// Lease end in epoch milliseconds: decides validity. Records written
    /// before it existed read as `expires_at` in milliseconds.
    pub expires_at_ms: u64,
    /// Garbage-collection time for DynamoDB TTL, well after the lease.
    pub ttl: Option<u64>,
    pub component: Option<String>,
    pub environment: Option<String>,
    pub correlation_id: Option<String>,
    pub purpose: Option<String>,
    pub host: Option<String>,
    pub pid: Option<u32>,
    pub run_url: Option<String>,
    /// The pipeline this grant was made for, and its run once known: only
    /// that run may end the grant through a completion.
    pub pipeline: Option<PipelineRun>,
    /// The last run that went around this key's lock, if any.
    pub bypass: Option<crate::bypass::Bypass>,
    /// The caller's own data for this grant (see `AcquireRequest::context`);
    /// it may hold where to reply, so it is never shown.
    #[serde(skip_serializing)]
    pub context: Option<String>,
    /// Who took the grant as AWS authenticated them (an STS ARN), when the
    /// CLI could ask; `locked_by` is what they declared.
    pub caller_arn: Option<String>,
    /// Who force-unlocked this grant as AWS authenticated them, when known;
    /// `released_by` is the actor they declared.
    pub forced_by_arn: Option<String>,
    pub ended_at: Option<String>,
    pub released_by: Option<String>,
    pub release_reason: Option<String>,
    /// True when the lock was ended by `force_unlock` rather than its holder:
    /// the item's `forcedLockId` is this grant's lock id (or, on records
    /// written before that attribute, `forced` is true).
    pub forced: bool,
    /// The grant this one replaced, if any.
    pub previous: Option<PreviousGrant>,
    /// Who waits for the key, head first; the next grant goes to the head.
    pub waiters: Vec<Waiter>,
    /// Bumped by every change of the line, so a write can apply to exactly
    /// the line its writer saw.
    pub line_version: u64,
}

impl LockRecord {
    /// Validity at `now` (epoch seconds), decided only by status and lease
    /// end (rounded up to the second: never shorter than the lease).
    pub fn state_at(&self, now: u64) -> LockState {
        match self.status {
            LockStatus::InProgress if now < self.expires_at => LockState::Held,
            LockStatus::InProgress => LockState::Expired,
            LockStatus::Completed | LockStatus::Failed => LockState::Ended,
        }
    }

    /// Validity at `now_ms` (epoch milliseconds), to the millisecond.
    pub fn state_at_ms(&self, now_ms: u64) -> LockState {
        match self.status {
            LockStatus::InProgress if now_ms < self.expires_at_ms => LockState::Held,
            LockStatus::InProgress => LockState::Expired,
            LockStatus::Completed | LockStatus::Failed => LockState::Ended,
        }
    }

    /// True when this grant replaced a lease that expired without release.
    pub fn took_over_expired(&self) -> bool {
        self.previous
            .as_ref()
            .is_some_and(|p| p.status == LockStatus::InProgress)
    }

    /// When the grant was made, in epoch seconds (`lockedAt` is stored as
    /// RFC 3339 for people reading the table); `None` if it is unreadable.
    pub fn locked_at_secs(&self) -> Option<u64> {
        humantime::parse_rfc3339(&self.locked_at)
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }

    /// The 1-based place of the waiter with `ticket` or `member` in the line.
    pub fn position_of(&self, who: &str) -> Option<usize> {
        self.waiters
            .iter()
            .position(|w| w.ticket == who || w.member.as_deref() == Some(who))
            .map(|i| i + 1)
    }

    /// Human label for the holder: name when known, id otherwise.
    pub fn holder_label(&self) -> &str {
        self.locked_by_name.as_deref().unwrap_or(&self.locked_by)
    }

    /// Reads a stored item: one line per attribute of the schema.
    pub(crate) fn from_item(item: &Item) -> Result<Self, LockError> {
        let key = opt_s(item, attr::LOCK_KEY).unwrap_or_default();
        let corrupt = |detail: String| LockError::Corrupt {
            key: key.clone(),
            detail,
        };
        let req_s =
            |name: &str| opt_s(item, name).ok_or_else(|| corrupt(format!("missing `{name}`")));
        let status_raw = req_s(attr::STATUS)?;
        let status = LockStatus::parse(&status_raw)
            .ok_or_else(|| corrupt(format!("unknown status `{status_raw}`")))?;
        let expires_at = opt_n(item, attr::EXPIRES_AT)
            .map_err(corrupt)?
            .ok_or_else(|| corrupt("missing `expiresAt`".into()))?;
        let forced_lock_id = opt_s(item, attr::FORCED_LOCK_ID).filter(|id| !id.is_empty());
        let forced_grant = |lock_id: Option<&str>| {
            forced_lock_id.is_some() && forced_lock_id.as_deref() == lock_id
        };
        let previous = match opt_s(item, attr::PREV_STATUS)
            .as_deref()
            .and_then(LockStatus::parse)
        {
            Some(prev_status) => Some(PreviousGrant {
                lock_id: opt_s(item, attr::PREV_LOCK_ID).unwrap_or_default(),
                request_id: opt_s(item, attr::PREV_REQUEST_ID).filter(|r| !r.is_empty()),
                locked_by: opt_s(item, attr::PREV_LOCKED_BY).unwrap_or_default(),
                released_by: opt_s(item, attr::PREV_RELEASED_BY).filter(|r| !r.is_empty()),
                release_reason: opt_s(item, attr::PREV_RELEASE_REASON).filter(|r| !r.is_empty()),
                forced: forced_grant(opt_s(item, attr::PREV_LOCK_ID).as_deref()),
                status: prev_status,
                expires_at: opt_n(item, attr::PREV_EXPIRES_AT)
                    .map_err(corrupt)?
                    .unwrap_or(0),
            }),
            None => None,
        };
        let lock_id = req_s(attr::LOCK_ID)?;
        let forced = forced_grant(Some(&lock_id))
            || matches!(item.get(attr::FORCED), Some(AttributeValue::Bool(true)));
        Ok(LockRecord {
            request_id: opt_s(item, attr::REQUEST_ID),
            fence: opt_n(item, attr::FENCE)
                .map_err(corrupt)?
                .ok_or_else(|| corrupt("missing `fence`".into()))?,
            status,
            locked_by: req_s(attr::LOCKED_BY)?,
            locked_by_name: opt_s(item, attr::LOCKED_BY_NAME),
            locked_at: opt_s(item, attr::LOCKED_AT).unwrap_or_default(),
            expires_at,
            expires_at_ms: opt_n(item, attr::EXPIRES_AT_MS)
                .map_err(corrupt)?
                .unwrap_or(expires_at.saturating_mul(1000)),
            ttl: opt_n(item, attr::TTL).map_err(corrupt)?,
            component: opt_s(item, attr::COMPONENT),
            environment: opt_s(item, attr::ENVIRONMENT),
            correlation_id: opt_s(item, attr::CORRELATION_ID),
            purpose: opt_s(item, attr::PURPOSE),
            host: opt_s(item, attr::HOST),
            pid: opt_n(item, attr::PID)
                .map_err(corrupt)?
                .and_then(|p| u32::try_from(p).ok()),
            run_url: opt_s(item, attr::RUN_URL),
            pipeline: match (
                opt_s(item, attr::RUN_REPOSITORY),
                opt_s(item, attr::RUN_WORKFLOW),
            ) {
                (Some(repository), Some(workflow)) => Some(PipelineRun {
                    repository,
                    workflow,
                    run_id: opt_n(item, attr::RUN_ID).map_err(corrupt)?,
                }),
                _ => None,
            },
            context: opt_s(item, attr::CONTEXT),
            caller_arn: opt_s(item, attr::CALLER_ARN),
            forced_by_arn: opt_s(item, attr::FORCED_BY_ARN)
                .filter(|_| forced_grant(Some(&lock_id))),
            bypass: crate::bypass::Bypass::from_item(item),
            ended_at: opt_s(item, attr::ENDED_AT),
            released_by: opt_s(item, attr::RELEASED_BY),
            release_reason: opt_s(item, attr::RELEASE_REASON),
            forced,
            previous,
            waiters: match item.get(attr::WAITERS) {
                Some(AttributeValue::L(list)) => list
                    .iter()
                    .map(|w| {
                        Waiter::from_attribute(w)
                            .ok_or_else(|| corrupt(format!("malformed `{}` entry", attr::WAITERS)))
                    })
                    .collect::<Result<_, _>>()?,
                _ => Vec::new(),
            },
            line_version: opt_n(item, attr::LINE_VERSION)
                .map_err(corrupt)?
                .unwrap_or(0),
            lock_id,
            lock_key: key,
        })
    }

    /// Reads an item that may be absent or incomplete (e.g. the `ALL_OLD`
    /// image of a key that was never locked).
    pub(crate) fn from_optional_item(item: Option<&Item>) -> Result<Option<Self>, LockError> {
        match item {
            Some(item) if item.contains_key(attr::LOCK_ID) => Self::from_item(item).map(Some),
            _ => Ok(None),
        }
    }
}

pub(crate) fn opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

pub(crate) fn opt_n(item: &Item, name: &str) -> Result<Option<u64>, String> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("`{name}` is not a whole number: {n}")),
        Some(_) => Err(format!("`{name}` is not a number")),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(extra: &[(&str, AttributeValue)]) -> Item {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let mut item: Item = [
            (attr::LOCK_KEY, s("k")),
            (attr::LOCK_ID, s("L2")),
            (attr::STATUS, s("FAILED")),
            (attr::LOCKED_BY, s("U2")),
            (attr::EXPIRES_AT, AttributeValue::N("10".into())),
            (attr::FENCE, AttributeValue::N("2".into())),
            (attr::PREV_STATUS, s("FAILED")),
            (attr::PREV_LOCK_ID, s("L1")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        item.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        item
    }

    #[test]
    fn forced_is_the_grant_named_by_forced_lock_id() {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let this = LockRecord::from_item(&item(&[(attr::FORCED_LOCK_ID, s("L2"))])).unwrap();
        assert!(this.forced);
        assert!(!this.previous.unwrap().forced);
        let before = LockRecord::from_item(&item(&[(attr::FORCED_LOCK_ID, s("L1"))])).unwrap();
        assert!(!before.forced);
        assert!(before.previous.unwrap().forced);
        let none = LockRecord::from_item(&item(&[])).unwrap();
        assert!(!none.forced && !none.previous.unwrap().forced);
    }

    #[test]
    fn a_record_written_before_forced_lock_id_is_read_by_its_forced_flag() {
        let legacy =
            LockRecord::from_item(&item(&[(attr::FORCED, AttributeValue::Bool(true))])).unwrap();
        assert!(legacy.forced);
        let unforced =
            LockRecord::from_item(&item(&[(attr::FORCED, AttributeValue::Bool(false))])).unwrap();
        assert!(!unforced.forced);
    }
}
