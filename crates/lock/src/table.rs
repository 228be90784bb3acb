//! `table create`: makes the lock table exactly as `infra/modules/lock-table`
//! does (key, TTL attribute, sparse active index), from the same names in
//! [`crate::schema`]. Used by tests, the local demo and first-time setup;
//! Lambda functions never call it.

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

use crate::client::LockClient;
use crate::error::LockError;
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
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| LockError::InvalidInput(e.to_string()))
        };
        let string_attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| LockError::InvalidInput(e.to_string()))
        };
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
            .send()
            .await;
        let outcome = match created {
            Ok(_) => TableCreation::Created,
            Err(err) if err.code() == Some("ResourceInUseException") => {
                return Ok(TableCreation::AlreadyExists);
            }
            Err(err) => return Err(LockError::from_sdk("CreateTable", &self.table, err)),
        };
        // A new table is CREATING for a few seconds on AWS (ACTIVE at once locally).
        self.ddb
            .wait_until_table_exists()
            .table_name(&self.table)
            .wait(std::time::Duration::from_secs(120))
            .await
            .map_err(|e| LockError::Dynamo {
                operation: "DescribeTable",
                code: None,
                message: format!("table did not become ACTIVE: {e}"),
            })?;
        self.ddb
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(schema::TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .map_err(|e| LockError::InvalidInput(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| LockError::from_sdk("UpdateTimeToLive", &self.table, e))?;
        Ok(outcome)
    }
}
