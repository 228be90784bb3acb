//! Running `/command component environment`: take the grant, dispatch the
//! pipeline under it, record the run, and tell the user; and every way that
//! can end early (held, ended before, lapsed, redelivered, dry run).

use std::collections::BTreeMap;
use std::time::Duration;

use baton_chatops::render::{self, RunEnded};
use baton_chatops::{CommandConfig, CommandMessage, Request, Target};
use baton_lock::{
    AcquireRequest, Grant, GrantKind, LockError, LockRecord, LockState, LockStatus, PipelineRun,
    ReleaseRequest, Takeover,
};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::emf::{self, Metric};
use crate::ports::{DispatchError, DispatchedRun};
use crate::reconcile::Settled;

use super::{Outcome, Worker, view};
use crate::origin::SlackOrigin;
use crate::ports::{Chat, Pipeline};
use baton_lock::LockStore;

impl<S: LockStore, C: Chat, P: Pipeline> Worker<S, C, P> {
    pub(super) async fn command(
        &self,
        id: &str,
        receive_count: u32,
        message: &CommandMessage,
        request: &Request,
        deadline: Instant,
    ) -> Outcome {
        let Some(config) = self.settings.config.command(request.command()) else {
            // parse_request only returns requests for configured commands.
            error!(message_id = %id, command = %request.command(), "command vanished from config");
            return Outcome::Done;
        };
        let waited = self.locks.now_millis().saturating_sub(message.received_at);
        let acts = !matches!(
            request,
            Request::Help { .. }
                | Request::Status { .. }
                | Request::Queue { .. }
                | Request::History { .. }
        );
        if acts && Duration::from_millis(waited) > self.settings.max_command_age {
            info!(message_id = %id, user = %message.user_id, waited_ms = waited, "command expired in the queue; not run");
            let reply = render::request_expired(&message.command, &message.text, waited / 1000);
            return self.reply(message, &reply, deadline).await;
        }
        match request {
            Request::Help { .. } => self.reply(message, &render::help(config), deadline).await,
            Request::Status { command } => self.status(message, command, deadline).await,
            Request::Unlock {
                lock_key,
                reason,
                keep_run,
                ..
            } => {
                self.unlock(message, config, lock_key, reason, *keep_run, deadline)
                    .await
            }
            Request::Cancel { lock_key, .. } => {
                self.cancel(message, config, lock_key, deadline).await
            }
            Request::Queue { target, .. } => {
                self.show_queue(message, config, target.as_ref(), deadline)
                    .await
            }
            Request::History { target, lock_key } => {
                self.show_history(message, target, lock_key, deadline).await
            }
            Request::Leave { target, lock_key } => {
                self.leave(message, config, target, lock_key, deadline)
                    .await
            }
            Request::Freeze {
                environment,
                duration,
                reason,
                ..
            } => {
                self.freeze(message, config, environment, *duration, reason, deadline)
                    .await
            }
            Request::Unfreeze { environment, .. } => {
                self.unfreeze(message, config, environment, deadline).await
            }
            Request::Run {
                target,
                lock_key,
                dry_run,
                force,
                override_freeze,
                ..
            } => {
                let mut run = self.run_of(id, receive_count, message, config, target, lock_key);
                run.override_freeze = *override_freeze;
                if *dry_run {
                    self.dry_run(&run, deadline).await
                } else if let Some(force) = force.as_ref().filter(|_| run.locked) {
                    self.take_over(&run, force, deadline).await
                } else {
                    if !run.locked {
                        warn!(lock_key = %run.lock_key, locking_enabled = self.settings.locking_enabled, "dispatching without a lock");
                    }
                    self.start(&run, deadline).await
                }
            }
        }
    }

    /// The run `/command component environment` asks for: on the target's
    /// lock, or on a key of this request alone when it takes no lock.
    pub(super) fn run_of<'a>(
        &self,
        id: &'a str,
        receive_count: u32,
        message: &'a CommandMessage,
        config: &'a CommandConfig,
        target: &'a Target,
        lock_key: &'a str,
    ) -> Run<'a> {
        let locked = self.settings.locking_enabled && config.requires_lock;
        Run {
            id,
            receive_count,
            message,
            config,
            target,
            lock_key,
            key: if locked {
                lock_key.to_owned()
            } else {
                format!("{REQUEST_KEY_PREFIX}{}", message.trigger_id)
            },
            locked,
            override_freeze: false,
        }
    }

    /// Takes the grant a run works under, then dispatches the run. With a
    /// lock the grant is the target's lock; without one (the command needs
    /// none, or locking is switched off) it is a grant on a key of this
    /// request alone: it blocks nobody, but a redelivery finds its dispatch.
    pub(super) async fn start(&self, run: &Run<'_>, deadline: Instant) -> Outcome {
        let request = self.acquire_request(run);
        // A lapsed grant whose run may still work is not taken over: it is
        // settled against its run first, and the acquire tried once more.
        for attempt in 0..2 {
            let grant = match self.locks.acquire(&request).await {
                Ok(grant) => grant,
                Err(LockError::Held { holder }) => {
                    let now = self.now_secs();
                    if attempt == 0
                        && holder.state_at(now) == LockState::Expired
                        && matches!(
                            self.settle(&holder, deadline).await,
                            Settled::Ended | Settled::NotStarted
                        )
                    {
                        continue;
                    }
                    if run.locked && run.config.on_conflict.queues() {
                        return self.queue_up(run, &request, *holder, deadline).await;
                    }
                    return self.held(run, &holder, deadline).await;
                }
                Err(LockError::RequestSuperseded { current, .. }) => {
                    // A late duplicate of a command that already ran: its grant
                    // ended and the key has been granted again since.
                    info!(lock_key = %run.key, current_fence = current.fence, "late duplicate of a finished command; nothing to do");
                    return Outcome::Done;
                }
                Err(LockError::RequestEnded { record }) => {
                    return self.ended_before(run, &record, deadline).await;
                }
                Err(LockError::RequestLapsed { record }) => {
                    return self.lapsed(run, &record, deadline).await;
                }
                Err(LockError::Frozen { freeze, .. }) => {
                    return self.frozen(run, &freeze, deadline).await;
                }
                Err(e) => return self.lock_failure(run.message, run.id, e, deadline).await,
            };
            match grant.kind {
                GrantKind::Existing => return self.redelivered(run, grant, deadline).await,
                GrantKind::TakenOver { ref from } => {
                    warn!(lock_key = %run.key, previous = %from.locked_by, "took over an expired lock");
                    emf::emit(Metric::LockAcquired, &run.target.command, 1.0);
                }
                GrantKind::New | GrantKind::Checked => {
                    emf::emit(Metric::LockAcquired, &run.target.command, 1.0)
                }
            }
            info!(lock_key = %run.key, fence = grant.fence(), locked = run.locked, "grant taken");
            return self.dispatch(run, &grant, deadline).await;
        }
        error!(lock_key = %run.key, "the lock was settled but could not be taken");
        self.reply(run.message, &render::internal_error(run.id), deadline)
            .await
    }

    pub(super) fn acquire_request(&self, run: &Run<'_>) -> AcquireRequest {
        let message = run.message;
        let mut request = AcquireRequest::new(&run.key, &message.user_id, run.config.lock_ttl);
        request.request_id = Some(request_id(message));
        request.owner_name = message.user_name.clone();
        request.purpose = Some(if run.override_freeze {
            format!("{} --override-freeze", run.target.invocation())
        } else {
            run.target.invocation()
        });
        // Every run is refused while an admin's freeze of its environment
        // is in force (checked in the acquire's own request), unless an
        // admin overrides it; the key is the one `freeze` writes.
        request.unless_frozen = match super::freeze::freeze_key(run.config, &run.target.environment)
        {
            Ok(key) if !run.override_freeze => Some(key),
            _ => None,
        };
        request.component = Some(run.target.component.clone());
        request.environment = Some(run.target.environment.clone());
        request.correlation_id = Some(slack_correlation(message));
        request.pipeline = Some(PipelineRun {
            repository: run.config.pipeline.repository(),
            workflow: run.config.pipeline.workflow(),
            run_id: None,
        });
        request.takeover = Takeover::UnlessPipeline;
        request
    }

    async fn held(&self, run: &Run<'_>, holder: &LockRecord, deadline: Instant) -> Outcome {
        emf::emit(Metric::LockHeld, &run.target.command, 1.0);
        info!(lock_key = %run.key, holder = %holder.locked_by, "lock held; telling the requester");
        // The settle above may have renewed the holder: show the lease it has now.
        let holder = match self.locks.status(&run.key).await {
            Ok(Some(current)) if current.lock_id == holder.lock_id => current,
            _ => holder.clone(),
        };
        let reply = render::held(run.target, &view(&holder), self.now_secs());
        self.reply(run.message, &reply, deadline).await
    }

    /// This request's grant already ended: never a second run. If it ended
    /// because the dispatch failed, the user hears it again (the first
    /// answer may not have reached them).
    async fn ended_before(&self, run: &Run<'_>, record: &LockRecord, deadline: Instant) -> Outcome {
        info!(lock_key = %run.key, status = %record.status, "redelivered after the run ended");
        match (&record.release_reason, record.status, record.forced) {
            (Some(reason), LockStatus::Failed, false)
                if record.released_by.as_deref() == Some(DISPATCHER) =>
            {
                let reply = render::dispatch_failed(run.target, reason);
                self.reply(run.message, &reply, deadline).await
            }
            // Its run started and ended: the start may never have been
            // announced, so the requester hears that it ran.
            _ if record.run_url.is_some() => self.already_ran(run, record, deadline).await,
            _ => Outcome::Done,
        }
    }

    /// Tells the requester that the run of their command already ended.
    async fn already_ran(&self, run: &Run<'_>, record: &LockRecord, deadline: Instant) -> Outcome {
        let ended = match record.status {
            _ if record.forced => RunEnded::Unlocked,
            LockStatus::Completed => RunEnded::Succeeded,
            _ => RunEnded::Failed,
        };
        let reply = render::already_ran(run.target, ended, record.run_url.as_deref());
        self.reply(run.message, &reply, deadline).await
    }

    /// A redelivery whose grant lapsed never dispatches under it. Whether a
    /// run works under the grant is the pipeline's to say: a working run
    /// keeps its grant (renewed) and the user hears it started; a finished
    /// one ends it; with no run at all the grant ends and the user is told
    /// nothing was started.
    async fn lapsed(&self, run: &Run<'_>, record: &LockRecord, deadline: Instant) -> Outcome {
        match self.settle(record, deadline).await {
            Settled::Alive | Settled::Renewed => match self.locks.status(&run.key).await {
                Ok(Some(current))
                    if current.lock_id == record.lock_id && current.run_url.is_some() =>
                {
                    info!(lock_key = %run.key, "redelivered after its lease lapsed; its run is working and keeps the grant");
                    let grant = Grant {
                        record: current,
                        kind: GrantKind::Existing,
                    };
                    self.redelivered(run, grant, deadline).await
                }
                Ok(_) => Outcome::Done,
                Err(e) => Outcome::Retry(format!("reading the lapsed grant: {e}")),
            },
            // Every grant the worker takes is bound to its pipeline, so a
            // grant settle leaves alone (NotPipeline) has changed meanwhile.
            Settled::Ended | Settled::NotPipeline => {
                info!(lock_key = %run.key, "redelivered after its lease lapsed; its run had ended");
                match self.locks.status(&run.key).await {
                    Ok(Some(ended))
                        if ended.lock_id == record.lock_id && ended.run_url.is_some() =>
                    {
                        self.already_ran(run, &ended, deadline).await
                    }
                    _ => Outcome::Done,
                }
            }
            Settled::Unknown => {
                Outcome::Retry("cannot tell yet whether the lapsed grant's run started".into())
            }
            Settled::NotStarted => {
                let reply = render::lapsed_before_start(run.target);
                self.reply(run.message, &reply, deadline).await
            }
        }
    }

    /// The same message again (SQS delivers at least once) while its grant
    /// is live. Never a second dispatch for one request; never "already in
    /// progress" to its author.
    pub(super) async fn redelivered(
        &self,
        run: &Run<'_>,
        grant: Grant,
        deadline: Instant,
    ) -> Outcome {
        let record = &grant.record;
        if let Some(url) = &record.run_url {
            // Dispatched before; its announcement may not have reached Slack.
            info!(lock_key = %run.key, "redelivered after dispatch; announcing again");
            let dispatched = DispatchedRun {
                run_id: record.pipeline.as_ref().and_then(|p| p.run_id),
                run_url: url.clone(),
                // Only the workflow's page is recorded when GitHub named no run.
                exact: *url != self.pipeline.workflow_page(&run.config.pipeline),
            };
            return self.announce(run, &grant, &dispatched, deadline).await;
        }
        // The earlier attempt may have dispatched and lost the answer: ask GitHub.
        match self
            .pipeline
            .find_run(&run.config.pipeline, grant.lock_id(), deadline)
            .await
        {
            Ok(Some(found)) => {
                info!(lock_key = %run.key, run_url = %found.run_url, "found the run an earlier attempt started");
                self.record_run(run, &grant, &found).await;
                self.announce(run, &grant, &found, deadline).await
            }
            Ok(None) => self.dispatch(run, &grant, deadline).await,
            Err(e) => self.dispatch_failure(run, &grant, e, deadline).await,
        }
    }

    pub(super) async fn dispatch(
        &self,
        run: &Run<'_>,
        grant: &Grant,
        deadline: Instant,
    ) -> Outcome {
        let inputs = run.inputs(grant.lock_id(), grant.fence());
        match self.pipeline.dispatch(&run.config.pipeline, &inputs).await {
            Ok(dispatched) => {
                emf::emit(Metric::Dispatched, &run.target.command, 1.0);
                info!(lock_key = %run.key, run_url = %dispatched.run_url, run_id = ?dispatched.run_id, "pipeline dispatched");
                // Mark the grant as dispatched before telling anyone, so a
                // redelivery can never dispatch again.
                self.record_run(run, grant, &dispatched).await;
                self.announce(run, grant, &dispatched, deadline).await
            }
            Err(e) => self.dispatch_failure(run, grant, e, deadline).await,
        }
    }

    pub(super) async fn record_run(
        &self,
        run: &Run<'_>,
        grant: &Grant,
        dispatched: &DispatchedRun,
    ) {
        if let Err(e) = self
            .locks
            .set_run(
                &run.key,
                grant.lock_id(),
                dispatched.run_id,
                &dispatched.run_url,
            )
            .await
        {
            warn!(lock_key = %run.key, error = %e, "could not record the run on the lock");
        }
    }

    async fn announce(
        &self,
        run: &Run<'_>,
        grant: &Grant,
        dispatched: &DispatchedRun,
        deadline: Instant,
    ) -> Outcome {
        let link = dispatched.exact.then_some(dispatched.run_url.as_str());
        let reply = if run.override_freeze {
            let frozen = self.overridden_freeze(run).await;
            warn!(lock_key = %run.key, actor = %run.message.user_id, frozen = ?frozen, "run started through a freeze (override)");
            let reply = if run.locked {
                render::started(run.target, &run.message.user_id, &view(&grant.record), link)
            } else {
                render::started_unlocked(run.target, &run.message.user_id, link)
            };
            reply.with_freeze_override(&run.message.user_id, frozen.as_ref())
        } else if run.locked {
            render::started(run.target, &run.message.user_id, &view(&grant.record), link)
        } else {
            let reply = render::started_unlocked(run.target, &run.message.user_id, link);
            if self.settings.locking_enabled {
                reply
            } else {
                reply.with_locking_disabled_notice()
            }
        };
        self.reply(run.message, &reply, deadline).await
    }

    async fn dispatch_failure(
        &self,
        run: &Run<'_>,
        grant: &Grant,
        error: DispatchError,
        deadline: Instant,
    ) -> Outcome {
        emf::emit(Metric::DispatchFailed, &run.target.command, 1.0);
        if let DispatchError::Unavailable { detail: why, .. } = &error {
            if run.receive_count < self.settings.max_receives {
                // Keep the lock (same request id finds it again) and retry via the queue.
                return Outcome::Retry(format!("dispatch: {why}"));
            }
            // The last delivery. A 5xx or a timeout may still have started
            // the run (now or on an earlier delivery): ask before giving up.
            match self
                .pipeline
                .find_run(&run.config.pipeline, grant.lock_id(), deadline)
                .await
            {
                Ok(Some(found)) => {
                    info!(lock_key = %run.key, run_url = %found.run_url, "the unanswered dispatch did start a run");
                    self.record_run(run, grant, &found).await;
                    return self.announce(run, grant, &found, deadline).await;
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(lock_key = %run.key, error = %e, "cannot tell whether the run started; keeping the lock until its lease ends");
                    let kind = run.config.pipeline.kind();
                    let reply = render::dispatch_unconfirmed(
                        run.target,
                        kind,
                        why,
                        grant.record.expires_at,
                    );
                    return self.reply(run.message, &reply, deadline).await;
                }
            }
        }
        error!(lock_key = %run.key, error = %error, receive_count = run.receive_count, "dispatch failed; releasing the lock");
        let reason = error.to_string();
        let mut release = ReleaseRequest::new(&run.key, grant.lock_id(), LockStatus::Failed);
        release.actor = Some(DISPATCHER.to_owned());
        release.reason = Some(reason.clone());
        release.fence = Some(grant.fence());
        match self.locks.release(&release).await {
            Ok(ended) => self.hand_off(ended, deadline).await,
            Err(e) if e.is_transient() => {
                return Outcome::Retry(format!("release after failed dispatch: {e}"));
            }
            Err(e) => {
                error!(lock_key = %run.key, error = %e, "could not release after a failed dispatch")
            }
        }
        let reply = render::dispatch_failed(run.target, &reason);
        self.reply(run.message, &reply, deadline).await
    }

    async fn dry_run(&self, run: &Run<'_>, deadline: Instant) -> Outcome {
        let current = if self.settings.locking_enabled && run.config.requires_lock {
            match self.locks.status(run.lock_key).await {
                Ok(record) => record
                    .filter(|r| r.status == LockStatus::InProgress)
                    .map(|r| view(&r)),
                Err(e) => return self.lock_failure(run.message, run.id, e, deadline).await,
            }
        } else {
            None
        };
        let mut reply = render::dry_run(
            run.target,
            run.lock_key,
            run.config,
            current.as_ref(),
            self.now_secs(),
        );
        if !self.settings.locking_enabled {
            reply = reply.with_locking_disabled_notice();
        }
        self.reply(run.message, &reply, deadline).await
    }
}

/// Who ends a grant whose dispatch failed (its `releasedBy`), so a
/// redelivery can tell the user again why nothing started.
pub(super) const DISPATCHER: &str = "baton:dispatch";

/// Unlocked runs take a grant on `request#<trigger_id>`: a key of their
/// own, so a redelivery finds its dispatch while nobody else is blocked.
const REQUEST_KEY_PREFIX: &str = "request#";

/// One `/command component environment` being run.
pub(super) struct Run<'a> {
    pub(super) id: &'a str,
    pub(super) receive_count: u32,
    pub(super) message: &'a CommandMessage,
    pub(super) config: &'a CommandConfig,
    pub(super) target: &'a Target,
    /// The target's lock key.
    lock_key: &'a str,
    /// The key the run's grant is on: the lock key, or this request's own
    /// key when the run takes no lock.
    pub(super) key: String,
    /// Whether the run holds the target's lock.
    locked: bool,
    /// `--override-freeze`: an admin runs through a freeze; the grant
    /// skips the freeze check and says so in its purpose.
    pub(super) override_freeze: bool,
}

impl Run<'_> {
    /// Workflow inputs (template parameters in Azure DevOps): baton's own,
    /// then the configured extras.
    pub(super) fn inputs(&self, lock_id: &str, fence: u64) -> BTreeMap<String, String> {
        let mut inputs = self.config.pipeline.extra_inputs().clone();
        inputs.insert("component".into(), self.target.component.clone());
        inputs.insert("environment".into(), self.target.environment.clone());
        inputs.insert("lock_key".into(), self.key.clone());
        inputs.insert("lock_id".into(), lock_id.to_owned());
        inputs.insert("fence".into(), fence.to_string());
        inputs.insert("requested_by".into(), self.message.user_id.clone());
        inputs
    }
}

/// The idempotency key of a command: Slack's id for the invocation, the
/// same on every redelivery of it whatever SQS message carries it.
fn request_id(message: &CommandMessage) -> String {
    format!("slack:{}", message.trigger_id)
}

/// Where a command came from, stored as the lock's `correlationId` so a
/// completion can be posted back to the same channel.
fn slack_correlation(message: &CommandMessage) -> String {
    SlackOrigin {
        team: message.team_id.clone(),
        channel: message.channel_id.clone(),
    }
    .to_string()
}
