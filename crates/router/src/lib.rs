//! baton's router: the HTTP Lambda that Slack and GitHub call.
//!
//! It verifies each request's signature, answers at once (Slack allows 3
//! seconds), and leaves the work to the worker through the SQS command
//! queue:
//!
//! * `POST /slack/commands`: a verified slash command is checked against the
//!   command config; a bad one gets its usage error right away, a good one is
//!   queued as a [`baton_chatops::QueueMessage::Command`] and acknowledged.
//! * `POST /github/webhook`: a verified `workflow_run` completion of a run
//!   baton dispatched is queued as a
//!   [`baton_chatops::QueueMessage::Completion`].
//!
//! [`routes`] holds the request → response logic (see its table of status
//! codes), [`signature`] the HMAC checks, [`queue`] the SQS sender and FIFO
//! ids, [`secrets`] the secret loading, [`app`] the cold-start wiring and
//! [`local`] the `--listen` HTTP server.

pub mod app;
pub mod azure;
pub mod github;
pub mod local;
pub mod queue;
pub mod routes;
pub mod secrets;
pub mod signature;

pub use baton_runtime::Secret;
pub use queue::{Enqueue, EnqueueError, Outgoing, SqsQueue};
pub use routes::Router;
pub use secrets::Secrets;
