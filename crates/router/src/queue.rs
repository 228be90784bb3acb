//! Putting work on the command queue.
//!
//! [`Outgoing`] is one SQS message with its FIFO ids already decided;
//! [`Enqueue`] is the port the routes send through, and [`SqsQueue`] its only
//! real implementation (tests use it too, against a local SQS server).
//!
//! FIFO ids:
//! * `MessageGroupId`: the lock key for anything that takes or releases a
//!   lock (`/build router plt` → `build-router-plt`), so every command and
//!   completion for one lock is processed in order; the bare command name
//!   (`build`) for `status` and `help`, which touch no single lock.
//! * `MessageDeduplicationId`: Slack's `trigger_id` for a command (a retried
//!   delivery of the same slash command is dropped for 5 minutes);
//!   `{lock_id}-{run_id}` for a completion (`{lock_id}-{conclusion}` when the
//!   run id is unknown), so a redelivered webhook is dropped too.
//!
//! A queue whose URL does not end in `.fifo` is a standard queue: the ids
//! are not sent (SQS rejects a deduplication id there).

use std::future::Future;
use std::time::Duration;

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::error::DisplayErrorContext;
use baton_chatops::{CommandMessage, CompletionMessage, QueueMessage, Request, key_base};
use sha2::{Digest, Sha256};

/// SQS's limit on group and deduplication ids.
const MAX_ID_LEN: usize = 128;

/// One message for the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The JSON body ([`QueueMessage::to_json`]).
    pub body: String,
    /// FIFO `MessageGroupId`.
    pub group_id: String,
    /// FIFO `MessageDeduplicationId`.
    pub dedup_id: String,
}

impl Outgoing {
    /// A verified slash command, grouped by what `request` locks.
    pub fn command(msg: &CommandMessage, request: &Request) -> Outgoing {
        let group = match request {
            Request::Run { lock_key, .. }
            | Request::Unlock { lock_key, .. }
            | Request::Cancel { lock_key, .. }
            | Request::Leave { lock_key, .. }
            | Request::History { lock_key, .. }
            | Request::Queue {
                target: Some((_, lock_key)),
                ..
            } => lock_key.as_str(),
            Request::Status { command }
            | Request::Help { command }
            | Request::Queue { command, .. }
            | Request::Freeze { command, .. }
            | Request::Unfreeze { command, .. } => &key_base(command),
        };
        Outgoing {
            body: QueueMessage::Command(msg.clone()).to_json(),
            group_id: sqs_id(group),
            dedup_id: sqs_id(&msg.trigger_id),
        }
    }

    /// A pipeline completion, grouped with its lock's commands.
    pub fn completion(msg: &CompletionMessage) -> Outgoing {
        let run = msg
            .run_id
            .map_or_else(|| msg.conclusion.as_str().to_string(), |id| id.to_string());
        Outgoing {
            body: QueueMessage::Completion(msg.clone()).to_json(),
            group_id: sqs_id(&msg.lock_key),
            dedup_id: sqs_id(&format!("{}-{run}", msg.lock_id)),
        }
    }
}

/// `raw` if SQS accepts it as a group or deduplication id (1–128 printable
/// ASCII characters, no spaces), else a stable digest of it, so equal inputs
/// still map to equal ids.
pub fn sqs_id(raw: &str) -> String {
    let ok =
        !raw.is_empty() && raw.len() <= MAX_ID_LEN && raw.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        raw.to_string()
    } else {
        format!("sha256-{}", hex::encode(Sha256::digest(raw.as_bytes())))
    }
}

/// Why a message could not be queued (the SDK's error, with its causes).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EnqueueError(pub String);

/// Where the routes put work. Implemented by [`SqsQueue`].
pub trait Enqueue: Send + Sync {
    /// Sends one message; returns the queue's message id.
    fn enqueue(&self, msg: Outgoing) -> impl Future<Output = Result<String, EnqueueError>> + Send;
}

/// The SQS command queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
    fifo: bool,
}

impl SqsQueue {
    /// A sender for the queue at `url` (FIFO when it ends in `.fifo`).
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> SqsQueue {
        let url = url.into();
        let fifo = url.trim_end_matches('/').ends_with(".fifo");
        SqsQueue { client, url, fifo }
    }

    /// Whether the queue is FIFO.
    pub fn is_fifo(&self) -> bool {
        self.fifo
    }

    /// The queue URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Enqueue for SqsQueue {
    async fn enqueue(&self, msg: Outgoing) -> Result<String, EnqueueError> {
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(msg.body);
        if self.fifo {
            send = send
                .message_group_id(msg.group_id)
                .message_deduplication_id(msg.dedup_id);
        }
        let out = send
            .send()
            .await
            .map_err(|e| EnqueueError(DisplayErrorContext(&e).to_string()))?;
        Ok(out.message_id.unwrap_or_default())
    }
}

/// Timeouts for the SQS client: Slack wants its answer within 3 s of the
/// POST, so a send gets at most 2 s in all (a 500 ms connect, 800 ms per
/// attempt) before the user is told to try again.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(500))
        .operation_attempt_timeout(Duration::from_millis(800))
        .operation_timeout(Duration::from_secs(2))
        .build()
}

/// Up to 3 attempts with short backoff, for the same reason.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(20))
        .with_max_backoff(Duration::from_millis(200))
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_chatops::{Conclusion, Target};

    fn command_msg() -> CommandMessage {
        CommandMessage {
            command: "/build".into(),
            text: "router plt".into(),
            user_id: "U1".into(),
            user_name: None,
            channel_id: "C1".into(),
            channel_name: None,
            team_id: "T1".into(),
            team_domain: None,
            enterprise_id: None,
            response_url: "https://hooks.slack.com/commands/T1/1/x".into(),
            trigger_id: "123.456.abc".into(),
            api_app_id: None,
            received_at: 1,
        }
    }

    #[test]
    fn run_and_unlock_group_by_lock_key_status_and_help_by_command() {
        let run = Request::Run {
            target: Target::new("/build", "router", "plt"),
            lock_key: "build-router-plt".into(),
            dry_run: false,
            test: false,
            force: None,
            override_freeze: false,
        };
        let o = Outgoing::command(&command_msg(), &run);
        assert_eq!(o.group_id, "build-router-plt");
        assert_eq!(o.dedup_id, "123.456.abc");
        assert!(o.body.contains(r#""kind":"command""#), "{}", o.body);

        let unlock = Request::Unlock {
            target: Target::new("/build", "router", "plt"),
            lock_key: "build-router-plt".into(),
            reason: "stuck".into(),
            keep_run: false,
        };
        assert_eq!(
            Outgoing::command(&command_msg(), &unlock).group_id,
            "build-router-plt"
        );
        let status = Request::Status {
            command: "/build".into(),
        };
        assert_eq!(Outgoing::command(&command_msg(), &status).group_id, "build");
        let help = Request::Help {
            command: "/deploy".into(),
        };
        assert_eq!(Outgoing::command(&command_msg(), &help).group_id, "deploy");
    }

    #[test]
    fn completion_dedup_uses_run_id_else_conclusion() {
        let mut c = CompletionMessage {
            lock_key: "deploy-api-prod".into(),
            lock_id: "L1".into(),
            fence: 3,
            conclusion: Conclusion::Cancelled,
            run_url: None,
            run_id: Some(42),
            repository: None,
            workflow: None,
            channel_id: None,
            reported_by: None,
            reason: None,
        };
        let o = Outgoing::completion(&c);
        assert_eq!(
            (o.group_id.as_str(), o.dedup_id.as_str()),
            ("deploy-api-prod", "L1-42")
        );
        c.run_id = None;
        assert_eq!(Outgoing::completion(&c).dedup_id, "L1-cancelled");
    }

    #[test]
    fn ids_sqs_would_reject_become_stable_digests() {
        assert_eq!(sqs_id("build-router-plt"), "build-router-plt");
        let spaced = sqs_id("has a space");
        assert!(
            spaced.starts_with("sha256-") && spaced.len() == 7 + 64,
            "{spaced}"
        );
        assert_eq!(spaced, sqs_id("has a space"));
        assert_ne!(spaced, sqs_id("has a  space"));
        assert!(sqs_id("").starts_with("sha256-"));
        assert!(sqs_id(&"x".repeat(129)).starts_with("sha256-"));
        assert_eq!(sqs_id(&"x".repeat(128)), "x".repeat(128));
        assert!(sqs_id("café").starts_with("sha256-"));
    }

    #[test]
    fn fifo_is_detected_by_suffix() {
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .build();
        let client = aws_sdk_sqs::Client::from_conf(conf);
        assert!(SqsQueue::new(client.clone(), "http://q/1/cmds.fifo").is_fifo());
        assert!(!SqsQueue::new(client, "http://q/1/cmds").is_fifo());
    }
}
