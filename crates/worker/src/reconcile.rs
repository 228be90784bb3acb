//! The reconciler: the lease of a chatops grant follows its pipeline run.
//!
//! A pass reads the active grants from the sparse index (never a scan) and,
//! for each grant made for a pipeline whose run is recorded, asks the
//! pipeline for the run's state:
//! - still queued or working: the lease is renewed when less than half of
//!   [`WorkerSettings::reconcile_lease`] is left (one ownership-checked
//!   write), and the channel is told if it had already lapsed;
//! - ended: the grant ends COMPLETED or FAILED, bound to that run, and the
//!   channel is told (the completion report was lost);
//! - unknown (the pipeline did not answer): nothing changes.
//!
//! The worker settles a lapsed grant the same way when it contends for its
//! key, so a late reconciler never lets a second run in.

use baton_chatops::{PipelineConfig, render};
use baton_lock::{
    Grant, GrantKind, ListQuery, LockRecord, LockState, LockStatus, PipelineRun, ReleaseRequest,
    RunCheck,
};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::ports::{Chat, Pipeline, WorkflowRun};
#[cfg(doc)]
use crate::worker::WorkerSettings;
use crate::worker::{Outcome, Worker, channel_from_correlation};
use baton_lock::LockStore;

/// Who ends the grants the reconciler ends (their `releasedBy`).
const RECONCILER: &str = "baton:reconciler";

/// How many runs one pass asks about at the same time.
const CONCURRENT_RUNS: usize = 8;
/// The most pages of active grants one pass reads.
const MAX_PAGES: usize = 100;

/// What one grant's check came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Not a pipeline grant, or its run id is not recorded yet.
    NotPipeline,
    /// The run is alive and its lease has time left.
    Alive,
    /// The run is alive and its lease was renewed.
    Renewed,
    /// The run had ended: the grant was ended to match.
    Ended,
    /// The lease lapsed and the pipeline shows no run started for the grant:
    /// the grant was ended, and nothing runs under it.
    NotStarted,
    /// The pipeline or the store did not answer: nothing changed.
    Unknown,
}

/// What one reconciler pass did (printed by `--reconcile`, logged in Lambda).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Active grants read from the index.
    pub active: usize,
    /// Grants whose run was asked about.
    pub checked: usize,
    /// Leases renewed for runs still working.
    pub renewed: usize,
    /// Grants ended because their run had ended.
    pub ended: usize,
    /// Checks that got no answer (tried again next pass).
    pub unknown: usize,
    /// Whether the active index could not be read completely.
    pub incomplete: bool,
}

impl<S: LockStore, C: Chat, P: Pipeline> Worker<S, C, P> {
    /// One reconciler pass over every active grant.
    pub async fn reconcile(&self, deadline: Instant) -> ReconcileReport {
        let mut report = ReconcileReport::default();
        let mut query = ListQuery::default();
        let mut grants = Vec::new();
        for _ in 0..MAX_PAGES {
            match self.locks.list(&query).await {
                Ok(page) => {
                    grants.extend(page.locks);
                    match page.next_page_token {
                        Some(token) => query.page_token = Some(token),
                        None => break,
                    }
                }
                Err(e) => {
                    warn!(error = %e, "reconciler could not read the active grants");
                    report.incomplete = true;
                    break;
                }
            }
        }
        report.active = grants.len();
        // The futures are made before they are streamed (not in a `map`
        // closure), so the pass's own future stays `Send` and can be spawned.
        let checks: Vec<_> = grants
            .iter()
            .map(|grant| async move {
                self.tend_line(grant, deadline).await;
                self.settle(grant, deadline).await
            })
            .collect();
        let results: Vec<Settled> = futures_util::stream::iter(checks)
            .buffer_unordered(CONCURRENT_RUNS)
            .collect()
            .await;
        for settled in results {
            match settled {
                Settled::NotPipeline => continue,
                Settled::Alive => {}
                Settled::Renewed => report.renewed += 1,
                Settled::Ended | Settled::NotStarted => report.ended += 1,
                Settled::Unknown => report.unknown += 1,
            }
            report.checked += 1;
        }
        info!(?report, "reconciler pass done");
        report
    }

    /// Brings one grant in line with its pipeline run.
    pub(crate) async fn settle(&self, grant: &LockRecord, deadline: Instant) -> Settled {
        let Some(binding) = &grant.pipeline else {
            return Settled::NotPipeline;
        };
        if grant.status != LockStatus::InProgress {
            return Settled::NotPipeline;
        }
        let Some(pipeline) = self.pipeline_of(&binding.repository, &binding.workflow) else {
            warn!(lock_key = %grant.lock_key, repository = %binding.repository, workflow = %binding.workflow, "grant for a pipeline that is no longer configured");
            return Settled::Unknown;
        };
        let run_id = match binding.run_id {
            Some(run_id) => run_id,
            None => match self.find_unrecorded(grant, pipeline, deadline).await {
                Ok(Some(run_id)) => run_id,
                Ok(None) if grant.context.is_some() => {
                    return self.resume_hand_off(grant, deadline).await;
                }
                Ok(None) => return self.end_unstarted(grant, deadline).await,
                Err(settled) => return settled,
            },
        };
        let run = match self.pipeline.run(pipeline, run_id, deadline).await {
            Ok(run) => run,
            Err(e) => {
                warn!(lock_key = %grant.lock_key, run_id, error = %e, "could not read the run's state");
                return Settled::Unknown;
            }
        };
        if !run.belongs_to(&grant.lock_id) {
            warn!(lock_key = %grant.lock_key, run_id, "the recorded run does not carry this grant; leaving the lock alone");
            return Settled::Unknown;
        }
        if run.is_alive() {
            self.keep_alive(grant, run_id, deadline).await
        } else {
            self.end_with_run(grant, binding, &run, deadline).await
        }
    }

    /// A grant made for a pipeline whose run id was never recorded (the
    /// dispatch's answer was lost, or recording it failed): look the run up
    /// by the grant's lock id and record it. `Ok(None)`: no run was started.
    async fn find_unrecorded(
        &self,
        grant: &LockRecord,
        pipeline: &PipelineConfig,
        deadline: Instant,
    ) -> Result<Option<u64>, Settled> {
        let found = match self
            .pipeline
            .find_run(pipeline, &grant.lock_id, deadline)
            .await
        {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(None),
            Err(e) => {
                warn!(lock_key = %grant.lock_key, error = %e, "could not look for the grant's run");
                return Err(Settled::Unknown);
            }
        };
        let Some(run_id) = found.run_id else {
            return Err(Settled::Unknown);
        };
        match self
            .locks
            .set_run(
                &grant.lock_key,
                &grant.lock_id,
                Some(run_id),
                &found.run_url,
            )
            .await
        {
            Ok(_) => {
                info!(lock_key = %grant.lock_key, run_id, "recorded a run its dispatch never named");
                Ok(Some(run_id))
            }
            Err(e) => {
                warn!(lock_key = %grant.lock_key, run_id, error = %e, "could not record the grant's run");
                Err(Settled::Unknown)
            }
        }
    }

    /// Drops the waiters of `grant`'s line whose maximum wait passed (and
    /// tells them), and hands a lapsed grant made for no pipeline (a CLI
    /// holder that died) to the line's head. Pipeline grants end through
    /// [`Worker::settle`], whose release hands their key on.
    async fn tend_line(&self, grant: &LockRecord, deadline: Instant) {
        let now_ms = self.locks.now_millis();
        for waiter in grant.waiters.iter().filter(|w| w.is_overdue(now_ms)) {
            if let Ok(left) = self.locks.leave(&grant.lock_key, &waiter.ticket).await {
                self.tell_dropped(&grant.lock_key, &left.waiter, deadline)
                    .await;
            }
        }
        // end_lapsed decides whether the lease lapsed (to the millisecond)
        // before it writes anything.
        if grant.pipeline.is_none() && !grant.waiters.is_empty() {
            match self.locks.end_lapsed(grant).await {
                Ok(Some(ended)) => {
                    warn!(lock_key = %grant.lock_key, holder = %grant.locked_by, "lapsed grant handed to the head of its line");
                    self.hand_off(ended, deadline).await;
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(lock_key = %grant.lock_key, error = %e, "could not hand a lapsed grant on")
                }
            }
        }
    }

    /// A grant handed to a queued request has no run: once the worker that
    /// made the hand-off has had time to start it
    /// ([`WorkerSettings::handoff_grace`]), start it here.
    async fn resume_hand_off(&self, grant: &LockRecord, deadline: Instant) -> Settled {
        let age = self.held_for(grant);
        if age < self.settings.handoff_grace.as_secs() {
            return Settled::Alive;
        }
        warn!(lock_key = %grant.lock_key, age, "a queued request's grant has no run; starting it");
        let handed = Grant {
            record: grant.clone(),
            kind: GrantKind::New,
        };
        if let Some(ended) = self.start_handed_off(handed, deadline).await {
            self.hand_off(ended, deadline).await;
            return Settled::NotStarted;
        }
        Settled::Renewed
    }

    /// No run was started under a pipeline grant. Once its lease has lapsed
    /// nothing will be: the grant ends, so the key is free again.
    async fn end_unstarted(&self, grant: &LockRecord, deadline: Instant) -> Settled {
        if grant.state_at(self.now_secs()) != LockState::Expired {
            return Settled::NotPipeline;
        }
        let mut release = ReleaseRequest::new(&grant.lock_key, &grant.lock_id, LockStatus::Failed);
        release.fence = Some(grant.fence);
        release.actor = Some(RECONCILER.into());
        release.reason = Some("lease lapsed and no pipeline run was started under it".into());
        match self.locks.release(&release).await {
            Ok(ended) => {
                warn!(lock_key = %grant.lock_key, "lapsed pipeline grant with no run; ended");
                self.hand_off(ended, deadline).await;
                Settled::NotStarted
            }
            Err(e) => {
                info!(lock_key = %grant.lock_key, error = %e, "grant changed while settling; leaving it");
                Settled::Unknown
            }
        }
    }

    /// The run is still queued or working: renew its lease once less than
    /// half is left, and tell the channel if it had already lapsed.
    async fn keep_alive(&self, grant: &LockRecord, run_id: u64, deadline: Instant) -> Settled {
        let now = self.now_secs();
        let lapsed = grant.state_at(now) == LockState::Expired;
        let lease = self.settings.reconcile_lease;
        if !lapsed && grant.expires_at.saturating_sub(now) > lease.as_secs() / 2 {
            return Settled::Alive;
        }
        match self
            .locks
            .renew(&grant.lock_key, &grant.lock_id, lease)
            .await
        {
            Ok(renewed) => {
                info!(lock_key = %grant.lock_key, run_id, expires_at = renewed.expires_at, lapsed, "lease renewed for a working run");
                if lapsed {
                    let notice = render::lease_lapsed_under_run(
                        &grant.lock_key,
                        &grant.locked_by,
                        grant.run_url.as_deref(),
                    );
                    self.notify(grant, notice, deadline).await;
                }
                Settled::Renewed
            }
            Err(e) => {
                warn!(lock_key = %grant.lock_key, run_id, error = %e, "could not renew the lease of a working run");
                Settled::Unknown
            }
        }
    }

    /// The run has ended but its report never came: end the grant bound to
    /// that run, and tell the channel.
    async fn end_with_run(
        &self,
        grant: &LockRecord,
        binding: &PipelineRun,
        run: &WorkflowRun,
        deadline: Instant,
    ) -> Settled {
        let run_id = run.id;
        let conclusion = run.verdict;
        let outcome = if conclusion.succeeded() {
            LockStatus::Completed
        } else {
            LockStatus::Failed
        };
        let mut release = ReleaseRequest::new(&grant.lock_key, &grant.lock_id, outcome);
        release.fence = Some(grant.fence);
        release.actor = Some(RECONCILER.into());
        release.reason = Some(format!(
            "pipeline {} (found by the reconciler)",
            run.conclusion.as_deref().unwrap_or("ended")
        ));
        release.run = RunCheck::Recorded {
            repository: binding.repository.clone(),
            workflow: binding.workflow.clone(),
            run_id,
        };
        match self.locks.release(&release).await {
            Ok(ended) => {
                warn!(lock_key = %grant.lock_key, run_id, status = %ended.status, "run ended without a completion report; lock released");
                let notice = render::completed_unreported(
                    &grant.lock_key,
                    conclusion,
                    &grant.locked_by,
                    self.held_for(grant),
                    run.html_url.as_deref().or(grant.run_url.as_deref()),
                );
                if let Outcome::Retry(why) = self.report_end(&ended, None, notice, deadline).await {
                    warn!(lock_key = %grant.lock_key, reason = %why, "the channel was not told");
                }
                self.hand_off(ended, deadline).await;
                Settled::Ended
            }
            Err(e) => {
                info!(lock_key = %grant.lock_key, run_id, error = %e, "grant changed while settling; leaving it");
                Settled::Unknown
            }
        }
    }

    async fn notify(&self, grant: &LockRecord, notice: baton_chatops::Reply, deadline: Instant) {
        let Some(channel) = channel_from_correlation(grant) else {
            return;
        };
        if let Outcome::Retry(why) = self
            .post(notice.with_channel(channel), &grant.lock_key, deadline)
            .await
        {
            warn!(lock_key = %grant.lock_key, reason = %why, "the channel was not told");
        }
    }
}

/// Compile-time checks: a pass and a batch can be spawned on a
/// multi-threaded runtime (their futures are `Send`).
#[cfg(test)]
#[allow(dead_code)]
fn futures_are_send(worker: &Worker, event: aws_lambda_events::event::sqs::SqsEvent) {
    fn send<T: Send>(_: T) {}
    send(worker.reconcile(Instant::now()));
    send(worker.handle_until(event, Instant::now()));
}
