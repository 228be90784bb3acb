//! Reading GitHub's `workflow_run` webhook into a [`CompletionMessage`].
//!
//! GitHub's `workflow_run` payload does NOT include the `workflow_dispatch`
//! inputs a run was started with, so the lock identity baton hands a run
//! (`lock_key`, `lock_id`, `fence`) has to travel some other way. baton's
//! dispatched workflows put it in the run's name:
//!
//! ```yaml
//! run-name: "baton lock_key=${{ inputs.lock_key }} lock_id=${{ inputs.lock_id }} fence=${{ inputs.fence }}"
//! ```
//!
//! and GitHub reports that name as `workflow_run.display_title`. A run whose
//! title lacks any of the three `key=value` words is not baton's and is
//! ignored. `events/github-workflow-example.yml` is a complete example.
//!
//! The title alone proves nothing: whoever can push to a repository that
//! sends webhooks here chooses it (a commit message or a pull request title
//! becomes `display_title` for those runs), and the lock id it names is no
//! secret. So a delivery becomes a completion only when it is a run baton
//! could have started itself: `repository.full_name` is the `owner/repo` of a
//! configured pipeline (compared case-insensitively, as GitHub does),
//! `workflow_run.path` is that same pipeline's `.github/workflows/<workflow>`
//! (or, for a pipeline configured by workflow id, `workflow_run.workflow_id`
//! is that id), and `workflow_run.event` is `workflow_dispatch`. The
//! completion then names that pipeline's repository and workflow, in the
//! configured spelling a grant records, and the run id, so the worker can
//! hold it against the run recorded on the grant.
//!
//! A re-run (`run_attempt` above 1) of a dispatched run passes these checks:
//! it is forwarded, and the worker, which knows whether the grant still
//! stands for that run, decides.

use baton_chatops::{CompletionMessage, Conclusion, Config, GitHubActions};
use serde::Deserialize;

/// What `reported_by` says on completions from this route.
pub const REPORTED_BY: &str = "github:workflow_run";

/// Where GitHub keeps a repository's workflow files; `workflow_run.path` is
/// this folder followed by the file name.
pub const WORKFLOWS_DIR: &str = ".github/workflows/";

/// The only `workflow_run.event` baton's own runs have.
pub const DISPATCH_EVENT: &str = "workflow_dispatch";

#[derive(Debug, Deserialize)]
struct Payload {
    action: Option<String>,
    workflow_run: Option<Run>,
    repository: Option<Repository>,
}

#[derive(Debug, Deserialize)]
struct Repository {
    full_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Run {
    id: Option<u64>,
    html_url: Option<String>,
    display_title: Option<String>,
    conclusion: Option<String>,
    path: Option<String>,
    workflow_id: Option<u64>,
    event: Option<String>,
    run_attempt: Option<u64>,
}

/// What a `workflow_run` delivery means for baton.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowRun {
    /// A completed, dispatched run of a configured pipeline carrying baton's
    /// lock identity.
    Completed(Completed),
    /// Not a completion, not a configured pipeline's dispatched run, or not
    /// baton's run.
    Ignored(Ignored),
}

/// A completion to queue, with what only the log needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    /// The record for the worker.
    pub message: CompletionMessage,
    /// GitHub's attempt number: above 1 for a "Re-run" of the run.
    pub run_attempt: u64,
}

/// A delivery that is answered but not queued, and why, with what the
/// payload said about the run so the log shows what was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// Why, in a few words (`foreign repository`…).
    pub reason: &'static str,
    /// `repository.full_name`.
    pub repository: Option<String>,
    /// `workflow_run.path`.
    pub path: Option<String>,
    /// `workflow_run.event`.
    pub event: Option<String>,
    /// `workflow_run.id`.
    pub run_id: Option<u64>,
    /// `workflow_run.run_attempt`.
    pub run_attempt: Option<u64>,
    /// Whether the run's title named a lock: a refused look-alike is worth a
    /// warning, an unrelated run of a shared webhook is not.
    pub names_a_lock: bool,
}

/// Reason: the delivery is about a run that has not ended.
pub const NOT_COMPLETED: &str = "action is not `completed`";
/// Reason: the payload has no `workflow_run` object.
pub const NO_RUN: &str = "no workflow_run object";
/// Reason: no configured pipeline lives in the run's repository.
pub const FOREIGN_REPOSITORY: &str = "foreign repository";
/// Reason: the repository is configured, but not the run's workflow.
pub const FOREIGN_WORKFLOW: &str = "foreign workflow";
/// Reason: the run was started by something other than a dispatch.
pub const NOT_DISPATCHED: &str = "not a workflow_dispatch run";
/// Reason: the run's title carries no lock identity.
pub const NO_IDENTITY: &str = "display_title carries no baton lock identity";

/// Why a body could not be read as a `workflow_run` payload.
#[derive(Debug, thiserror::Error)]
#[error("workflow_run payload is not valid JSON of the expected shape: {0}")]
pub struct PayloadError(#[from] serde_json::Error);

/// Reads a `workflow_run` event body against the pipelines of `config`.
/// A run becomes a completion only past every guard below, each a reason to
/// ignore it; they stay in one function so their order reads top to bottom.
pub fn workflow_run(body: &[u8], config: &Config) -> Result<WorkflowRun, PayloadError> {
    let payload: Payload = serde_json::from_slice(body)?;
    let repository = payload.repository.and_then(|r| r.full_name);
    let Some(run) = payload.workflow_run else {
        return Ok(WorkflowRun::Ignored(Ignored {
            reason: NO_RUN,
            repository,
            path: None,
            event: None,
            run_id: None,
            run_attempt: None,
            names_a_lock: false,
        }));
    };
    let identity = run
        .display_title
        .as_deref()
        .and_then(LockIdentity::from_title);
    let ignored = |reason| {
        WorkflowRun::Ignored(Ignored {
            reason,
            repository: repository.clone(),
            path: run.path.clone(),
            event: run.event.clone(),
            run_id: run.id,
            run_attempt: run.run_attempt,
            names_a_lock: identity.is_some(),
        })
    };
    if payload.action.as_deref() != Some("completed") {
        return Ok(ignored(NOT_COMPLETED));
    }
    let in_repository: Vec<&GitHubActions> = config
        .commands()
        .filter_map(|c| c.pipeline.github())
        .filter(|p| {
            repository
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(&p.repository()))
        })
        .collect();
    if in_repository.is_empty() {
        return Ok(ignored(FOREIGN_REPOSITORY));
    }
    let Some(pipeline) = in_repository
        .into_iter()
        .find(|p| runs_workflow(p, run.path.as_deref(), run.workflow_id))
    else {
        return Ok(ignored(FOREIGN_WORKFLOW));
    };
    if run.event.as_deref() != Some(DISPATCH_EVENT) {
        return Ok(ignored(NOT_DISPATCHED));
    }
    let Some(identity) = identity.clone() else {
        return Ok(ignored(NO_IDENTITY));
    };
    let (conclusion, reason) = Conclusion::of_run(run.conclusion.as_deref());
    Ok(WorkflowRun::Completed(Completed {
        message: CompletionMessage {
            lock_key: identity.lock_key,
            lock_id: identity.lock_id,
            fence: identity.fence,
            conclusion,
            run_url: run.html_url,
            run_id: run.id,
            repository: Some(pipeline.repository()),
            workflow: Some(pipeline.workflow.clone()),
            channel_id: None,
            reported_by: Some(REPORTED_BY.to_string()),
            reason,
        },
        run_attempt: run.run_attempt.unwrap_or(1),
    }))
}

/// Whether a run with workflow file `path` (and workflow id `workflow_id`)
/// is `pipeline`'s workflow. The configured workflow is a file name, matched
/// exactly (file names are case-sensitive) against the run's path under
/// [`WORKFLOWS_DIR`], or a numeric workflow id, matched against the run's.
fn runs_workflow(pipeline: &GitHubActions, path: Option<&str>, workflow_id: Option<u64>) -> bool {
    let by_file = path
        .and_then(|p| p.strip_prefix(WORKFLOWS_DIR))
        .is_some_and(|file| file == pipeline.workflow);
    let by_id = match (pipeline.workflow.parse::<u64>(), workflow_id) {
        (Ok(want), Some(got)) => want == got,
        _ => false,
    };
    by_file || by_id
}

/// The lock identity parsed from a run's title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockIdentity {
    /// `lock_key=` value.
    pub lock_key: String,
    /// `lock_id=` value.
    pub lock_id: String,
    /// `fence=` value.
    pub fence: u64,
}

impl LockIdentity {
    /// Finds `lock_key=…`, `lock_id=…` and `fence=<integer>` among the
    /// whitespace-separated words of `title`; all three must be present and
    /// non-empty, and each may appear only once.
    pub fn from_title(title: &str) -> Option<LockIdentity> {
        let (mut key, mut id, mut fence) = (None, None, None);
        for word in title.split_whitespace() {
            let Some((name, value)) = word.split_once('=') else {
                continue;
            };
            let slot = match name {
                "lock_key" => &mut key,
                "lock_id" => &mut id,
                "fence" => &mut fence,
                _ => continue,
            };
            if slot.is_some() || value.is_empty() {
                return None;
            }
            *slot = Some(value);
        }
        Some(LockIdentity {
            lock_key: key?.to_string(),
            lock_id: id?.to_string(),
            fence: fence?.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(action: &str, title: &str, conclusion: serde_json::Value) -> Vec<u8> {
        json!({
            "action": action,
            "workflow_run": {
                "id": 30433642,
                "name": "Build",
                "display_title": title,
                "html_url": "https://github.com/acme/platform/actions/runs/30433642",
                "path": ".github/workflows/build.yml",
                "workflow_id": 161335,
                "event": "workflow_dispatch",
                "run_attempt": 1,
                "status": "completed",
                "conclusion": conclusion,
            },
            "repository": {"full_name": "acme/platform"}
        })
        .to_string()
        .into_bytes()
    }

    const TITLE: &str = "baton lock_key=build-router-plt lock_id=0f3c9a lock fence=17";

    fn read(body: &[u8]) -> WorkflowRun {
        workflow_run(body, &Config::builtin()).unwrap()
    }

    fn completion(body: &[u8]) -> CompletionMessage {
        match read(body) {
            WorkflowRun::Completed(c) => c.message,
            other => panic!("expected a completion, got {other:?}"),
        }
    }

    fn reason(body: &[u8]) -> &'static str {
        match read(body) {
            WorkflowRun::Ignored(i) => i.reason,
            other => panic!("expected it ignored, got {other:?}"),
        }
    }

    fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut v: serde_json::Value =
            serde_json::from_slice(&payload("completed", TITLE, json!("success"))).unwrap();
        edit(&mut v);
        v.to_string().into_bytes()
    }

    #[test]
    fn completed_baton_run_becomes_a_completion() {
        let c = completion(&payload("completed", TITLE, json!("success")));
        assert_eq!(c.lock_key, "build-router-plt");
        assert_eq!(c.lock_id, "0f3c9a");
        assert_eq!(c.fence, 17);
        assert_eq!(c.conclusion, Conclusion::Success);
        assert_eq!(c.run_id, Some(30433642));
        assert_eq!(
            c.run_url.as_deref(),
            Some("https://github.com/acme/platform/actions/runs/30433642")
        );
        assert_eq!(c.reason, None);
        assert_eq!(c.repository.as_deref(), Some("acme/platform"));
        assert_eq!(c.workflow.as_deref(), Some("build.yml"));
    }

    #[test]
    fn only_a_configured_pipelines_dispatched_run_is_a_completion() {
        let foreign_repo = edited(|v| v["repository"]["full_name"] = "mallory/platform".into());
        assert_eq!(reason(&foreign_repo), FOREIGN_REPOSITORY);
        let no_repo = edited(|v| v["repository"] = json!(null));
        assert_eq!(reason(&no_repo), FOREIGN_REPOSITORY);
        let other_workflow =
            edited(|v| v["workflow_run"]["path"] = ".github/workflows/lint.yml".into());
        assert_eq!(reason(&other_workflow), FOREIGN_WORKFLOW);
        let push = edited(|v| v["workflow_run"]["event"] = "push".into());
        assert_eq!(reason(&push), NOT_DISPATCHED);
        let mixed_case = edited(|v| v["repository"]["full_name"] = "Acme/PLATFORM".into());
        assert_eq!(
            completion(&mixed_case).repository.as_deref(),
            Some("acme/platform")
        );
    }

    #[test]
    fn refusals_say_whether_the_title_named_a_lock() {
        let WorkflowRun::Ignored(forged) =
            read(&edited(|v| v["workflow_run"]["event"] = "push".into()))
        else {
            panic!("expected it ignored");
        };
        assert!(forged.names_a_lock);
        assert_eq!(
            (forged.event.as_deref(), forged.run_id, forged.run_attempt),
            (Some("push"), Some(30433642), Some(1))
        );
        let WorkflowRun::Ignored(plain) = read(&edited(|v| {
            v["workflow_run"]["event"] = "push".into();
            v["workflow_run"]["display_title"] = "Fix the flaky test".into();
        })) else {
            panic!("expected it ignored");
        };
        assert!(!plain.names_a_lock);
    }

    #[test]
    fn a_rerun_is_forwarded_with_its_attempt() {
        let WorkflowRun::Completed(c) =
            read(&edited(|v| v["workflow_run"]["run_attempt"] = 3.into()))
        else {
            panic!("expected a completion");
        };
        assert_eq!(c.run_attempt, 3);
        assert_eq!(c.message.run_id, Some(30433642));
    }

    #[test]
    fn conclusions_map_and_unknown_ones_fail_with_a_reason() {
        let cases = [
            (json!("success"), Conclusion::Success, false),
            (json!("failure"), Conclusion::Failure, false),
            (json!("cancelled"), Conclusion::Cancelled, false),
            (json!("timed_out"), Conclusion::TimedOut, false),
            (json!("neutral"), Conclusion::Failure, true),
            (json!("skipped"), Conclusion::Failure, true),
            (json!("action_required"), Conclusion::Failure, true),
            (json!(null), Conclusion::Failure, true),
        ];
        for (raw, want, has_reason) in cases {
            let c = completion(&payload("completed", TITLE, raw.clone()));
            assert_eq!(c.conclusion, want, "{raw}");
            assert_eq!(c.reason.is_some(), has_reason, "{raw}");
        }
    }

    #[test]
    fn other_actions_and_foreign_runs_are_ignored() {
        assert_eq!(
            reason(&payload("requested", TITLE, json!(null))),
            NOT_COMPLETED
        );
        assert_eq!(
            reason(&payload(
                "completed",
                "Fix the flaky test",
                json!("success")
            )),
            NO_IDENTITY
        );
        assert_eq!(reason(br#"{"action":"completed"}"#), NO_RUN);
        assert!(workflow_run(b"payload=%7B%7D", &Config::builtin()).is_err());
    }

    #[test]
    fn title_needs_all_three_words_once_with_an_integer_fence() {
        assert!(LockIdentity::from_title("baton lock_key=k lock_id=i fence=1").is_some());
        assert!(LockIdentity::from_title("fence=1 lock_id=i lock_key=k").is_some());
        assert_eq!(LockIdentity::from_title("baton lock_key=k lock_id=i"), None);
        assert_eq!(
            LockIdentity::from_title("baton lock_key=k lock_id=i fence=x"),
            None
        );
        assert_eq!(
            LockIdentity::from_title("baton lock_key=k lock_id=i fence=-1"),
            None
        );
        assert_eq!(
            LockIdentity::from_title("baton lock_key= lock_id=i fence=1"),
            None
        );
        assert_eq!(
            LockIdentity::from_title("lock_key=k lock_key=j lock_id=i fence=1"),
            None
        );
    }
}
