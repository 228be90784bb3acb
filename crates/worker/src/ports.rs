//! The worker's outside systems, as small traits where its decisions meet
//! them: a [`Chat`] to answer people in and a [`Pipeline`] to start, watch
//! and cancel runs in. Slack ([`crate::slack::Slack`]) and GitHub Actions
//! ([`crate::github::GitHub`]) are the real adapters, tested over loopback
//! HTTP; [`crate::fakes`] holds in-memory ones for fast decision tests.

use std::collections::BTreeMap;
use std::future::Future;

use baton_chatops::{PipelineConfig, PostMessage, Reply};
use tokio::time::Instant;

use crate::github::{DispatchError, DispatchedRun, WorkflowRun};
use crate::slack::SlackError;

/// Where people are answered: the slash command's own reply channel, the
/// channel it came from, and a reply only its requester sees.
pub trait Chat: Send + Sync + 'static {
    /// Replies to a command through its `response_url`.
    fn respond(
        &self,
        response_url: &str,
        reply: &Reply,
        deadline: Instant,
    ) -> impl Future<Output = Result<(), SlackError>> + Send;

    /// Posts a notice to a channel.
    fn post_message(
        &self,
        message: &PostMessage,
        deadline: Instant,
    ) -> impl Future<Output = Result<(), SlackError>> + Send;

    /// Shows `reply` to `user` only, in `channel`.
    fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        reply: &Reply,
        deadline: Instant,
    ) -> impl Future<Output = Result<(), SlackError>> + Send;
}

/// Where pipeline runs are started, looked up and cancelled.
pub trait Pipeline: Send + Sync + 'static {
    /// Starts one run with `inputs`. Not retried by the adapter: a lost
    /// answer may mean the run started, which [`Pipeline::find_run`] tells.
    fn dispatch(
        &self,
        pipeline: &PipelineConfig,
        inputs: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<DispatchedRun, DispatchError>> + Send;

    /// The run dispatched for grant `lock_id`, if one was started.
    fn find_run(
        &self,
        pipeline: &PipelineConfig,
        lock_id: &str,
        deadline: Instant,
    ) -> impl Future<Output = Result<Option<DispatchedRun>, DispatchError>> + Send;

    /// One run's current state.
    fn run(
        &self,
        pipeline: &PipelineConfig,
        run_id: u64,
        deadline: Instant,
    ) -> impl Future<Output = Result<WorkflowRun, DispatchError>> + Send;

    /// Asks the pipeline to stop a run.
    fn cancel(
        &self,
        pipeline: &PipelineConfig,
        run_id: u64,
    ) -> impl Future<Output = Result<(), DispatchError>> + Send;

    /// The page listing the pipeline's runs, shown when a run's own page is
    /// not known.
    fn workflow_page(&self, pipeline: &PipelineConfig) -> String;
}
