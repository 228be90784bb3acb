//! The worker's decisions: what each queued record means, which lock it
//! takes, what it dispatches, and what the user is told.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use baton_chatops::render::{self, LockView, RunStop};
use baton_chatops::{
    CommandConfig, CommandError, CommandMessage, CompletionMessage, Config, MessageError,
    PipelineConfig, PostMessage, QueueMessage, Reply, Request, ResponseType, parse_request,
};
use baton_lock::clock::{now_epoch_millis, now_epoch_secs};
use baton_lock::{
    AcquireRequest, Grant, GrantKind, ListQuery, LockClient, LockError, LockRecord, LockState,
    LockStatus, PipelineRun, ReleaseRequest, RunCheck, Takeover,
};
use baton_runtime::Secret;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::emf::{self, Metric};
use crate::github::{DispatchError, DispatchedRun, GitHub};
use crate::reconcile::Settled;
use crate::slack::{Slack, SlackError};

/// Everything the worker needs besides the lock table, resolved once at
/// cold start (see [`crate::settings`]).
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub config: Config,
    /// The rollback switch (`ENABLE_DISTRIBUTED_LOCK=false`): dispatch without locking.
    pub locking_enabled: bool,
    pub slack_api_url: String,
    /// Replies go only to `response_url`s under this prefix.
    pub slack_response_url_prefix: String,
    pub slack_bot_token: Secret,
    pub github_api_url: String,
    pub github_web_url: String,
    pub github_token: Secret,
    /// The queue's `maxReceiveCount`: on the last delivery a still-failing
    /// dispatch gives up, releases the lock and tells the user, instead of
    /// leaving the message to the dead-letter queue in silence.
    pub max_receives: u32,
    /// Time budget for a batch when no Lambda deadline is known.
    pub default_budget: Duration,
    /// Timeout of one HTTP attempt to Slack or GitHub.
    pub http_timeout: Duration,
    /// Commands that waited in the queue longer than this (from the
    /// router's `received_at`) are answered "expired" and never run.
    pub max_command_age: Duration,
    /// The lease the reconciler gives a run it finds still working.
    pub reconcile_lease: Duration,
}

impl WorkerSettings {
    /// Settings for a worker whose Slack and GitHub are local stand-ins (the
    /// demo, tests and benchmarks): Slack's Web API at `{slack_base}/api`,
    /// replies accepted under `{slack_base}/response/`, GitHub's REST API at
    /// `github_base`, placeholder tokens, locking on.
    pub fn local(config: Config, slack_base: &str, github_base: &str) -> WorkerSettings {
        WorkerSettings {
            config,
            locking_enabled: true,
            slack_api_url: format!("{slack_base}/api"),
            slack_response_url_prefix: format!("{slack_base}/response/"),
            slack_bot_token: Secret::new("xoxb-local"),
            github_api_url: github_base.to_owned(),
            github_web_url: "https://github.example".into(),
            github_token: Secret::new("ghp-local"),
            max_receives: 5,
            default_budget: Duration::from_secs(10),
            http_timeout: Duration::from_secs(2),
            max_command_age: Duration::from_secs(15 * 60),
            reconcile_lease: Duration::from_secs(5 * 60),
        }
    }
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Finished (successfully or with the user told why not): delete it.
    Done,
    /// Put it back on the queue (reported in `batchItemFailures`).
    Retry(String),
}

/// A record, parsed once before the batch is scheduled.
enum Work {
    Command {
        message: Box<CommandMessage>,
        request: Result<Request, CommandError>,
    },
    Completion(CompletionMessage),
    Malformed(MessageError),
}

/// The SQS-triggered worker. Build once per cold start; `handle` each batch.
pub struct Worker {
    pub(crate) locks: LockClient,
    pub(crate) settings: WorkerSettings,
    pub(crate) slack: Slack,
    pub(crate) github: GitHub,
}

impl Worker {
    pub fn new(locks: LockClient, settings: WorkerSettings) -> anyhow::Result<Worker> {
        // reqwest is built without a default crypto provider; install ring once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(settings.http_timeout)
            .connect_timeout(settings.http_timeout)
            .build()?;
        let slack = Slack::new(
            http.clone(),
            &settings.slack_api_url,
            settings.slack_bot_token.clone(),
            settings.slack_response_url_prefix.clone(),
        );
        let github = GitHub::new(
            http,
            &settings.github_api_url,
            &settings.github_web_url,
            settings.github_token.clone(),
        );
        if !settings.locking_enabled {
            warn!(
                switch = "ENABLE_DISTRIBUTED_LOCK",
                "LOCKING IS DISABLED: commands dispatch without taking locks; concurrent runs are possible"
            );
        }
        Ok(Worker {
            locks,
            settings,
            slack,
            github,
        })
    }

    /// Handles a batch within the default budget (for `--event` replays).
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_until(event, Instant::now() + self.settings.default_budget)
            .await
    }

    /// Handles a batch, finishing by `deadline`. Records of one lock key run
    /// in queue order; different keys run concurrently. When a record must be
    /// retried, the later records of its key are returned too, so their order
    /// survives the retry.
    pub async fn handle_until(&self, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
        let prepared: Vec<(String, u32, Work)> =
            event.records.iter().map(|r| self.prepare(r)).collect();
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (index, (id, _, work)) in prepared.iter().enumerate() {
            let key = self.ordering_key(work).unwrap_or_else(|| id.clone());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(index),
                None => groups.push((key, vec![index])),
            }
        }
        let prepared = &prepared;
        let group_runs = groups.iter().map(|(_, members)| async move {
            let mut failed = Vec::new();
            for &index in members {
                let (id, receive_count, work) = &prepared[index];
                if !failed.is_empty() {
                    failed.push(id.clone());
                    continue;
                }
                if let Outcome::Retry(why) = self.process(id, *receive_count, work, deadline).await
                {
                    warn!(message_id = %id, reason = %why, "record goes back to the queue");
                    failed.push(id.clone());
                }
            }
            failed
        });
        let failed: Vec<String> = futures_util::future::join_all(group_runs)
            .await
            .into_iter()
            .flatten()
            .collect();
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failed
            .into_iter()
            .map(|id| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failure
            })
            .collect();
        response
    }

    fn prepare(&self, record: &SqsMessage) -> (String, u32, Work) {
        let id = record.message_id.clone().unwrap_or_default();
        let receive_count = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let work = match QueueMessage::parse(record.body.as_deref().unwrap_or_default()) {
            Ok(QueueMessage::Command(message)) => {
                let request = parse_request(
                    &self.settings.config,
                    &message.command,
                    &message.text,
                    &message.user_id,
                );
                Work::Command {
                    message: Box::new(message),
                    request,
                }
            }
            Ok(QueueMessage::Completion(completion)) => Work::Completion(completion),
            Err(e) => Work::Malformed(e),
        };
        (id, receive_count, work)
    }

    /// Records that touch the same lock must stay in order.
    fn ordering_key(&self, work: &Work) -> Option<String> {
        match work {
            Work::Command {
                request:
                    Ok(
                        Request::Run { lock_key, .. }
                        | Request::Unlock { lock_key, .. }
                        | Request::Cancel { lock_key, .. },
                    ),
                ..
            } => Some(lock_key.clone()),
            Work::Completion(c) => Some(c.lock_key.clone()),
            _ => None,
        }
    }

    async fn process(
        &self,
        id: &str,
        receive_count: u32,
        work: &Work,
        deadline: Instant,
    ) -> Outcome {
        match work {
            Work::Malformed(e) => {
                // Nothing can be done with it here; reporting it as failed
                // lets SQS move it to the dead-letter queue after its
                // receives, where an operator can read and replay it.
                error!(message_id = %id, receive_count, error = %e, "unreadable queue message; leaving it for the dead-letter queue");
                Outcome::Retry(format!("unreadable body: {e}"))
            }
            Work::Completion(c) => self.completion(id, c, deadline).await,
            Work::Command {
                message,
                request: Err(e),
            } => {
                info!(message_id = %id, user = %message.user_id, error = %e, "command refused");
                self.reply(message, &render::error(e), deadline).await
            }
            Work::Command {
                message,
                request: Ok(request),
            } => {
                self.command(id, receive_count, message, request, deadline)
                    .await
            }
        }
    }

    async fn command(
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
        let waited = now_epoch_millis().saturating_sub(message.received_at);
        let acts = !matches!(request, Request::Help { .. } | Request::Status { .. });
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
            Request::Run {
                command,
                component,
                environment,
                lock_key,
                dry_run,
            } => {
                let locked = self.settings.locking_enabled && config.requires_lock;
                let run = Run {
                    id,
                    receive_count,
                    message,
                    config,
                    command,
                    component,
                    environment,
                    lock_key,
                    key: if locked {
                        lock_key.clone()
                    } else {
                        format!("{REQUEST_KEY_PREFIX}{}", message.trigger_id)
                    },
                    locked,
                };
                if *dry_run {
                    self.dry_run(&run, deadline).await
                } else {
                    if !locked {
                        warn!(lock_key = %run.lock_key, locking_enabled = self.settings.locking_enabled, "dispatching without a lock");
                    }
                    self.start(&run, deadline).await
                }
            }
        }
    }

    /// Takes the grant a run works under, then dispatches the run. With a
    /// lock the grant is the target's lock; without one (the command needs
    /// none, or locking is switched off) it is a grant on a key of this
    /// request alone: it blocks nobody, but a redelivery finds its dispatch.
    async fn start(&self, run: &Run<'_>, deadline: Instant) -> Outcome {
        let request = self.acquire_request(run);
        // A lapsed grant whose run may still work is not taken over: it is
        // settled against its run first, and the acquire tried once more.
        for attempt in 0..2 {
            let grant = match self.locks.acquire(&request).await {
                Ok(grant) => grant,
                Err(LockError::Held { holder }) => {
                    let now = now_epoch_secs();
                    if attempt == 0
                        && holder.state_at(now) == LockState::Expired
                        && matches!(self.settle(&holder, deadline).await, Settled::Ended)
                    {
                        continue;
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
                Err(e) => return self.lock_failure(run.message, run.id, e, deadline).await,
            };
            match grant.kind {
                GrantKind::Existing => return self.redelivered(run, grant, deadline).await,
                GrantKind::TakenOver { ref from } => {
                    warn!(lock_key = %run.key, previous = %from.locked_by, "took over an expired lock");
                    emf::emit(Metric::LockAcquired, run.command, 1.0);
                }
                GrantKind::New => emf::emit(Metric::LockAcquired, run.command, 1.0),
            }
            info!(lock_key = %run.key, fence = grant.fence(), locked = run.locked, "grant taken");
            return self.dispatch(run, &grant, deadline).await;
        }
        error!(lock_key = %run.key, "the lock was settled but could not be taken");
        self.reply(run.message, &render::internal_error(run.id), deadline)
            .await
    }

    fn acquire_request(&self, run: &Run<'_>) -> AcquireRequest {
        let message = run.message;
        let mut request = AcquireRequest::new(&run.key, &message.user_id, run.config.lock_ttl);
        request.request_id = Some(request_id(message));
        request.owner_name = message.user_name.clone();
        request.purpose = Some(run.invocation());
        request.component = Some(run.component.to_owned());
        request.environment = Some(run.environment.to_owned());
        request.correlation_id = Some(slack_correlation(message));
        request.pipeline = Some(PipelineRun {
            repository: run.config.pipeline.repository(),
            workflow: run.config.pipeline.workflow.clone(),
            run_id: None,
        });
        request.takeover = Takeover::UnlessRunRecorded;
        request
    }

    async fn held(&self, run: &Run<'_>, holder: &LockRecord, deadline: Instant) -> Outcome {
        emf::emit(Metric::LockHeld, run.command, 1.0);
        info!(lock_key = %run.key, holder = %holder.locked_by, "lock held; telling the requester");
        // The settle above may have renewed the holder: show the lease it has now.
        let holder = match self.locks.status(&run.key).await {
            Ok(Some(current)) if current.lock_id == holder.lock_id => current,
            _ => holder.clone(),
        };
        let reply = render::held(
            run.command,
            run.component,
            run.environment,
            &view(&holder),
            now_epoch_secs(),
        );
        self.reply(run.message, &reply, deadline).await
    }

    /// This request's grant already ended: never a second run. If it ended
    /// because the dispatch failed, the user hears it again (the first
    /// answer may not have reached them).
    async fn ended_before(&self, run: &Run<'_>, record: &LockRecord, deadline: Instant) -> Outcome {
        info!(lock_key = %run.key, status = %record.status, "redelivered after the run ended");
        match (&record.release_reason, record.status, record.forced) {
            (Some(reason), LockStatus::Failed, false) if reason.starts_with(DISPATCH_FAILED) => {
                let reply =
                    render::dispatch_failed(run.command, run.component, run.environment, reason);
                self.reply(run.message, &reply, deadline).await
            }
            _ => Outcome::Done,
        }
    }

    /// This request's grant lapsed. Nothing is dispatched under it: if its
    /// run was recorded, that run is the request's one run (the reconciler
    /// looks after it); if not, the grant ends and the user is told to ask
    /// again for a fresh grant.
    async fn lapsed(&self, run: &Run<'_>, record: &LockRecord, deadline: Instant) -> Outcome {
        if record.run_url.is_some() {
            info!(lock_key = %run.key, "redelivered after its lease lapsed; its run was recorded, nothing to do");
            return Outcome::Done;
        }
        warn!(lock_key = %run.key, fence = record.fence, "the grant lapsed before its pipeline started; refusing to dispatch under it");
        let mut release = ReleaseRequest::new(&run.key, &record.lock_id, LockStatus::Failed);
        release.reason = Some("lease lapsed before the pipeline started".into());
        if let Err(e) = self.locks.release(&release).await {
            if e.is_transient() {
                return Outcome::Retry(format!("release of a lapsed grant: {e}"));
            }
            info!(lock_key = %run.key, error = %e, "the lapsed grant was already replaced");
        }
        let reply = render::lapsed_before_start(run.command, run.component, run.environment);
        self.reply(run.message, &reply, deadline).await
    }

    /// The same message again (SQS delivers at least once) while its grant
    /// is live. Never a second dispatch for one request; never "already in
    /// progress" to its author.
    async fn redelivered(&self, run: &Run<'_>, grant: Grant, deadline: Instant) -> Outcome {
        let record = &grant.record;
        if let Some(url) = &record.run_url {
            // Dispatched before; its announcement may not have reached Slack.
            info!(lock_key = %run.key, "redelivered after dispatch; announcing again");
            let dispatched = DispatchedRun {
                run_id: record.pipeline.as_ref().and_then(|p| p.run_id),
                run_url: url.clone(),
                // Only the workflow's page is recorded when GitHub named no run.
                exact: *url != self.github.workflow_page(&run.config.pipeline),
            };
            return self.announce(run, &grant, &dispatched, deadline).await;
        }
        // The earlier attempt may have dispatched and lost the answer: ask GitHub.
        match self
            .github
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

    async fn dispatch(&self, run: &Run<'_>, grant: &Grant, deadline: Instant) -> Outcome {
        let inputs = run.inputs(grant.lock_id(), grant.fence());
        match self.github.dispatch(&run.config.pipeline, &inputs).await {
            Ok(dispatched) => {
                emf::emit(Metric::Dispatched, run.command, 1.0);
                info!(lock_key = %run.key, run_url = %dispatched.run_url, run_id = ?dispatched.run_id, "pipeline dispatched");
                // Mark the grant as dispatched before telling anyone, so a
                // redelivery can never dispatch again.
                self.record_run(run, grant, &dispatched).await;
                self.announce(run, grant, &dispatched, deadline).await
            }
            Err(e) => self.dispatch_failure(run, grant, e, deadline).await,
        }
    }

    async fn record_run(&self, run: &Run<'_>, grant: &Grant, dispatched: &DispatchedRun) {
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
        let reply = if run.locked {
            render::started(
                run.command,
                run.component,
                run.environment,
                &run.message.user_id,
                &view(&grant.record),
                link,
            )
        } else {
            let reply = render::started_unlocked(
                run.command,
                run.component,
                run.environment,
                &run.message.user_id,
                link,
            );
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
        emf::emit(Metric::DispatchFailed, run.command, 1.0);
        if let DispatchError::Unavailable(why) = &error {
            if run.receive_count < self.settings.max_receives {
                // Keep the lock (same request id finds it again) and retry via the queue.
                return Outcome::Retry(format!("dispatch: {why}"));
            }
            // The last delivery. A 5xx or a timeout may still have started
            // the run (now or on an earlier delivery): ask before giving up.
            match self
                .github
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
                    let reply = render::dispatch_unconfirmed(
                        run.command,
                        run.component,
                        run.environment,
                        why,
                        grant.record.expires_at,
                    );
                    return self.reply(run.message, &reply, deadline).await;
                }
            }
        }
        error!(lock_key = %run.key, error = %error, receive_count = run.receive_count, "dispatch failed; releasing the lock");
        let reason = format!("{DISPATCH_FAILED}{error}");
        let mut release = ReleaseRequest::new(&run.key, grant.lock_id(), LockStatus::Failed);
        release.reason = Some(reason.clone());
        release.fence = Some(grant.fence());
        if let Err(e) = self.locks.release(&release).await {
            if e.is_transient() {
                return Outcome::Retry(format!("release after failed dispatch: {e}"));
            }
            error!(lock_key = %run.key, error = %e, "could not release after a failed dispatch");
        }
        let reply = render::dispatch_failed(run.command, run.component, run.environment, &reason);
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
            run.command,
            run.component,
            run.environment,
            run.lock_key,
            run.config,
            current.as_ref(),
            now_epoch_secs(),
        );
        if !self.settings.locking_enabled {
            reply = reply.with_locking_disabled_notice();
        }
        self.reply(run.message, &reply, deadline).await
    }

    async fn status(&self, message: &CommandMessage, command: &str, deadline: Instant) -> Outcome {
        let base = command.trim_start_matches('/').to_lowercase();
        let mut query = ListQuery {
            prefix: Some(base.clone()),
            ..Default::default()
        };
        let mut locks = Vec::new();
        for _ in 0..20 {
            let page = match self.locks.list(&query).await {
                Ok(page) => page,
                Err(e) => {
                    return self
                        .lock_failure(message, &message.trigger_id, e, deadline)
                        .await;
                }
            };
            locks.extend(
                page.locks
                    .iter()
                    .filter(|r| r.lock_key == base || r.lock_key.starts_with(&format!("{base}-")))
                    .map(view),
            );
            match page.next_page_token {
                Some(token) => query.page_token = Some(token),
                None => break,
            }
        }
        self.reply(
            message,
            &render::status(command, &locks, now_epoch_secs()),
            deadline,
        )
        .await
    }

    /// An admin's force unlock: ends only the grant that existed when the
    /// command was typed (a newer one is refused, with its holder shown),
    /// and cancels that grant's pipeline run unless told to keep it.
    async fn unlock(
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
                self.reply(message, &reply, deadline).await
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
    async fn cancel(
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
                self.reply(message, &reply, deadline).await
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
    async fn stop_run(&self, config: &CommandConfig, ended: &LockRecord) -> RunStop {
        let Some(run_id) = ended.pipeline.as_ref().and_then(|p| p.run_id) else {
            return RunStop::NoRun;
        };
        match self.github.cancel(&config.pipeline, run_id).await {
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
            .find(|p| p.repository().eq_ignore_ascii_case(repository) && p.workflow == workflow)
    }

    /// A pipeline reported its end. It ends the grant only if it is the run
    /// recorded on that grant (or, while no run id is recorded yet, a run
    /// GitHub confirms was dispatched for it); anything else leaves the lock
    /// as it is and is logged with the reason.
    async fn completion(&self, id: &str, c: &CompletionMessage, deadline: Instant) -> Outcome {
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
                match self.github.run(pipeline, run_id, deadline).await {
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

    /// Posts a notice to a channel; Slack being down sends the record back.
    pub(crate) async fn post(
        &self,
        post: PostMessage,
        lock_key: &str,
        deadline: Instant,
    ) -> Outcome {
        match self.slack.post_message(&post, deadline).await {
            Ok(()) => Outcome::Done,
            Err(SlackError::Unavailable(why)) => Outcome::Retry(format!("chat.postMessage: {why}")),
            Err(e) => {
                error!(lock_key, error = %e, "channel notice not delivered");
                Outcome::Done
            }
        }
    }

    async fn lock_failure(
        &self,
        message: &CommandMessage,
        id: &str,
        e: LockError,
        deadline: Instant,
    ) -> Outcome {
        if e.is_transient() {
            return Outcome::Retry(format!("lock store: {e}"));
        }
        error!(message_id = %id, error = %e, "lock operation failed");
        self.reply(message, &render::internal_error(id), deadline)
            .await
    }

    /// Replies through `response_url`; when Slack refuses that (it expires
    /// after 30 minutes, e.g. for a command that waited in the queue), through
    /// the Web API with the bot token instead. Slack being down sends the
    /// record back to the queue; a refusal of both ends here, logged.
    async fn reply(&self, message: &CommandMessage, reply: &Reply, deadline: Instant) -> Outcome {
        let refused = match self
            .slack
            .respond(&message.response_url, reply, deadline)
            .await
        {
            Ok(()) => return Outcome::Done,
            Err(SlackError::Unavailable(why)) => {
                return Outcome::Retry(format!("Slack reply: {why}"));
            }
            Err(refused) => refused,
        };
        match &refused {
            SlackError::ForeignResponseUrl(_) => {
                warn!(user = %message.user_id, error = %refused, "response_url not allowed by the worker; replying through the Web API");
            }
            _ => {
                warn!(user = %message.user_id, error = %refused, "Slack refused the response_url; replying through the Web API");
            }
        }
        let fallback = match reply.response_type {
            ResponseType::InChannel => {
                self.slack
                    .post_message(&reply.clone().with_channel(&message.channel_id), deadline)
                    .await
            }
            ResponseType::Ephemeral => {
                self.slack
                    .post_ephemeral(&message.channel_id, &message.user_id, reply, deadline)
                    .await
            }
        };
        match fallback {
            Ok(()) => Outcome::Done,
            Err(SlackError::Unavailable(why)) => Outcome::Retry(format!("Slack Web API: {why}")),
            Err(e) => {
                error!(user = %message.user_id, error = %e, reply_path_error = %refused, "no reply path accepted the message");
                Outcome::Done
            }
        }
    }
}

/// Prefix of the release reason when a dispatch failed, so a redelivery can
/// tell the user again.
const DISPATCH_FAILED: &str = "dispatch failed: ";

/// Unlocked runs take a grant on `request#<trigger_id>`: a key of their
/// own, so a redelivery finds its dispatch while nobody else is blocked.
const REQUEST_KEY_PREFIX: &str = "request#";

/// One `/command component environment` being run.
struct Run<'a> {
    id: &'a str,
    receive_count: u32,
    message: &'a CommandMessage,
    config: &'a CommandConfig,
    command: &'a str,
    component: &'a str,
    environment: &'a str,
    /// The target's lock key.
    lock_key: &'a str,
    /// The key the run's grant is on: the lock key, or this request's own
    /// key when the run takes no lock.
    key: String,
    /// Whether the run holds the target's lock.
    locked: bool,
}

impl Run<'_> {
    fn invocation(&self) -> String {
        format!("{} {} {}", self.command, self.component, self.environment)
    }

    /// `workflow_dispatch` inputs: baton's own, then the configured extras.
    fn inputs(&self, lock_id: &str, fence: u64) -> BTreeMap<String, String> {
        let mut inputs = self.config.pipeline.inputs.clone();
        inputs.insert("component".into(), self.component.to_owned());
        inputs.insert("environment".into(), self.environment.to_owned());
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
    format!("slack:{}:{}", message.team_id, message.channel_id)
}

pub(crate) fn channel_from_correlation(record: &LockRecord) -> Option<String> {
    let rest = record.correlation_id.as_deref()?.strip_prefix("slack:")?;
    rest.split(':')
        .nth(1)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
}

/// How long a grant has been (or was) held, in seconds.
fn held_for(record: &LockRecord) -> u64 {
    now_epoch_secs().saturating_sub(epoch_of(record))
}

pub(crate) fn epoch_of(record: &LockRecord) -> u64 {
    humantime::parse_rfc3339(&record.locked_at)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(record.expires_at, |d| d.as_secs())
}

/// A lock record as the chatops renderer sees it.
fn view(record: &LockRecord) -> LockView {
    LockView {
        lock_key: record.lock_key.clone(),
        holder_id: record.locked_by.clone(),
        holder_name: record.locked_by_name.clone(),
        purpose: record.purpose.clone(),
        locked_at: epoch_of(record),
        expires_at: record.expires_at,
        fence: record.fence,
        lock_id: record.lock_id.clone(),
    }
}
