//! [`HistoryWriter`]: the only writer of the history table. Each change is
//! written so that a second delivery of it changes nothing: an entry is put
//! only if absent, the next holder attached only once.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::AttributeValue;
use baton_lock::entry_item;
use baton_lock::history::Change;
use baton_lock::schema::history as h;
use thiserror::Error;

/// A write to the history table failed (and may be retried).
#[derive(Debug, Error)]
#[error("{operation} on {table} failed: {message}")]
pub struct HistoryError {
    pub operation: &'static str,
    pub table: String,
    pub message: String,
}

impl HistoryError {
    fn from_sdk(operation: &'static str, table: &str, e: impl std::error::Error) -> Self {
        HistoryError {
            operation,
            table: table.to_owned(),
            message: DisplayErrorContext(e).to_string(),
        }
    }
}

/// What recording a change did: a stream delivers at least once, so the
/// same change may come again and must change nothing the second time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Written now.
    Written,
    /// Already there (a redelivered change), or nothing to attach it to (a
    /// grant that ended before the history began).
    AlreadyThere,
}

/// Writes history entries to one table.
#[derive(Debug, Clone)]
pub struct HistoryWriter {
    ddb: Client,
    table: String,
    retention: Duration,
}

impl HistoryWriter {
    /// The SDK client it writes with (the follower reads the stream's table
    /// description with the same one).
    pub fn dynamodb(&self) -> &Client {
        &self.ddb
    }

    /// Writes to `table`, keeping entries for `retention` after they end.
    pub fn new(ddb: Client, table: impl Into<String>, retention: Duration) -> Self {
        HistoryWriter {
            ddb,
            table: table.into(),
            retention,
        }
    }

    /// Stores one change: a new entry is put only if absent, and the next
    /// holder is attached only once, so a redelivered change is a no-op.
    pub async fn record(&self, change: &Change) -> Result<Recorded, HistoryError> {
        let sent = match change {
            Change::Ended(entry) => self
                .ddb
                .put_item()
                .table_name(&self.table)
                .set_item(Some(entry_item(entry, self.retention)))
                .condition_expression("attribute_not_exists(#key)")
                .expression_attribute_names("#key", h::PARTITION_KEY)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    (
                        e.code() == Some("ConditionalCheckFailedException"),
                        HistoryError::from_sdk("PutItem", &self.table, e),
                    )
                }),
            Change::Next {
                lock_key,
                ended_fence,
                next_holder,
                next_fence,
            } => self
                .ddb
                .update_item()
                .table_name(&self.table)
                .key(h::PARTITION_KEY, s(lock_key))
                .key(h::SORT_KEY, n(*ended_fence))
                .update_expression("SET #holder = :holder, #fence = :fence")
                .condition_expression("attribute_exists(#key) AND attribute_not_exists(#holder)")
                .expression_attribute_names("#key", h::PARTITION_KEY)
                .expression_attribute_names("#holder", "nextHolder")
                .expression_attribute_names("#fence", "nextFence")
                .expression_attribute_values(":holder", s(next_holder))
                .expression_attribute_values(":fence", n(*next_fence))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    (
                        e.code() == Some("ConditionalCheckFailedException"),
                        HistoryError::from_sdk("UpdateItem", &self.table, e),
                    )
                }),
        };
        match sent {
            Ok(()) => Ok(Recorded::Written),
            Err((true, _)) => Ok(Recorded::AlreadyThere),
            Err((false, err)) => Err(err),
        }
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}
