//! Writes that need the current grant's lock id: release, renew, annotate,
//! and the one that deliberately does not: force unlock.

use std::time::Duration;

use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use crate::client::{LockClient, validate_key};
use crate::clock::{lease_end, lease_end_millis, now_epoch_millis};
use crate::error::LockError;
use crate::expr::Expr;
use crate::handoff::{Ended, Ending, LINE_ATTEMPTS, LineWrite, ending_fields, line_retry_pause};
use crate::record::{LockRecord, LockStatus};
use crate::schema::attr;

/// How a holder ends its grant.
#[derive(Debug, Clone)]
pub struct ReleaseRequest {
    pub key: String,
    pub lock_id: String,
    /// `COMPLETED` or `FAILED`; `IN_PROGRESS` is refused.
    pub outcome: LockStatus,
    pub reason: Option<String>,
    /// Who releases; defaults to the holder recorded on the item.
    pub actor: Option<String>,
    /// When set, the grant's fence must match too (completion reports carry both).
    pub fence: Option<u64>,
    /// Which pipeline run must be recorded on the grant for this release to
    /// apply (completions reported by a pipeline).
    pub run: RunCheck,
    /// The grant as the releaser last saw it (from its acquire, a renew or
    /// a status read). When it shows someone waiting, the release goes
    /// straight to the write that ends the grant and hands the key to the
    /// head of the line: one request instead of a refused plain release
    /// first. A stale view costs nothing but that request.
    pub seen: Option<Box<LockRecord>>,
}

/// The pipeline run a release must match: a completion may end only the
/// grant that its own run works under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RunCheck {
    /// No run check: the holder itself releases, by lock id.
    #[default]
    Unchecked,
    /// The grant was made for `repository`/`workflow` and records `run_id`.
    Recorded {
        repository: String,
        workflow: String,
        run_id: u64,
    },
}

impl ReleaseRequest {
    /// The ending this release asks for.
    pub(crate) fn ending(&self) -> Ending {
        Ending::Released {
            outcome: self.outcome,
            actor: self.actor.clone(),
            reason: self.reason.clone(),
        }
    }

    pub fn new(key: impl Into<String>, lock_id: impl Into<String>, outcome: LockStatus) -> Self {
        ReleaseRequest {
            key: key.into(),
            lock_id: lock_id.into(),
            outcome,
            reason: None,
            actor: None,
            fence: None,
            run: RunCheck::Unchecked,
            seen: None,
        }
    }
}

impl LockClient {
    /// Ends the grant `lock_id` as COMPLETED or FAILED. The item stays as the
    /// audit trail (and keeps the fence counter). One `UpdateItem` when no
    /// one waits for the key. When someone does, that write is refused
    /// with the line in its answer, and a second one ends the grant and
    /// hands the key to the line's head together (see [`Ended`]).
    pub async fn release(&self, request: &ReleaseRequest) -> Result<Ended, LockError> {
        validate_release(request)?;
        let now_ms = now_epoch_millis();
        let ending = request.ending();
        let mut e = Expr::default();
        ending_fields(&mut e, &ending, now_ms, self.options.retention.as_secs());
        let mut condition = ownership_condition(&mut e, &request.lock_id, request.fence);
        if let RunCheck::Recorded {
            repository,
            workflow,
            run_id,
        } = &request.run
        {
            let (repo_name, repo) = (
                e.name(attr::RUN_REPOSITORY),
                e.string("runRepository", repository),
            );
            let (wf_name, wf) = (
                e.name(attr::RUN_WORKFLOW),
                e.string("runWorkflow", workflow),
            );
            let (id_name, id) = (e.name(attr::RUN_ID), e.number("runId", *run_id));
            condition.push_str(&format!(
                " AND {repo_name} = {repo} AND {wf_name} = {wf} AND {id_name} = {id}"
            ));
        }
        condition.push_str(&no_line_condition(&mut e));
        let mut current = match request.seen.as_deref() {
            Some(seen) if !seen.waiters.is_empty() && release_applies(request, seen) => {
                Some(seen.clone())
            }
            _ => match self.conditional_update(&request.key, e, condition).await {
                Ok(out) => return parse_new(&request.key, out).map(Ended::alone),
                Err(err) => current_from_failure(&self.table, err)?,
            },
        };
        for attempt in 0..LINE_ATTEMPTS {
            line_retry_pause(attempt).await;
            match current {
                Some(c) if release_applies(request, &c) => {
                    match self.end_with_line(&c, &ending).await? {
                        LineWrite::Done(ended) => return Ok(*ended),
                        LineWrite::Changed(now) => current = now,
                    }
                }
                other => {
                    let finished = ownership_refused(
                        &request.key,
                        &request.lock_id,
                        other,
                        release_already_done(request),
                    );
                    return settle_release(request, finished).map(Ended::alone);
                }
            }
        }
        Err(LockError::LineBusy {
            key: request.key.clone(),
        })
    }

    /// Extends the lease of grant `lock_id` to `ttl` from now. One `UpdateItem`.
    /// A lease that lapsed but was not taken over can still be renewed: no one
    /// else was granted the key in between, so the fence is still current.
    pub async fn renew(
        &self,
        key: &str,
        lock_id: &str,
        ttl: Duration,
    ) -> Result<LockRecord, LockError> {
        validate_renew(key, ttl)?;
        let now_ms = now_epoch_millis();
        let expires_at = lease_end(now_ms, ttl);
        let mut e = Expr::default();
        e.set_number(attr::EXPIRES_AT, expires_at);
        e.set_number(attr::EXPIRES_AT_MS, lease_end_millis(now_ms, ttl));
        e.set_number(
            attr::TTL,
            expires_at.saturating_add(self.options.retention.as_secs()),
        );
        let condition = ownership_condition(&mut e, lock_id, None);
        let result = self.conditional_update(key, e, condition).await;
        // A renew is never "already done": a retry simply writes again.
        self.finish(result, key, lock_id, |_| false)
    }

    /// Records the pipeline run that works under grant `lock_id` (its link,
    /// and its id when known), so `status` can show what the holder runs and
    /// only that run's completion can end the grant. One `UpdateItem`.
    pub async fn set_run(
        &self,
        key: &str,
        lock_id: &str,
        run_id: Option<u64>,
        run_url: &str,
    ) -> Result<LockRecord, LockError> {
        validate_key(key)?;
        let mut e = Expr::default();
        e.set_string(attr::RUN_URL, run_url);
        if let Some(id) = run_id {
            e.set_number(attr::RUN_ID, id);
        }
        let condition = ownership_condition(&mut e, lock_id, None);
        let result = self.conditional_update(key, e, condition).await;
        self.finish(result, key, lock_id, set_run_already_done(run_id, run_url))
    }

    /// Ends whatever grant holds `key` as FAILED, recording `actor`, the
    /// mandatory `reason` and `forced = true`. With `only_lock_id`, ends that
    /// grant only (so an operator never breaks a newer lock than the one they
    /// looked at). One `UpdateItem`; returns the ended record, holder included.
    pub async fn force_unlock(
        &self,
        key: &str,
        actor: &str,
        reason: &str,
        only_lock_id: Option<&str>,
    ) -> Result<Ended, LockError> {
        self.force_unlock_when(key, (actor, None), reason, only_lock_id, None)
            .await
    }

    /// [`LockClient::force_unlock`] recording, beside the declared `actor`,
    /// who asked as AWS authenticated them (`actor_arn`, an STS ARN), as
    /// `forcedByArn`. Same single request.
    pub async fn force_unlock_as(
        &self,
        key: &str,
        actor: &str,
        actor_arn: Option<&str>,
        reason: &str,
        only_lock_id: Option<&str>,
    ) -> Result<Ended, LockError> {
        self.force_unlock_when(key, (actor, actor_arn), reason, only_lock_id, None)
            .await
    }

    /// Like [`LockClient::force_unlock`], but ends the grant only if it was
    /// made no later than `granted_by` (epoch seconds): the grant a person
    /// saw when they asked, never a newer one that replaced it since.
    pub async fn force_unlock_seen(
        &self,
        key: &str,
        actor: &str,
        reason: &str,
        granted_by: u64,
    ) -> Result<Ended, LockError> {
        self.force_unlock_when(key, (actor, None), reason, None, Some(granted_by))
            .await
    }

    async fn force_unlock_when(
        &self,
        key: &str,
        (actor, actor_arn): (&str, Option<&str>),
        reason: &str,
        only_lock_id: Option<&str>,
        granted_by: Option<u64>,
    ) -> Result<Ended, LockError> {
        validate_force_unlock(key, actor, reason)?;
        let now_ms = now_epoch_millis();
        let ending = Ending::Forced {
            actor: actor.to_owned(),
            actor_arn: actor_arn.map(str::to_owned),
            reason: reason.to_owned(),
        };
        let mut e = Expr::default();
        ending_fields(&mut e, &ending, now_ms, self.options.retention.as_secs());
        let status = e.name(attr::STATUS);
        let in_progress = e.string("inProgress", LockStatus::InProgress.as_str());
        let mut condition = format!("{status} = {in_progress}");
        if let Some(lock_id) = only_lock_id {
            let (name, value) = (e.name(attr::LOCK_ID), e.string("lockId", lock_id));
            condition.push_str(&format!(" AND {name} = {value}"));
        }
        let bound = granted_by.map(granted_by_bound);
        if let Some(by) = &bound {
            let (name, value) = (e.name(attr::LOCKED_AT), e.string("grantedBy", by));
            condition.push_str(&format!(" AND {name} <= {value}"));
        }
        condition.push_str(&no_line_condition(&mut e));
        let mut current = match self.conditional_update(key, e, condition).await {
            Ok(out) => return parse_new(key, out).map(Ended::alone),
            Err(err) => current_from_failure(&self.table, err)?,
        };
        for attempt in 0..LINE_ATTEMPTS {
            line_retry_pause(attempt).await;
            match current {
                Some(c) if force_applies(&c, only_lock_id, bound.as_deref()) => {
                    match self.end_with_line(&c, &ending).await? {
                        LineWrite::Done(ended) => return Ok(*ended),
                        LineWrite::Changed(now) => current = now,
                    }
                }
                other => return force_unlock_refused(key, actor, reason, other).map(Ended::alone),
            }
        }
        Err(LockError::LineBusy {
            key: key.to_owned(),
        })
    }

    /// One conditional `UpdateItem` on `key` answering with the item after
    /// the write, or (the condition failed) the item as it was.
    pub(crate) async fn conditional_update(
        &self,
        key: &str,
        e: Expr,
        condition: String,
    ) -> Result<
        UpdateItemOutput,
        aws_sdk_dynamodb::error::SdkError<UpdateItemError, aws_smithy_runtime_api::http::Response>,
    > {
        self.conditional_update_returning(key, e, condition, ReturnValue::AllNew)
            .await
    }

    /// [`LockClient::conditional_update`] answering with `returning`
    /// (`ALL_OLD` for writes that replace a grant and must know what it was).
    pub(crate) async fn conditional_update_returning(
        &self,
        key: &str,
        e: Expr,
        condition: String,
        returning: ReturnValue,
    ) -> Result<
        UpdateItemOutput,
        aws_sdk_dynamodb::error::SdkError<UpdateItemError, aws_smithy_runtime_api::http::Response>,
    > {
        let update = e.update_expression();
        let (names, values) = e.used_placeholders(&condition);
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key(attr::LOCK_KEY, AttributeValue::S(key.to_owned()))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(returning)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
    }

    /// Turns the result of an ownership-checked write into a record or a typed
    /// error. `already_done` recognises an item that already shows this very
    /// write (a retry after a lost response), which counts as success.
    fn finish(
        &self,
        result: Result<
            UpdateItemOutput,
            aws_sdk_dynamodb::error::SdkError<
                UpdateItemError,
                aws_smithy_runtime_api::http::Response,
            >,
        >,
        key: &str,
        lock_id: &str,
        already_done: impl Fn(&LockRecord) -> bool,
    ) -> Result<LockRecord, LockError> {
        let err = match result {
            Ok(out) => return parse_new(key, out),
            Err(err) => err,
        };
        let current = current_from_failure(&self.table, err)?;
        ownership_refused(key, lock_id, current, already_done)
    }
}

/// Checks made before a release is sent, shared by every adapter.
pub(crate) fn validate_release(request: &ReleaseRequest) -> Result<(), LockError> {
    validate_key(&request.key)?;
    if request.outcome == LockStatus::InProgress {
        return Err(LockError::InvalidInput(
            "release outcome must be COMPLETED or FAILED".into(),
        ));
    }
    Ok(())
}

/// Checks made before a renew is sent, shared by every adapter.
pub(crate) fn validate_renew(key: &str, ttl: Duration) -> Result<(), LockError> {
    validate_key(key)?;
    if ttl < Duration::from_secs(1) {
        return Err(LockError::InvalidInput(
            "ttl must be at least one second".into(),
        ));
    }
    Ok(())
}

/// Checks made before a force unlock is sent, shared by every adapter: a
/// forced end must always say who did it and why.
pub(crate) fn validate_force_unlock(key: &str, actor: &str, reason: &str) -> Result<(), LockError> {
    validate_key(key)?;
    if actor.trim().is_empty() {
        return Err(LockError::InvalidInput(
            "force unlock needs an actor".into(),
        ));
    }
    if reason.trim().is_empty() {
        return Err(LockError::InvalidInput(
            "force unlock needs a reason".into(),
        ));
    }
    Ok(())
}

/// The latest `lockedAt` a `force_unlock_seen` may end. `lockedAt` is
/// fixed-width RFC 3339 UTC, so it orders as text.
pub(crate) fn granted_by_bound(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// A release that finds its grant already ended exactly as it asked (same
/// outcome, not forced, same actor) already happened: a repeat is a success.
pub(crate) fn release_already_done(request: &ReleaseRequest) -> impl Fn(&LockRecord) -> bool {
    move |current| {
        current.status == request.outcome
            && !current.forced
            && request
                .actor
                .as_ref()
                .is_none_or(|a| current.released_by.as_ref() == Some(a))
    }
}

/// A `set_run` that finds the run already recorded on its grant already happened.
pub(crate) fn set_run_already_done(
    run_id: Option<u64>,
    run_url: &str,
) -> impl Fn(&LockRecord) -> bool {
    move |current| {
        current.run_url.as_deref() == Some(run_url)
            && (run_id.is_none() || current.pipeline.as_ref().and_then(|p| p.run_id) == run_id)
    }
}

/// Turns an ownership-checked write that was refused into a record or a
/// typed error, from the key's current record alone, so every adapter
/// answers alike. `already_done` recognises a record that already shows this
/// very write (a repeat, or a retry after a lost response): a success.
pub(crate) fn ownership_refused(
    key: &str,
    lock_id: &str,
    current: Option<LockRecord>,
    already_done: impl Fn(&LockRecord) -> bool,
) -> Result<LockRecord, LockError> {
    match current {
        Some(c) if c.lock_id == lock_id && already_done(&c) => Ok(c),
        Some(c) if c.lock_id == lock_id && c.status != LockStatus::InProgress => {
            Err(LockError::AlreadyEnded {
                record: Box::new(c),
            })
        }
        current => Err(LockError::NotOwner {
            key: key.to_owned(),
            lock_id: lock_id.to_owned(),
            current: current.map(Box::new),
        }),
    }
}

/// The outcome of a release once refusals are resolved: a release that
/// meets a newer grant naming ours, ended with the outcome we asked for, as
/// its predecessor already happened (our release landed, then the key was
/// granted again before we heard back or asked again).
pub(crate) fn settle_release(
    request: &ReleaseRequest,
    finished: Result<LockRecord, LockError>,
) -> Result<LockRecord, LockError> {
    match finished {
        Err(LockError::NotOwner {
            current: Some(current),
            ..
        }) if released_then_replaced(request, &current) => Ok(ended_predecessor(request, &current)),
        other => other,
    }
}

/// Why a force unlock was refused, from the key's current record: a record
/// that already shows this very force unlock (same actor and reason) is a
/// repeat and a success; anything else is not held.
pub(crate) fn force_unlock_refused(
    key: &str,
    actor: &str,
    reason: &str,
    current: Option<LockRecord>,
) -> Result<LockRecord, LockError> {
    match current {
        Some(c)
            if c.forced
                && c.released_by.as_deref() == Some(actor)
                && c.release_reason.as_deref() == Some(reason) =>
        {
            Ok(c)
        }
        current => Err(LockError::NotHeld {
            key: key.to_owned(),
            current: current.map(Box::new),
        }),
    }
}

fn released_then_replaced(request: &ReleaseRequest, current: &LockRecord) -> bool {
    current.previous.as_ref().is_some_and(|p| {
        p.lock_id == request.lock_id
            && p.status == request.outcome
            && request.fence.is_none_or(|f| f + 1 == current.fence)
    })
}

/// What is known of our ended grant from its successor's copy of it.
fn ended_predecessor(request: &ReleaseRequest, current: &LockRecord) -> LockRecord {
    let previous = current.previous.clone();
    LockRecord {
        lock_key: current.lock_key.clone(),
        lock_id: request.lock_id.clone(),
        request_id: previous.as_ref().and_then(|p| p.request_id.clone()),
        fence: current.fence.saturating_sub(1),
        status: request.outcome,
        locked_by: previous
            .as_ref()
            .map(|p| p.locked_by.clone())
            .unwrap_or_default(),
        locked_by_name: None,
        locked_at: String::new(),
        expires_at: previous.as_ref().map_or(0, |p| p.expires_at),
        expires_at_ms: previous.as_ref().map_or(0, |p| p.expires_at * 1000),
        ttl: None,
        component: None,
        environment: None,
        correlation_id: None,
        purpose: None,
        host: None,
        pid: None,
        run_url: None,
        pipeline: None,
        context: None,
        caller_arn: None,
        forced_by_arn: None,
        bypass: None,
        ended_at: None,
        released_by: request.actor.clone(),
        release_reason: request.reason.clone(),
        forced: false,
        previous: None,
        waiters: Vec::new(),
        line_version: 0,
    }
}

/// Whether a release applies to `r`: the grant it names, in progress,
/// with the fence and the run it was asked for.
pub(crate) fn release_applies(request: &ReleaseRequest, r: &LockRecord) -> bool {
    r.lock_id == request.lock_id
        && r.status == LockStatus::InProgress
        && request.fence.is_none_or(|f| r.fence == f)
        && match &request.run {
            RunCheck::Unchecked => true,
            RunCheck::Recorded {
                repository,
                workflow,
                run_id,
            } => r.pipeline.as_ref().is_some_and(|p| {
                p.repository == *repository && p.workflow == *workflow && p.run_id == Some(*run_id)
            }),
        }
}

/// Whether a force unlock applies to `r`: in progress, the grant named (if
/// any), made no later than `granted_by` (if given).
pub(crate) fn force_applies(
    r: &LockRecord,
    only_lock_id: Option<&str>,
    granted_by: Option<&str>,
) -> bool {
    r.status == LockStatus::InProgress
        && only_lock_id.is_none_or(|id| r.lock_id == id)
        && granted_by.is_none_or(|by| r.locked_at.as_str() <= by)
}

/// ` AND` no one waits for the key: an ending that must hand the key on is
/// written by [`LockClient::end_with_line`] instead.
fn no_line_condition(e: &mut Expr) -> String {
    let waiters = e.name(attr::WAITERS);
    let zero = e.number("zero", 0);
    format!(" AND (attribute_not_exists({waiters}) OR size({waiters}) = {zero})")
}

fn ownership_condition(e: &mut Expr, lock_id: &str, fence: Option<u64>) -> String {
    let (id_name, id_value) = (e.name(attr::LOCK_ID), e.string("lockId", lock_id));
    let (status, in_progress) = (
        e.name(attr::STATUS),
        e.string("inProgress", LockStatus::InProgress.as_str()),
    );
    let mut condition = format!("{id_name} = {id_value} AND {status} = {in_progress}");
    if let Some(fence) = fence {
        let (name, value) = (e.name(attr::FENCE), e.number("fence", fence));
        condition.push_str(&format!(" AND {name} = {value}"));
    }
    condition
}

fn parse_new(key: &str, out: UpdateItemOutput) -> Result<LockRecord, LockError> {
    LockRecord::from_optional_item(out.attributes())?.ok_or_else(|| LockError::Corrupt {
        key: key.to_owned(),
        detail: "update returned no attributes".into(),
    })
}

/// The `ALL_OLD` image from a failed condition, or the mapped SDK error.
fn current_from_failure(
    table: &str,
    err: aws_sdk_dynamodb::error::SdkError<UpdateItemError, aws_smithy_runtime_api::http::Response>,
) -> Result<Option<LockRecord>, LockError> {
    match err.as_service_error() {
        Some(UpdateItemError::ConditionalCheckFailedException(ccf)) => {
            LockRecord::from_optional_item(ccf.item())
        }
        _ => Err(LockError::from_sdk("UpdateItem", table, err)),
    }
}
