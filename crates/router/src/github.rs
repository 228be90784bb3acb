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

use baton_chatops::{CompletionMessage, Conclusion};
use serde::Deserialize;

/// What `reported_by` says on completions from this route.
pub const REPORTED_BY: &str = "github:workflow_run";

#[derive(Debug, Deserialize)]
struct Payload {
    action: Option<String>,
    workflow_run: Option<Run>,
}

#[derive(Debug, Deserialize)]
struct Run {
    id: Option<u64>,
    html_url: Option<String>,
    display_title: Option<String>,
    conclusion: Option<String>,
}

/// What a `workflow_run` delivery means for baton.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowRun {
    /// A completed run carrying baton's lock identity.
    Completed(CompletionMessage),
    /// Not a completion (`requested`, `in_progress`), or not baton's run.
    Ignored(&'static str),
}

/// Why a body could not be read as a `workflow_run` payload.
#[derive(Debug, thiserror::Error)]
#[error("workflow_run payload is not valid JSON of the expected shape: {0}")]
pub struct PayloadError(#[from] serde_json::Error);

/// Reads a `workflow_run` event body.
pub fn workflow_run(body: &[u8]) -> Result<WorkflowRun, PayloadError> {
    let payload: Payload = serde_json::from_slice(body)?;
    if payload.action.as_deref() != Some("completed") {
        return Ok(WorkflowRun::Ignored("action is not `completed`"));
    }
    let Some(run) = payload.workflow_run else {
        return Ok(WorkflowRun::Ignored("no workflow_run object"));
    };
    let Some(identity) = run
        .display_title
        .as_deref()
        .and_then(LockIdentity::from_title)
    else {
        return Ok(WorkflowRun::Ignored(
            "display_title carries no baton lock identity",
        ));
    };
    let (conclusion, reason) = map_conclusion(run.conclusion.as_deref());
    Ok(WorkflowRun::Completed(CompletionMessage {
        lock_key: identity.lock_key,
        lock_id: identity.lock_id,
        fence: identity.fence,
        conclusion,
        run_url: run.html_url,
        run_id: run.id,
        repository: None,
        workflow: None,
        channel_id: None,
        reported_by: Some(REPORTED_BY.to_string()),
        reason,
    }))
}

/// GitHub's conclusion in baton's vocabulary. Only `success` succeeds;
/// `neutral`, `skipped`, `action_required`, `stale`, a missing conclusion and
/// anything newer count as failures, with a reason naming what GitHub said.
pub fn map_conclusion(conclusion: Option<&str>) -> (Conclusion, Option<String>) {
    match conclusion {
        Some("success") => (Conclusion::Success, None),
        Some("failure") => (Conclusion::Failure, None),
        Some("cancelled") => (Conclusion::Cancelled, None),
        Some("timed_out") => (Conclusion::TimedOut, None),
        Some(other) => (
            Conclusion::Failure,
            Some(format!("GitHub reported conclusion `{other}`")),
        ),
        None => (
            Conclusion::Failure,
            Some("GitHub reported the run completed without a conclusion".to_string()),
        ),
    }
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
                "status": "completed",
                "conclusion": conclusion,
            },
            "repository": {"full_name": "acme/platform"}
        })
        .to_string()
        .into_bytes()
    }

    const TITLE: &str = "baton lock_key=build-router-plt lock_id=0f3c9a lock fence=17";

    #[test]
    fn completed_baton_run_becomes_a_completion() {
        let run = workflow_run(&payload("completed", TITLE, json!("success"))).unwrap();
        let WorkflowRun::Completed(c) = run else {
            panic!("expected a completion, got {run:?}");
        };
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
            let run = workflow_run(&payload("completed", TITLE, raw.clone())).unwrap();
            let WorkflowRun::Completed(c) = run else {
                panic!("{raw}: expected a completion");
            };
            assert_eq!(c.conclusion, want, "{raw}");
            assert_eq!(c.reason.is_some(), has_reason, "{raw}");
        }
    }

    #[test]
    fn other_actions_and_foreign_runs_are_ignored() {
        assert!(matches!(
            workflow_run(&payload("requested", TITLE, json!(null))).unwrap(),
            WorkflowRun::Ignored(_)
        ));
        assert!(matches!(
            workflow_run(&payload(
                "completed",
                "Fix the flaky test",
                json!("success")
            ))
            .unwrap(),
            WorkflowRun::Ignored(_)
        ));
        assert!(matches!(
            workflow_run(br#"{"action":"completed"}"#).unwrap(),
            WorkflowRun::Ignored(_)
        ));
        assert!(workflow_run(b"payload=%7B%7D").is_err());
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
