//! Runs that went around the lock, on record: a bypass is written on the
//! key it bypassed (who, when, why, where) without touching the grant or
//! its fence, so `status`, `list` and chat show that it happened.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use crate::client::{LockClient, validate_key};
use crate::error::LockError;
use crate::expr::Expr;
use crate::record::{Item, LockRecord};
use crate::schema::attr;

/// The last run on a key that went around its lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bypass {
    /// Who ran without the lock.
    pub by: String,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// Why, as they said (mandatory).
    pub reason: String,
    pub host: Option<String>,
    /// The CI run it happened in, when there was one.
    pub run_url: Option<String>,
    /// How many bypasses the key has seen in all.
    pub count: u64,
}

impl Bypass {
    /// Reads the `lastBypass` map of an item, if there is one.
    pub(crate) fn from_item(item: &Item) -> Option<Bypass> {
        let Some(AttributeValue::M(m)) = item.get(attr::LAST_BYPASS) else {
            return None;
        };
        let s = |k: &str| match m.get(k) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        let count = match item.get(attr::BYPASS_COUNT) {
            Some(AttributeValue::N(n)) => n.parse().unwrap_or(1),
            _ => 1,
        };
        Some(Bypass {
            by: s("by")?,
            at: s("at")?,
            reason: s("reason")?,
            host: s("host"),
            run_url: s("runUrl"),
            count,
        })
    }
}

impl LockClient {
    /// Records that `by` ran without taking `key`'s lock, for `reason`: one
    /// unconditional `UpdateItem` that sets `lastBypass` and counts it,
    /// leaving the grant, its fence and the line as they are.
    pub async fn record_bypass(
        &self,
        key: &str,
        by: &str,
        reason: &str,
        host: Option<&str>,
        run_url: Option<&str>,
    ) -> Result<Bypass, LockError> {
        validate_key(key)?;
        if by.trim().is_empty() || reason.trim().is_empty() {
            return Err(LockError::InvalidInput(
                "a bypass must say who and why".into(),
            ));
        }
        let at = crate::clock::iso_at_millis(crate::clock::now_epoch_millis());
        let mut map = std::collections::HashMap::from([
            ("by".to_owned(), AttributeValue::S(by.to_owned())),
            ("at".to_owned(), AttributeValue::S(at)),
            ("reason".to_owned(), AttributeValue::S(reason.to_owned())),
        ]);
        for (k, v) in [("host", host), ("runUrl", run_url)] {
            if let Some(v) = v {
                map.insert(k.to_owned(), AttributeValue::S(v.to_owned()));
            }
        }
        let mut e = Expr::default();
        e.set(attr::LAST_BYPASS, AttributeValue::M(map));
        let count = e.name(attr::BYPASS_COUNT);
        let (zero, one) = (e.number("zero", 0), e.number("one", 1));
        e.set_raw(format!("{count} = if_not_exists({count}, {zero}) + {one}"));
        let out = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key(attr::LOCK_KEY, AttributeValue::S(key.to_owned()))
            .update_expression(e.update_expression())
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(|err| LockError::from_sdk("UpdateItem", &self.table, err))?;
        out.attributes()
            .and_then(Bypass::from_item)
            .ok_or_else(|| LockError::Corrupt {
                key: key.to_owned(),
                detail: "the bypass was not returned".into(),
            })
    }

    /// A key as it stands: its grant record (if it was ever granted) and
    /// its last bypass (if any), from one strongly consistent `GetItem`.
    pub async fn inspect(
        &self,
        key: &str,
    ) -> Result<(Option<LockRecord>, Option<Bypass>), LockError> {
        validate_key(key)?;
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(attr::LOCK_KEY, AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| LockError::from_sdk("GetItem", &self.table, e))?;
        let item = out.item();
        Ok((
            LockRecord::from_optional_item(item)?,
            item.and_then(Bypass::from_item),
        ))
    }
}
