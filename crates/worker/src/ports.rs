//! The worker's outside systems, as small traits where its decisions meet
//! them: a [`Chat`] to answer people in and a [`Pipeline`] to start, watch
//! and cancel runs in. Slack ([`crate::slack::Slack`]), GitHub Actions
//! ([`crate::github::GitHub`]) and Azure DevOps
//! ([`crate::azure::AzureDevOps`]) are the real adapters, tested over
//! loopback HTTP; [`Pipelines`] hands each command's pipeline to the adapter
//! of its kind; [`crate::fakes`] holds in-memory ones for fast decision tests.

use std::collections::BTreeMap;
use std::future::Future;

use baton_chatops::{
    AzurePipelines, Conclusion, GitHubActions, PipelineConfig, PipelineKind, PostMessage, Reply,
};
use tokio::time::Instant;

use crate::azure::AzureDevOps;
use crate::github::GitHub;
use crate::slack::SlackError;

/// A run that was started, as far as its pipeline told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchedRun {
    /// The run's id, when the answer named it.
    pub run_id: Option<u64>,
    /// The run's page, or the pipeline's page when the answer named no run.
    pub run_url: String,
    /// Whether `run_url` points at the run itself.
    pub exact: bool,
}

/// One run as its pipeline describes it, in the terms the worker decides
/// by: each adapter reads its own service's answer into this, so the
/// completion, settling and reconciling code is the same for every kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowRun {
    /// The run's id (a GitHub run id, an Azure DevOps run id).
    pub id: u64,
    /// Still queued or working: its grant must not lapse.
    pub alive: bool,
    /// The service's own word for how the run ended (`success`,
    /// `succeeded`, …), for logs and release reasons; `None` while alive.
    pub conclusion: Option<String>,
    /// That word in baton's vocabulary (meaningful once the run ended).
    pub verdict: Conclusion,
    /// The run's page, when known.
    pub html_url: Option<String>,
    /// Whether the run is one the asked-about pipeline started on request
    /// (GitHub: that workflow file, by `workflow_dispatch`; Azure DevOps:
    /// that pipeline id), i.e. one baton could have started.
    pub dispatched: bool,
    /// The run's name; baton's runs carry their grant's lock id in it.
    pub title: String,
}

impl WorkflowRun {
    /// Still queued or working: its grant must not lapse.
    pub fn is_alive(&self) -> bool {
        self.alive
    }

    /// Whether this is the run dispatched for the grant `lock_id`: a run
    /// its pipeline started on request, named with that grant's lock id.
    pub fn belongs_to(&self, lock_id: &str) -> bool {
        self.dispatched
            && self
                .title
                .split_whitespace()
                .any(|word| word.strip_prefix("lock_id=") == Some(lock_id))
    }
}

/// Why a pipeline call did not do what was asked; `kind` says whose
/// service answered, so the user reads which one refused.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The service refused (4xx): a missing workflow or pipeline, a bad
    /// ref, a bad token.
    #[error("{} refused the dispatch (HTTP {status}): {message}", .kind.service())]
    Refused {
        /// The kind of pipeline whose service refused.
        kind: PipelineKind,
        /// The HTTP status of the refusal.
        status: u16,
        /// What the service said, or what baton knows the status means.
        message: String,
    },
    /// The service was unavailable (5xx, 429, timeout) for the whole time
    /// budget: the call may be tried again.
    #[error("{} was unavailable: {detail}", .kind.service())]
    Unavailable {
        /// The kind of pipeline whose service did not answer.
        kind: PipelineKind,
        /// What went wrong, for logs and the user.
        detail: String,
    },
}

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

    /// The user ids in Slack user group `group` (`S…`), so a config may
    /// list a group where it lists users.
    fn usergroup_members(
        &self,
        group: &str,
        deadline: Instant,
    ) -> impl Future<Output = Result<Vec<String>, SlackError>> + Send;
}

/// Where pipeline runs are started, looked up and cancelled. `Config` is
/// the pipeline configuration an adapter understands: the GitHub adapter
/// takes [`GitHubActions`], the Azure DevOps one [`AzurePipelines`], and the
/// worker holds a `Pipeline` of the whole [`PipelineConfig`] (its default),
/// such as [`Pipelines`], which hands each call to the adapter of its kind.
pub trait Pipeline<Config: Sync = PipelineConfig>: Send + Sync + 'static {
    /// Starts one run with `inputs`. Not retried by the adapter: a lost
    /// answer may mean the run started, which [`Pipeline::find_run`] tells.
    fn dispatch(
        &self,
        pipeline: &Config,
        inputs: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<DispatchedRun, DispatchError>> + Send;

    /// The run dispatched for grant `lock_id`, if one was started.
    fn find_run(
        &self,
        pipeline: &Config,
        lock_id: &str,
        deadline: Instant,
    ) -> impl Future<Output = Result<Option<DispatchedRun>, DispatchError>> + Send;

    /// One run's current state.
    fn run(
        &self,
        pipeline: &Config,
        run_id: u64,
        deadline: Instant,
    ) -> impl Future<Output = Result<WorkflowRun, DispatchError>> + Send;

    /// Asks the pipeline to stop a run.
    fn cancel(
        &self,
        pipeline: &Config,
        run_id: u64,
    ) -> impl Future<Output = Result<(), DispatchError>> + Send;

    /// The page listing the pipeline's runs, shown when a run's own page is
    /// not known.
    fn workflow_page(&self, pipeline: &Config) -> String;
}

/// The production pipeline: a GitHub adapter and an Azure DevOps adapter
/// behind one [`Pipeline`], each call handed to the adapter of the
/// command's pipeline kind. Neither adapter ever sees the other's config.
#[derive(Debug, Clone)]
pub struct Pipelines<G = GitHub, A = AzureDevOps> {
    /// Serves `github-actions` pipelines.
    pub github: G,
    /// Serves `azure-pipelines` pipelines.
    pub azure: A,
}

impl<G, A> Pipeline for Pipelines<G, A>
where
    G: Pipeline<GitHubActions>,
    A: Pipeline<AzurePipelines>,
{
    async fn dispatch(
        &self,
        pipeline: &PipelineConfig,
        inputs: &BTreeMap<String, String>,
    ) -> Result<DispatchedRun, DispatchError> {
        match pipeline {
            PipelineConfig::GitHubActions(p) => self.github.dispatch(p, inputs).await,
            PipelineConfig::AzurePipelines(p) => self.azure.dispatch(p, inputs).await,
        }
    }

    async fn find_run(
        &self,
        pipeline: &PipelineConfig,
        lock_id: &str,
        deadline: Instant,
    ) -> Result<Option<DispatchedRun>, DispatchError> {
        match pipeline {
            PipelineConfig::GitHubActions(p) => self.github.find_run(p, lock_id, deadline).await,
            PipelineConfig::AzurePipelines(p) => self.azure.find_run(p, lock_id, deadline).await,
        }
    }

    async fn run(
        &self,
        pipeline: &PipelineConfig,
        run_id: u64,
        deadline: Instant,
    ) -> Result<WorkflowRun, DispatchError> {
        match pipeline {
            PipelineConfig::GitHubActions(p) => self.github.run(p, run_id, deadline).await,
            PipelineConfig::AzurePipelines(p) => self.azure.run(p, run_id, deadline).await,
        }
    }

    async fn cancel(&self, pipeline: &PipelineConfig, run_id: u64) -> Result<(), DispatchError> {
        match pipeline {
            PipelineConfig::GitHubActions(p) => self.github.cancel(p, run_id).await,
            PipelineConfig::AzurePipelines(p) => self.azure.cancel(p, run_id).await,
        }
    }

    fn workflow_page(&self, pipeline: &PipelineConfig) -> String {
        match pipeline {
            PipelineConfig::GitHubActions(p) => self.github.workflow_page(p),
            PipelineConfig::AzurePipelines(p) => self.azure.workflow_page(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use baton_chatops::Config;

    use super::*;

    /// Declares an adapter of one kind that records the calls reaching it.
    macro_rules! recording_adapter {
        ($adapter:ident, $config:ty, $name:literal) => {
            #[derive(Default)]
            struct $adapter {
                calls: Mutex<Vec<String>>,
            }

            impl $adapter {
                fn note(&self, what: String) {
                    if let Ok(mut calls) = self.calls.lock() {
                        calls.push(format!("{} {what}", $name));
                    }
                }

                fn seen(&self) -> Vec<String> {
                    self.calls.lock().map(|c| c.clone()).unwrap_or_default()
                }
            }

            impl Pipeline<$config> for $adapter {
                async fn dispatch(
                    &self,
                    _: &$config,
                    _: &BTreeMap<String, String>,
                ) -> Result<DispatchedRun, DispatchError> {
                    self.note("dispatch".into());
                    Ok(DispatchedRun {
                        run_id: Some(1),
                        run_url: $name.into(),
                        exact: true,
                    })
                }

                async fn find_run(
                    &self,
                    _: &$config,
                    lock_id: &str,
                    _: Instant,
                ) -> Result<Option<DispatchedRun>, DispatchError> {
                    self.note(format!("find {lock_id}"));
                    Ok(None)
                }

                async fn run(
                    &self,
                    _: &$config,
                    run_id: u64,
                    _: Instant,
                ) -> Result<WorkflowRun, DispatchError> {
                    self.note(format!("run {run_id}"));
                    Ok(WorkflowRun {
                        id: run_id,
                        alive: true,
                        conclusion: None,
                        verdict: Conclusion::Failure,
                        html_url: None,
                        dispatched: true,
                        title: String::new(),
                    })
                }

                async fn cancel(&self, _: &$config, run_id: u64) -> Result<(), DispatchError> {
                    self.note(format!("cancel {run_id}"));
                    Ok(())
                }

                fn workflow_page(&self, _: &$config) -> String {
                    format!("{} page", $name)
                }
            }
        };
    }

    recording_adapter!(GitHubSide, GitHubActions, "github");
    recording_adapter!(AzureSide, AzurePipelines, "azure");

    #[tokio::test]
    async fn each_call_reaches_the_adapter_of_the_pipelines_kind() {
        let config = Config::from_toml_str(
            r#"[commands."/build"]
lock_ttl = "10m"
components = ["api"]
environments = ["dev"]
[commands."/build".pipeline]
repo = "acme/platform"
workflow = "build.yml"

[commands."/deploy"]
lock_ttl = "30m"
components = ["api"]
environments = ["prod"]
[commands."/deploy".pipeline]
kind = "azure-pipelines"
organization = "acme"
project = "Platform"
pipeline_id = 42
"#,
        )
        .expect("config");
        let (build, deploy) = (
            &config.command("/build").expect("/build").pipeline,
            &config.command("/deploy").expect("/deploy").pipeline,
        );
        let pipelines = Pipelines {
            github: GitHubSide::default(),
            azure: AzureSide::default(),
        };
        let deadline = Instant::now();
        for (pipeline, lock_id, run_id) in [(build, "G", 7), (deploy, "A", 9)] {
            pipelines
                .dispatch(pipeline, &BTreeMap::new())
                .await
                .expect("dispatch");
            pipelines
                .find_run(pipeline, lock_id, deadline)
                .await
                .expect("find");
            pipelines
                .run(pipeline, run_id, deadline)
                .await
                .expect("run");
            pipelines.cancel(pipeline, run_id).await.expect("cancel");
        }
        assert_eq!(
            pipelines.github.seen(),
            [
                "github dispatch",
                "github find G",
                "github run 7",
                "github cancel 7"
            ]
        );
        assert_eq!(
            pipelines.azure.seen(),
            [
                "azure dispatch",
                "azure find A",
                "azure run 9",
                "azure cancel 9"
            ]
        );
        assert_eq!(pipelines.workflow_page(build), "github page");
        assert_eq!(pipelines.workflow_page(deploy), "azure page");
    }
}
