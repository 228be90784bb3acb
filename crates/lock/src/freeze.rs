//! Change freezes on record: a freeze is an item of the lock table under a
//! key no lock key can have ([`FREEZE_KEY_PREFIX`]), saying who froze what,
//! why and until when. An acquire that names a freeze key
//! ([`crate::AcquireRequest::unless_frozen`]) is refused while the freeze
//! lasts, checked in the same request as the grant (see `frozen_acquire.rs`).
//!
//! A freeze ends by itself at its `frozenUntilMs`; lifting it early moves
//! that end to now. Nothing else reads or writes these items.

use std::fmt;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde::Serialize;

use crate::client::LockClient;
use crate::clock::now_epoch_millis;
use crate::error::LockError;
use crate::expr::Expr;
use crate::record::{Item, opt_n, opt_s};
use crate::schema::attr;

/// What every freeze key starts with. [`crate::LockClient::acquire`] and
/// every other lock operation refuse keys with this prefix, so a lock can
/// never be taken (or ended) on a freeze's item.
pub const FREEZE_KEY_PREFIX: &str = "!freeze/";

/// The longest a freeze may last: long enough for a release week, short
/// enough that a forgotten freeze ends by itself.
pub const MAX_FREEZE: Duration = Duration::from_secs(31 * 24 * 3600);

/// The key of one freeze: [`FREEZE_KEY_PREFIX`] and a scope chosen by the
/// caller (chatops uses the command and the environment, `deploy/prod`).
/// A type of its own so a lock key can never be passed where a freeze key
/// is meant, nor the other way round.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FreezeKey(String);

impl FreezeKey {
    /// The freeze key of `scope`; an empty scope or one too long for a key
    /// is refused.
    pub fn new(scope: &str) -> Result<FreezeKey, LockError> {
        if scope.trim().is_empty() {
            return Err(LockError::InvalidInput(
                "freeze scope must not be empty".into(),
            ));
        }
        let key = format!("{FREEZE_KEY_PREFIX}{scope}");
        if key.len() > 1024 {
            return Err(LockError::InvalidInput(format!(
                "freeze key is {} bytes; the limit is 1024",
                key.len()
            )));
        }
        Ok(FreezeKey(key))
    }

    /// The item key, prefix included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The scope the caller gave, without the prefix.
    pub fn scope(&self) -> &str {
        &self.0[FREEZE_KEY_PREFIX.len()..]
    }
}

impl fmt::Display for FreezeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who freezes what, why and for how long.
#[derive(Debug, Clone)]
pub struct FreezeRequest {
    pub key: FreezeKey,
    /// Stable id of who froze (a Slack user id).
    pub by: String,
    pub by_name: Option<String>,
    /// Why, as they said; shown to everyone the freeze refuses.
    pub reason: String,
    /// From now; at most [`MAX_FREEZE`].
    pub duration: Duration,
}

/// A freeze as stored: refuses checked acquires while `now < until_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FreezeRecord {
    /// The freeze's scope (its key without [`FREEZE_KEY_PREFIX`]).
    pub scope: String,
    pub by: String,
    pub by_name: Option<String>,
    pub reason: String,
    /// When it was set, epoch milliseconds.
    pub start_ms: u64,
    /// When it ends (or was lifted), epoch milliseconds.
    pub until_ms: u64,
    /// DynamoDB TTL (epoch seconds): the item is collected after this.
    pub ttl: Option<u64>,
    /// Who lifted it before its end, if anyone did.
    pub lifted_by: Option<String>,
}

impl FreezeRecord {
    /// Whether the freeze refuses acquires at `now_ms`.
    pub fn active_at(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms
    }

    /// Who froze, by name when known.
    pub fn by_label(&self) -> &str {
        self.by_name.as_deref().unwrap_or(&self.by)
    }

    /// Reads a freeze item; `None` for an absent item (never frozen).
    pub(crate) fn from_item(item: Option<&Item>) -> Result<Option<FreezeRecord>, LockError> {
        let Some(item) = item.filter(|i| i.contains_key(attr::FROZEN_UNTIL_MS)) else {
            return Ok(None);
        };
        let key = opt_s(item, attr::LOCK_KEY).unwrap_or_default();
        let corrupt = |detail: String| LockError::Corrupt {
            key: key.clone(),
            detail,
        };
        let number = |name: &str| {
            opt_n(item, name)
                .map_err(corrupt)?
                .ok_or_else(|| corrupt(format!("missing `{name}`")))
        };
        Ok(Some(FreezeRecord {
            scope: key
                .strip_prefix(FREEZE_KEY_PREFIX)
                .unwrap_or(&key)
                .to_owned(),
            by: opt_s(item, attr::FROZEN_BY).unwrap_or_default(),
            by_name: opt_s(item, attr::FROZEN_BY_NAME),
            reason: opt_s(item, attr::FREEZE_REASON).unwrap_or_default(),
            start_ms: number(attr::FROZEN_AT_MS)?,
            until_ms: number(attr::FROZEN_UNTIL_MS)?,
            ttl: opt_n(item, attr::TTL).map_err(corrupt)?,
            lifted_by: opt_s(item, attr::LIFTED_BY),
        }))
    }
}

/// The checks every adapter makes before it writes a freeze.
pub(crate) fn validate_freeze(request: &FreezeRequest) -> Result<(), LockError> {
    if request.by.trim().is_empty() || request.reason.trim().is_empty() {
        return Err(LockError::InvalidInput(
            "a freeze must say who and why".into(),
        ));
    }
    if request.duration < Duration::from_secs(1) || request.duration > MAX_FREEZE {
        return Err(LockError::InvalidInput(
            "a freeze lasts between one second and 31 days".into(),
        ));
    }
    Ok(())
}

/// The record `request` makes at `now_ms`, kept `retention` past its end.
pub(crate) fn planned(request: &FreezeRequest, now_ms: u64, retention: Duration) -> FreezeRecord {
    let until_ms = now_ms.saturating_add(millis(request.duration));
    FreezeRecord {
        scope: request.key.scope().to_owned(),
        by: request.by.clone(),
        by_name: request.by_name.clone(),
        reason: request.reason.clone(),
        start_ms: now_ms,
        until_ms,
        ttl: Some((until_ms / 1000).saturating_add(retention.as_secs())),
        lifted_by: None,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl LockClient {
    /// Freezes `request.key` from now for `request.duration`, replacing any
    /// freeze there was: one unconditional `UpdateItem`.
    pub async fn freeze(&self, request: &FreezeRequest) -> Result<FreezeRecord, LockError> {
        validate_freeze(request)?;
        let record = planned(request, now_epoch_millis(), self.options.retention);
        let mut e = Expr::default();
        e.set_string(attr::FROZEN_BY, &record.by);
        e.set_or_remove(
            attr::FROZEN_BY_NAME,
            record.by_name.clone().map(AttributeValue::S),
        );
        e.set_string(attr::FREEZE_REASON, &record.reason);
        e.set_number(attr::FROZEN_AT_MS, record.start_ms);
        e.set_number(attr::FROZEN_UNTIL_MS, record.until_ms);
        e.set_number(attr::TTL, record.ttl.unwrap_or_default());
        e.remove(attr::LIFTED_BY);
        let update = e.update_expression();
        let (names, values) = e.used_placeholders("");
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key(
                attr::LOCK_KEY,
                AttributeValue::S(request.key.as_str().to_owned()),
            )
            .update_expression(update)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(|e| LockError::from_sdk("UpdateItem", &self.table, e))?;
        Ok(record)
    }

    /// Lifts the freeze on `key` now, recording `actor`: one conditional
    /// `UpdateItem` that moves its end to now. `Ok(None)` when nothing was
    /// frozen there; otherwise the freeze as it was before it was lifted.
    pub async fn unfreeze(
        &self,
        key: &FreezeKey,
        actor: &str,
    ) -> Result<Option<FreezeRecord>, LockError> {
        if actor.trim().is_empty() {
            return Err(LockError::InvalidInput(
                "lifting a freeze must say who".into(),
            ));
        }
        let now_ms = now_epoch_millis();
        let mut e = Expr::default();
        e.set_number(attr::FROZEN_UNTIL_MS, now_ms);
        e.set_string(attr::LIFTED_BY, actor);
        let until = e.name(attr::FROZEN_UNTIL_MS);
        let now = e.number("now", now_ms);
        let condition = format!("{until} > {now}");
        let result = self
            .conditional_update_returning(key.as_str(), e, condition, ReturnValue::AllOld)
            .await;
        match result {
            Ok(out) => FreezeRecord::from_item(out.attributes()),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(None)
            }
            Err(err) => Err(LockError::from_sdk("UpdateItem", &self.table, err)),
        }
    }

    /// The freeze on `key`, active or ended (`None` if there never was
    /// one or TTL collected it): one strongly consistent `GetItem`.
    pub async fn freeze_status(&self, key: &FreezeKey) -> Result<Option<FreezeRecord>, LockError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(attr::LOCK_KEY, AttributeValue::S(key.as_str().to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| LockError::from_sdk("GetItem", &self.table, e))?;
        FreezeRecord::from_item(out.item())
    }
}
