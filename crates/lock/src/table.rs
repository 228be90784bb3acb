//! `table create`: makes the lock table exactly as `infra/modules/lock-table`
//! does (key, TTL attribute, sparse active index), from the same names in
//! [`crate::schema`]. Used by tests, the local demo and first-time setup;
//! Lambda functions never call it.

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};

use crate::client::LockClient;
use crate::error::LockError;
use crate::history_store::HistoryClient;
use crate::schema;

/// What `create_table` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableCreation {
    Created,
    AlreadyExists,
}

impl LockClient {
    /// Creates the table (on-demand billing) and enables TTL on `ttl`. An
    /// existing table is left as it is. Long only because the schema (keys,
    /// the sparse index, TTL) is spelled out in one builder chain.
    pub async fn create_table(&self) -> Result<TableCreation, LockError> {
        let string_attr = |name: &str| attribute(name, ScalarAttributeType::S);
        let index = GlobalSecondaryIndex::builder()
            .index_name(schema::ACTIVE_INDEX_NAME)
            .key_schema(key(schema::ACTIVE_INDEX_PARTITION_KEY, KeyType::Hash)?)
            .key_schema(key(schema::TABLE_PARTITION_KEY, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(|e| LockError::InvalidInput(e.to_string()))?;
        let created = self
            .ddb
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attr(schema::TABLE_PARTITION_KEY)?)
            .attribute_definitions(string_attr(schema::ACTIVE_INDEX_PARTITION_KEY)?)
            .key_schema(key(schema::TABLE_PARTITION_KEY, KeyType::Hash)?)
            .global_secondary_indexes(index)
            // The history is derived from this stream, so no lock operation
            // pays a second request for it.
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .map_err(|e| LockError::InvalidInput(e.to_string()))?,
            )
            .send()
            .await;
        let outcome = match created {
            Ok(_) => TableCreation::Created,
            Err(err) if err.code() == Some("ResourceInUseException") => {
                return Ok(TableCreation::AlreadyExists);
            }
            Err(err) => return Err(LockError::from_sdk("CreateTable", &self.table, err)),
        };
        activate_with_ttl(&self.ddb, &self.table).await?;
        Ok(outcome)
    }
}

impl HistoryClient {
    /// Creates the history table (on-demand billing) with its day index and
    /// TTL, as `infra/modules/lock-table` does. An existing table is left
    /// as it is.
    pub async fn create_table(&self) -> Result<TableCreation, LockError> {
        use schema::history as h;
        let index = GlobalSecondaryIndex::builder()
            .index_name(h::TIME_INDEX_NAME)
            .key_schema(key(h::TIME_INDEX_PARTITION_KEY, KeyType::Hash)?)
            .key_schema(key(h::TIME_INDEX_SORT_KEY, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(|e| LockError::InvalidInput(e.to_string()))?;
        let created = self
            .dynamodb()
            .create_table()
            .table_name(self.table())
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute(h::PARTITION_KEY, ScalarAttributeType::S)?)
            .attribute_definitions(attribute(h::SORT_KEY, ScalarAttributeType::N)?)
            .attribute_definitions(attribute(
                h::TIME_INDEX_PARTITION_KEY,
                ScalarAttributeType::S,
            )?)
            .attribute_definitions(attribute(h::TIME_INDEX_SORT_KEY, ScalarAttributeType::N)?)
            .key_schema(key(h::PARTITION_KEY, KeyType::Hash)?)
            .key_schema(key(h::SORT_KEY, KeyType::Range)?)
            .global_secondary_indexes(index)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(err) if err.code() == Some("ResourceInUseException") => {
                return Ok(TableCreation::AlreadyExists);
            }
            Err(err) => return Err(LockError::from_sdk("CreateTable", self.table(), err)),
        }
        activate_with_ttl(self.dynamodb(), self.table()).await?;
        Ok(TableCreation::Created)
    }
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, LockError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| LockError::InvalidInput(e.to_string()))
}

fn attribute(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition, LockError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .map_err(|e| LockError::InvalidInput(e.to_string()))
}

/// Waits for a new table to be ACTIVE (a few seconds on AWS, at once
/// locally) and enables TTL on [`schema::TTL_ATTRIBUTE`].
async fn activate_with_ttl(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), LockError> {
    ddb.wait_until_table_exists()
        .table_name(table)
        .wait(std::time::Duration::from_secs(120))
        .await
        .map_err(|e| LockError::Dynamo {
            operation: "DescribeTable",
            code: None,
            message: format!("table did not become ACTIVE: {e}"),
        })?;
    ddb.update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(schema::TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(|e| LockError::InvalidInput(e.to_string()))?,
        )
        .send()
        .await
        .map_err(|e| LockError::from_sdk("UpdateTimeToLive", table, e))?;
    Ok(())
}
