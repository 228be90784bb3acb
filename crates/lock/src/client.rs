//! [`LockClient`]: the handle every caller uses. Built once (at cold start in
//! Lambda) from an SDK config and reused for every operation.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::error::LockError;
use crate::record::{Item, LockRecord};
use crate::schema::{self, attr};

/// Tunables with defaults that suit CI jobs and chatops alike.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// Extra time a lease must be past its end before another owner may take
    /// it over, to absorb clock differences between machines.
    pub clock_skew: Duration,
    /// How long ended or abandoned records are kept before DynamoDB TTL may
    /// collect them (the `ttl` attribute is set this far past the lease end).
    pub retention: Duration,
    /// First delay between polls while waiting; doubles up to `poll_max`.
    pub poll_initial: Duration,
    /// Largest delay between polls while waiting.
    pub poll_max: Duration,
    /// How often a waiter in a key's line reads the key to see whether its
    /// turn came. The line already orders waiters, so this sets only how
    /// soon a handed-off grant is noticed: no backoff.
    pub line_poll: Duration,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            clock_skew: Duration::from_secs(2),
            retention: Duration::from_secs(30 * 24 * 3600),
            poll_initial: Duration::from_millis(250),
            poll_max: Duration::from_secs(5),
            line_poll: Duration::from_millis(200),
        }
    }
}

/// Client for one lock table.
#[derive(Debug, Clone)]
pub struct LockClient {
    pub(crate) ddb: Client,
    pub(crate) table: String,
    pub(crate) options: LockOptions,
}

/// One page of [`LockClient::list`].
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LockPage {
    pub locks: Vec<LockRecord>,
    /// Pass back as `ListQuery::page_token` to read the next page.
    pub next_page_token: Option<String>,
}

/// Filters and paging for [`LockClient::list`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only keys starting with this prefix (a key condition: no extra reads).
    pub prefix: Option<String>,
    /// Only records whose `environment` attribute equals this.
    pub environment: Option<String>,
    /// Items read per page (DynamoDB `Limit`); default 50.
    pub page_size: Option<i32>,
    /// Token from the previous page.
    pub page_token: Option<String>,
}

impl LockClient {
    /// A client for `table` using an SDK client built by the caller.
    pub fn new(ddb: Client, table: impl Into<String>) -> Self {
        Self::with_options(ddb, table, LockOptions::default())
    }

    pub fn with_options(ddb: Client, table: impl Into<String>, options: LockOptions) -> Self {
        LockClient {
            ddb,
            table: table.into(),
            options,
        }
    }

    /// Name of the table this client works on.
    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn options(&self) -> &LockOptions {
        &self.options
    }

    /// The underlying SDK client (for the `table create` helper and tests).
    pub fn dynamodb(&self) -> &Client {
        &self.ddb
    }

    /// The current record of `key`, read with strong consistency: one `GetItem`.
    pub async fn status(&self, key: &str) -> Result<Option<LockRecord>, LockError> {
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
        LockRecord::from_optional_item(out.item())
    }

    /// Locks currently `IN_PROGRESS` (held or expired but not yet taken over),
    /// read from the sparse active index: one `Query` per page, never a scan.
    /// Index reads are eventually consistent.
    pub async fn list(&self, query: &ListQuery) -> Result<LockPage, LockError> {
        let mut request = self
            .ddb
            .query()
            .table_name(&self.table)
            .index_name(schema::ACTIVE_INDEX_NAME)
            .limit(query.page_size.unwrap_or(50).clamp(1, 1000))
            .expression_attribute_names("#active", schema::ACTIVE_INDEX_PARTITION_KEY)
            .expression_attribute_values(
                ":active",
                AttributeValue::S(schema::ACTIVE_INDEX_PARTITION_VALUE.to_owned()),
            );
        let mut condition = "#active = :active".to_owned();
        if let Some(prefix) = query.prefix.as_deref().filter(|p| !p.is_empty()) {
            condition.push_str(" AND begins_with(#key, :prefix)");
            request = request
                .expression_attribute_names("#key", attr::LOCK_KEY)
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()));
        }
        if let Some(env) = query.environment.as_deref() {
            request = request
                .filter_expression("#env = :env")
                .expression_attribute_names("#env", attr::ENVIRONMENT)
                .expression_attribute_values(":env", AttributeValue::S(env.to_owned()));
        }
        if let Some(token) = query.page_token.as_deref() {
            request = request
                .exclusive_start_key(
                    schema::ACTIVE_INDEX_PARTITION_KEY,
                    AttributeValue::S(schema::ACTIVE_INDEX_PARTITION_VALUE.to_owned()),
                )
                .exclusive_start_key(attr::LOCK_KEY, AttributeValue::S(token.to_owned()));
        }
        let out = request
            .key_condition_expression(condition)
            .send()
            .await
            .map_err(|e| LockError::from_sdk("Query", &self.table, e))?;
        let locks = out
            .items()
            .iter()
            .map(LockRecord::from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next_page_token = out
            .last_evaluated_key()
            .and_then(|k: &Item| k.get(attr::LOCK_KEY))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok(LockPage {
            locks,
            next_page_token,
        })
    }
}

pub(crate) fn validate_key(key: &str) -> Result<(), LockError> {
    if key.trim().is_empty() {
        return Err(LockError::InvalidInput("lock key must not be empty".into()));
    }
    if key.starts_with(crate::freeze::FREEZE_KEY_PREFIX) {
        return Err(LockError::InvalidInput(format!(
            "lock key must not start with `{}`: that prefix is kept for freezes",
            crate::freeze::FREEZE_KEY_PREFIX
        )));
    }
    if key.len() > 1024 {
        return Err(LockError::InvalidInput(format!(
            "lock key is {} bytes; the limit is 1024",
            key.len()
        )));
    }
    Ok(())
}
