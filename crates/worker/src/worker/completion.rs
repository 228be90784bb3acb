//! A pipeline reporting its end: accepted only for the run recorded on the
//! grant, then the grant ends and the channel is told.

use baton_chatops::render;
use baton_chatops::{CompletionMessage, Reply};
use baton_lock::{LockError, LockRecord, LockStatus, ReleaseRequest, RunCheck};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::emf::{self, Metric};
use crate::github::DispatchError;

use super::{Outcome, Worker, channel_from_correlation, held_for};
use crate::ports::{Chat, Pipeline};

impl<C: Chat, P: Pipeline> Worker<C, P> {
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
            workflow: pipeline.workflow.clone(),
            run_id,
        };
        let record = match self.locks.release(&release).await {
            Ok(record) => record,
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
                // The dispatch answer named no run: confirm this one with GitHub.
                match self.pipeline.run(pipeline, run_id, deadline).await {
                    Ok(run) if run.belongs_to(pipeline, &c.lock_id) => {
                        let url = run.html_url.clone().unwrap_or_default();
                        if let Err(e) = self
                            .locks
                            .set_run(&c.lock_key, &c.lock_id, Some(run_id), &url)
                            .await
                        {
                            return self.completion_refused(
                                id,
                                c,
                                &e.to_string(),
                                e.is_transient(),
                            );
                        }
                        match self.locks.release(&release).await {
                            Ok(record) => record,
                            Err(e) => {
                                return self.completion_refused(
                                    id,
                                    c,
                                    &e.to_string(),
                                    e.is_transient(),
                                );
                            }
                        }
                    }
                    Ok(_) => {
                        return self.completion_refused(
                            id,
                            c,
                            "GitHub says the run was not dispatched for this grant",
                            false,
                        );
                    }
                    Err(e) => {
                        let transient = matches!(e, DispatchError::Unavailable(_));
                        return self.completion_refused(id, c, &e.to_string(), transient);
                    }
                }
            }
            Err(LockError::NotOwner { current, .. }) => {
                warn!(message_id = %id, lock_key = %c.lock_key, lock_id = %c.lock_id, fence = c.fence, run_id,
                      current_fence = current.as_ref().map(|r| r.fence),
                      reason = "not the run recorded on the current grant", "completion refused");
                return Outcome::Done;
            }
            Err(LockError::AlreadyEnded { record }) => {
                info!(message_id = %id, lock_key = %c.lock_key, status = %record.status, "completion for a grant that already ended");
                return Outcome::Done;
            }
            Err(e) if e.is_transient() => return Outcome::Retry(format!("release: {e}")),
            Err(e) => {
                error!(message_id = %id, lock_key = %c.lock_key, error = %e, "completion could not be applied");
                return Outcome::Done;
            }
        };
        let run_url = c.run_url.as_deref().or(record.run_url.as_deref());
        let notice = render::completed(
            &c.lock_key,
            c.succeeded(),
            &record.locked_by,
            held_for(&record),
            run_url,
        );
        self.report_end(&record, c.channel_id.clone(), notice, deadline)
            .await
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
        let duration = held_for(record);
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
