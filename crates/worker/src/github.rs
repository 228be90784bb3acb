//! Starting pipelines: GitHub Actions `workflow_dispatch`, and finding a run
//! that an earlier, ambiguous dispatch may have started.

use std::collections::BTreeMap;

use baton_chatops::{Conclusion, GitHubActions, PipelineKind};
use baton_runtime::Secret;
use serde_json::json;
use tokio::time::Instant;

use crate::ports::{DispatchError, DispatchedRun, Pipeline, WorkflowRun};
use crate::retry::{Attempt, retry_after, with_retries};

/// One workflow run as GitHub's REST API describes it (the fields baton reads).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
struct GitHubRun {
    id: u64,
    /// `queued`, `in_progress`, `completed`, `waiting`, `requested`, `pending`.
    status: String,
    /// Set once `status` is `completed`: `success`, `failure`, `cancelled`, …
    conclusion: Option<String>,
    /// What started the run; baton's runs are `workflow_dispatch`.
    #[serde(default)]
    event: String,
    /// The workflow file, e.g. `.github/workflows/deploy.yml`.
    #[serde(default)]
    path: String,
    /// The run's name; baton's runs carry their grant's lock id in it.
    #[serde(default)]
    display_title: String,
    html_url: Option<String>,
}

impl GitHubRun {
    /// The run in the worker's terms: dispatched means `pipeline`'s workflow
    /// file, started by `workflow_dispatch`.
    fn described(self, pipeline: &GitHubActions) -> WorkflowRun {
        let file = self.path.split('@').next().unwrap_or_default();
        let dispatched = file.rsplit('/').next() == Some(pipeline.workflow.as_str())
            && self.event == "workflow_dispatch";
        let alive = self.status != "completed";
        let (verdict, _) = Conclusion::of_run(self.conclusion.as_deref());
        WorkflowRun {
            id: self.id,
            alive,
            conclusion: self.conclusion,
            verdict,
            html_url: self.html_url,
            dispatched,
            title: self.display_title,
        }
    }
}

/// A refusal from GitHub.
fn refused(status: u16, message: String) -> DispatchError {
    DispatchError::Refused {
        kind: PipelineKind::GitHubActions,
        status,
        message,
    }
}

/// GitHub did not answer usefully.
fn unavailable(detail: String) -> DispatchError {
    DispatchError::Unavailable {
        kind: PipelineKind::GitHubActions,
        detail,
    }
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

    fn workflow_path(&self, p: &GitHubActions) -> String {
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

impl Pipeline<GitHubActions> for GitHub {
    /// Sends `workflow_dispatch` once. Not retried here: a lost response
    /// might mean the run started, so the caller retries through the queue
    /// and checks with [`GitHub::find_run`] first.
    async fn dispatch(
        &self,
        pipeline: &GitHubActions,
        inputs: &BTreeMap<String, String>,
    ) -> Result<DispatchedRun, DispatchError> {
        let url = format!("{}/dispatches", self.workflow_path(pipeline));
        let body = json!({ "ref": pipeline.git_ref, "inputs": inputs, "return_run_details": true });
        let response = self
            .request(reqwest::Method::POST, &url)
            .json(&body)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
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
            Err(unavailable(format!("HTTP {status}: {message}")))
        } else {
            Err(refused(status.as_u16(), message))
        }
    }

    /// Looks for a recent dispatched run whose title carries `lock_id` (the
    /// example workflow sets `run-name` from baton's inputs). Retried within
    /// `deadline`: a read is safe to repeat.
    async fn find_run(
        &self,
        pipeline: &GitHubActions,
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
                        error: unavailable(e.to_string()),
                        after: None,
                    };
                }
            };
            let status = response.status();
            if status.is_server_error() || status.as_u16() == 429 {
                return Attempt::Transient {
                    after: retry_after(&response),
                    error: unavailable(format!("HTTP {status}")),
                };
            }
            if !status.is_success() {
                let message = error_message(response).await;
                return Attempt::Permanent(refused(status.as_u16(), message));
            }
            // An answer that cannot be read says nothing about whether the
            // run started: unknown, never "not started".
            let page: RunsPage = match response.json().await {
                Ok(page) => page,
                Err(e) => {
                    return Attempt::Transient {
                        error: unavailable(format!("unreadable runs list: {e}")),
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
        pipeline: &GitHubActions,
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
                        error: unavailable(e.to_string()),
                        after: None,
                    };
                }
            };
            let status = response.status();
            if status.is_server_error() || status.as_u16() == 429 {
                return Attempt::Transient {
                    after: retry_after(&response),
                    error: unavailable(format!("HTTP {status}")),
                };
            }
            if !status.is_success() {
                let message = error_message(response).await;
                return Attempt::Permanent(refused(status.as_u16(), message));
            }
            match response.json::<GitHubRun>().await {
                Ok(run) => Attempt::Done(run.described(pipeline)),
                Err(e) => Attempt::Permanent(refused(
                    status.as_u16(),
                    format!("unexpected run shape: {e}"),
                )),
            }
        })
        .await
    }

    /// Asks GitHub to cancel a run. Sent once: a 409 (the run already
    /// finished) counts as done, since the run is not working any more.
    async fn cancel(&self, pipeline: &GitHubActions, run_id: u64) -> Result<(), DispatchError> {
        let url = format!(
            "{}/repos/{}/{}/actions/runs/{run_id}/cancel",
            self.api_url, pipeline.owner, pipeline.repo
        );
        let response = self
            .request(reqwest::Method::POST, &url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        if status.is_success() || status.as_u16() == 409 {
            return Ok(());
        }
        let message = error_message(response).await;
        if status.is_server_error() || status.as_u16() == 429 {
            Err(unavailable(format!("HTTP {status}: {message}")))
        } else {
            Err(refused(status.as_u16(), message))
        }
    }

    /// The workflow's page, for when GitHub returned no run details.
    fn workflow_page(&self, p: &GitHubActions) -> String {
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
