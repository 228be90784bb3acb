//! Requests that wait for a lock: joining its line when it is held, the
//! `queue` and `leave` commands, and starting the next request when a grant
//! ends and the same write hands the key on.
//!
//! A waiter carries its own command message as the lock's opaque context,
//! so whoever ends the grant before it (a completion, a cancel, an unlock,
//! the reconciler) can start it exactly as if it had just been asked, under
//! the grant the hand-off made for its own request id.

use baton_chatops::render::{self, LineView, WaiterView};
use baton_chatops::{
    CommandConfig, CommandError, CommandMessage, Membership, OnConflict, Request, Target, decide,
};
use baton_lock::{
    AcquireRequest, Ended, Grant, JoinRequest, Joined, LineMode, LockError, LockRecord, LockStatus,
    ReleaseRequest, Waiter,
};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::emf::{self, Metric};

use super::start::{DISPATCHER, Run};
use super::{Outcome, Worker, view};
use crate::ports::{Chat, Pipeline};
use baton_lock::LockStore;

impl<S: LockStore, C: Chat, P: Pipeline> Worker<S, C, P> {
    /// The run's lock is held and its command queues: join the line of the
    /// holder just seen (one write) and tell the requester their place.
    pub(super) async fn queue_up(
        &self,
        run: &Run<'_>,
        request: &AcquireRequest,
        holder: LockRecord,
        deadline: Instant,
    ) -> Outcome {
        let mut acquire = request.clone();
        acquire.context = serde_json::to_string(run.message).ok();
        let join = JoinRequest {
            acquire,
            mode: match run.config.on_conflict {
                OnConflict::QueueLatest => LineMode::Latest,
                _ => LineMode::Fifo {
                    max: run.config.max_queue,
                },
            },
            max_wait: run.config.max_wait,
            claim: None,
            member: Some(run.message.user_id.clone()),
        };
        match self.locks.enqueue(&join, holder).await {
            // The key was freed between the acquire and the join.
            Ok(Joined::Granted(grant)) => self.dispatch(run, &grant, deadline).await,
            Ok(Joined::Waiting(place)) => {
                emf::emit(Metric::LockHeld, &run.target.command, 1.0);
                info!(lock_key = %run.key, position = place.position, already = place.already_waiting, "queued behind the holder");
                for replaced in &place.superseded {
                    let notice = render::superseded(
                        replaced
                            .purpose
                            .as_deref()
                            .unwrap_or(&run.target.invocation()),
                        &run.message.user_id,
                    );
                    self.tell_waiter(replaced, &notice, deadline).await;
                }
                let reply = render::queued(
                    run.target,
                    place.position,
                    &view(&place.record),
                    place.already_waiting,
                    self.now_secs(),
                );
                self.reply(run.message, &reply, deadline).await
            }
            Err(LockError::LineFull { holder, .. }) => {
                let reply = render::line_full(run.target, run.config.max_queue, &view(&holder));
                self.reply(run.message, &reply, deadline).await
            }
            Err(e) => self.lock_failure(run.message, run.id, e, deadline).await,
        }
    }

    /// A grant ended and the same write handed its key on: start the run of
    /// the request granted, and tell the waiters dropped on the way. A run
    /// that cannot be started ends its grant, which hands the key on again.
    pub(crate) async fn hand_off(&self, ended: Ended, deadline: Instant) {
        let mut ended = ended;
        for _ in 0..=baton_lock::MAX_LINE_LEN {
            for waiter in &ended.dropped {
                self.tell_dropped(&ended.record.lock_key, waiter, deadline)
                    .await;
            }
            let Some(next) = ended.next.take() else {
                return;
            };
            match self.start_handed_off(next, deadline).await {
                Some(again) => ended = again,
                None => return,
            }
        }
    }

    /// Starts the queued run a hand-off granted. `Some` when its grant had
    /// to end again (the run could not be started), handing the key on.
    pub(crate) async fn start_handed_off(&self, grant: Grant, deadline: Instant) -> Option<Ended> {
        let record = &grant.record;
        let Some(message) = queued_message(record.context.as_deref()) else {
            // Not a chat request (a CLI waiter watches for its own turn).
            return None;
        };
        // Its user groups were looked up when it joined the line.
        let queued = decide(
            &self.settings.config,
            &message,
            &Membership::Unresolved,
            self.locks.now_millis(),
        );
        let (config, target, lock_key, override_freeze) = match &queued {
            Ok(Request::Run {
                target,
                lock_key,
                override_freeze,
                ..
            }) => match self.settings.config.command(&target.command) {
                Some(config) => (config, target, lock_key, *override_freeze),
                None => {
                    return self
                        .end_unstartable(record, "its command is no longer configured")
                        .await;
                }
            },
            Err(refusal @ CommandError::Frozen { .. }) => {
                // A scheduled freeze began while it waited: it is told so,
                // and the key goes on to the next in line.
                let _ = self
                    .reply(&message, &render::error(refusal), deadline)
                    .await;
                return self.end_unstartable(record, "frozen").await;
            }
            _ => {
                return self
                    .end_unstartable(record, "it no longer parses as a run")
                    .await;
            }
        };
        // A hand-off grants in the write that ends the previous grant, which
        // checks no freeze: an admin's freeze is checked here instead, when
        // the waiter's turn comes.
        if !override_freeze && let Some(refusal) = self.admin_freeze_of(config, target).await {
            let _ = self
                .reply(&message, &render::error(&refusal), deadline)
                .await;
            return self.end_unstartable(record, "frozen").await;
        }
        let run = self.run_of(&message.trigger_id, 1, &message, config, target, lock_key);
        let inputs = run.inputs(grant.lock_id(), grant.fence());
        match self.pipeline.dispatch(&config.pipeline, &inputs).await {
            Ok(dispatched) => {
                emf::emit(Metric::LockAcquired, &target.command, 1.0);
                emf::emit(Metric::Dispatched, &target.command, 1.0);
                self.record_run(&run, &grant, &dispatched).await;
                let waited = self.locks.now_millis().saturating_sub(message.received_at) / 1000;
                info!(lock_key = %run.key, fence = grant.fence(), waited, run_url = %dispatched.run_url, "queued run started");
                let link = dispatched.exact.then_some(dispatched.run_url.as_str());
                let notice = render::started_from_line(
                    target,
                    &message.user_id,
                    &view(record),
                    waited,
                    link,
                );
                if let Outcome::Retry(why) = self
                    .post(notice.with_channel(&message.channel_id), &run.key, deadline)
                    .await
                {
                    warn!(lock_key = %run.key, reason = %why, "the channel was not told a queued run started");
                }
                None
            }
            Err(e) => {
                // An unanswered dispatch may have started the run: the
                // reconciler settles the grant against the pipeline (it
                // looks the run up by lock id) instead of ending it here.
                if matches!(e, crate::ports::DispatchError::Unavailable { .. }) {
                    warn!(lock_key = %run.key, error = %e, "queued run's dispatch unanswered; the reconciler settles it");
                    return None;
                }
                emf::emit(Metric::DispatchFailed, &target.command, 1.0);
                let reason = e.to_string();
                let reply = render::dispatch_failed(target, &reason);
                let _ = self.reply(&message, &reply, deadline).await;
                self.end_unstartable(record, &reason).await
            }
        }
    }

    /// Ends a handed-off grant whose run cannot start, which hands the key on.
    async fn end_unstartable(&self, record: &LockRecord, why: &str) -> Option<Ended> {
        error!(lock_key = %record.lock_key, reason = why, "queued run cannot start; ending its grant");
        let mut release =
            ReleaseRequest::new(&record.lock_key, &record.lock_id, LockStatus::Failed);
        release.actor = Some(DISPATCHER.to_owned());
        release.reason = Some(why.to_owned());
        release.fence = Some(record.fence);
        match self.locks.release(&release).await {
            Ok(ended) => Some(ended),
            Err(e) => {
                error!(lock_key = %record.lock_key, error = %e, "could not end the grant of a queued run that cannot start");
                None
            }
        }
    }

    /// Tells a waiter dropped from `lock_key`'s line (its maximum wait
    /// passed) that it was, and logs it.
    pub(crate) async fn tell_dropped(&self, lock_key: &str, waiter: &Waiter, deadline: Instant) {
        let waited = waiter.waited(self.locks.now_millis()).as_secs();
        info!(lock_key, waiter = %waiter.owner, waited, "queued request dropped after its maximum wait");
        let purpose = waiter.purpose.as_deref().unwrap_or("request");
        self.tell_waiter(waiter, &render::dropped(purpose, waited), deadline)
            .await;
    }

    /// Tells a waiter (privately, in the channel it asked from) what became
    /// of its request.
    pub(crate) async fn tell_waiter(
        &self,
        waiter: &Waiter,
        reply: &baton_chatops::Reply,
        deadline: Instant,
    ) {
        let Some(message) = queued_message(waiter.context.as_deref()) else {
            return;
        };
        if let Err(e) = self
            .chat
            .post_ephemeral(&message.channel_id, &message.user_id, reply, deadline)
            .await
        {
            warn!(user = %message.user_id, error = %e, "a waiter was not told");
        }
    }

    /// `/command queue [component environment]`: the lines of the command's
    /// locks, or of one.
    pub(super) async fn show_queue(
        &self,
        message: &CommandMessage,
        config: &CommandConfig,
        target: Option<&(Target, String)>,
        deadline: Instant,
    ) -> Outcome {
        if !config.on_conflict.queues() {
            return self
                .reply(message, &render::does_not_queue(&config.name), deadline)
                .await;
        }
        let records = match target {
            Some((_, key)) => self
                .locks
                .status(key)
                .await
                .map(|r| r.into_iter().collect()),
            None => self.command_locks(&config.name).await,
        };
        let records = match records {
            Ok(records) => records,
            Err(e) => {
                return self
                    .lock_failure(message, &message.trigger_id, e, deadline)
                    .await;
            }
        };
        let lines: Vec<LineView> = records.iter().map(line_view).collect();
        let reply = render::lines(&config.name, &lines, self.now_secs());
        self.reply(message, &reply, deadline).await
    }

    /// `/command leave component environment`: the requester stops waiting.
    pub(super) async fn leave(
        &self,
        message: &CommandMessage,
        config: &CommandConfig,
        target: &Target,
        lock_key: &str,
        deadline: Instant,
    ) -> Outcome {
        if !config.on_conflict.queues() {
            return self
                .reply(message, &render::does_not_queue(&config.name), deadline)
                .await;
        }
        match self.locks.leave(lock_key, &message.user_id).await {
            Ok(left) => {
                info!(lock_key, user = %message.user_id, ticket = %left.waiter.ticket, "left the line");
                self.reply(message, &render::left_line(target), deadline)
                    .await
            }
            Err(LockError::NotWaiting { .. }) => {
                self.reply(message, &render::not_in_line(target), deadline)
                    .await
            }
            Err(e) => {
                self.lock_failure(message, &message.trigger_id, e, deadline)
                    .await
            }
        }
    }
}

/// The command message a queued chat request carries as its lock context;
/// `None` for a waiter that is not one (a CLI process).
fn queued_message(context: Option<&str>) -> Option<CommandMessage> {
    serde_json::from_str(context?).ok()
}

/// A lock record and its line, as the renderer sees them.
fn line_view(record: &LockRecord) -> LineView {
    LineView {
        lock: view(record),
        waiters: record
            .waiters
            .iter()
            .map(|w| WaiterView {
                user_id: w.owner.clone(),
                purpose: w.purpose.clone(),
                joined_at: w.joined_at_ms / 1000,
            })
            .collect(),
    }
}
