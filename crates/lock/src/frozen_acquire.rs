//! The freeze-checked acquire: one `TransactWriteItems` of a
//! `ConditionCheck` on the freeze's item and the acquire's own update, so a
//! freeze set a moment before the grant is never missed and a grant is
//! never made while one is in force.
//!
//! A transaction answers a success with no old values, so the fence cannot
//! be "the stored one plus one" read back from `ALL_OLD` as a plain
//! acquire's is. It is decided before the write instead: the grant sets the
//! fence to the clock's epoch milliseconds (the number a key without
//! history starts from) on condition that the stored fence is below it.
//! A key is granted at most 1000 times a second, so its fence can only be
//! at or above the clock when clocks disagree; then the write is made once
//! more, on condition that the fence is still the one seen, and sets it one
//! higher. Either way the fence only grows, and the caller knows it.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use crate::acquire::{
    AcquireRequest, Grant, GrantKind, Plan, carry_history, grant_condition, not_granted, set_grant,
};
use crate::client::LockClient;
use crate::clock::now_epoch_millis;
use crate::error::LockError;
use crate::expr::Expr;
use crate::freeze::{FreezeKey, FreezeRecord};
use crate::record::{Item, opt_n, opt_s};
use crate::schema::attr;

/// How a checked grant sets the fence, decided before it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FenceRule {
    /// To this value (the clock's epoch ms), if the stored fence is below.
    Floor(u64),
    /// To one more than this value, if the stored fence still is this.
    After(u64),
}

impl FenceRule {
    /// The fence the grant gets when its write lands.
    pub(crate) fn fence(self) -> u64 {
        match self {
            FenceRule::Floor(floor) => floor,
            FenceRule::After(seen) => seen + 1,
        }
    }

    /// The rule to try next when the stored fence, `stored`, failed this
    /// one; `None` when the fence was not what failed.
    pub(crate) fn next(self, stored: Option<u64>) -> Option<FenceRule> {
        match (self, stored) {
            (FenceRule::Floor(floor), Some(f)) if f >= floor => Some(FenceRule::After(f)),
            (FenceRule::After(seen), Some(f)) if f != seen => Some(FenceRule::After(f)),
            _ => None,
        }
    }

    /// Whether a stored fence (`None`: no item yet) lets this rule write.
    pub(crate) fn admits(self, stored: Option<u64>) -> bool {
        match (self, stored) {
            (FenceRule::Floor(_), None) => true,
            (FenceRule::Floor(floor), Some(f)) => f < floor,
            (FenceRule::After(seen), stored) => stored == Some(seen),
        }
    }
}

/// How many fence rules one checked acquire tries: the floor, then the
/// stored fence as seen (and once more if another grant moved it between).
const FENCE_ATTEMPTS: usize = 3;

/// What one transaction came to.
enum Outcome {
    Granted,
    Frozen(FreezeRecord),
    /// The acquire's own condition failed; the lock item as it was.
    LockRefused(Option<Item>),
}

impl LockClient {
    /// [`LockClient::acquire`] refused while the freeze `freeze` is in
    /// force: one `TransactWriteItems` (two in the rare case described in
    /// this module's notes), answering [`LockError::Frozen`] with the
    /// freeze, read from the same failed request, or the acquire's own
    /// answers. A grant comes back as [`GrantKind::Checked`].
    pub(crate) async fn acquire_unless_frozen(
        &self,
        request: &AcquireRequest,
        freeze: &FreezeKey,
    ) -> Result<Grant, LockError> {
        let now_ms = now_epoch_millis();
        let plan = Plan::at(request, &self.options, now_ms);
        let mut rule = FenceRule::Floor(plan.fence_base);
        let mut last = None;
        for _ in 0..FENCE_ATTEMPTS {
            match self
                .checked_write(request, freeze, &plan, rule, now_ms)
                .await?
            {
                Outcome::Granted => return Ok(checked_grant(request, plan, rule)),
                Outcome::Frozen(record) => {
                    return Err(LockError::Frozen {
                        key: request.key.clone(),
                        freeze: Box::new(record),
                    });
                }
                Outcome::LockRefused(item) => {
                    let ours = item.as_ref().and_then(|i| opt_s(i, attr::LOCK_ID))
                        == Some(plan.lock_id.clone());
                    let stored = stored_fence(item.as_ref())?;
                    match rule.next(stored).filter(|_| !ours) {
                        Some(next) => rule = next,
                        None => return not_granted(request, plan, item.as_ref()),
                    }
                    last = item;
                }
            }
        }
        not_granted(request, plan, last.as_ref())
    }

    /// One transaction: the freeze's condition check, then the grant.
    async fn checked_write(
        &self,
        request: &AcquireRequest,
        freeze: &FreezeKey,
        plan: &Plan,
        rule: FenceRule,
        now_ms: u64,
    ) -> Result<Outcome, LockError> {
        let build = |e: aws_smithy_types::error::operation::BuildError| {
            LockError::InvalidInput(e.to_string())
        };
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key(
                attr::LOCK_KEY,
                AttributeValue::S(freeze.as_str().to_owned()),
            )
            .condition_expression("attribute_not_exists(#until) OR #until <= :now")
            .expression_attribute_names("#until", attr::FROZEN_UNTIL_MS)
            .expression_attribute_values(":now", AttributeValue::N(now_ms.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build)?;
        let (e, condition) = checked_update(request, plan, rule);
        let expression = e.update_expression();
        let (names, values) = e.used_placeholders(&condition);
        let update = Update::builder()
            .table_name(&self.table)
            .key(attr::LOCK_KEY, AttributeValue::S(request.key.clone()))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build)?;
        let result = self
            .ddb
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(check).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            // The SDK's retries send the same token: a retry of a write
            // that landed is answered as that write, not refused by it.
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Outcome::Granted),
            Err(err) => err,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
            err.as_service_error()
        else {
            return Err(LockError::from_sdk("TransactWriteItems", &self.table, err));
        };
        let reasons = cancel.cancellation_reasons();
        let failed = |i: usize| {
            reasons
                .get(i)
                .is_some_and(|r| r.code() == Some("ConditionalCheckFailed"))
        };
        if failed(0) {
            let item = reasons.first().and_then(|r| r.item());
            return match FreezeRecord::from_item(item)? {
                Some(record) => Ok(Outcome::Frozen(record)),
                None => Err(LockError::Corrupt {
                    key: freeze.to_string(),
                    detail: "the freeze check failed but returned no freeze".into(),
                }),
            };
        }
        if failed(1) {
            let item = reasons.get(1).and_then(|r| r.item()).cloned();
            return Ok(Outcome::LockRefused(item));
        }
        // Cancelled for another reason: a conflicting transaction (retry
        // later) or a problem with the request.
        let code = reasons
            .iter()
            .filter_map(|r| r.code())
            .find(|c| *c != "None")
            .unwrap_or("TransactionCanceled");
        let code = if code == "TransactionConflict" {
            "TransactionConflictException".to_owned()
        } else {
            code.to_owned()
        };
        Err(LockError::Dynamo {
            operation: "TransactWriteItems",
            message: format!("transaction cancelled: {code}"),
            code: Some(code),
        })
    }
}

/// The acquire's update with the fence set by `rule` instead of counted
/// from the stored one.
fn checked_update(request: &AcquireRequest, plan: &Plan, rule: FenceRule) -> (Expr, String) {
    let mut e = Expr::default();
    set_grant(&mut e, request, plan);
    carry_history(&mut e, None);
    let fence = e.name(attr::FENCE);
    let fence_rule = match rule {
        FenceRule::Floor(floor) => {
            let floor = e.number("fenceFloor", floor);
            e.set_raw(format!("{fence} = {floor}"));
            format!("(attribute_not_exists({fence}) OR {fence} < {floor})")
        }
        FenceRule::After(seen) => {
            let next = e.number("fenceNext", seen + 1);
            let seen = e.number("fenceSeen", seen);
            e.set_raw(format!("{fence} = {next}"));
            format!("{fence} = {seen}")
        }
    };
    let condition = grant_condition(&mut e, request, plan);
    (e, format!("{condition} AND {fence_rule}"))
}

/// The fence stored on a lock item, if the item has one.
fn stored_fence(item: Option<&Item>) -> Result<Option<u64>, LockError> {
    match item {
        None => Ok(None),
        Some(item) => opt_n(item, attr::FENCE).map_err(|detail| LockError::Corrupt {
            key: opt_s(item, attr::LOCK_KEY).unwrap_or_default(),
            detail,
        }),
    }
}

/// The grant a landed checked write made: its fence is the rule's, and
/// what it replaced is on the stored record only.
pub(crate) fn checked_grant(request: &AcquireRequest, plan: Plan, rule: FenceRule) -> Grant {
    let record = plan.into_record(request, rule.fence(), None);
    tracing::debug!(key = %record.lock_key, fence = record.fence, "lock granted past a freeze check");
    Grant {
        record,
        kind: GrantKind::Checked,
    }
}
