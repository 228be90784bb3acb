//! In-memory [`Chat`] and [`Pipeline`] adapters, so the worker's decisions
//! can be tested without HTTP: what was said where, which runs were started,
//! and runs that finish, fail to answer or get cancelled on cue. The Slack
//! GitHub and Azure DevOps adapters are tested over loopback HTTP beside
//! these. [`FakePipeline`] serves every pipeline kind, keeping each run under
//! its pipeline's binding ([`PipelineConfig::workflow`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use baton_chatops::{Conclusion, PipelineConfig, PipelineKind, PostMessage, Reply};
use serde_json::Value;
use tokio::time::Instant;

use crate::ports::{Chat, DispatchError, DispatchedRun, Pipeline, WorkflowRun};
use crate::slack::SlackError;

/// Locks a fake's state; a test that panicked while holding it has already failed.
fn state<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One thing the worker said, as the chat would have shown it.
#[derive(Debug, Clone, PartialEq)]
pub enum Said {
    /// A reply through a command's `response_url`.
    Reply { response_url: String, body: Value },
    /// A notice posted to a channel.
    Notice { body: Value },
    /// A reply only `user` sees in `channel`.
    Ephemeral {
        channel: String,
        user: String,
        body: Value,
    },
}

impl Said {
    /// The message's text.
    pub fn text(&self) -> &str {
        let body = match self {
            Said::Reply { body, .. } | Said::Notice { body } | Said::Ephemeral { body, .. } => body,
        };
        body["text"].as_str().unwrap_or_default()
    }
}

#[derive(Debug, Default)]
struct ChatState {
    said: Vec<Said>,
    /// `response_url`s answer as if expired.
    refuse_response_urls: bool,
    /// Every call answers as if the chat were down.
    down: bool,
    /// Slack user groups and their members.
    groups: std::collections::BTreeMap<String, Vec<String>>,
}

/// A chat that remembers everything said to it.
#[derive(Debug, Clone, Default)]
pub struct FakeChat {
    state: Arc<Mutex<ChatState>>,
}

impl FakeChat {
    /// Everything said so far, in order.
    pub fn said(&self) -> Vec<Said> {
        state(&self.state).said.clone()
    }

    /// Sets the members of user group `group`.
    pub fn set_group(&self, group: &str, members: &[&str]) {
        state(&self.state).groups.insert(
            group.to_owned(),
            members.iter().map(|m| (*m).to_owned()).collect(),
        );
    }

    /// Makes `response_url`s refuse replies (as Slack does after 30 minutes).
    pub fn refuse_response_urls(&self, refuse: bool) {
        state(&self.state).refuse_response_urls = refuse;
    }

    /// Makes every call fail as if the chat were unreachable.
    pub fn set_down(&self, down: bool) {
        state(&self.state).down = down;
    }

    fn say(&self, said: Said) -> Result<(), SlackError> {
        let mut s = state(&self.state);
        if s.down {
            return Err(SlackError::Unavailable("the fake chat is down".into()));
        }
        if s.refuse_response_urls && matches!(said, Said::Reply { .. }) {
            return Err(SlackError::Refused("expired_url".into()));
        }
        s.said.push(said);
        Ok(())
    }
}

impl Chat for FakeChat {
    async fn respond(
        &self,
        response_url: &str,
        reply: &Reply,
        _deadline: Instant,
    ) -> Result<(), SlackError> {
        self.say(Said::Reply {
            response_url: response_url.to_owned(),
            body: reply.to_json(),
        })
    }

    async fn post_message(
        &self,
        message: &PostMessage,
        _deadline: Instant,
    ) -> Result<(), SlackError> {
        self.say(Said::Notice {
            body: message.to_json(),
        })
    }

    async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        reply: &Reply,
        _deadline: Instant,
    ) -> Result<(), SlackError> {
        self.say(Said::Ephemeral {
            channel: channel.to_owned(),
            user: user.to_owned(),
            body: reply.to_json(),
        })
    }

    async fn usergroup_members(
        &self,
        group: &str,
        _deadline: Instant,
    ) -> Result<Vec<String>, SlackError> {
        let s = state(&self.state);
        if s.down {
            return Err(SlackError::Unavailable("fake chat is down".into()));
        }
        s.groups
            .get(group)
            .cloned()
            .ok_or_else(|| SlackError::Refused("no_such_subteam".into()))
    }
}

/// One run the fake pipeline started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeRun {
    pub id: u64,
    pub workflow: String,
    pub inputs: BTreeMap<String, String>,
    /// `queued` until finished or cancelled, then `completed`.
    pub status: String,
    pub conclusion: Option<String>,
    /// Whether the worker asked to cancel it.
    pub cancel_requested: bool,
}

#[derive(Debug, Default)]
struct PipelineState {
    runs: Vec<FakeRun>,
    down: bool,
    /// Start the next run but answer as if the answer were lost.
    lose_next_answer: bool,
}

/// A pipeline that starts runs in memory and lets a test finish them.
#[derive(Debug, Clone, Default)]
pub struct FakePipeline {
    state: Arc<Mutex<PipelineState>>,
}

impl FakePipeline {
    /// Every run started so far, in order.
    pub fn runs(&self) -> Vec<FakeRun> {
        state(&self.state).runs.clone()
    }

    /// Ends run `id` with `conclusion` (`success`, `failure`, …).
    pub fn finish(&self, id: u64, conclusion: &str) {
        if let Some(run) = state(&self.state).runs.iter_mut().find(|r| r.id == id) {
            run.status = "completed".into();
            run.conclusion = Some(conclusion.to_owned());
        }
    }

    /// Makes every call fail as if the pipeline were unreachable.
    pub fn set_down(&self, down: bool) {
        state(&self.state).down = down;
    }

    /// The next dispatch starts its run but its answer is lost.
    pub fn lose_next_answer(&self) {
        state(&self.state).lose_next_answer = true;
    }

    fn up(&self, kind: PipelineKind) -> Result<MutexGuard<'_, PipelineState>, DispatchError> {
        let s = state(&self.state);
        if s.down {
            return Err(DispatchError::Unavailable {
                kind,
                detail: "the fake pipeline is down".into(),
            });
        }
        Ok(s)
    }

    fn described(run: &FakeRun) -> WorkflowRun {
        let input = |name: &str| run.inputs.get(name).cloned().unwrap_or_default();
        WorkflowRun {
            id: run.id,
            alive: run.status != "completed",
            conclusion: run.conclusion.clone(),
            verdict: Conclusion::of_run(run.conclusion.as_deref()).0,
            dispatched: true,
            title: format!(
                "baton lock_key={} lock_id={} fence={}",
                input("lock_key"),
                input("lock_id"),
                input("fence")
            ),
            html_url: Some(run_page(run.id)),
        }
    }
}

/// The page of fake run `id`.
pub fn run_page(id: u64) -> String {
    format!("https://pipeline.example/runs/{id}")
}

impl Pipeline for FakePipeline {
    async fn dispatch(
        &self,
        pipeline: &PipelineConfig,
        inputs: &BTreeMap<String, String>,
    ) -> Result<DispatchedRun, DispatchError> {
        let mut s = self.up(pipeline.kind())?;
        let id = 1000 + s.runs.len() as u64;
        s.runs.push(FakeRun {
            id,
            workflow: pipeline.workflow(),
            inputs: inputs.clone(),
            status: "queued".into(),
            conclusion: None,
            cancel_requested: false,
        });
        if std::mem::take(&mut s.lose_next_answer) {
            return Err(DispatchError::Unavailable {
                kind: pipeline.kind(),
                detail: "answer lost".into(),
            });
        }
        Ok(DispatchedRun {
            run_id: Some(id),
            run_url: run_page(id),
            exact: true,
        })
    }

    async fn find_run(
        &self,
        pipeline: &PipelineConfig,
        lock_id: &str,
        _deadline: Instant,
    ) -> Result<Option<DispatchedRun>, DispatchError> {
        let s = self.up(pipeline.kind())?;
        Ok(s.runs
            .iter()
            .find(|r| {
                r.workflow == pipeline.workflow()
                    && r.inputs.get("lock_id").map(String::as_str) == Some(lock_id)
            })
            .map(|r| DispatchedRun {
                run_id: Some(r.id),
                run_url: run_page(r.id),
                exact: true,
            }))
    }

    async fn run(
        &self,
        pipeline: &PipelineConfig,
        run_id: u64,
        _deadline: Instant,
    ) -> Result<WorkflowRun, DispatchError> {
        let s = self.up(pipeline.kind())?;
        s.runs
            .iter()
            .find(|r| r.id == run_id)
            .map(FakePipeline::described)
            .ok_or_else(|| DispatchError::Refused {
                kind: pipeline.kind(),
                status: 404,
                message: format!("no run {run_id}"),
            })
    }

    async fn cancel(&self, pipeline: &PipelineConfig, run_id: u64) -> Result<(), DispatchError> {
        let mut s = self.up(pipeline.kind())?;
        match s.runs.iter_mut().find(|r| r.id == run_id) {
            Some(run) => {
                run.cancel_requested = true;
                if run.status != "completed" {
                    run.status = "completed".into();
                    run.conclusion = Some("cancelled".into());
                }
                Ok(())
            }
            None => Err(DispatchError::Refused {
                kind: pipeline.kind(),
                status: 404,
                message: format!("no run {run_id}"),
            }),
        }
    }

    fn workflow_page(&self, pipeline: &PipelineConfig) -> String {
        format!(
            "https://pipeline.example/{}/workflows/{}",
            pipeline.repository(),
            pipeline.workflow()
        )
    }
}
