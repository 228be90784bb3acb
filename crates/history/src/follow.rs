//! Reading the lock table's stream directly, for runs without Lambda's event
//! source mapping: the local demo, `baton-history --follow`, and the tests
//! (DynamoDB Local serves the streams API on its own port).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use thiserror::Error;

use crate::consume::{StreamChange, Tally, record_all};
use crate::writer::HistoryWriter;

/// Why the stream could not be read.
#[derive(Debug, Error)]
pub enum FollowError {
    #[error("table {0} has no stream: create it with `baton table create` (streams on)")]
    NoStream(String),
    #[error("{operation} failed: {message}")]
    Stream {
        operation: &'static str,
        message: String,
    },
}

/// Where each shard of one table's stream has been read to.
pub struct Follower {
    streams: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    /// Shard id -> the iterator to read next (`None`: the shard is closed
    /// and read to its end).
    shards: BTreeMap<String, Option<String>>,
}

impl Follower {
    /// Follows `table`'s latest stream from its oldest record.
    pub async fn new(
        ddb: &aws_sdk_dynamodb::Client,
        streams: aws_sdk_dynamodbstreams::Client,
        table: &str,
    ) -> Result<Self, FollowError> {
        let described = ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| stream_error("DescribeTable", e))?;
        let stream_arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| FollowError::NoStream(table.to_owned()))?
            .to_owned();
        Ok(Follower {
            streams,
            stream_arn,
            shards: BTreeMap::new(),
        })
    }

    /// Every change the stream holds beyond what earlier calls returned, in
    /// stream order per shard.
    pub async fn poll(&mut self) -> Result<Vec<StreamChange>, FollowError> {
        self.discover_shards().await?;
        let mut changes = Vec::new();
        for iterator in self.shards.values_mut() {
            while let Some(current) = iterator.clone() {
                let out = self
                    .streams
                    .get_records()
                    .shard_iterator(current)
                    .send()
                    .await
                    .map_err(|e| stream_error("GetRecords", e))?;
                *iterator = out.next_shard_iterator().map(str::to_owned);
                if out.records().is_empty() {
                    break;
                }
                changes.extend(out.records().iter().map(change_of));
            }
        }
        Ok(changes)
    }

    async fn discover_shards(&mut self) -> Result<(), FollowError> {
        let described = self
            .streams
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .map_err(|e| stream_error("DescribeStream", e))?;
        let shards = described
            .stream_description()
            .map(|d| d.shards().to_vec())
            .unwrap_or_default();
        for shard in shards {
            let Some(id) = shard.shard_id() else { continue };
            if self.shards.contains_key(id) {
                continue;
            }
            let iterator = self
                .streams
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .map_err(|e| stream_error("GetShardIterator", e))?;
            self.shards
                .insert(id.to_owned(), iterator.shard_iterator().map(str::to_owned));
        }
        Ok(())
    }

    /// Polls and records until `stop` resolves, pausing `every` between
    /// polls; a failed write is retried (in order) before anything newer.
    pub async fn run(
        mut self,
        history: &HistoryWriter,
        every: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<Tally, FollowError> {
        tokio::pin!(stop);
        let mut total = Tally::default();
        let mut pending: Vec<StreamChange> = Vec::new();
        loop {
            pending.extend(self.poll().await?);
            let (tally, failed) = record_all(history, &pending).await;
            total.written += tally.written;
            total.already_there += tally.already_there;
            total.no_history += tally.no_history;
            let keep = pending.len() - failed.len();
            pending.drain(..keep);
            tokio::select! {
                () = &mut stop => return Ok(total),
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

fn change_of(record: &Record) -> StreamChange {
    let stream = record.dynamodb();
    let image = |map: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
        map.filter(|m| !m.is_empty()).map(|m| {
            let item: serde_dynamo::Item = m.clone().into();
            let map: HashMap<String, AttributeValue> = item.into();
            map
        })
    };
    StreamChange {
        sequence_number: stream.and_then(|s| s.sequence_number()).map(str::to_owned),
        old: image(stream.and_then(|s| s.old_image())),
        new: image(stream.and_then(|s| s.new_image())),
    }
}

fn stream_error(operation: &'static str, e: impl std::error::Error) -> FollowError {
    FollowError::Stream {
        operation,
        message: aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
    }
}
