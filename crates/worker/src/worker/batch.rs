//! A batch: records parsed once, scheduled by key (different keys at the
//! same time, one key in order), and the records to send back to the queue.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use baton_chatops::render;
use baton_chatops::{
    CommandError, CommandMessage, CompletionMessage, Membership, MessageError, QueueMessage,
    Request, decide,
};
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::{Outcome, Worker};
use crate::ports::{Chat, Pipeline};
use baton_lock::LockStore;

/// A record, parsed once before the batch is scheduled.
enum Work {
    Command {
        message: Box<CommandMessage>,
        request: Result<Request, CommandError>,
    },
    Completion(CompletionMessage),
    Malformed(MessageError),
}

impl<S: LockStore, C: Chat, P: Pipeline> Worker<S, C, P> {
    /// Handles a batch within the default budget (for `--event` replays).
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_until(event, Instant::now() + self.settings.default_budget)
            .await
    }

    /// Handles a batch, finishing by `deadline`. Records of one lock key run
    /// in queue order; different keys run concurrently. When a record must be
    /// retried, the later records of its key are returned too, so their order
    /// survives the retry.
    pub async fn handle_until(&self, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
        let prepared: Vec<(String, u32, Work)> =
            event.records.iter().map(|r| self.prepare(r)).collect();
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (index, (id, _, work)) in prepared.iter().enumerate() {
            let key = self.ordering_key(work).unwrap_or_else(|| id.clone());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(index),
                None => groups.push((key, vec![index])),
            }
        }
        let prepared = &prepared;
        let group_runs = groups.iter().map(|(_, members)| async move {
            let mut failed = Vec::new();
            for &index in members {
                let (id, receive_count, work) = &prepared[index];
                if !failed.is_empty() {
                    failed.push(id.clone());
                    continue;
                }
                if let Outcome::Retry(why) = self.process(id, *receive_count, work, deadline).await
                {
                    warn!(message_id = %id, reason = %why, "record goes back to the queue");
                    failed.push(id.clone());
                }
            }
            failed
        });
        let failed: Vec<String> = futures_util::future::join_all(group_runs)
            .await
            .into_iter()
            .flatten()
            .collect();
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failed
            .into_iter()
            .map(|id| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failure
            })
            .collect();
        response
    }

    fn prepare(&self, record: &SqsMessage) -> (String, u32, Work) {
        let id = record.message_id.clone().unwrap_or_default();
        let receive_count = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let work = match QueueMessage::parse(record.body.as_deref().unwrap_or_default()) {
            Ok(QueueMessage::Command(message)) => {
                // The same decision the router made, made again: the
                // queue is not trusted to carry only what it allowed.
                // Listed user groups admit for now; `process` looks them
                // up before anything is done.
                let request = decide(
                    &self.settings.config,
                    &message,
                    &Membership::Unresolved,
                    self.locks.now_millis(),
                );
                Work::Command {
                    message: Box::new(message),
                    request,
                }
            }
            Ok(QueueMessage::Completion(completion)) => Work::Completion(completion),
            Err(e) => Work::Malformed(e),
        };
        (id, receive_count, work)
    }

    /// Records that touch the same lock must stay in order.
    fn ordering_key(&self, work: &Work) -> Option<String> {
        match work {
            Work::Command {
                request:
                    Ok(
                        Request::Run { lock_key, .. }
                        | Request::Unlock { lock_key, .. }
                        | Request::Cancel { lock_key, .. },
                    ),
                ..
            } => Some(lock_key.clone()),
            Work::Completion(c) => Some(c.lock_key.clone()),
            _ => None,
        }
    }

    async fn process(
        &self,
        id: &str,
        receive_count: u32,
        work: &Work,
        deadline: Instant,
    ) -> Outcome {
        match work {
            Work::Malformed(e) => {
                // Nothing can be done with it here; reporting it as failed
                // lets SQS move it to the dead-letter queue after its
                // receives, where an operator can read and replay it.
                error!(message_id = %id, receive_count, error = %e, "unreadable queue message; leaving it for the dead-letter queue");
                Outcome::Retry(format!("unreadable body: {e}"))
            }
            Work::Completion(c) => self.completion(id, c, deadline).await,
            Work::Command {
                message,
                request: Err(e),
            } => {
                info!(message_id = %id, user = %message.user_id, error = %e, "command refused");
                self.reply(message, &render::error(e), deadline).await
            }
            Work::Command {
                message,
                request: Ok(request),
            } => match self.decide_with_groups(message, request, deadline).await {
                Ok(Ok(request)) => {
                    self.command(id, receive_count, message, &request, deadline)
                        .await
                }
                Ok(Err(e)) => {
                    info!(message_id = %id, user = %message.user_id, error = %e, "command refused");
                    self.reply(message, &render::error(&e), deadline).await
                }
                Err(e) => {
                    warn!(message_id = %id, user = %message.user_id, error = %e, "could not read the members of a Slack user group");
                    Outcome::Retry(format!("user groups: {e}"))
                }
            },
        }
    }
}
