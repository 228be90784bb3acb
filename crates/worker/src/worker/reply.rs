//! Telling people: replies through `response_url` with a Web API fallback,
//! channel notices, and the answer to a lock error.

use baton_chatops::render;
use baton_chatops::{CommandMessage, PostMessage, Reply, ResponseType};
use baton_lock::LockError;
use tokio::time::Instant;
use tracing::{error, warn};

use crate::slack::SlackError;

use super::{Outcome, Worker};
use crate::ports::{Chat, Pipeline};
use baton_lock::LockStore;

impl<S: LockStore, C: Chat, P: Pipeline> Worker<S, C, P> {
    /// Posts a notice to a channel; Slack being down sends the record back.
    pub(crate) async fn post(
        &self,
        post: PostMessage,
        lock_key: &str,
        deadline: Instant,
    ) -> Outcome {
        match self.chat.post_message(&post, deadline).await {
            Ok(()) => Outcome::Done,
            Err(SlackError::Unavailable(why)) => Outcome::Retry(format!("chat.postMessage: {why}")),
            Err(e) => {
                error!(lock_key, error = %e, "channel notice not delivered");
                Outcome::Done
            }
        }
    }

    pub(super) async fn lock_failure(
        &self,
        message: &CommandMessage,
        id: &str,
        e: LockError,
        deadline: Instant,
    ) -> Outcome {
        if e.is_transient() {
            return Outcome::Retry(format!("lock store: {e}"));
        }
        error!(message_id = %id, error = %e, "lock operation failed");
        self.reply(message, &render::internal_error(id), deadline)
            .await
    }

    /// Replies through `response_url`; when Slack refuses that (it expires
    /// after 30 minutes, e.g. for a command that waited in the queue), through
    /// the Web API with the bot token instead. Slack being down sends the
    /// record back to the queue; a refusal of both ends here, logged.
    pub(super) async fn reply(
        &self,
        message: &CommandMessage,
        reply: &Reply,
        deadline: Instant,
    ) -> Outcome {
        let refused = match self
            .chat
            .respond(&message.response_url, reply, deadline)
            .await
        {
            Ok(()) => return Outcome::Done,
            Err(SlackError::Unavailable(why)) => {
                return Outcome::Retry(format!("Slack reply: {why}"));
            }
            Err(refused) => refused,
        };
        match &refused {
            SlackError::ForeignResponseUrl(_) => {
                warn!(user = %message.user_id, error = %refused, "response_url not allowed by the worker; replying through the Web API");
            }
            _ => {
                warn!(user = %message.user_id, error = %refused, "Slack refused the response_url; replying through the Web API");
            }
        }
        let fallback = match reply.response_type {
            ResponseType::InChannel => {
                self.chat
                    .post_message(&reply.clone().with_channel(&message.channel_id), deadline)
                    .await
            }
            ResponseType::Ephemeral => {
                self.chat
                    .post_ephemeral(&message.channel_id, &message.user_id, reply, deadline)
                    .await
            }
        };
        match fallback {
            Ok(()) => Outcome::Done,
            Err(SlackError::Unavailable(why)) => Outcome::Retry(format!("Slack Web API: {why}")),
            Err(e) => {
                error!(user = %message.user_id, error = %e, reply_path_error = %refused, "no reply path accepted the message");
                Outcome::Done
            }
        }
    }
}
