//! Ending a grant on a key with a waiting line: the write that ends the
//! grant also grants the head of the line (and drops waiters whose maximum
//! wait has passed), so no third party can take the key in between and no
//! waiter has to race for it.

use std::ops::Deref;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use crate::acquire::{
    EndedAs, Grant, Plan, carry_over, grant_kind, lapsed_condition, set_grant, takeover_before_ms,
};
use crate::client::LockClient;
use crate::clock::{iso_at_millis, now_epoch_millis};
use crate::error::LockError;
use crate::expr::Expr;
use crate::line::{Waiter, successor};
use crate::record::{LockRecord, LockStatus};
use crate::schema::attr;

/// How many times a write that depends on the line is tried when the line
/// changed between reading it and writing (someone joined or left
/// meanwhile). Every failed attempt means another writer's landed, so a
/// burst of joins always makes progress; this bounds one writer's bad luck.
pub(crate) const LINE_ATTEMPTS: usize = 32;

/// Before attempt `attempt` (from 0) of a write that depends on the line: a
/// jittered pause growing to 32 ms, so writers that keep colliding spread
/// out instead of colliding again in step. No pause before the first.
pub(crate) async fn line_retry_pause(attempt: usize) {
    if attempt == 0 {
        return;
    }
    let ceiling = 1u64 << attempt.min(5);
    tokio::time::sleep(std::time::Duration::from_micros(fastrand::u64(
        0..ceiling * 1000,
    )))
    .await;
}

/// How a grant ends.
#[derive(Debug, Clone)]
pub(crate) enum Ending {
    /// Its holder (or its run's completion) released it.
    Released {
        outcome: LockStatus,
        actor: Option<String>,
        reason: Option<String>,
    },
    /// An operator ended it: `actor` as they declared it, `actor_arn` as
    /// AWS authenticated them (when the caller could ask).
    Forced {
        actor: String,
        actor_arn: Option<String>,
        reason: String,
    },
    /// Its lease lapsed; the line's head takes over.
    Lapsed,
}

impl Ending {
    /// The status the ended grant is recorded with.
    fn status(&self) -> LockStatus {
        match self {
            Ending::Released { outcome, .. } => *outcome,
            Ending::Forced { .. } => LockStatus::Failed,
            Ending::Lapsed => LockStatus::InProgress,
        }
    }

    /// `record` as this ending leaves it at `now_ms`: the ended grant a
    /// caller is told about. Its line moved on to the successor.
    pub(crate) fn apply(
        &self,
        record: &LockRecord,
        now_ms: u64,
        retention_secs: u64,
    ) -> LockRecord {
        let mut r = record.clone();
        r.waiters.clear();
        match self {
            Ending::Lapsed => return r,
            Ending::Released {
                outcome,
                actor,
                reason,
            } => {
                r.status = *outcome;
                r.released_by = Some(actor.clone().unwrap_or_else(|| r.locked_by.clone()));
                r.release_reason.clone_from(reason);
            }
            Ending::Forced {
                actor,
                actor_arn,
                reason,
            } => {
                r.status = LockStatus::Failed;
                r.released_by = Some(actor.clone());
                r.release_reason = Some(reason.clone());
                r.forced = true;
                r.forced_by_arn.clone_from(actor_arn);
            }
        }
        r.ended_at = Some(iso_at_millis(now_ms));
        r.ttl = Some((now_ms / 1000).saturating_add(retention_secs));
        r
    }
}

/// A grant that ended, and what the same write did with the key's line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ended {
    /// The ended grant.
    pub record: LockRecord,
    /// The waiter granted the key by the same write, if the line had one.
    pub next: Option<Grant>,
    /// Waiters whose maximum wait had passed, removed by the same write.
    pub dropped: Vec<Waiter>,
}

impl Ended {
    /// An ending on a key without a line.
    pub(crate) fn alone(record: LockRecord) -> Ended {
        Ended {
            record,
            next: None,
            dropped: Vec::new(),
        }
    }
}

/// An `Ended` is first of all the ended grant's record.
impl Deref for Ended {
    type Target = LockRecord;
    fn deref(&self) -> &LockRecord {
        &self.record
    }
}

/// What an ending write with a known line came to.
#[allow(
    clippy::large_enum_variant,
    reason = "made once per write and matched at once; never stored"
)]
pub(crate) enum LineWrite {
    Done(Box<Ended>),
    /// The item changed since it was read: here it is now.
    Changed(Option<LockRecord>),
}

impl LockClient {
    /// Ends `seen` (the key's current grant, as just read) the way `ending`
    /// says, in one conditional write that also hands the key to the head
    /// of `seen`'s line. The write applies only if the grant and the head of
    /// its line are still as seen; otherwise the key's current record comes
    /// back for the caller to decide again.
    pub(crate) async fn end_with_line(
        &self,
        seen: &LockRecord,
        ending: &Ending,
    ) -> Result<LineWrite, LockError> {
        let now_ms = now_epoch_millis();
        let key = &seen.lock_key;
        let retention = self.options.retention.as_secs();
        let (next, dropped) = successor(&seen.waiters, now_ms);
        // The ended grant as the caller is told about it, whatever comes back.
        let ended = ending.apply(seen, now_ms, retention);
        let mut e = Expr::default();
        match next {
            Some(waiter) => {
                let request = waiter.acquire_request(key);
                let plan = Plan::for_waiter(waiter, &request, &self.options, now_ms);
                set_grant(&mut e, &request, &plan);
                let ended_as = (!matches!(ending, Ending::Lapsed)).then(|| EndedAs::of(&ended));
                carry_over(&mut e, &plan, ended_as);
                if let Ending::Forced { actor_arn, .. } = ending {
                    mark_forced(&mut e, actor_arn.as_deref());
                }
            }
            None => ending_fields(&mut e, ending, now_ms, retention),
        }
        let handed = dropped.len() + usize::from(next.is_some());
        let waiters = e.name(attr::WAITERS);
        for i in 0..handed {
            e.remove_raw(format!("{waiters}[{i}]"));
        }
        if handed > 0 {
            bump_line_version(&mut e);
            let members = e.name(attr::LINE_MEMBERS);
            let gone: Vec<String> = seen.waiters[..handed]
                .iter()
                .flat_map(Waiter::member_keys)
                .collect();
            let gone = e.value("gone", AttributeValue::Ss(gone));
            e.delete_raw(format!("{members} {gone}"));
        }
        let condition = seen_condition(&mut e, seen, handed, ending, &self.options, now_ms);
        match self.conditional_update(key, e, condition).await {
            Ok(out) => {
                let after = LockRecord::from_optional_item(out.attributes())?;
                let next = after.filter(|_| next.is_some()).map(|after| Grant {
                    kind: grant_kind(after.previous.as_ref()),
                    record: after,
                });
                Ok(LineWrite::Done(Box::new(Ended {
                    record: ended,
                    next,
                    dropped: dropped.to_vec(),
                })))
            }
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(ccf)) => {
                    let current = LockRecord::from_optional_item(ccf.item())?;
                    // Our own write landed and its answer was lost: the key
                    // now shows the waiter we handed it to, after our grant.
                    if let (Some(w), Some(c)) = (next, current.as_ref())
                        && c.lock_id == w.ticket
                        && c.previous
                            .as_ref()
                            .is_some_and(|p| p.lock_id == seen.lock_id)
                    {
                        return Ok(LineWrite::Done(Box::new(Ended {
                            record: ended,
                            next: Some(Grant {
                                kind: grant_kind(c.previous.as_ref()),
                                record: c.clone(),
                            }),
                            dropped: dropped.to_vec(),
                        })));
                    }
                    Ok(LineWrite::Changed(current))
                }
                _ => Err(LockError::from_sdk("UpdateItem", &self.table, err)),
            },
        }
    }
}

/// The attributes an ending without a successor writes: the same as a
/// release or a force unlock (a lapse writes none).
pub(crate) fn ending_fields(e: &mut Expr, ending: &Ending, now_ms: u64, retention_secs: u64) {
    let (actor, reason, forced) = match ending {
        Ending::Lapsed => return,
        Ending::Released { actor, reason, .. } => (actor.clone(), reason.clone(), None),
        Ending::Forced {
            actor,
            actor_arn,
            reason,
        } => (
            Some(actor.clone()),
            Some(reason.clone()),
            Some(actor_arn.as_deref()),
        ),
    };
    e.set_string(attr::STATUS, ending.status().as_str());
    e.set_string(attr::ENDED_AT, iso_at_millis(now_ms));
    match actor {
        Some(actor) => e.set_string(attr::RELEASED_BY, actor),
        None => {
            let (by, holder) = (e.name(attr::RELEASED_BY), e.name(attr::LOCKED_BY));
            e.set_raw(format!("{by} = {holder}"));
        }
    }
    e.set_or_remove(attr::RELEASE_REASON, reason.map(AttributeValue::S));
    if let Some(actor_arn) = forced {
        mark_forced(e, actor_arn);
    }
    e.set_number(attr::TTL, (now_ms / 1000).saturating_add(retention_secs));
    e.remove(attr::ACTIVE);
}

/// `SET forcedLockId = lockId`: the grant this write ends was forced. The
/// operand is the item's lock id before the write, so it names the ended
/// grant even when the same write grants the key to someone else. With it,
/// who forced it as AWS authenticated them, or no one (an earlier force's
/// ARN must not pass for this one's). Only forced endings call this: IAM
/// denies it to roles that may not force (see
/// [`crate::schema::FORCE_UNLOCK_ATTRIBUTE`]).
pub(crate) fn mark_forced(e: &mut Expr, actor_arn: Option<&str>) {
    let (forced, lock_id) = (e.name(attr::FORCED_LOCK_ID), e.name(attr::LOCK_ID));
    e.set_raw(format!("{forced} = {lock_id}"));
    e.set_or_remove(
        attr::FORCED_BY_ARN,
        actor_arn.map(|a| AttributeValue::S(a.to_owned())),
    );
}

/// The grant is still `seen`'s and still in progress, and the line still
/// starts with the `handed` waiters this write removes (or is still empty);
/// a lapse must still be past the skew margin. Waiters who joined behind
/// them since do not matter: the write removes only the head of the line,
/// so a stream of joins never starves an ending.
fn seen_condition(
    e: &mut Expr,
    seen: &LockRecord,
    handed: usize,
    ending: &Ending,
    options: &crate::client::LockOptions,
    now_ms: u64,
) -> String {
    let (id, id_value) = (e.name(attr::LOCK_ID), e.string("seenLockId", &seen.lock_id));
    let (status, in_progress) = (
        e.name(attr::STATUS),
        e.string("inProgress", LockStatus::InProgress.as_str()),
    );
    let waiters = e.name(attr::WAITERS);
    let line = if handed == 0 {
        let zero = e.number("zero", 0);
        format!("(attribute_not_exists({waiters}) OR size({waiters}) = {zero})")
    } else {
        let ticket = e.name("ticket");
        (0..handed)
            .map(|i| {
                let value = e.string(&format!("ticket{i}"), &seen.waiters[i].ticket);
                format!("{waiters}[{i}].{ticket} = {value}")
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let mut condition = format!("{id} = {id_value} AND {status} = {in_progress} AND {line}");
    if matches!(ending, Ending::Lapsed) {
        let lapsed = lapsed_condition(e, takeover_before_ms(now_ms, options));
        condition.push_str(&format!(" AND {lapsed}"));
    }
    condition
}

/// `lineVersion = lineVersion + 1`: every write that changes the line says so.
pub(crate) fn bump_line_version(e: &mut Expr) {
    let version = e.name(attr::LINE_VERSION);
    let (zero, one) = (e.number("zero", 0), e.number("one", 1));
    e.set_raw(format!(
        "{version} = if_not_exists({version}, {zero}) + {one}"
    ));
}

/// Sets `waiters` to `line`, and the member set to match it.
pub(crate) fn set_line(e: &mut Expr, line: &[Waiter]) {
    e.set(
        attr::WAITERS,
        AttributeValue::L(line.iter().map(Waiter::to_attribute).collect()),
    );
    let members: Vec<String> = line.iter().flat_map(Waiter::member_keys).collect();
    if members.is_empty() {
        e.remove(attr::LINE_MEMBERS);
    } else {
        e.set(attr::LINE_MEMBERS, AttributeValue::Ss(members));
    }
}
