//! Acquire: one conditional `UpdateItem` that either grants the lock or
//! returns the holder from the same request.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde::Serialize;

use crate::client::{LockClient, LockOptions, validate_key};
use crate::clock::{iso_at_millis, lease_end, lease_end_millis, now_epoch_millis};
use crate::error::LockError;
use crate::expr::Expr;
use crate::record::{LockRecord, LockState, LockStatus, PipelineRun, PreviousGrant};
use crate::schema::{self, attr};

/// What to lock, for whom and for how long. Build with [`AcquireRequest::new`]
/// and set the optional fields you have.
#[derive(Debug, Clone, Default)]
pub struct AcquireRequest {
    pub key: String,
    /// Stable owner id (a Slack user id, a CI run id, `user@host`).
    pub owner: String,
    pub owner_name: Option<String>,
    /// Lease length; renew before it ends or lose the lock to the next caller.
    pub ttl: Duration,
    /// Idempotency key. Acquiring again with the request id that made the
    /// current grant returns that grant instead of a conflict (redelivered SQS
    /// messages). Defaults to the new lock id, i.e. no idempotency.
    pub request_id: Option<String>,
    pub purpose: Option<String>,
    pub component: Option<String>,
    pub environment: Option<String>,
    pub correlation_id: Option<String>,
    pub host: Option<String>,
    pub pid: Option<u32>,
    /// The CI run working under the grant, when known before acquiring.
    pub run_url: Option<String>,
    /// The pipeline this grant will dispatch (its run id is recorded later
    /// with [`LockClient::set_run`]); `None` for CLI grants.
    pub pipeline: Option<PipelineRun>,
    /// Which expired grants this acquire may take over.
    pub takeover: Takeover,
    /// Opaque to the lock, kept on the grant: what its caller needs to act
    /// for the holder later (a queued chat command to start when a waiter's
    /// turn comes).
    pub context: Option<String>,
    /// The caller as AWS authenticated it (an STS ARN), recorded beside the
    /// self-declared `owner` so a grant shows who really took it.
    pub caller_arn: Option<String>,
    /// Refuse the grant while this freeze is in force
    /// ([`LockError::Frozen`]). The freeze is checked in the same request
    /// as the grant (a `TransactWriteItems` of a `ConditionCheck` and the
    /// acquire's update), so a freeze set a moment before is never missed;
    /// `None` keeps the acquire a plain `UpdateItem`.
    pub unless_frozen: Option<crate::freeze::FreezeKey>,
}

/// Which expired grants an acquire may take over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Takeover {
    /// Any grant whose lease ended (plus the clock-skew margin).
    #[default]
    Expired,
    /// Only expired grants made for no pipeline run. A lapsed grant made for
    /// one (its run id recorded or not yet known) may have a run still
    /// working: it comes back as `Held`, so a caller that can ask the
    /// pipeline decides instead.
    UnlessPipeline,
}

impl AcquireRequest {
    pub fn new(key: impl Into<String>, owner: impl Into<String>, ttl: Duration) -> Self {
        AcquireRequest {
            key: key.into(),
            owner: owner.into(),
            ttl,
            ..Default::default()
        }
    }
}

/// How a successful acquire came about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum GrantKind {
    /// The key was free (absent or ended).
    New,
    /// The previous holder's lease had expired without release.
    TakenOver { from: PreviousGrant },
    /// The same owner's request id already holds this grant, and its lease
    /// is live; nothing was written.
    Existing,
    /// Granted past a freeze check ([`AcquireRequest::unless_frozen`]): the
    /// key was free, ended or expired, but which (and the grant replaced)
    /// is not known here, because a transaction answers a success with no
    /// old values. The stored record still names the grant it replaced.
    Checked,
}

/// A lock you hold (or, for [`GrantKind::Existing`], held earlier by the same request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub record: LockRecord,
    pub kind: GrantKind,
}

impl Grant {
    pub fn lock_id(&self) -> &str {
        &self.record.lock_id
    }
    pub fn fence(&self) -> u64 {
        self.record.fence
    }
}

impl LockClient {
    /// Takes `request.key` if it is absent, ended, or expired for longer than
    /// the clock-skew margin. Exactly one DynamoDB request in every case:
    /// - granted: `Ok(Grant)`; the previous grant is copied onto the item;
    /// - held: `Err(LockError::Held)` with the holder from `ALL_OLD`;
    /// - same request id already granted to the same owner, lease live:
    ///   `Ok(Grant { kind: Existing })`; the same request id as the current
    ///   grant but another owner is `Held` (a request id is no credential);
    ///   our own grant that ended is `RequestEnded`, one whose lease lapsed
    ///   is `RequestLapsed` (never handed back as held);
    /// - our own write landed but its response was lost and the SDK's retry
    ///   failed the condition: recognised by lock id and returned as granted.
    ///
    /// With [`AcquireRequest::unless_frozen`], the same single request is a
    /// `TransactWriteItems` that also checks the freeze: see
    /// [`LockClient::acquire_unless_frozen`].
    pub async fn acquire(&self, request: &AcquireRequest) -> Result<Grant, LockError> {
        validate_acquire(request)?;
        if let Some(freeze) = &request.unless_frozen {
            return self.acquire_unless_frozen(request, freeze).await;
        }
        let plan = Plan::at(request, &self.options, now_epoch_millis());
        let (e, condition) = grant_update(request, &plan);
        let result = self
            .conditional_update_returning(&request.key, e, condition, ReturnValue::AllOld)
            .await;
        match result {
            Ok(out) => granted(request, plan, out.attributes()),
            Err(err) => {
                let ccf_item = match err.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(ccf)) => {
                        ccf.item().cloned()
                    }
                    _ => return Err(LockError::from_sdk("UpdateItem", &self.table, err)),
                };
                not_granted(request, plan, ccf_item.as_ref())
            }
        }
    }
}

/// The checks every adapter makes before it touches its store, so a bad
/// request fails the same way (and costs no request) wherever it is sent.
pub(crate) fn validate_acquire(request: &AcquireRequest) -> Result<(), LockError> {
    validate_key(&request.key)?;
    if request.owner.trim().is_empty() {
        return Err(LockError::InvalidInput("owner must not be empty".into()));
    }
    if request.ttl < Duration::from_secs(1) {
        return Err(LockError::InvalidInput(
            "ttl must be at least one second".into(),
        ));
    }
    Ok(())
}

/// What one acquire decides before it writes: the new grant's identity,
/// times and the fence a key without history starts from. Both store
/// adapters make one per acquire, on their own clock.
pub(crate) struct Plan {
    pub(crate) lock_id: String,
    pub(crate) request_id: String,
    locked_at: String,
    pub(crate) expires_at: u64,
    pub(crate) expires_at_ms: u64,
    ttl: u64,
    pub(crate) now_secs: u64,
    /// Leases that ended before this, in epoch milliseconds (with the
    /// allowed clock skew), may be taken over.
    pub(crate) takeover_before_ms: u64,
    /// A fence for a key without history starts at the current epoch
    /// milliseconds. DynamoDB accepts at most 1000 writes per second on one
    /// item, so no key can have been granted more often than the
    /// milliseconds it existed: a key recreated after TTL collected it
    /// starts above every fence it ever issued.
    pub(crate) fence_base: u64,
}

impl Plan {
    /// The record of the grant this plan made, with its fence and the grant
    /// it replaced.
    pub(crate) fn into_record(
        self,
        request: &AcquireRequest,
        fence: u64,
        previous: Option<PreviousGrant>,
    ) -> LockRecord {
        LockRecord {
            lock_key: request.key.clone(),
            lock_id: self.lock_id,
            request_id: Some(self.request_id),
            fence,
            status: LockStatus::InProgress,
            locked_by: request.owner.clone(),
            locked_by_name: request.owner_name.clone(),
            locked_at: self.locked_at,
            expires_at: self.expires_at,
            expires_at_ms: self.expires_at_ms,
            ttl: Some(self.ttl),
            component: request.component.clone(),
            environment: request.environment.clone(),
            correlation_id: request.correlation_id.clone(),
            purpose: request.purpose.clone(),
            host: request.host.clone(),
            pid: request.pid,
            run_url: request.run_url.clone(),
            pipeline: request.pipeline.clone(),
            context: request.context.clone(),
            caller_arn: request.caller_arn.clone(),
            forced_by_arn: None,
            bypass: None,
            ended_at: None,
            released_by: None,
            release_reason: None,
            forced: false,
            previous,
            waiters: Vec::new(),
            line_version: 0,
        }
    }

    /// The plan that grants `waiter` its turn at `now_millis`: the grant
    /// takes the lock id the waiter was given when it joined.
    pub(crate) fn for_waiter(
        waiter: &crate::line::Waiter,
        request: &AcquireRequest,
        options: &LockOptions,
        now_millis: u64,
    ) -> Plan {
        Plan {
            lock_id: waiter.ticket.clone(),
            ..Plan::at(request, options, now_millis)
        }
    }

    /// The plan for `request` at `now_millis` on the store's clock.
    pub(crate) fn at(request: &AcquireRequest, options: &LockOptions, now_millis: u64) -> Plan {
        let now_secs = now_millis / 1000;
        let lock_id = uuid::Uuid::new_v4().to_string();
        let request_id = request
            .request_id
            .clone()
            .unwrap_or_else(|| lock_id.clone());
        let expires_at = lease_end(now_millis, request.ttl);
        let expires_at_ms = lease_end_millis(now_millis, request.ttl);
        Plan {
            lock_id,
            request_id,
            locked_at: iso_at_millis(now_millis),
            expires_at,
            expires_at_ms,
            ttl: expires_at.saturating_add(options.retention.as_secs()),
            now_secs,
            takeover_before_ms: takeover_before_ms(now_millis, options),
            fence_base: now_millis,
        }
    }
}

/// The single conditional write of an acquire: set the new grant, copy the
/// one it replaces, shift the request history, bump the fence; only if the
/// key is free (absent, ended, or expired and takeable) and the request is
/// not one of the key's recent ones.
fn grant_update(request: &AcquireRequest, plan: &Plan) -> (Expr, String) {
    let mut e = Expr::default();
    set_grant(&mut e, request, plan);
    carry_over(&mut e, plan, None);
    let condition = grant_condition(&mut e, request, plan);
    (e, condition)
}

/// The new grant's own attributes; optional ones a predecessor had and this
/// grant lacks are removed, so a grant never inherits a field. The one
/// exception is `forcedLockId`, never named here (IAM keys on its name): it
/// holds an earlier grant's lock id, so it does not make this one forced.
pub(crate) fn set_grant(e: &mut Expr, request: &AcquireRequest, plan: &Plan) {
    e.set_string(attr::LOCK_ID, &plan.lock_id);
    e.set_string(attr::REQUEST_ID, &plan.request_id);
    e.set_string(attr::STATUS, LockStatus::InProgress.as_str());
    e.set_string(attr::LOCKED_BY, &request.owner);
    e.set_string(attr::LOCKED_AT, &plan.locked_at);
    e.set_number(attr::EXPIRES_AT, plan.expires_at);
    e.set_number(attr::EXPIRES_AT_MS, plan.expires_at_ms);
    e.set_number(attr::TTL, plan.ttl);
    e.set_string(attr::ACTIVE, schema::ACTIVE_INDEX_PARTITION_VALUE);
    let s = |v: &Option<String>| v.clone().map(AttributeValue::S);
    e.set_or_remove(attr::LOCKED_BY_NAME, s(&request.owner_name));
    e.set_or_remove(attr::PURPOSE, s(&request.purpose));
    e.set_or_remove(attr::COMPONENT, s(&request.component));
    e.set_or_remove(attr::ENVIRONMENT, s(&request.environment));
    e.set_or_remove(attr::CORRELATION_ID, s(&request.correlation_id));
    e.set_or_remove(attr::HOST, s(&request.host));
    e.set_or_remove(
        attr::PID,
        request.pid.map(|p| AttributeValue::N(p.to_string())),
    );
    e.set_or_remove(attr::RUN_URL, s(&request.run_url));
    e.set_or_remove(attr::CONTEXT, s(&request.context));
    e.set_or_remove(attr::CALLER_ARN, s(&request.caller_arn));
    let pipeline = request.pipeline.as_ref();
    e.set_or_remove(
        attr::RUN_REPOSITORY,
        pipeline.map(|p| AttributeValue::S(p.repository.clone())),
    );
    e.set_or_remove(
        attr::RUN_WORKFLOW,
        pipeline.map(|p| AttributeValue::S(p.workflow.clone())),
    );
    e.set_or_remove(
        attr::RUN_ID,
        pipeline
            .and_then(|p| p.run_id)
            .map(|id| AttributeValue::N(id.to_string())),
    );
    for ended in [
        attr::ENDED_AT,
        attr::RELEASED_BY,
        attr::RELEASE_REASON,
        attr::FORCED,
    ] {
        e.remove(ended);
    }
}

/// What passes from the item's previous grant to the new one: the request
/// history shifted along, a copy of the replaced grant, and the fence plus one.
///
/// `ended_as` is how the replaced grant ended when the same write ends it
/// (a hand-off, a takeover); otherwise its stored ending is copied.
pub(crate) fn carry_over(e: &mut Expr, plan: &Plan, ended_as: Option<EndedAs<'_>>) {
    carry_history(e, ended_as);
    let fence = e.name(attr::FENCE);
    let base = e.number("fenceBase", plan.fence_base);
    let one = e.number("one", 1);
    e.set_raw(format!("{fence} = if_not_exists({fence}, {base}) + {one}"));
}

/// [`carry_over`] but the fence: the request history and the copy of the
/// replaced grant.
pub(crate) fn carry_history(e: &mut Expr, ended_as: Option<EndedAs<'_>>) {
    // Copy the grant being replaced (operands read the item before the update).
    // A key's first grant has nothing to copy and writes these empty: leaving
    // them out would take a read or a second write, and an acquire is one write.
    let none = e.string("none", "");
    let zero = e.number("zero", 0);
    // Shift the request-id history along: prevRequestId7 <- … <- requestId.
    let history = request_ids();
    for pair in history.windows(2).rev() {
        let (older, newer) = (e.name(pair[1]), e.name(pair[0]));
        e.set_raw(format!("{older} = if_not_exists({newer}, {none})"));
    }
    for (prev, cur, default) in [
        (attr::PREV_LOCK_ID, attr::LOCK_ID, &none),
        (attr::PREV_LOCKED_BY, attr::LOCKED_BY, &none),
        (attr::PREV_EXPIRES_AT, attr::EXPIRES_AT, &zero),
    ] {
        let (p, c) = (e.name(prev), e.name(cur));
        e.set_raw(format!("{p} = if_not_exists({c}, {default})"));
    }
    match ended_as {
        Some(ended) => {
            e.set_string(attr::PREV_STATUS, ended.status.as_str());
            let s = |v: Option<&str>| v.map(|v| AttributeValue::S(v.to_owned()));
            e.set_or_remove(attr::PREV_RELEASED_BY, s(ended.released_by));
            e.set_or_remove(attr::PREV_RELEASE_REASON, s(ended.release_reason));
        }
        None => {
            for (prev, cur) in [
                (attr::PREV_STATUS, attr::STATUS),
                (attr::PREV_RELEASED_BY, attr::RELEASED_BY),
                (attr::PREV_RELEASE_REASON, attr::RELEASE_REASON),
            ] {
                let (p, c) = (e.name(prev), e.name(cur));
                e.set_raw(format!("{p} = if_not_exists({c}, {none})"));
            }
        }
    }
}

/// The key is free (absent, ended, or expired and takeable under
/// `request.takeover`), and this request is none of the key's recent ones.
pub(crate) fn grant_condition(e: &mut Expr, request: &AcquireRequest, plan: &Plan) -> String {
    let history = request_ids();
    let key_name = e.name(attr::LOCK_KEY);
    let status = e.name(attr::STATUS);
    let rid = e.string("requestId", &plan.request_id);
    let not_seen = history
        .iter()
        .map(|a| {
            let n = e.name(a);
            format!("(attribute_not_exists({n}) OR {n} <> {rid})")
        })
        .collect::<Vec<_>>()
        .join(" AND ");
    let in_progress = e.string("inProgress", LockStatus::InProgress.as_str());
    let lapsed = lapsed_condition(e, plan.takeover_before_ms);
    // Free (absent, ended or expired), and not a request that already had
    // the current grant or one of the recent ones.
    let expired = match request.takeover {
        Takeover::Expired => lapsed,
        Takeover::UnlessPipeline => {
            let run_id = e.name(attr::RUN_ID);
            let repository = e.name(attr::RUN_REPOSITORY);
            format!(
                "({lapsed} AND attribute_not_exists({run_id}) AND attribute_not_exists({repository}))"
            )
        }
    };
    // A key with a waiting line is granted only by a hand-off to its head.
    let waiters = e.name(attr::WAITERS);
    let empty = e.number("zero", 0);
    format!(
        "(attribute_not_exists({key_name}) OR {status} <> {in_progress} OR {expired}) AND {not_seen} AND (attribute_not_exists({waiters}) OR size({waiters}) = {empty})"
    )
}

/// Leases that end at or before `before_ms` may be taken over.
pub(crate) fn takeover_before_ms(now_millis: u64, options: &LockOptions) -> u64 {
    now_millis.saturating_sub(u64::try_from(options.clock_skew.as_millis()).unwrap_or(u64::MAX))
}

/// The lease ended at or before `before_ms`: decided by `expiresAtMs`, or
/// by `expiresAt` on a record written before that attribute existed.
pub(crate) fn lapsed_condition(e: &mut Expr, before_ms: u64) -> String {
    let (ms, secs) = (e.name(attr::EXPIRES_AT_MS), e.name(attr::EXPIRES_AT));
    let before = e.number("takeoverBeforeMs", before_ms);
    let before_secs = e.number("takeoverBefore", before_ms / 1000);
    format!(
        "((attribute_exists({ms}) AND {ms} <= {before}) OR (attribute_not_exists({ms}) AND {secs} <= {before_secs}))"
    )
}

/// `requestId` and the attributes holding the key's earlier request ids, newest first.
pub(crate) fn request_ids() -> Vec<&'static str> {
    let mut ids = vec![attr::REQUEST_ID];
    ids.extend(attr::REQUEST_HISTORY);
    ids
}

/// The write landed: the grant, with the fence and predecessor read from
/// the item as it was before.
fn granted(
    request: &AcquireRequest,
    plan: Plan,
    old: Option<&HashMap<String, AttributeValue>>,
) -> Result<Grant, LockError> {
    let previous = LockRecord::from_optional_item(old)?;
    let fence = match old.and_then(|o| o.get(attr::FENCE)) {
        Some(AttributeValue::N(n)) => {
            n.parse::<u64>().map_err(|_| LockError::Corrupt {
                key: request.key.clone(),
                detail: format!("`fence` is not a whole number: {n}"),
            })? + 1
        }
        _ => plan.fence_base + 1,
    };
    let previous = previous.map(|p| PreviousGrant {
        lock_id: p.lock_id,
        request_id: p.request_id,
        locked_by: p.locked_by,
        status: p.status,
        expires_at: p.expires_at,
        released_by: p.released_by,
        release_reason: p.release_reason,
        forced: p.forced,
    });
    let kind = grant_kind(previous.as_ref());
    let record = plan.into_record(request, fence, previous);
    tracing::debug!(key = %record.lock_key, fence, ?kind, "lock granted");
    Ok(Grant { record, kind })
}

/// The condition failed: our own earlier attempt (its answer lost), or the
/// refusal the current item explains.
pub(crate) fn not_granted(
    request: &AcquireRequest,
    plan: Plan,
    ccf_item: Option<&HashMap<String, AttributeValue>>,
) -> Result<Grant, LockError> {
    let current = LockRecord::from_optional_item(ccf_item)?;
    let Some(current) = current else {
        return Err(LockError::Corrupt {
            key: request.key.clone(),
            detail: "condition failed but no current record was returned".into(),
        });
    };
    if current.lock_id == plan.lock_id {
        // Our first attempt landed; its response was lost and the
        // SDK's retry met our own grant.
        tracing::info!(key = %current.lock_key, "ambiguous write resolved: the grant is ours");
        let kind = grant_kind(current.previous.as_ref());
        return Ok(Grant {
            record: current,
            kind,
        });
    }
    let earlier = |name: &&str| matches!(ccf_item.and_then(|i| i.get(*name)), Some(AttributeValue::S(r)) if *r == plan.request_id);
    let seen_earlier = attr::REQUEST_HISTORY.iter().any(earlier);
    refused(
        request,
        plan.request_id,
        current,
        seen_earlier,
        plan.now_secs,
    )
}

/// How a grant ended when the write that replaces it also ends it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EndedAs<'a> {
    pub(crate) status: LockStatus,
    pub(crate) released_by: Option<&'a str>,
    pub(crate) release_reason: Option<&'a str>,
}

impl<'a> EndedAs<'a> {
    /// As `ended` (the grant's record once ended) says.
    pub(crate) fn of(ended: &'a LockRecord) -> Self {
        EndedAs {
            status: ended.status,
            released_by: ended.released_by.as_deref(),
            release_reason: ended.release_reason.as_deref(),
        }
    }
}

/// A grant replacing a still-`IN_PROGRESS` record took over an expired
/// lease; anything else (no record, an ended one) was a plain new grant.
pub(crate) fn grant_kind(previous: Option<&PreviousGrant>) -> GrantKind {
    match previous {
        Some(p) if p.status == LockStatus::InProgress => GrantKind::TakenOver { from: p.clone() },
        _ => GrantKind::New,
    }
}

/// Why an acquire that was not granted failed, decided from the key's
/// current record (not our own grant) alone, so every adapter answers alike:
/// the request that made the current grant is handed to [`same_request`],
/// one of the key's earlier requests (`seen_earlier`) is a late duplicate,
/// anything else meets a holder.
pub(crate) fn refused(
    request: &AcquireRequest,
    request_id: String,
    current: LockRecord,
    seen_earlier: bool,
    now_secs: u64,
) -> Result<Grant, LockError> {
    if current.request_id.as_deref() == Some(request_id.as_str()) {
        return same_request(request, current, now_secs);
    }
    if seen_earlier {
        return Err(LockError::RequestSuperseded {
            request_id,
            current: Box::new(current),
        });
    }
    Err(LockError::Held {
        holder: Box::new(current),
    })
}

/// The current grant was made by this request id: hand it back only to the
/// owner that made it, and only while its lease is live. Anything else would
/// let a caller run under a grant that is not (or no longer) theirs.
fn same_request(
    request: &AcquireRequest,
    current: LockRecord,
    now_secs: u64,
) -> Result<Grant, LockError> {
    if current.locked_by != request.owner {
        return Err(LockError::Held {
            holder: Box::new(current),
        });
    }
    match current.state_at(now_secs) {
        LockState::Held => Ok(Grant {
            record: current,
            kind: GrantKind::Existing,
        }),
        LockState::Ended => Err(LockError::RequestEnded {
            record: Box::new(current),
        }),
        LockState::Expired => Err(LockError::RequestLapsed {
            record: Box::new(current),
        }),
    }
}
