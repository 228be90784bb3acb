//! The history table beside a test's lock table, filled the way production
//! fills it: by reading the lock table's stream (DynamoDB Local serves the
//! streams API) and recording every change with `baton-history`'s code.

use aws_sdk_dynamodbstreams::config::{BehaviorVersion, Credentials, Region};
use baton_history::consume::{Tally, record_all};
use baton_history::follow::Follower;
use baton_history::writer::HistoryWriter;
use baton_lock::HistoryClient;

use crate::dynamo::{TestTable, local_dynamodb_client};

/// A DynamoDB Streams client for DynamoDB Local at `endpoint`.
pub fn local_streams_client(endpoint: &str) -> aws_sdk_dynamodbstreams::Client {
    aws_sdk_dynamodbstreams::Client::from_conf(
        aws_sdk_dynamodbstreams::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "baton",
                "local",
                None,
                None,
                "baton-testkit",
            ))
            .endpoint_url(endpoint)
            .http_client(baton_runtime::sdk::http_client())
            .build(),
    )
}

impl TestTable {
    /// A client for this table's history table (`<name>-history`).
    pub fn history_client(&self) -> HistoryClient {
        HistoryClient::new(
            local_dynamodb_client(&self.endpoint, 3),
            baton_lock::schema::history::table_for(&self.name),
        )
    }

    /// Creates the history table, as `baton table create` does.
    pub async fn create_history(&self) -> HistoryClient {
        let history = self.history_client();
        if let Err(e) = history.create_table().await {
            panic!("could not create the history table: {e}");
        }
        history
    }

    /// Reads this table's whole stream from its start and records it in
    /// the history table: what the Lambda on the stream does, all at once.
    /// Panics if any change could not be recorded.
    pub async fn record_history(&self) -> Tally {
        let ddb = local_dynamodb_client(&self.endpoint, 3);
        let mut follower = Follower::new(&ddb, local_streams_client(&self.endpoint), &self.name)
            .await
            .unwrap_or_else(|e| panic!("reading {}'s stream: {e}", self.name));
        let changes = follower
            .poll()
            .await
            .unwrap_or_else(|e| panic!("reading {}'s stream: {e}", self.name));
        let writer = HistoryWriter::new(
            local_dynamodb_client(&self.endpoint, 3),
            baton_lock::schema::history::table_for(&self.name),
            baton_lock::DEFAULT_RETENTION,
        );
        let (tally, failed) = record_all(&writer, &changes).await;
        assert!(failed.is_empty(), "changes not recorded: {failed:?}");
        tally
    }
}
