//! One batch of stream records in, history entries out, in stream order.

use std::collections::HashMap;

use crate::writer::{HistoryError, HistoryWriter, Recorded};
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use baton_lock::history::{Image, changes_between};
use serde::Serialize;
use tracing::{error, info, warn};

/// What a batch did, for the logs and the tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    /// Entries and next-holder links written.
    pub written: usize,
    /// Changes already recorded (a redelivery).
    pub already_there: usize,
    /// Changes that ended no grant (renewals, joins, new grants).
    pub no_history: usize,
}

/// One change as the consumer needs it: the images before and after, and
/// where it sits in the stream (what a partial batch failure names).
#[derive(Debug, Clone)]
pub struct StreamChange {
    pub sequence_number: Option<String>,
    pub old: Option<Image>,
    pub new: Option<Image>,
}

/// Records `changes` in order. Stops at the first failure and names it and
/// every later change as failed, so the stream delivers them again in order
/// (a change must never be recorded before an earlier one of its key).
pub async fn record_all(
    history: &HistoryWriter,
    changes: &[StreamChange],
) -> (Tally, Vec<DynamoDbBatchItemFailure>) {
    let mut tally = Tally::default();
    for (i, change) in changes.iter().enumerate() {
        if let Err(e) = record_one(history, change, &mut tally).await {
            error!(error = %e, sequence_number = ?change.sequence_number, "cannot record a change; the rest of the batch comes again");
            let failures = changes[i..]
                .iter()
                .map(|c| {
                    let mut failure = DynamoDbBatchItemFailure::default();
                    failure.item_identifier = c.sequence_number.clone();
                    failure
                })
                .collect();
            return (tally, failures);
        }
    }
    (tally, Vec::new())
}

async fn record_one(
    history: &HistoryWriter,
    change: &StreamChange,
    tally: &mut Tally,
) -> Result<(), HistoryError> {
    let found = match changes_between(change.old.as_ref(), change.new.as_ref()) {
        Ok(found) => found,
        // An unreadable image can never be read, however often it comes
        // again: log it and go on rather than block the stream behind it.
        Err(e) => {
            warn!(error = %e, sequence_number = ?change.sequence_number, "unreadable lock record in the stream; skipped");
            tally.no_history += 1;
            return Ok(());
        }
    };
    if found.is_empty() {
        tally.no_history += 1;
    }
    for change in &found {
        match history.record(change).await? {
            Recorded::Written => tally.written += 1,
            Recorded::AlreadyThere => tally.already_there += 1,
        }
    }
    Ok(())
}

/// The Lambda handler: a DynamoDB stream batch in, the records to retry out
/// (the event source mapping reports batch item failures).
pub async fn handle(history: &HistoryWriter, event: Event) -> DynamoDbEventResponse {
    let changes: Vec<StreamChange> = event.records.into_iter().map(from_lambda).collect();
    let (tally, failures) = record_all(history, &changes).await;
    info!(
        records = changes.len(),
        written = tally.written,
        already_there = tally.already_there,
        no_history = tally.no_history,
        failed = failures.len(),
        "stream batch recorded"
    );
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failures;
    response
}

fn from_lambda(record: EventRecord) -> StreamChange {
    let image = |item: serde_dynamo::Item| {
        let map: HashMap<String, AttributeValue> = item.into();
        (!map.is_empty()).then_some(map)
    };
    StreamChange {
        sequence_number: record.change.sequence_number,
        old: image(record.change.old_image),
        new: image(record.change.new_image),
    }
}
