//! Chatops domain logic for baton: everything about Slack commands that is
//! not IO.
//!
//! The router Lambda and the worker Lambda share this crate so they agree on
//! what a command means and what travels between them:
//!
//! * [`message`]: the SQS bodies — a [`CommandMessage`] the router enqueues
//!   for each slash command, a [`CompletionMessage`] a pipeline sends when
//!   its run ends — and Slack's form-encoded POST body.
//! * [`config`]: per-command configuration (components, environments, lock
//!   scope and TTL, permissions, the pipeline to dispatch), validated once.
//! * [`command`]: the command grammar, turning `/build router plt` into a
//!   [`Request`] or a [`CommandError`] that says what would have worked.
//! * [`target`]: what a run is for, and its lock key.
//! * [`freeze`]: change freezes, scheduled in the config or set by an
//!   admin, and whether one is in force at a given instant.
//! * [`render`]: the Slack replies, as Block Kit JSON.
//!
//! Nothing here touches the network, the clock or AWS: callers pass `now`
//! in, which keeps every decision testable.

pub mod command;
pub mod config;
pub mod freeze;
pub mod message;
pub mod render;
pub mod target;

pub use command::{CommandError, Force, Malformation, Request, decide, parse_request};
pub use config::{
    AZURE_REPOSITORY_PREFIX, AzurePipelines, BATON_INPUTS, CommandConfig, Config, ConfigError,
    GitHubActions, LockScope, MAX_DISPATCH_INPUTS, Membership, OnConflict, PipelineConfig,
    PipelineKind, is_group_id,
};
pub use freeze::{Frozen, FrozenBy, ScheduledFreeze, parse_freeze_duration};
pub use message::{CommandMessage, CompletionMessage, Conclusion, MessageError, QueueMessage};
pub use render::{
    Block, LockView, Mrkdwn, PostMessage, Reply, ResponseType, help_text, usage_lines,
};
pub use target::{Target, key_base};
