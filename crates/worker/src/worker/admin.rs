//! The commands about locks rather than runs: `status`, `unlock` and
//! `cancel`, and stopping the run of a grant they end.

use baton_chatops::render::{self, RunStop};
use baton_chatops::{CommandConfig, CommandMessage, PipelineConfig, key_base};
use baton_lock::{ListQuery, LockError, LockRecord, LockStatus, ReleaseRequest};
use tokio::time::Instant;
use tracing::{info, warn};

use super::{Outcome, Worker, view};
use crate::ports::{Chat, Pipeline};
use baton_lock::LockStore;

impl<S: LockStore, C: Chat, P: Pipeline> Worker<S, C, P> {
    pub(super) async fn status(
        &self,
        message: &CommandMessage,
        command: &str,
        deadline: Instant,
    ) -> Outcome {
        let locks: Vec<_> = match self.command_locks(command).await {
            Ok(records) => records.iter().map(view).collect(),
            Err(e) => {
                return self
                    .lock_failure(message, &message.trigger_id, e, deadline)
                    .await;
            }
        };
        self.reply(
            message,
            &render::status(command, &locks, self.now_secs()),
            deadline,
        )
        .await
    }

    /// The active grants on `command`'s keys (up to 20 pages of them). The
    /// query reads every key with the command's prefix; only the keys the
    /// command's own runs take are kept, so `/build status` never shows a
    /// lock of `/build-x`.
    pub(super) async fn command_locks(&self, command: &str) -> Result<Vec<LockRecord>, LockError> {
        let Some(config) = self.settings.config.command(command) else {
            return Ok(Vec::new());
        };
        let mut query = ListQuery {
            prefix: Some(key_base(command)),
            ..Default::default()
        };
        let mut locks = Vec::new();
        for _ in 0..20 {
            let page = self.locks.list(&query).await?;
            locks.extend(
                page.locks
                    .into_iter()
                    .filter(|r| config.owns_key(&r.lock_key)),
            );
            match page.next_page_token {
                Some(token) => query.page_token = Some(token),
                None => break,
            }
        }
        Ok(locks)
    }

    /// An admin's force unlock: ends only the grant that existed when the
    /// command was typed (a newer one is refused, with its holder shown),
    /// and cancels that grant's pipeline run unless told to keep it.
    pub(super) async fn unlock(
        &self,
        message: &CommandMessage,
        config: &CommandConfig,
        lock_key: &str,
        reason: &str,
        keep_run: bool,
        deadline: Instant,
    ) -> Outcome {
        let seen = message.received_at / 1000;
        match self
            .locks
            .force_unlock_seen(lock_key, &message.user_id, reason, seen)
            .await
        {
            Ok(ended) => {
                warn!(lock_key, actor = %message.user_id, holder = %ended.locked_by, fence = ended.fence, reason, "lock force-unlocked");
                let stop = if keep_run {
                    RunStop::Kept
                } else {
                    self.stop_run(config, &ended).await
                };
                let reply =
                    render::unlocked(lock_key, &message.user_id, reason, Some(&view(&ended)))
                        .with_run_stop(&stop);
                let outcome = self.reply(message, &reply, deadline).await;
                self.hand_off(ended, deadline).await;
                outcome
            }
            Err(LockError::NotHeld {
                current: Some(current),
                ..
            }) if current.status == LockStatus::InProgress => {
                info!(lock_key, actor = %message.user_id, fence = current.fence, "unlock refused: the grant changed since the command was typed");
                let reply = render::unlock_changed(lock_key, &view(&current));
                self.reply(message, &reply, deadline).await
            }
            Err(LockError::NotHeld { .. }) => {
                self.reply(message, &render::nothing_to_unlock(lock_key), deadline)
                    .await
            }
            Err(e) => {
                self.lock_failure(message, &message.trigger_id, e, deadline)
                    .await
            }
        }
    }

    /// The holder stops their own run: the grant ends as FAILED and its
    /// pipeline run is cancelled.
    pub(super) async fn cancel(
        &self,
        message: &CommandMessage,
        config: &CommandConfig,
        lock_key: &str,
        deadline: Instant,
    ) -> Outcome {
        let current = match self.locks.status(lock_key).await {
            Ok(current) => current.filter(|r| r.status == LockStatus::InProgress),
            Err(e) => {
                return self
                    .lock_failure(message, &message.trigger_id, e, deadline)
                    .await;
            }
        };
        let Some(current) = current else {
            return self
                .reply(message, &render::nothing_to_cancel(lock_key), deadline)
                .await;
        };
        if current.locked_by != message.user_id {
            info!(lock_key, user = %message.user_id, holder = %current.locked_by, "cancel refused: not the holder");
            let reply = render::cancel_not_yours(lock_key, &view(&current));
            return self.reply(message, &reply, deadline).await;
        }
        let mut release = ReleaseRequest::new(lock_key, &current.lock_id, LockStatus::Failed);
        release.actor = Some(message.user_id.clone());
        release.reason = Some("cancelled by the holder".into());
        match self.locks.release(&release).await {
            Ok(ended) => {
                let stop = self.stop_run(config, &ended).await;
                let reply = render::cancelled(lock_key, &message.user_id, &view(&ended))
                    .with_run_stop(&stop);
                let outcome = self.reply(message, &reply, deadline).await;
                self.hand_off(ended, deadline).await;
                outcome
            }
            Err(LockError::NotOwner { .. } | LockError::AlreadyEnded { .. }) => {
                self.reply(message, &render::nothing_to_cancel(lock_key), deadline)
                    .await
            }
            Err(e) => {
                self.lock_failure(message, &message.trigger_id, e, deadline)
                    .await
            }
        }
    }

    /// Cancels the pipeline run recorded on an ended grant.
    pub(super) async fn stop_run(&self, config: &CommandConfig, ended: &LockRecord) -> RunStop {
        let Some(run_id) = ended.pipeline.as_ref().and_then(|p| p.run_id) else {
            return RunStop::NoRun;
        };
        match self.pipeline.cancel(&config.pipeline, run_id).await {
            Ok(()) => {
                info!(lock_key = %ended.lock_key, run_id, "pipeline run cancelled");
                RunStop::Cancelled
            }
            Err(e) => {
                warn!(lock_key = %ended.lock_key, run_id, error = %e, "pipeline run could not be cancelled");
                RunStop::Failed(e.to_string())
            }
        }
    }

    /// The configured pipeline a run of `repository`/`workflow` belongs to.
    pub(crate) fn pipeline_of(&self, repository: &str, workflow: &str) -> Option<&PipelineConfig> {
        self.settings
            .config
            .commands()
            .map(|c| &c.pipeline)
            .find(|p| p.repository().eq_ignore_ascii_case(repository) && p.workflow() == workflow)
    }
}
