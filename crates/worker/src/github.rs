//! Starting pipelines: GitHub Actions `workflow_dispatch`, and finding a run
//! that an earlier, ambiguous dispatch may have started.

use std::collections::BTreeMap;

use baton_chatops::PipelineConfig;
use baton_runtime::Secret;
use serde_json::json;
use tokio::time::Instant;

use crate::ports::Pipeline;
use crate::retry::{Attempt, retry_after, with_retries};

/// A run that was started, as far as GitHub told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchedRun {
    pub run_id: Option<u64>,
    /// The run's page, or the workflow's page when GitHub returned no run details.
    pub run_url: String,
    /// Whether `run_url` points at the run itself.
    pub exact: bool,
}

/// One workflow run as GitHub's REST API describes it (the fields baton reads).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct WorkflowRun {
    pub id: u64,
    /// `queued`, `in_progress`, `completed`, `waiting`, `requested`, `pending`.
    pub status: String,
    /// Set once `status` is `completed`: `success`, `failure`, `cancelled`, …
    pub conclusion: Option<String>,
    /// What started the run; baton's runs are `workflow_dispatch`.
    #[serde(default)]
    pub event: String,
    /// The workflow file, e.g. `.github/workflows/deploy.yml`.
    #[serde(default)]
    pub path: String,
    /// The run's name; baton's runs carry their grant's lock id in it.
    #[serde(default)]
    pub display_title: String,
    pub html_url: Option<String>,
}

impl WorkflowRun {
    /// Still queued or working: its grant must not lapse.
    pub fn is_alive(&self) -> bool {
        self.status != "completed"
    }

    /// Whether this is the run dispatched for the grant `lock_id` of
    /// `pipeline`: the right workflow file, started by a dispatch, titled
    /// with that grant's lock id.
    pub fn belongs_to(&self, pipeline: &PipelineConfig, lock_id: &str) -> bool {
        let file = self.path.split('@').next().unwrap_or_default();
        file.rsplit('/').next() == Some(pipeline.workflow.as_str())
            && self.event == "workflow_dispatch"
            && self
                .display_title
                .split_whitespace()
                .any(|word| word.strip_prefix("lock_id=") == Some(lock_id))
    }
}

/// Why a dispatch did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// GitHub refused (4xx): a missing workflow, a bad ref, a bad token.
    #[error("GitHub refused the dispatch (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    /// GitHub was unavailable (5xx, 429, timeout) for the whole time budget.
    #[error("GitHub was unavailable: {0}")]
    Unavailable(String),
}

/// A GitHub REST client for one token.
#[derive(Debug, Clone)]
pub struct GitHub {
    http: reqwest::Client,
    api_url: String,
    web_url: String,
    token: Secret,
}

impl GitHub {
    /// `api_url` is `https://api.github.com` (or an Enterprise `…/api/v3`);
    /// `web_url` is where run pages live (`https://github.com`).
    pub fn new(http: reqwest::Client, api_url: &str, web_url: &str, token: Secret) -> GitHub {
        GitHub {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
            web_url: web_url.trim_end_matches('/').to_owned(),
            token,
        }
    }

    fn workflow_path(&self, p: &PipelineConfig) -> String {
        format!(
            "{}/repos/{}/{}/actions/workflows/{}",
            self.api_url, p.owner, p.repo, p.workflow
        )
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .header(reqwest::header::USER_AGENT, "baton-worker")
    }
}

impl Pipeline for GitHub {
    /// Sends `workflow_dispatch` once. Not retried here: a lost response
    /// might mean the run started, so the caller retries through the queue
    /// and checks with [`GitHub::find_run`] first.
    async fn dispatch(
        &self,
        pipeline: &PipelineConfig,
        inputs: &BTreeMap<String, String>,
    ) -> Result<DispatchedRun, DispatchError> {
        let url = format!("{}/dispatches", self.workflow_path(pipeline));
        let body = json!({ "ref": pipeline.git_ref, "inputs": inputs, "return_run_details": true });
        let response = self
            .request(reqwest::Method::POST, &url)
            .json(&body)
            .send()
            .await
            .map_err(|e| DispatchError::Unavailable(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            // Without run details (204, an older GitHub) the body is empty.
            let details: DispatchAnswer = response.json().await.unwrap_or_default();
            let run_id = details.workflow_run_id;
            return Ok(match details.html_url {
                Some(url) => DispatchedRun {
                    run_id,
                    run_url: url,
                    exact: true,
                },
                None => DispatchedRun {
                    run_id,
                    run_url: self.workflow_page(pipeline),
                    exact: false,
                },
            });
        }
        let transient =
            status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408;
        let message = error_message(response).await;
        if transient {
            Err(DispatchError::Unavailable(format!(
                "HTTP {status}: {message}"
            )))
        } else {
            Err(DispatchError::Refused {
                status: status.as_u16(),
                message,
            })
        }
    }

    /// Looks for a recent dispatched run whose title carries `lock_id` (the
    /// example workflow sets `run-name` from baton's inputs). Retried within
    /// `deadline`: a read is safe to repeat.
    async fn find_run(
        &self,
        pipeline: &PipelineConfig,
        lock_id: &str,
        deadline: Instant,
    ) -> Result<Option<DispatchedRun>, DispatchError> {
        let url = format!(
            "{}/runs?event=workflow_dispatch&per_page=50",
            self.workflow_path(pipeline)
        );
        with_retries(deadline, || async {
            let response = match self.request(reqwest::Method::GET, &url).send().await {
                Ok(r) => r,
                Err(e) => {
                    return Attempt::Transient {
                        error: DispatchError::Unavailable(e.to_string()),
                        after: None,
                    };
                }
            };
            let status = response.status();
            if status.is_server_error() || status.as_u16() == 429 {
                return Attempt::Transient {
                    after: retry_after(&response),
                    error: DispatchError::Unavailable(format!("HTTP {status}")),
                };
            }
            if !status.is_success() {
                let message = error_message(response).await;
                return Attempt::Permanent(DispatchError::Refused {
                    status: status.as_u16(),
                    message,
                });
            }
            // An answer that cannot be read says nothing about whether the
            // run started: unknown, never "not started".
            let page: RunsPage = match response.json().await {
                Ok(page) => page,
                Err(e) => {
                    return Attempt::Transient {
                        error: DispatchError::Unavailable(format!("unreadable runs list: {e}")),
                        after: None,
                    };
                }
            };
            let found = page
                .workflow_runs
                .into_iter()
                .find(|run| run.display_title.contains(lock_id))
                .map(|run| DispatchedRun {
                    run_id: Some(run.id),
                    run_url: run.html_url.unwrap_or_else(|| self.workflow_page(pipeline)),
                    exact: true,
                });
            Attempt::Done(found)
        })
        .await
    }

    /// Reads one run of the pipeline: its state, and what it is (event,
    /// workflow file, title), so a caller can tell whether it is the run a
    /// grant dispatched. Retried within `deadline`: a read is safe to repeat.
    async fn run(
        &self,
        pipeline: &PipelineConfig,
        run_id: u64,
        deadline: Instant,
    ) -> Result<WorkflowRun, DispatchError> {
        let url = format!(
            "{}/repos/{}/{}/actions/runs/{run_id}",
            self.api_url, pipeline.owner, pipeline.repo
        );
        with_retries(deadline, || async {
            let response = match self.request(reqwest::Method::GET, &url).send().await {
                Ok(r) => r,
                Err(e) => {
                    return Attempt::Transient {
                        error: DispatchError::Unavailable(e.to_string()),
                        after: None,
                    };
                }
            };
            let status = response.status();
            if status.is_server_error() || status.as_u16() == 429 {
                return Attempt::Transient {
                    after: retry_after(&response),
                    error: DispatchError::Unavailable(format!("HTTP {status}")),
                };
            }
            if !status.is_success() {
                let message = error_message(response).await;
                return Attempt::Permanent(DispatchError::Refused {
                    status: status.as_u16(),
                    message,
                });
            }
            match response.json::<WorkflowRun>().await {
                Ok(run) => Attempt::Done(run),
                Err(e) => Attempt::Permanent(DispatchError::Refused {
                    status: status.as_u16(),
                    message: format!("unexpected run shape: {e}"),
                }),
            }
        })
        .await
    }

    /// Asks GitHub to cancel a run. Sent once: a 409 (the run already
    /// finished) counts as done, since the run is not working any more.
    async fn cancel(&self, pipeline: &PipelineConfig, run_id: u64) -> Result<(), DispatchError> {
        let url = format!(
            "{}/repos/{}/{}/actions/runs/{run_id}/cancel",
            self.api_url, pipeline.owner, pipeline.repo
        );
        let response = self
            .request(reqwest::Method::POST, &url)
            .send()
            .await
            .map_err(|e| DispatchError::Unavailable(e.to_string()))?;
        let status = response.status();
        if status.is_success() || status.as_u16() == 409 {
            return Ok(());
        }
        let message = error_message(response).await;
        if status.is_server_error() || status.as_u16() == 429 {
            Err(DispatchError::Unavailable(format!(
                "HTTP {status}: {message}"
            )))
        } else {
            Err(DispatchError::Refused {
                status: status.as_u16(),
                message,
            })
        }
    }

    /// The workflow's page, for when GitHub returned no run details.
    fn workflow_page(&self, p: &PipelineConfig) -> String {
        format!(
            "{}/{}/{}/actions/workflows/{}",
            self.web_url, p.owner, p.repo, p.workflow
        )
    }
}

/// GitHub's answer to a dispatch asked to `return_run_details`.
#[derive(Debug, Default, serde::Deserialize)]
struct DispatchAnswer {
    workflow_run_id: Option<u64>,
    html_url: Option<String>,
}

/// A page of a workflow's runs.
#[derive(Debug, serde::Deserialize)]
struct RunsPage {
    #[serde(default)]
    workflow_runs: Vec<ListedRun>,
}

/// What the runs list tells of one run that finding a dispatch needs.
#[derive(Debug, serde::Deserialize)]
struct ListedRun {
    id: u64,
    #[serde(default)]
    display_title: String,
    html_url: Option<String>,
}

/// The body of a GitHub error answer.
#[derive(Debug, serde::Deserialize)]
struct ErrorAnswer {
    message: String,
}

/// GitHub's error message, else the start of the body.
async fn error_message(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    serde_json::from_str::<ErrorAnswer>(&text)
        .map(|e| e.message)
        .unwrap_or_else(|_| text.chars().take(200).collect())
}
