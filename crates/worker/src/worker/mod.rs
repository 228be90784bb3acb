//! The worker's decisions: what each queued record means, which lock it
//! takes, what it dispatches, and what the user is told.

use std::time::Duration;

use baton_chatops::Config;
use baton_chatops::render::{BypassView, LockView};
use baton_lock::{HistoryClient, LockClient, LockRecord, LockStore};
use baton_runtime::Secret;
use tracing::warn;

use crate::azure::AzureDevOps;
use crate::github::GitHub;
use crate::origin::SlackOrigin;
use crate::ports::{Chat, Pipeline, Pipelines};
use crate::slack::Slack;

mod admin;
mod batch;
mod completion;
mod freeze;
mod groups;
mod history;
mod line;
mod reply;
mod start;
mod takeover;

/// Everything the worker needs besides the lock table, resolved once at
/// cold start (see [`crate::settings`]).
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub config: Config,
    /// The rollback switch (`ENABLE_DISTRIBUTED_LOCK=false`): dispatch without locking.
    pub locking_enabled: bool,
    pub slack_api_url: String,
    /// Replies go only to `response_url`s under this prefix.
    pub slack_response_url_prefix: String,
    pub slack_bot_token: Secret,
    pub github_api_url: String,
    pub github_web_url: String,
    pub github_token: Secret,
    /// Azure DevOps' base URL (`https://dev.azure.com`, a Server
    /// collection, or a loopback stand-in).
    pub azure_api_url: String,
    /// The Azure DevOps personal access token; `None` when no command
    /// uses an Azure pipeline (their calls are then refused, saying so).
    pub azure_pat: Option<Secret>,
    /// The queue's `maxReceiveCount`: on the last delivery a still-failing
    /// dispatch gives up, releases the lock and tells the user, instead of
    /// leaving the message to the dead-letter queue in silence.
    pub max_receives: u32,
    /// Time budget for a batch when no Lambda deadline is known.
    pub default_budget: Duration,
    /// Timeout of one HTTP attempt to Slack or GitHub.
    pub http_timeout: Duration,
    /// Commands that waited in the queue longer than this (from the
    /// router's `received_at`) are answered "expired" and never run.
    pub max_command_age: Duration,
    /// The lease the reconciler gives a run it finds still working.
    pub reconcile_lease: Duration,
    /// How long a grant handed to a queued request may stay without a run
    /// before the reconciler starts that run itself. The worker that made
    /// the hand-off starts it at once, so a grant this old without a run
    /// means that worker stopped in between.
    pub handoff_grace: Duration,
}

impl WorkerSettings {
    /// Settings for a worker whose Slack and GitHub are local stand-ins (the
    /// demo, tests and benchmarks): Slack's Web API at `{slack_base}/api`,
    /// replies accepted under `{slack_base}/response/`, GitHub's REST API at
    /// `github_base` and Azure DevOps there too (their paths never meet),
    /// placeholder tokens, locking on.
    pub fn local(config: Config, slack_base: &str, github_base: &str) -> WorkerSettings {
        WorkerSettings {
            config,
            locking_enabled: true,
            slack_api_url: format!("{slack_base}/api"),
            slack_response_url_prefix: format!("{slack_base}/response/"),
            slack_bot_token: Secret::new("xoxb-local"),
            github_api_url: github_base.to_owned(),
            github_web_url: "https://github.example".into(),
            github_token: Secret::new("ghp-local"),
            azure_api_url: github_base.to_owned(),
            azure_pat: Some(Secret::new("azure-pat-local")),
            max_receives: 5,
            default_budget: Duration::from_secs(10),
            http_timeout: Duration::from_secs(2),
            max_command_age: Duration::from_secs(15 * 60),
            reconcile_lease: Duration::from_secs(5 * 60),
            handoff_grace: Duration::from_secs(60),
        }
    }
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Finished (successfully or with the user told why not): delete it.
    Done,
    /// Put it back on the queue (reported in `batchItemFailures`).
    Retry(String),
}

/// The SQS-triggered worker. Build once per cold start; `handle` each batch.
///
/// Its lock store, chat and pipeline are ports: DynamoDB, Slack and
/// [`Pipelines`] (GitHub Actions and Azure DevOps) in production
/// ([`Worker::new`]); in-memory adapters in decision tests
/// ([`Worker::with_parts`]).
pub struct Worker<S = LockClient, C = Slack, P = Pipelines> {
    pub(crate) locks: S,
    pub(crate) settings: WorkerSettings,
    pub(crate) chat: C,
    pub(crate) pipeline: P,
    /// Members of the Slack user groups the config lists, per cold start.
    pub(crate) groups: groups::GroupCache,
    /// Where ended grants are kept, for `history`; `None` where no history
    /// table exists (then `history` says so).
    pub(crate) history: Option<HistoryClient>,
}

impl Worker {
    /// The production worker: Slack, GitHub and Azure DevOps over HTTPS,
    /// with one HTTP client built from the settings' timeouts.
    pub fn new(locks: LockClient, settings: WorkerSettings) -> anyhow::Result<Worker> {
        // reqwest is built without a default crypto provider; install ring once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(settings.http_timeout)
            .connect_timeout(settings.http_timeout)
            .build()?;
        let slack = Slack::new(
            http.clone(),
            &settings.slack_api_url,
            settings.slack_bot_token.clone(),
            settings.slack_response_url_prefix.clone(),
        );
        let github = GitHub::new(
            http.clone(),
            &settings.github_api_url,
            &settings.github_web_url,
            settings.github_token.clone(),
        );
        let azure = AzureDevOps::new(http, &settings.azure_api_url, settings.azure_pat.clone())?;
        let pipelines = Pipelines { github, azure };
        Ok(Worker::with_parts(locks, settings, slack, pipelines))
    }
}

impl<S: LockStore, C: Chat, P: Pipeline> Worker<S, C, P> {
    /// A worker on the given store, chat and pipeline adapters.
    pub fn with_parts(locks: S, settings: WorkerSettings, chat: C, pipeline: P) -> Self {
        if !settings.locking_enabled {
            warn!(
                switch = "ENABLE_DISTRIBUTED_LOCK",
                "LOCKING IS DISABLED: commands dispatch without taking locks; concurrent runs are possible"
            );
        }
        Worker {
            locks,
            settings,
            chat,
            pipeline,
            groups: groups::GroupCache::default(),
            history: None,
        }
    }

    /// Reads `history` from this history table.
    pub fn with_history(mut self, history: HistoryClient) -> Self {
        self.history = Some(history);
        self
    }

    /// The store's clock, in epoch seconds: every lease decision the worker
    /// makes reads the same clock the store judges leases by.
    pub(crate) fn now_secs(&self) -> u64 {
        self.locks.now_millis() / 1000
    }

    /// How long a grant has been (or was) held, in seconds, by that clock.
    pub(crate) fn held_for(&self, record: &LockRecord) -> u64 {
        self.now_secs().saturating_sub(epoch_of(record))
    }
}

/// The Slack channel a grant's notices go to, if it came from Slack.
pub(crate) fn channel_from_correlation(record: &LockRecord) -> Option<String> {
    let origin: SlackOrigin = record.correlation_id.as_deref()?.parse().ok()?;
    Some(origin.channel)
}

/// When a grant was made, in epoch seconds (its lease end if unreadable).
pub(crate) fn epoch_of(record: &LockRecord) -> u64 {
    record.locked_at_secs().unwrap_or(record.expires_at)
}

/// A lock record as the chatops renderer sees it.
fn view(record: &LockRecord) -> LockView {
    LockView {
        lock_key: record.lock_key.clone(),
        holder_id: record.locked_by.clone(),
        holder_name: record.locked_by_name.clone(),
        purpose: record.purpose.clone(),
        locked_at: epoch_of(record),
        expires_at: record.expires_at,
        fence: record.fence,
        lock_id: record.lock_id.clone(),
        bypass: record.bypass.as_ref().map(|b| BypassView {
            by: b.by.clone(),
            at: b.at.clone(),
            reason: b.reason.clone(),
        }),
    }
}
