//! The waiting line of a lock key: who waits for it, in what order, and
//! whom the next grant goes to.
//!
//! The line lives on the lock item itself (`waiters`, a bounded list, and
//! `lineVersion`, a counter every change of the line bumps). Keeping it on
//! the item is what makes a hand-off one write: the write that ends a grant
//! can grant the head of the line in the same conditional `UpdateItem`, so
//! no third party can take the key in between. Joining costs one write after
//! the acquire that found the key held (whose refusal already returned the
//! line), and the line's version makes every such write exact: it applies
//! only to the line its writer saw.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use crate::acquire::{AcquireRequest, Grant};
use crate::record::{LockRecord, PipelineRun};

/// Longest line a key may have, whatever the caller configures: the line is
/// stored on the lock item, which DynamoDB caps at 400 KB.
pub const MAX_LINE_LEN: usize = 100;

/// How a key's line takes a newcomer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum LineMode {
    /// First come, first served, at most `max` waiting.
    Fifo { max: usize },
    /// At most one waiter, the newest: a newcomer replaces whoever waited
    /// (for deploys where only the latest commit matters).
    Latest,
}

/// A request to take a key, or to wait in its line if it is held.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// What to grant, to whom, for how long. Its `request_id` identifies the
    /// waiter across redeliveries; a lock id is made for it up front (the
    /// waiter's ticket) so a hand-off can name the grant before it exists.
    pub acquire: AcquireRequest,
    pub mode: LineMode,
    /// How long the waiter may wait before a hand-off skips and drops it.
    pub max_wait: Duration,
    /// The first lease of a handed-off grant when shorter than
    /// `acquire.ttl`: a waiter that must notice its turn (a polling CLI)
    /// renews within it, and a dead one loses its turn when it lapses.
    pub claim: Option<Duration>,
    /// Who counts as already waiting: the same member joining again is
    /// told its place instead of queued twice (a Slack user for a target);
    /// `None` makes every join a new waiter.
    pub member: Option<String>,
}

/// One waiter in a key's line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Waiter {
    /// The lock id the waiter is granted under when its turn comes: its
    /// ownership token to be, never shown to others.
    #[serde(skip_serializing)]
    pub ticket: String,
    #[serde(skip_serializing)]
    pub request_id: String,
    pub member: Option<String>,
    pub owner: String,
    pub owner_name: Option<String>,
    pub purpose: Option<String>,
    pub component: Option<String>,
    pub environment: Option<String>,
    pub correlation_id: Option<String>,
    pub host: Option<String>,
    pub pid: Option<u32>,
    pub run_url: Option<String>,
    /// The pipeline the grant will dispatch (run id always unknown yet).
    pub pipeline: Option<PipelineRun>,
    /// The full lease, in milliseconds.
    pub ttl_ms: u64,
    /// The first lease of the hand-off, when shorter (see [`JoinRequest::claim`]).
    pub claim_ms: Option<u64>,
    /// When the waiter joined, epoch milliseconds.
    pub joined_at_ms: u64,
    /// When a hand-off stops considering it, epoch milliseconds.
    pub deadline_ms: u64,
    /// The waiter's caller's own data (see `AcquireRequest::context`); it
    /// may hold where to reply, so it is never shown.
    #[serde(skip_serializing)]
    pub context: Option<String>,
}

impl Waiter {
    /// The waiter for `request`, joining at `now_ms` on the store's clock.
    pub(crate) fn new(request: &JoinRequest, now_ms: u64) -> Waiter {
        let a = &request.acquire;
        let ticket = uuid::Uuid::new_v4().to_string();
        Waiter {
            request_id: a.request_id.clone().unwrap_or_else(|| ticket.clone()),
            ticket,
            member: request.member.clone(),
            owner: a.owner.clone(),
            owner_name: a.owner_name.clone(),
            purpose: a.purpose.clone(),
            component: a.component.clone(),
            environment: a.environment.clone(),
            correlation_id: a.correlation_id.clone(),
            host: a.host.clone(),
            pid: a.pid,
            run_url: a.run_url.clone(),
            pipeline: a
                .pipeline
                .clone()
                .map(|p| PipelineRun { run_id: None, ..p }),
            ttl_ms: millis(a.ttl),
            claim_ms: request.claim.filter(|c| *c < a.ttl).map(millis),
            joined_at_ms: now_ms,
            deadline_ms: now_ms.saturating_add(millis(request.max_wait)),
            context: a.context.clone(),
        }
    }

    /// The acquire this waiter's grant is made from, with its first lease.
    pub(crate) fn acquire_request(&self, key: &str) -> AcquireRequest {
        AcquireRequest {
            key: key.to_owned(),
            // A grant handed to a waiter is written by whoever ended the
            // grant before it: no caller of the waiter's own to record.
            caller_arn: None,
            owner: self.owner.clone(),
            owner_name: self.owner_name.clone(),
            ttl: Duration::from_millis(self.claim_ms.unwrap_or(self.ttl_ms)),
            request_id: Some(self.request_id.clone()),
            purpose: self.purpose.clone(),
            component: self.component.clone(),
            environment: self.environment.clone(),
            correlation_id: self.correlation_id.clone(),
            host: self.host.clone(),
            pid: self.pid,
            run_url: self.run_url.clone(),
            pipeline: self.pipeline.clone(),
            takeover: Default::default(),
            context: self.context.clone(),
            // A hand-off is part of the write that ends the previous grant,
            // which checks no freeze: the caller checks a waiter's freeze
            // when its turn comes.
            unless_frozen: None,
        }
    }

    /// Who this waiter is in the line's member set: its request id, and its
    /// member when it has one.
    pub(crate) fn member_keys(&self) -> Vec<String> {
        let mut keys = vec![format!("r:{}", self.request_id)];
        if let Some(member) = &self.member {
            keys.push(format!("m:{member}"));
        }
        keys
    }

    /// How long the waiter has waited at `now_ms`.
    pub fn waited(&self, now_ms: u64) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(self.joined_at_ms))
    }

    /// Whether the waiter's maximum wait has passed at `now_ms`.
    pub fn is_overdue(&self, now_ms: u64) -> bool {
        now_ms >= self.deadline_ms
    }

    pub(crate) fn to_attribute(&self) -> AttributeValue {
        let mut m = HashMap::new();
        let mut s = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), AttributeValue::S(v.clone()));
            }
        };
        s("ticket", &Some(self.ticket.clone()));
        s("requestId", &Some(self.request_id.clone()));
        s("member", &self.member);
        s("owner", &Some(self.owner.clone()));
        s("ownerName", &self.owner_name);
        s("purpose", &self.purpose);
        s("component", &self.component);
        s("environment", &self.environment);
        s("correlationId", &self.correlation_id);
        s("host", &self.host);
        s("runUrl", &self.run_url);
        s("context", &self.context);
        s(
            "runRepository",
            &self.pipeline.as_ref().map(|p| p.repository.clone()),
        );
        s(
            "runWorkflow",
            &self.pipeline.as_ref().map(|p| p.workflow.clone()),
        );
        let mut n = |k: &str, v: Option<u64>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), AttributeValue::N(v.to_string()));
            }
        };
        n("pid", self.pid.map(u64::from));
        n("ttlMs", Some(self.ttl_ms));
        n("claimMs", self.claim_ms);
        n("joinedAtMs", Some(self.joined_at_ms));
        n("deadlineMs", Some(self.deadline_ms));
        AttributeValue::M(m)
    }

    /// Reads one element of `waiters`; `None` for anything baton did not write.
    pub(crate) fn from_attribute(value: &AttributeValue) -> Option<Waiter> {
        let AttributeValue::M(m) = value else {
            return None;
        };
        let s = |k: &str| match m.get(k) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        let n = |k: &str| match m.get(k) {
            Some(AttributeValue::N(v)) => v.parse::<u64>().ok(),
            _ => None,
        };
        Some(Waiter {
            ticket: s("ticket")?,
            request_id: s("requestId")?,
            member: s("member"),
            owner: s("owner")?,
            owner_name: s("ownerName"),
            purpose: s("purpose"),
            component: s("component"),
            environment: s("environment"),
            correlation_id: s("correlationId"),
            host: s("host"),
            pid: n("pid").and_then(|p| u32::try_from(p).ok()),
            run_url: s("runUrl"),
            pipeline: match (s("runRepository"), s("runWorkflow")) {
                (Some(repository), Some(workflow)) => Some(PipelineRun {
                    repository,
                    workflow,
                    run_id: None,
                }),
                _ => None,
            },
            ttl_ms: n("ttlMs")?,
            claim_ms: n("claimMs"),
            joined_at_ms: n("joinedAtMs")?,
            deadline_ms: n("deadlineMs")?,
            context: s("context"),
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What a join came to.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per join and matched at once; never stored in bulk"
)]
pub enum Joined {
    /// The key was free: granted at once, as by an acquire.
    Granted(Grant),
    /// The key is held: the caller waits at `place`.
    Waiting(Box<Place>),
}

/// A waiter's place in a line, and the key as it stood.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Place {
    /// The waiter, as stored in the line.
    pub waiter: Waiter,
    /// 1 for the head of the line.
    pub position: usize,
    /// The key's record: the holder, and the line with this waiter in it.
    pub record: LockRecord,
    /// The member was already waiting: this is its earlier place, and
    /// nothing was written.
    pub already_waiting: bool,
    /// Whom a [`LineMode::Latest`] join replaced; they must be told.
    pub superseded: Vec<Waiter>,
}

/// What the line decides for a join, from the record the writer saw.
pub(crate) enum JoinPlan {
    /// The member already waits at this place.
    Already(Box<Waiter>, usize),
    /// The line is full.
    Full,
    /// Write this line (this waiter at this position), replacing those.
    Write {
        line: Vec<Waiter>,
        position: usize,
        superseded: Vec<Waiter>,
    },
}

impl JoinPlan {
    /// The join decision every adapter makes from the key's current line.
    pub(crate) fn decide(current: &LockRecord, waiter: Waiter, mode: LineMode) -> JoinPlan {
        let line = &current.waiters;
        let same = |w: &Waiter| {
            w.request_id == waiter.request_id
                || (waiter.member.is_some() && w.member == waiter.member)
        };
        if let Some((i, w)) = line.iter().enumerate().find(|(_, w)| same(w)) {
            return JoinPlan::Already(Box::new(w.clone()), i + 1);
        }
        match mode {
            LineMode::Fifo { max } if line.len() >= max.clamp(1, MAX_LINE_LEN) => JoinPlan::Full,
            LineMode::Fifo { .. } => {
                let mut line = line.clone();
                line.push(waiter);
                JoinPlan::Write {
                    position: line.len(),
                    line,
                    superseded: Vec::new(),
                }
            }
            LineMode::Latest => JoinPlan::Write {
                line: vec![waiter],
                position: 1,
                superseded: line.clone(),
            },
        }
    }
}

/// Whom a grant that ends at `now_ms` goes to: the first waiter whose
/// maximum wait has not passed, and the overdue ones before it, who are
/// dropped by the same write.
pub(crate) fn successor(line: &[Waiter], now_ms: u64) -> (Option<&Waiter>, &[Waiter]) {
    let overdue = line.iter().take_while(|w| w.is_overdue(now_ms)).count();
    (line.get(overdue), &line[..overdue])
}

/// A waiter that left a line, and the key's record after it left.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Left {
    pub waiter: Waiter,
    pub record: LockRecord,
}

/// Checks made before a join is sent, shared by every adapter.
pub(crate) fn validate_join(request: &JoinRequest) -> Result<(), crate::error::LockError> {
    crate::acquire::validate_acquire(&request.acquire)?;
    if let LineMode::Fifo { max } = request.mode
        && !(1..=MAX_LINE_LEN).contains(&max)
    {
        return Err(crate::error::LockError::InvalidInput(format!(
            "a line holds 1 to {MAX_LINE_LEN} waiters, not {max}"
        )));
    }
    if request.max_wait.is_zero() {
        return Err(crate::error::LockError::InvalidInput(
            "a waiter's maximum wait must be longer than zero".into(),
        ));
    }
    Ok(())
}
