//! An operator's takeover: the current grant ends as FAILED and the
//! operator's grant begins in one conditional write.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValue;

use crate::acquire::{
    AcquireRequest, EndedAs, Grant, GrantKind, Plan, carry_over, set_grant, validate_acquire,
};
use crate::client::LockClient;
use crate::clock::now_epoch_millis;
use crate::error::LockError;
use crate::expr::Expr;
use crate::handoff::{Ended, Ending, mark_forced};
use crate::ownership::validate_force_unlock;
use crate::record::{LockRecord, LockStatus, PreviousGrant};
use crate::schema::attr;

impl LockClient {
    /// Ends the grant `from_lock_id` of `request.key` as a forced FAILED
    /// (by `actor`, for `reason`) and grants `request` in the same
    /// conditional `UpdateItem`: no third party can take the key between
    /// the end and the new grant. The fence grows by one; the key's line,
    /// if any, waits behind the new holder. A grant that is no longer
    /// `from_lock_id`'s is [`LockError::NotHeld`] with the current record.
    pub async fn take_over(
        &self,
        request: &AcquireRequest,
        from_lock_id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Ended, LockError> {
        validate_acquire(request)?;
        validate_force_unlock(&request.key, actor, reason)?;
        let now_ms = now_epoch_millis();
        let plan = Plan::at(request, &self.options, now_ms);
        let ending = Ending::Forced {
            actor: actor.to_owned(),
            actor_arn: None,
            reason: reason.to_owned(),
        };
        let mut e = Expr::default();
        set_grant(&mut e, request, &plan);
        let ended_as = EndedAs {
            status: LockStatus::Failed,
            released_by: Some(actor),
            release_reason: Some(reason),
        };
        carry_over(&mut e, &plan, Some(ended_as));
        mark_forced(&mut e, None);
        let (id, from) = (e.name(attr::LOCK_ID), e.string("fromLockId", from_lock_id));
        let (status, in_progress) = (
            e.name(attr::STATUS),
            e.string("inProgress", LockStatus::InProgress.as_str()),
        );
        let condition = format!("{id} = {from} AND {status} = {in_progress}");
        let result = self
            .conditional_update_returning(&request.key, e, condition, ReturnValue::AllOld)
            .await;
        let retention = self.options.retention.as_secs();
        match result {
            Ok(out) => {
                let Some(old) = LockRecord::from_optional_item(out.attributes())? else {
                    return Err(LockError::Corrupt {
                        key: request.key.clone(),
                        detail: "takeover returned no previous grant".into(),
                    });
                };
                Ok(taken_over(request, plan, &old, &ending, now_ms, retention))
            }
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(ccf)) => {
                    let current = LockRecord::from_optional_item(ccf.item())?;
                    match current {
                        // Our write landed and its answer was lost.
                        Some(c) if c.lock_id == plan.lock_id => Ok(Ended {
                            record: ending.apply(&c, now_ms, retention),
                            next: Some(Grant {
                                kind: GrantKind::New,
                                record: c,
                            }),
                            dropped: Vec::new(),
                        }),
                        current => Err(LockError::NotHeld {
                            key: request.key.clone(),
                            current: current.map(Box::new),
                        }),
                    }
                }
                _ => Err(LockError::from_sdk("UpdateItem", &self.table, err)),
            },
        }
    }
}

/// The outcome of a takeover that landed on `old`: the ended grant, and the
/// new one with the fence after it and the line behind it.
pub(crate) fn taken_over(
    request: &AcquireRequest,
    plan: Plan,
    old: &LockRecord,
    ending: &Ending,
    now_ms: u64,
    retention_secs: u64,
) -> Ended {
    let ended = ending.apply(old, now_ms, retention_secs);
    let previous = PreviousGrant {
        lock_id: old.lock_id.clone(),
        request_id: old.request_id.clone(),
        locked_by: old.locked_by.clone(),
        status: LockStatus::Failed,
        expires_at: old.expires_at,
        released_by: ended.released_by.clone(),
        release_reason: ended.release_reason.clone(),
        forced: true,
    };
    let mut record = plan.into_record(request, old.fence + 1, Some(previous));
    record.waiters = old.waiters.clone();
    record.line_version = old.line_version;
    Ended {
        record: ended,
        next: Some(Grant {
            kind: GrantKind::New,
            record,
        }),
        dropped: Vec::new(),
    }
}
