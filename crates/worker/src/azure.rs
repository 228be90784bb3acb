//! Starting Azure DevOps pipelines: queueing a run through the Pipelines
//! REST API (`api-version=7.1`), reading and listing runs, and cancelling
//! one through the Build API (a pipeline run's id is its build id).
//!
//! Every request authenticates with a personal access token as HTTP basic
//! auth (an empty user name, the token as password). baton's runs carry
//! their lock identity in their name (the pipeline's `name:` is built from
//! the `lock_key`, `lock_id` and `fence` template parameters, see
//! `events/azure-pipelines-example.yml`), which is how a run whose queueing
//! answer was lost is found again, and how a completion is tied to its grant.

use std::collections::BTreeMap;

use baton_chatops::{AzurePipelines, Conclusion, PipelineKind};
use baton_runtime::Secret;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::ports::{DispatchError, DispatchedRun, Pipeline, WorkflowRun};
use crate::retry::{Attempt, retry_after, with_retries};

/// The REST API version every request asks for.
pub const API_VERSION: &str = "7.1";

/// Where Azure DevOps Services lives; a Server installation or a test
/// stand-in is given instead.
pub const DEFAULT_URL: &str = "https://dev.azure.com";

/// Why an Azure DevOps client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("AZURE_DEVOPS_URL {url:?} is not a base URL: {why}")]
pub struct AzureUrlError {
    /// The URL given.
    pub url: String,
    /// What is wrong with it.
    pub why: String,
}

/// An Azure DevOps REST client for one personal access token.
#[derive(Debug, Clone)]
pub struct AzureDevOps {
    http: reqwest::Client,
    base: Url,
    pat: Option<Secret>,
}

impl AzureDevOps {
    /// `base` is `https://dev.azure.com` (or a Server collection URL, or a
    /// loopback stand-in); `pat` is the personal access token, `None` when
    /// no command uses Azure DevOps (every call is then refused, saying so).
    pub fn new(
        http: reqwest::Client,
        base: &str,
        pat: Option<Secret>,
    ) -> Result<AzureDevOps, AzureUrlError> {
        let error = |why: String| AzureUrlError {
            url: base.to_owned(),
            why,
        };
        let mut url = Url::parse(base.trim_end_matches('/')).map_err(|e| error(e.to_string()))?;
        if url.cannot_be_a_base() {
            return Err(error("it cannot have paths below it".into()));
        }
        url.set_query(None);
        Ok(AzureDevOps {
            http,
            base: url,
            pat,
        })
    }

    /// `{base}/{organization}/{project}/{segments…}?api-version=7.1`, each
    /// segment escaped (project names may hold spaces).
    fn url(&self, p: &AzurePipelines, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .push(&p.organization)
                .push(&p.project)
                .extend(segments);
        }
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        url
    }

    fn runs_url(&self, p: &AzurePipelines) -> Url {
        let id = p.pipeline_id.to_string();
        self.url(p, &["_apis", "pipelines", &id, "runs"])
    }

    /// A request with the token, or the refusal that no token is set.
    fn request(
        &self,
        method: reqwest::Method,
        url: Url,
    ) -> Result<reqwest::RequestBuilder, DispatchError> {
        let Some(pat) = &self.pat else {
            return Err(refused(
                401,
                "no personal access token is configured (set AZURE_DEVOPS_PAT_PARAM)".into(),
            ));
        };
        Ok(self
            .http
            .request(method, url)
            .basic_auth("", Some(pat.expose()))
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::USER_AGENT, "baton-worker"))
    }

    /// Sends a read (retried within `deadline`, since reading is safe to
    /// repeat) and reads a successful answer as `T`.
    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        pipeline: &AzurePipelines,
        url: Url,
        deadline: Instant,
    ) -> Result<T, DispatchError> {
        with_retries(deadline, || async {
            let request = match self.request(reqwest::Method::GET, url.clone()) {
                Ok(request) => request,
                Err(e) => return Attempt::Permanent(e),
            };
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    return Attempt::Transient {
                        error: unavailable(e.to_string()),
                        after: None,
                    };
                }
            };
            let status = response.status();
            if is_transient(status) {
                return Attempt::Transient {
                    after: retry_after(&response),
                    error: unavailable(format!("HTTP {status}")),
                };
            }
            if !is_answer(status) {
                return Attempt::Permanent(refusal(pipeline, response).await);
            }
            // An answer that cannot be read says nothing about the run:
            // unknown, never "not started" or "ended".
            match response.json::<T>().await {
                Ok(answer) => Attempt::Done(answer),
                Err(e) => Attempt::Transient {
                    error: unavailable(format!("unreadable answer: {e}")),
                    after: None,
                },
            }
        })
        .await
    }
}

impl Pipeline<AzurePipelines> for AzureDevOps {
    /// Queues one run with baton's inputs as template parameters. Sent
    /// once: a lost answer may mean the run was queued, which
    /// [`AzureDevOps::find_run`] tells.
    async fn dispatch(
        &self,
        pipeline: &AzurePipelines,
        inputs: &BTreeMap<String, String>,
    ) -> Result<DispatchedRun, DispatchError> {
        let body = RunRequest {
            resources: RunResources {
                repositories: BTreeMap::from([(
                    "self",
                    RepositoryRef {
                        ref_name: pipeline.ref_name(),
                    },
                )]),
            },
            template_parameters: inputs,
        };
        let response = self
            .request(reqwest::Method::POST, self.runs_url(pipeline))?
            .json(&body)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        if is_transient(status) {
            let message = error_message(response).await;
            return Err(unavailable(format!("HTTP {status}: {message}")));
        }
        if !is_answer(status) {
            return Err(refusal(pipeline, response).await);
        }
        // The run was queued; an unreadable answer only hides its id, which
        // a later look-up by lock id finds.
        let run: AzureRun = match response.json().await {
            Ok(run) => run,
            Err(_) => {
                return Ok(DispatchedRun {
                    run_id: None,
                    run_url: self.workflow_page(pipeline),
                    exact: false,
                });
            }
        };
        Ok(match run.web_url() {
            Some(url) => DispatchedRun {
                run_id: Some(run.id),
                run_url: url,
                exact: true,
            },
            None => DispatchedRun {
                run_id: Some(run.id),
                run_url: self.workflow_page(pipeline),
                exact: false,
            },
        })
    }

    /// Looks for a run of the pipeline whose name carries `lock_id` among
    /// those the runs list returns (newest first). Retried within
    /// `deadline`: a read is safe to repeat.
    async fn find_run(
        &self,
        pipeline: &AzurePipelines,
        lock_id: &str,
        deadline: Instant,
    ) -> Result<Option<DispatchedRun>, DispatchError> {
        let page: RunsList = self
            .read(pipeline, self.runs_url(pipeline), deadline)
            .await?;
        Ok(page
            .value
            .into_iter()
            .find(|run| names_lock(&run.name, lock_id))
            .map(|run| {
                let url = run.web_url();
                DispatchedRun {
                    run_id: Some(run.id),
                    exact: url.is_some(),
                    run_url: url.unwrap_or_else(|| self.workflow_page(pipeline)),
                }
            }))
    }

    /// Reads one run of the pipeline. Retried within `deadline`.
    async fn run(
        &self,
        pipeline: &AzurePipelines,
        run_id: u64,
        deadline: Instant,
    ) -> Result<WorkflowRun, DispatchError> {
        let (id, run) = (pipeline.pipeline_id.to_string(), run_id.to_string());
        let url = self.url(pipeline, &["_apis", "pipelines", &id, "runs", &run]);
        let run: AzureRun = self.read(pipeline, url, deadline).await?;
        Ok(run.described(pipeline))
    }

    /// Asks Azure DevOps to cancel a run (its build). Sent once.
    async fn cancel(&self, pipeline: &AzurePipelines, run_id: u64) -> Result<(), DispatchError> {
        let build = run_id.to_string();
        let url = self.url(pipeline, &["_apis", "build", "builds", &build]);
        let response = self
            .request(reqwest::Method::PATCH, url)?
            .json(&CancelRequest {
                status: "cancelling",
            })
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        if is_answer(status) {
            return Ok(());
        }
        if is_transient(status) {
            let message = error_message(response).await;
            return Err(unavailable(format!("HTTP {status}: {message}")));
        }
        Err(refusal(pipeline, response).await)
    }

    /// The pipeline's runs page, for when a run's own page is not known.
    fn workflow_page(&self, p: &AzurePipelines) -> String {
        let mut url = self.url(p, &["_build"]);
        url.query_pairs_mut()
            .clear()
            .append_pair("definitionId", &p.pipeline_id.to_string());
        url.to_string()
    }
}

/// Whether the name of a run carries `lock_id=<lock_id>` as one word.
fn names_lock(name: &str, lock_id: &str) -> bool {
    name.split_whitespace()
        .any(|word| word.strip_prefix("lock_id=") == Some(lock_id))
}

/// A usable answer. Azure DevOps answers a request it could not
/// authenticate with `203` and a sign-in page, which is no answer at all.
fn is_answer(status: reqwest::StatusCode) -> bool {
    status.is_success() && status != reqwest::StatusCode::NON_AUTHORITATIVE_INFORMATION
}

/// Worth trying again later: the service is busy or failing, not refusing.
fn is_transient(status: reqwest::StatusCode) -> bool {
    status.is_server_error() || matches!(status.as_u16(), 408 | 429)
}

/// A refusal from Azure DevOps.
fn refused(status: u16, message: String) -> DispatchError {
    DispatchError::Refused {
        kind: PipelineKind::AzurePipelines,
        status,
        message,
    }
}

/// Azure DevOps did not answer usefully.
fn unavailable(detail: String) -> DispatchError {
    DispatchError::Unavailable {
        kind: PipelineKind::AzurePipelines,
        detail,
    }
}

/// What a refusal means, in words that say what to fix: a token it does
/// not accept, a pipeline that does not exist, or Azure DevOps' own message.
async fn refusal(pipeline: &AzurePipelines, response: reqwest::Response) -> DispatchError {
    let status = response.status().as_u16();
    let said = error_message(response).await;
    let message = match status {
        401 | 203 => format!(
            "the personal access token was not accepted for organization {:?}; it must be valid and allowed Build (read & execute)",
            pipeline.organization
        ),
        403 => format!(
            "the personal access token may not run pipeline {} in {}: {said}",
            pipeline.pipeline_id,
            pipeline.project_path()
        ),
        404 => format!(
            "there is no pipeline {} (or run) in {}: {said}",
            pipeline.pipeline_id,
            pipeline.project_path()
        ),
        _ => said,
    };
    refused(status, message)
}

/// The body of an Azure DevOps error answer.
#[derive(Debug, Deserialize)]
struct ErrorAnswer {
    message: String,
}

/// Azure DevOps' error message, else the start of the body.
async fn error_message(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    serde_json::from_str::<ErrorAnswer>(&text)
        .map(|e| e.message)
        .unwrap_or_else(|_| text.chars().take(200).collect())
}

/// The body that queues a run: the branch to build and the parameters.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RunRequest<'a> {
    resources: RunResources,
    template_parameters: &'a BTreeMap<String, String>,
}

/// `resources.repositories`: the pipeline's own repository, `self`.
#[derive(Debug, Serialize)]
struct RunResources {
    repositories: BTreeMap<&'static str, RepositoryRef>,
}

/// The ref a repository resource is built at.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RepositoryRef {
    ref_name: String,
}

/// The body that cancels a build.
#[derive(Debug, Serialize)]
struct CancelRequest {
    status: &'static str,
}

/// A list of a pipeline's runs.
#[derive(Debug, Deserialize)]
struct RunsList {
    #[serde(default)]
    value: Vec<AzureRun>,
}

/// One pipeline run as Azure DevOps describes it (the fields baton reads).
#[derive(Debug, Deserialize)]
pub(crate) struct AzureRun {
    id: u64,
    /// The run's name (its build number); baton's runs carry their lock
    /// identity in it.
    #[serde(default)]
    name: String,
    /// `unknown`, `inProgress`, `canceling` or `completed`.
    #[serde(default)]
    state: String,
    /// Set once completed: `succeeded`, `partiallySucceeded`, `failed`,
    /// `canceled`, `unknown`.
    result: Option<String>,
    /// The pipeline the run belongs to.
    pipeline: Option<PipelineRef>,
    #[serde(rename = "_links", default)]
    links: Option<Links>,
}

/// `pipeline` of a run.
#[derive(Debug, Deserialize)]
struct PipelineRef {
    id: u64,
}

/// `_links` of a run; `web` is its page.
#[derive(Debug, Deserialize)]
struct Links {
    web: Option<Link>,
}

/// One `_links` entry.
#[derive(Debug, Deserialize)]
struct Link {
    href: String,
}

impl AzureRun {
    fn web_url(&self) -> Option<String> {
        self.links
            .as_ref()
            .and_then(|l| l.web.as_ref())
            .map(|w| w.href.clone())
    }

    /// The run in the worker's terms. Azure DevOps' run API does not say
    /// what queued a run, so "dispatched" means a run of this pipeline
    /// (asked for by its id, and naming it when the answer does); that the
    /// run is the grant's own rests on its name and on the run id the
    /// grant records.
    fn described(self, pipeline: &AzurePipelines) -> WorkflowRun {
        let dispatched = self
            .pipeline
            .as_ref()
            .is_none_or(|p| p.id == pipeline.pipeline_id);
        let alive = self.state != "completed";
        let (verdict, _) = Conclusion::of_azure_result(self.result.as_deref());
        let html_url = self.web_url();
        WorkflowRun {
            id: self.id,
            alive,
            conclusion: if alive { None } else { self.result },
            verdict,
            html_url,
            dispatched,
            title: self.name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline() -> AzurePipelines {
        AzurePipelines {
            organization: "acme".into(),
            project: "Platform Team".into(),
            pipeline_id: 42,
            branch: "main".into(),
            parameters: BTreeMap::new(),
        }
    }

    fn http() -> reqwest::Client {
        // reqwest is built without a default crypto provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    }

    fn client(base: &str) -> AzureDevOps {
        AzureDevOps::new(http(), base, None).unwrap()
    }

    #[test]
    fn urls_escape_the_project_and_carry_the_api_version() {
        let az = client("https://dev.azure.com/");
        assert_eq!(
            az.runs_url(&pipeline()).as_str(),
            "https://dev.azure.com/acme/Platform%20Team/_apis/pipelines/42/runs?api-version=7.1"
        );
        assert_eq!(
            az.workflow_page(&pipeline()),
            "https://dev.azure.com/acme/Platform%20Team/_build?definitionId=42"
        );
        let server = client("http://127.0.0.1:8080/tfs");
        assert_eq!(
            server.runs_url(&pipeline()).as_str(),
            "http://127.0.0.1:8080/tfs/acme/Platform%20Team/_apis/pipelines/42/runs?api-version=7.1"
        );
    }

    #[test]
    fn a_base_that_cannot_hold_paths_is_refused() {
        let e = AzureDevOps::new(http(), "mailto:x@y", None).unwrap_err();
        assert!(e.to_string().starts_with("AZURE_DEVOPS_URL"), "{e}");
        assert!(AzureDevOps::new(http(), "not a url", None).is_err());
    }

    #[test]
    fn runs_read_into_the_workers_terms() {
        let run: AzureRun = serde_json::from_value(serde_json::json!({
            "id": 7, "name": "baton lock_key=k lock_id=L1 fence=3", "state": "completed",
            "result": "canceled", "pipeline": {"id": 42},
            "_links": {"web": {"href": "https://dev.azure.com/acme/x/_build/results?buildId=7"}}
        }))
        .unwrap();
        let run = run.described(&pipeline());
        assert!(!run.is_alive() && run.belongs_to("L1") && !run.belongs_to("L"));
        assert_eq!(run.verdict, Conclusion::Cancelled);
        assert_eq!(run.conclusion.as_deref(), Some("canceled"));
        let other: AzureRun = serde_json::from_value(serde_json::json!({
            "id": 8, "name": "lock_id=L1", "state": "inProgress", "pipeline": {"id": 41}
        }))
        .unwrap();
        let other = other.described(&pipeline());
        assert!(other.is_alive() && !other.belongs_to("L1"));
    }
}
