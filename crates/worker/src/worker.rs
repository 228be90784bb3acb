//! The worker's decisions: what each queued record means, which lock it
//! takes, what it dispatches, and what the user is told.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use baton_chatops::render::{self, LockView};
use baton_chatops::{
    CommandConfig, CommandError, CommandMessage, CompletionMessage, Config, MessageError,
    QueueMessage, Reply, Request, ResponseType, parse_request,
};
use baton_lock::clock::now_epoch_secs;
use baton_lock::{
    AcquireRequest, Grant, GrantKind, ListQuery, LockClient, LockError, LockRecord, LockStatus,
    ReleaseRequest,
};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::emf::{self, Metric};
use crate::github::{DispatchError, DispatchedRun, GitHub};
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
    pub slack_bot_token: String,
    pub github_api_url: String,
    pub github_web_url: String,
    pub github_token: String,
    /// The queue's `maxReceiveCount`: on the last delivery a still-failing
    /// dispatch gives up, releases the lock and tells the user, instead of
    /// leaving the message to the dead-letter queue in silence.
    pub max_receives: u32,
    /// Time budget for a batch when no Lambda deadline is known.
    pub default_budget: Duration,
    /// Timeout of one HTTP attempt to Slack or GitHub.
    pub http_timeout: Duration,
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
            slack_bot_token: "xoxb-local".into(),
            github_api_url: github_base.to_owned(),
            github_web_url: "https://github.example".into(),
            github_token: "ghp-local".into(),
            max_receives: 5,
            default_budget: Duration::from_secs(10),
            http_timeout: Duration::from_secs(2),
        }
    }
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
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
    locks: LockClient,
    settings: WorkerSettings,
    slack: Slack,
    github: GitHub,
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
                request: Ok(Request::Run { lock_key, .. } | Request::Unlock { lock_key, .. }),
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
                // Retrying cannot fix a body; the DLQ is for records that might succeed later.
                error!(message_id = %id, error = %e, "dropping malformed queue message");
                Outcome::Done
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
        match request {
            Request::Help { .. } => self.reply(message, &render::help(config), deadline).await,
            Request::Status { command } => self.status(message, command, deadline).await,
            Request::Unlock {
                lock_key, reason, ..
            } => self.unlock(message, lock_key, reason, deadline).await,
            Request::Run {
                command,
                component,
                environment,
                lock_key,
                dry_run,
            } => {
                let run = Run {
                    id,
                    receive_count,
                    message,
                    config,
                    command,
                    component,
                    environment,
                    lock_key,
                };
                if *dry_run {
                    self.dry_run(&run, deadline).await
                } else if self.settings.locking_enabled && config.requires_lock {
                    self.locked_run(&run, deadline).await
                } else {
                    self.unlocked_run(&run, deadline).await
                }
            }
        }
    }

    async fn locked_run(&self, run: &Run<'_>, deadline: Instant) -> Outcome {
        let message = run.message;
        let mut request = AcquireRequest::new(run.lock_key, &message.user_id, run.config.lock_ttl);
        request.request_id = Some(run.id.to_owned());
        request.owner_name = message.user_name.clone();
        request.purpose = Some(run.invocation());
        request.component = Some(run.component.to_owned());
        request.environment = Some(run.environment.to_owned());
        request.correlation_id = Some(slack_correlation(message));
        let grant = match self.locks.acquire(&request).await {
            Ok(grant) => grant,
            Err(LockError::Held { holder }) => {
                emf::emit(Metric::LockHeld, run.command, 1.0);
                info!(lock_key = %run.lock_key, holder = %holder.locked_by, "lock held; telling the requester");
                let reply = render::held(
                    run.command,
                    run.component,
                    run.environment,
                    &view(&holder),
                    now_epoch_secs(),
                );
                return self.reply(message, &reply, deadline).await;
            }
            Err(LockError::RequestSuperseded { current, .. }) => {
                // A late duplicate of a command that already ran: its grant
                // ended and the key has been granted again since.
                info!(lock_key = %run.lock_key, current_fence = current.fence, "late duplicate of a finished command; nothing to do");
                return Outcome::Done;
            }
            Err(e) => return self.lock_failure(run.message, run.id, e, deadline).await,
        };
        match grant.kind {
            GrantKind::Existing => return self.redelivered(run, grant, deadline).await,
            GrantKind::TakenOver { ref from } => {
                warn!(lock_key = %run.lock_key, previous = %from.locked_by, "took over an expired lock");
                emf::emit(Metric::LockAcquired, run.command, 1.0);
            }
            GrantKind::New => emf::emit(Metric::LockAcquired, run.command, 1.0),
        }
        info!(lock_key = %run.lock_key, fence = grant.fence(), "lock acquired");
        self.dispatch(run, &grant, deadline).await
    }

    /// The same message again (SQS delivers at least once). Never a second
    /// dispatch for one request; never "already in progress" to its author.
    async fn redelivered(&self, run: &Run<'_>, grant: Grant, deadline: Instant) -> Outcome {
        let record = &grant.record;
        if record.status != LockStatus::InProgress {
            info!(lock_key = %run.lock_key, status = %record.status, "redelivered after the run ended");
            return match (&record.release_reason, record.status, record.forced) {
                (Some(reason), LockStatus::Failed, false)
                    if reason.starts_with(DISPATCH_FAILED) =>
                {
                    let reply = render::dispatch_failed(
                        run.command,
                        run.component,
                        run.environment,
                        reason,
                    );
                    self.reply(run.message, &reply, deadline).await
                }
                _ => Outcome::Done,
            };
        }
        if let Some(url) = &record.run_url {
            // Dispatched before; its announcement may not have reached Slack.
            info!(lock_key = %run.lock_key, "redelivered after dispatch; announcing again");
            let dispatched = DispatchedRun {
                run_id: None,
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
                info!(lock_key = %run.lock_key, run_url = %found.run_url, "found the run an earlier attempt started");
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
                info!(lock_key = %run.lock_key, run_url = %dispatched.run_url, "pipeline dispatched");
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
            .set_run_url(run.lock_key, grant.lock_id(), &dispatched.run_url)
            .await
        {
            warn!(lock_key = %run.lock_key, error = %e, "could not record the run on the lock");
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
        let reply = render::started(
            run.command,
            run.component,
            run.environment,
            &run.message.user_id,
            &view(&grant.record),
            link,
        );
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
                    info!(lock_key = %run.lock_key, run_url = %found.run_url, "the unanswered dispatch did start a run");
                    self.record_run(run, grant, &found).await;
                    return self.announce(run, grant, &found, deadline).await;
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(lock_key = %run.lock_key, error = %e, "cannot tell whether the run started; keeping the lock until its lease ends");
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
        error!(lock_key = %run.lock_key, error = %error, receive_count = run.receive_count, "dispatch failed; releasing the lock");
        let reason = format!("{DISPATCH_FAILED}{error}");
        let mut release = ReleaseRequest::new(run.lock_key, grant.lock_id(), LockStatus::Failed);
        release.reason = Some(reason.clone());
        release.fence = Some(grant.fence());
        if let Err(e) = self.locks.release(&release).await {
            if is_transient(&e) {
                return Outcome::Retry(format!("release after failed dispatch: {e}"));
            }
            error!(lock_key = %run.lock_key, error = %e, "could not release after a failed dispatch");
        }
        let reply = render::dispatch_failed(run.command, run.component, run.environment, &reason);
        self.reply(run.message, &reply, deadline).await
    }

    async fn unlocked_run(&self, run: &Run<'_>, deadline: Instant) -> Outcome {
        warn!(lock_key = %run.lock_key, locking_enabled = self.settings.locking_enabled, "dispatching without a lock");
        match self
            .github
            .dispatch(&run.config.pipeline, &run.inputs("", 0))
            .await
        {
            Ok(dispatched) => {
                emf::emit(Metric::Dispatched, run.command, 1.0);
                let now = now_epoch_secs();
                let unlocked = LockView {
                    lock_key: run.lock_key.to_owned(),
                    holder_id: run.message.user_id.clone(),
                    holder_name: run.message.user_name.clone(),
                    purpose: Some(run.invocation()),
                    locked_at: now,
                    expires_at: now,
                    fence: 0,
                    lock_id: String::new(),
                };
                let link = dispatched.exact.then_some(dispatched.run_url.as_str());
                let mut reply = render::started(
                    run.command,
                    run.component,
                    run.environment,
                    &run.message.user_id,
                    &unlocked,
                    link,
                );
                if !self.settings.locking_enabled {
                    reply = reply.with_locking_disabled_notice();
                }
                self.reply(run.message, &reply, deadline).await
            }
            Err(DispatchError::Unavailable(why))
                if run.receive_count < self.settings.max_receives =>
            {
                Outcome::Retry(format!("dispatch: {why}"))
            }
            Err(e) => {
                emf::emit(Metric::DispatchFailed, run.command, 1.0);
                let reply = render::dispatch_failed(
                    run.command,
                    run.component,
                    run.environment,
                    &e.to_string(),
                );
                self.reply(run.message, &reply, deadline).await
            }
        }
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

    async fn unlock(
        &self,
        message: &CommandMessage,
        lock_key: &str,
        reason: &str,
        deadline: Instant,
    ) -> Outcome {
        match self
            .locks
            .force_unlock(lock_key, &message.user_id, reason, None)
            .await
        {
            Ok(ended) => {
                warn!(lock_key, actor = %message.user_id, holder = %ended.locked_by, reason, "lock force-unlocked");
                let reply =
                    render::unlocked(lock_key, &message.user_id, reason, Some(&view(&ended)));
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

    /// A pipeline reported its end: release the grant it ran under (checked
    /// by lock id and fence) and post the outcome to the channel.
    async fn completion(&self, id: &str, c: &CompletionMessage, deadline: Instant) -> Outcome {
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
        let record = match self.locks.release(&release).await {
            Ok(record) => record,
            Err(LockError::NotOwner { current, .. }) => {
                warn!(message_id = %id, lock_key = %c.lock_key, lock_id = %c.lock_id, fence = c.fence,
                      current_fence = current.as_ref().map(|r| r.fence), "ignoring a completion for a grant that is no longer current");
                return Outcome::Done;
            }
            Err(LockError::AlreadyEnded { record }) => {
                info!(message_id = %id, lock_key = %c.lock_key, status = %record.status, "completion for a grant that already ended");
                return Outcome::Done;
            }
            Err(e) if is_transient(&e) => return Outcome::Retry(format!("release: {e}")),
            Err(e) => {
                error!(message_id = %id, lock_key = %c.lock_key, error = %e, "completion could not be applied");
                return Outcome::Done;
            }
        };
        let command = record
            .purpose
            .as_deref()
            .and_then(|p| p.split_whitespace().next())
            .unwrap_or("pipeline");
        let duration = now_epoch_secs().saturating_sub(epoch_of(&record));
        emf::emit(Metric::Completed, command, 1.0);
        emf::emit(Metric::LockDuration, command, duration as f64);
        info!(lock_key = %c.lock_key, status = %record.status, duration, "run completed; lock released");
        let Some(channel) = c
            .channel_id
            .clone()
            .or_else(|| channel_from_correlation(&record))
        else {
            warn!(lock_key = %c.lock_key, "no channel to report the completion to");
            return Outcome::Done;
        };
        let run_url = c.run_url.as_deref().or(record.run_url.as_deref());
        let post = render::completed(
            &c.lock_key,
            c.succeeded(),
            &record.locked_by,
            duration,
            run_url,
        )
        .with_channel(channel);
        match self.slack.post_message(&post, deadline).await {
            Ok(()) => Outcome::Done,
            Err(SlackError::Unavailable(why)) => Outcome::Retry(format!("chat.postMessage: {why}")),
            Err(e @ SlackError::Refused(_)) => {
                error!(lock_key = %c.lock_key, error = %e, "completion notice refused by Slack");
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
        if is_transient(&e) {
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
        warn!(user = %message.user_id, error = %refused, "response_url refused; replying through the Web API");
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
            Err(e @ SlackError::Refused(_)) => {
                error!(user = %message.user_id, error = %e, "Slack refused the reply on both paths");
                Outcome::Done
            }
        }
    }
}

/// Prefix of the release reason when a dispatch failed, so a redelivery can
/// tell the user again.
const DISPATCH_FAILED: &str = "dispatch failed: ";

/// One `/command component environment` being run.
struct Run<'a> {
    id: &'a str,
    receive_count: u32,
    message: &'a CommandMessage,
    config: &'a CommandConfig,
    command: &'a str,
    component: &'a str,
    environment: &'a str,
    lock_key: &'a str,
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
        inputs.insert("lock_key".into(), self.lock_key.to_owned());
        inputs.insert("lock_id".into(), lock_id.to_owned());
        inputs.insert("fence".into(), fence.to_string());
        inputs.insert("requested_by".into(), self.message.user_id.clone());
        inputs
    }
}

/// Where a command came from, stored as the lock's `correlationId` so a
/// completion can be posted back to the same channel.
fn slack_correlation(message: &CommandMessage) -> String {
    format!("slack:{}:{}", message.team_id, message.channel_id)
}

fn channel_from_correlation(record: &LockRecord) -> Option<String> {
    let rest = record.correlation_id.as_deref()?.strip_prefix("slack:")?;
    rest.split(':')
        .nth(1)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
}

fn epoch_of(record: &LockRecord) -> u64 {
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

/// Errors worth another delivery: throttling, 5xx and network trouble.
fn is_transient(e: &LockError) -> bool {
    match e {
        LockError::Dynamo { code, .. } => match code.as_deref() {
            None => true,
            Some(code) => {
                code.contains("Throttl")
                    || code.contains("ProvisionedThroughputExceeded")
                    || code.contains("RequestLimitExceeded")
                    || code.contains("InternalServerError")
                    || code.contains("ServiceUnavailable")
                    || code.contains("TransactionConflict")
            }
        },
        _ => false,
    }
}
