//! A pipeline reporting its end: accepted only for the run recorded on the
//! grant, then the grant ends and the channel is told.

use baton_chatops::render;
use baton_chatops::{CompletionMessage, PipelineConfig, Reply};
use baton_lock::{Ended, LockError, LockRecord, LockStatus, ReleaseRequest, RunCheck};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::emf::{self, Metric};
use crate::ports::DispatchError;

use super::{Outcome, Worker, channel_from_correlation};
use crate::ports::{Chat, Pipeline};
use baton_lock::LockStore;

impl<S: LockStore, C: Chat, P: Pipeline> Worker<S, C, P> {
    /// A pipeline reported its end. It ends the grant only if it is the run
    /// recorded on that grant (or, while no run id is recorded yet, a run
    /// GitHub confirms was dispatched for it); anything else leaves the lock
    /// as it is and is logged with the reason.
    pub(super) async fn completion(
        &self,
        id: &str,
        c: &CompletionMessage,
        deadline: Instant,
    ) -> Outcome {
        let (Some(repository), Some(workflow), Some(run_id)) =
            (c.repository.as_deref(), c.workflow.as_deref(), c.run_id)
        else {
            warn!(message_id = %id, lock_key = %c.lock_key, reason = "names no run", "completion refused");
            return Outcome::Done;
        };
        let Some(pipeline) = self.pipeline_of(repository, workflow) else {
            warn!(message_id = %id, lock_key = %c.lock_key, repository, workflow, reason = "not a configured pipeline", "completion refused");
            return Outcome::Done;
        };
        let release = release_for(c, pipeline, run_id);
        let ended = match self.locks.release(&release).await {
            Ok(ended) => ended,
            Err(LockError::NotOwner {
                current: Some(current),
                ..
            }) if current.lock_id == c.lock_id
                && current.fence == c.fence
                && current
                    .pipeline
                    .as_ref()
                    .is_some_and(|p| p.run_id.is_none()) =>
            {
                match self
                    .confirm_then_release(id, c, pipeline, run_id, &release, deadline)
                    .await
                {
                    Ok(ended) => ended,
                    Err(outcome) => return outcome,
                }
            }
            Err(e) => return self.release_refused(id, c, run_id, e),
        };
        let record = &ended.record;
        let run_url = c.run_url.as_deref().or(record.run_url.as_deref());
        let notice = render::completed(
            &c.lock_key,
            c.conclusion,
            &record.locked_by,
            self.held_for(record),
            run_url,
        );
        let outcome = self
            .report_end(record, c.channel_id.clone(), notice, deadline)
            .await;
        self.hand_off(ended, deadline).await;
        outcome
    }

    /// The dispatch answer named no run, so the grant records none yet:
    /// confirm with the pipeline that this run was dispatched for this
    /// grant, record it, then release bound to it.
    async fn confirm_then_release(
        &self,
        id: &str,
        c: &CompletionMessage,
        pipeline: &PipelineConfig,
        run_id: u64,
        release: &ReleaseRequest,
        deadline: Instant,
    ) -> Result<Ended, Outcome> {
        let run = match self.pipeline.run(pipeline, run_id, deadline).await {
            Ok(run) => run,
            Err(e) => {
                let transient = matches!(e, DispatchError::Unavailable { .. });
                return Err(self.completion_refused(id, c, &e.to_string(), transient));
            }
        };
        if !run.belongs_to(&c.lock_id) {
            return Err(self.completion_refused(
                id,
                c,
                "the pipeline says the run was not dispatched for this grant",
                false,
            ));
        }
        let url = run.html_url.clone().unwrap_or_default();
        let recorded = self
            .locks
            .set_run(&c.lock_key, &c.lock_id, Some(run_id), &url)
            .await;
        let released = match recorded {
            Ok(_) => self.locks.release(release).await,
            Err(e) => Err(e),
        };
        released.map_err(|e| self.completion_refused(id, c, &e.to_string(), e.is_transient()))
    }

    /// What a completion the store refused comes to: nothing changes, and
    /// the reason is logged (or the record goes back to the queue when the
    /// store may answer later).
    fn release_refused(
        &self,
        id: &str,
        c: &CompletionMessage,
        run_id: u64,
        e: LockError,
    ) -> Outcome {
        match e {
            LockError::NotOwner { current, .. } => {
                warn!(message_id = %id, lock_key = %c.lock_key, lock_id = %c.lock_id, fence = c.fence, run_id,
                      current_fence = current.as_ref().map(|r| r.fence),
                      reason = "not the run recorded on the current grant", "completion refused");
                Outcome::Done
            }
            LockError::AlreadyEnded { record } => {
                info!(message_id = %id, lock_key = %c.lock_key, status = %record.status, "completion for a grant that already ended");
                Outcome::Done
            }
            e if e.is_transient() => Outcome::Retry(format!("release: {e}")),
            e => {
                error!(message_id = %id, lock_key = %c.lock_key, error = %e, "completion could not be applied");
                Outcome::Done
            }
        }
    }

    fn completion_refused(
        &self,
        id: &str,
        c: &CompletionMessage,
        why: &str,
        transient: bool,
    ) -> Outcome {
        if transient {
            return Outcome::Retry(format!("completion: {why}"));
        }
        warn!(message_id = %id, lock_key = %c.lock_key, lock_id = %c.lock_id, run_id = ?c.run_id, reason = why, "completion refused");
        Outcome::Done
    }

    /// Metrics and the channel notice for a grant its run ended.
    pub(crate) async fn report_end(
        &self,
        record: &LockRecord,
        channel: Option<String>,
        notice: Reply,
        deadline: Instant,
    ) -> Outcome {
        let command = record
            .purpose
            .as_deref()
            .and_then(|p| p.split_whitespace().next())
            .unwrap_or("pipeline");
        let duration = self.held_for(record);
        emf::emit(Metric::Completed, command, 1.0);
        emf::emit(Metric::LockDuration, command, duration as f64);
        info!(lock_key = %record.lock_key, status = %record.status, duration, "run completed; lock released");
        let Some(channel) = channel.or_else(|| channel_from_correlation(record)) else {
            warn!(lock_key = %record.lock_key, "no channel to report the completion to");
            return Outcome::Done;
        };
        self.post(notice.with_channel(channel), &record.lock_key, deadline)
            .await
    }
}

/// The release a completion asks for: the grant it names, ended COMPLETED
/// or FAILED, and only if that grant records this run.
fn release_for(c: &CompletionMessage, pipeline: &PipelineConfig, run_id: u64) -> ReleaseRequest {
    let outcome = if c.succeeded() {
        LockStatus::Completed
    } else {
        LockStatus::Failed
    };
    let mut release = ReleaseRequest::new(&c.lock_key, &c.lock_id, outcome);
    release.fence = Some(c.fence);
    release.actor = Some(
        c.reported_by
            .clone()
            .unwrap_or_else(|| "pipeline".to_owned()),
    );
    release.reason = Some(
        c.reason
            .clone()
            .unwrap_or_else(|| format!("pipeline {}", c.conclusion.as_str())),
    );
    release.run = RunCheck::Recorded {
        repository: pipeline.repository(),
        workflow: pipeline.workflow(),
        run_id,
    };
    release
}
