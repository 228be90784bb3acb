//! [`MemoryStore`]: the lock operations on records held in memory, for tests
//! of code that decides what to do with a lock (workers, chatops, the CLI)
//! without DynamoDB Local. It mirrors the DynamoDB adapter's condition
//! expressions one by one, shares its refusal decisions (`refused`,
//! `ownership_refused`, …) and is held to the same behaviour by the
//! conformance suite (`crates/lock/tests/conformance.rs`).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::acquire::{
    AcquireRequest, Grant, GrantKind, Plan, Takeover, grant_kind, refused, takeover_before_ms,
    validate_acquire,
};
use crate::client::{ListQuery, LockOptions, LockPage, validate_key};
use crate::clock::{self, lease_end, lease_end_millis};
use crate::error::LockError;
use crate::freeze::{FreezeKey, FreezeRecord, FreezeRequest, planned, validate_freeze};
use crate::frozen_acquire::FenceRule;
use crate::handoff::{Ended, Ending};
use crate::line::{JoinPlan, JoinRequest, Joined, Left, Place, Waiter, successor, validate_join};
use crate::ownership::{
    ReleaseRequest, RunCheck, force_unlock_refused, granted_by_bound, ownership_refused,
    release_already_done, set_run_already_done, settle_release, validate_force_unlock,
    validate_release, validate_renew,
};
use crate::record::{LockRecord, LockStatus, PreviousGrant};
use crate::schema::attr;
use crate::store::LockStore;
use crate::takeover::taken_over;

/// A lock store in this process's memory, with the semantics of the DynamoDB
/// adapter: fences that only grow per key, leases decided by `expires_at`,
/// takeover of expired grants, re-entry and late-duplicate refusal by request
/// id, pipeline binding, ended grants kept as status records.
///
/// Clones share the same records (an `Arc`), as clones of a
/// [`crate::LockClient`] share one table, so a test can hand one clone to
/// the code under test and inspect the store through another. Records are
/// never collected: a memory store lives only as long as its test.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    shared: Arc<Shared>,
    options: LockOptions,
}

#[derive(Debug, Default)]
struct Shared {
    /// Freezes by key. A checked acquire holds this lock while it grants,
    /// so it decides on the freezes and the lock as one write would; lock
    /// order: `freezes`, then `entries`.
    freezes: Mutex<BTreeMap<String, FreezeRecord>>,
    entries: Mutex<BTreeMap<String, Entry>>,
    /// How far this store's clock runs ahead of the wall clock, in milliseconds.
    ahead_millis: AtomicU64,
}

/// One key's item. The record is what `status` returns; the rest are the
/// attributes of the DynamoDB item that a [`LockRecord`] does not show but
/// conditions read.
#[derive(Debug, Clone)]
struct Entry {
    record: LockRecord,
    /// `prevRequestId` … `prevRequestId7`: the request ids of the seven
    /// grants before this one, newest first, `""` where there was none.
    earlier_requests: [String; attr::REQUEST_HISTORY.len()],
    /// The `runId` attribute. A [`LockRecord`] shows a run id only inside its
    /// pipeline binding, but `set_run` records one on any grant, and a
    /// recorded run spares an expired grant from
    /// [`Takeover::UnlessPipeline`] even without a binding.
    run_id: Option<u64>,
}

impl Entry {
    /// The condition every ownership-checked write puts on the item:
    /// `lockId = :lockId AND status = IN_PROGRESS [AND fence = :fence]`.
    fn owned_by(&self, lock_id: &str, fence: Option<u64>) -> bool {
        self.record.lock_id == lock_id
            && self.record.status == LockStatus::InProgress
            && fence.is_none_or(|f| self.record.fence == f)
    }

    /// Whether this grant's request id, or one of the seven before it, is `request_id`.
    fn has_seen(&self, request_id: &str) -> bool {
        self.record.request_id.as_deref() == Some(request_id)
            || self.earlier_requests.iter().any(|r| r == request_id)
    }
}

impl MemoryStore {
    /// An empty store with the default [`LockOptions`], like
    /// [`crate::LockClient::new`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store deciding with `options` (clock-skew margin, retention,
    /// poll schedule), like [`crate::LockClient::with_options`].
    pub fn with_options(options: LockOptions) -> Self {
        MemoryStore {
            shared: Arc::default(),
            options,
        }
    }

    /// Moves this store's clock (shared by all its clones) `by` ahead, so a
    /// test can let leases expire without waiting for them.
    pub fn advance_clock(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.shared.ahead_millis.fetch_add(by, Ordering::SeqCst);
    }

    fn entries(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        // No operation leaves an entry half-written, so a panic elsewhere
        // while the lock was held cannot have corrupted the records.
        self.shared
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn freezes(&self) -> MutexGuard<'_, BTreeMap<String, FreezeRecord>> {
        // As for `entries`: no write leaves a freeze half-written.
        self.shared
            .freezes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn freeze_now(&self, request: &FreezeRequest) -> Result<FreezeRecord, LockError> {
        validate_freeze(request)?;
        let record = planned(request, self.now_millis(), self.options.retention);
        self.freezes()
            .insert(request.key.as_str().to_owned(), record.clone());
        Ok(record)
    }

    fn unfreeze_now(
        &self,
        key: &FreezeKey,
        actor: &str,
    ) -> Result<Option<FreezeRecord>, LockError> {
        if actor.trim().is_empty() {
            return Err(LockError::InvalidInput(
                "lifting a freeze must say who".into(),
            ));
        }
        let now_ms = self.now_millis();
        let mut freezes = self.freezes();
        let Some(record) = freezes
            .get_mut(key.as_str())
            .filter(|f| f.active_at(now_ms))
        else {
            return Ok(None);
        };
        let before = record.clone();
        record.until_ms = now_ms;
        record.lifted_by = Some(actor.to_owned());
        Ok(Some(before))
    }

    fn retention_secs(&self) -> u64 {
        self.options.retention.as_secs()
    }

    fn acquire_now(&self, request: &AcquireRequest) -> Result<Grant, LockError> {
        validate_acquire(request)?;
        let plan = Plan::at(request, &self.options, self.now_millis());

        // The freeze check and the grant decide under both locks, as the
        // transaction of a checked acquire on DynamoDB does.
        let freezes = self.freezes();
        let frozen = request
            .unless_frozen
            .as_ref()
            .and_then(|key| freezes.get(key.as_str()))
            .filter(|f| f.active_at(plan.fence_base));
        if let Some(freeze) = frozen {
            return Err(LockError::Frozen {
                key: request.key.clone(),
                freeze: Box::new(freeze.clone()),
            });
        }
        let mut entries = self.entries();
        let old = entries.get(&request.key);
        if let Some(old) = old {
            // (status <> IN_PROGRESS OR expired) AND the request id is not
            // the current one nor one of the seven before it.
            let current = &old.record;
            let expired = current.expires_at_ms <= plan.takeover_before_ms
                && match request.takeover {
                    Takeover::Expired => true,
                    Takeover::UnlessPipeline => {
                        old.run_id.is_none() && old.record.pipeline.is_none()
                    }
                };
            // A key with a waiting line is granted only by a hand-off.
            let free =
                (current.status != LockStatus::InProgress || expired) && current.waiters.is_empty();
            if !free || old.has_seen(&plan.request_id) {
                let seen_earlier = old.earlier_requests.contains(&plan.request_id);
                return refused(
                    request,
                    plan.request_id,
                    current.clone(),
                    seen_earlier,
                    plan.now_secs,
                );
            }
        }

        // The request-id shift register, and the copy of the replaced grant,
        // as `if_not_exists(…, "")` builds them on the item.
        let mut earlier_requests: [String; attr::REQUEST_HISTORY.len()] = Default::default();
        if let Some(old) = old {
            earlier_requests[0] = old.record.request_id.clone().unwrap_or_default();
            earlier_requests[1..].clone_from_slice(&old.earlier_requests[..6]);
        }
        let previous = old.map(|old| PreviousGrant {
            lock_id: old.record.lock_id.clone(),
            request_id: old.record.request_id.clone().filter(|r| !r.is_empty()),
            locked_by: old.record.locked_by.clone(),
            status: old.record.status,
            expires_at: old.record.expires_at,
            released_by: old.record.released_by.clone(),
            release_reason: old.record.release_reason.clone(),
            forced: old.record.forced,
        });
        // A key without history starts at the clock's epoch milliseconds,
        // as on DynamoDB; a checked grant sets the fence by its rule.
        let stored = old.map(|old| old.record.fence);
        let checked = request.unless_frozen.is_some().then(|| {
            let floor = FenceRule::Floor(plan.fence_base);
            match stored {
                Some(f) if !floor.admits(stored) => FenceRule::After(f),
                _ => floor,
            }
        });
        let fence = match checked {
            Some(rule) => rule.fence(),
            None => stored.unwrap_or(plan.fence_base) + 1,
        };
        let kind = grant_kind(previous.as_ref());
        let mut record = plan.into_record(request, fence, previous);
        record.line_version = old.map_or(0, |old| old.record.line_version);
        let entry = Entry {
            record: record.clone(),
            earlier_requests,
            run_id: request.pipeline.as_ref().and_then(|p| p.run_id),
        };
        entries.insert(request.key.clone(), entry);
        tracing::debug!(key = %record.lock_key, fence, ?kind, "lock granted (memory)");
        if checked.is_some() {
            // A transaction tells its caller nothing of what it replaced.
            record.previous = None;
            return Ok(Grant {
                record,
                kind: GrantKind::Checked,
            });
        }
        Ok(Grant { record, kind })
    }

    fn release_now(&self, request: &ReleaseRequest) -> Result<Ended, LockError> {
        validate_release(request)?;
        let now_millis = self.now_millis();
        let mut entries = self.entries();
        let entry = entries.get_mut(&request.key).filter(|e| {
            e.owned_by(&request.lock_id, request.fence) && run_matches(e, &request.run)
        });
        let Some(entry) = entry else {
            let current = entries.get(&request.key).map(|e| e.record.clone());
            let finished = ownership_refused(
                &request.key,
                &request.lock_id,
                current,
                release_already_done(request),
            );
            return settle_release(request, finished).map(Ended::alone);
        };
        Ok(self.end_entry(entry, &request.ending(), now_millis))
    }

    /// Ends `entry`'s grant the way `ending` says and hands the key to the
    /// head of its line, dropping overdue waiters: what
    /// `LockClient::end_with_line` writes in one request.
    fn end_entry(&self, entry: &mut Entry, ending: &Ending, now_millis: u64) -> Ended {
        let retention = self.retention_secs();
        let seen = entry.record.clone();
        let (next, dropped) = successor(&seen.waiters, now_millis);
        let handed = dropped.len() + usize::from(next.is_some());
        let dropped = dropped.to_vec();
        let ended = ending.apply(&seen, now_millis, retention);
        let line_version = seen.line_version + u64::from(handed > 0);
        let rest = seen.waiters[handed..].to_vec();
        let Some(waiter) = next.cloned() else {
            if !matches!(ending, Ending::Lapsed) {
                entry.record = ended.clone();
            }
            entry.record.waiters = rest;
            entry.record.line_version = line_version;
            return Ended {
                record: ended,
                next: None,
                dropped,
            };
        };
        let request = waiter.acquire_request(&seen.lock_key);
        let plan = Plan::for_waiter(&waiter, &request, &self.options, now_millis);
        let previous = PreviousGrant {
            lock_id: seen.lock_id.clone(),
            request_id: seen.request_id.clone().filter(|r| !r.is_empty()),
            locked_by: seen.locked_by.clone(),
            status: ended.status,
            expires_at: seen.expires_at,
            released_by: ended.released_by.clone(),
            release_reason: ended.release_reason.clone(),
            forced: ended.forced,
        };
        let mut record = plan.into_record(&request, seen.fence + 1, Some(previous));
        record.waiters = rest;
        record.line_version = line_version;
        entry.earlier_requests.rotate_right(1);
        entry.earlier_requests[0] = seen.request_id.clone().unwrap_or_default();
        entry.record = record.clone();
        entry.run_id = None;
        let kind = grant_kind(record.previous.as_ref());
        Ended {
            record: ended,
            next: Some(Grant { record, kind }),
            dropped,
        }
    }

    /// Joins the key's line as it is now (the memory store decides under
    /// its lock, so what the caller saw does not matter); a key freed since
    /// the caller's acquire is acquired again.
    fn enqueue_now(&self, request: &JoinRequest) -> Result<Joined, LockError> {
        validate_join(request)?;
        let key = &request.acquire.key;
        let freed = self.entries().get(key).is_none_or(|e| {
            e.record.status != LockStatus::InProgress || e.record.waiters.is_empty()
        });
        if freed {
            match self.acquire_now(&request.acquire) {
                Ok(grant) => return Ok(Joined::Granted(grant)),
                Err(LockError::Held { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        let waiter = Waiter::new(request, self.now_millis());
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(key) else {
            return Err(LockError::LineBusy { key: key.clone() });
        };
        match JoinPlan::decide(&entry.record, waiter.clone(), request.mode) {
            JoinPlan::Already(waiter, position) => Ok(Joined::Waiting(Box::new(Place {
                waiter: *waiter,
                position,
                record: entry.record.clone(),
                already_waiting: true,
                superseded: Vec::new(),
            }))),
            JoinPlan::Full => Err(LockError::LineFull {
                key: key.clone(),
                holder: Box::new(entry.record.clone()),
            }),
            JoinPlan::Write {
                line,
                position,
                superseded,
            } => {
                entry.record.waiters = line;
                entry.record.line_version += 1;
                Ok(Joined::Waiting(Box::new(Place {
                    waiter,
                    position,
                    record: entry.record.clone(),
                    already_waiting: false,
                    superseded,
                })))
            }
        }
    }

    fn leave_now(&self, key: &str, who: &str) -> Result<Left, LockError> {
        validate_key(key)?;
        let mut entries = self.entries();
        let not_waiting = || LockError::NotWaiting {
            key: key.to_owned(),
            who: who.to_owned(),
        };
        let entry = entries.get_mut(key).ok_or_else(not_waiting)?;
        let position = entry.record.position_of(who).ok_or_else(not_waiting)?;
        let waiter = entry.record.waiters.remove(position - 1);
        entry.record.line_version += 1;
        Ok(Left {
            waiter,
            record: entry.record.clone(),
        })
    }

    /// `LockClient::take_over`'s one write, under the store's lock.
    fn take_over_now(
        &self,
        request: &AcquireRequest,
        from_lock_id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Ended, LockError> {
        validate_acquire(request)?;
        validate_force_unlock(&request.key, actor, reason)?;
        let now_millis = self.now_millis();
        let plan = Plan::at(request, &self.options, now_millis);
        let mut entries = self.entries();
        let Some(entry) = entries
            .get_mut(&request.key)
            .filter(|e| e.owned_by(from_lock_id, None))
        else {
            let current = entries.get(&request.key).map(|e| e.record.clone());
            return Err(LockError::NotHeld {
                key: request.key.clone(),
                current: current.map(Box::new),
            });
        };
        let ending = Ending::Forced {
            actor: actor.to_owned(),
            actor_arn: None,
            reason: reason.to_owned(),
        };
        let old = entry.record.clone();
        let ended = taken_over(
            request,
            plan,
            &old,
            &ending,
            now_millis,
            self.retention_secs(),
        );
        if let Some(next) = &ended.next {
            entry.earlier_requests.rotate_right(1);
            entry.earlier_requests[0] = old.request_id.clone().unwrap_or_default();
            entry.record = next.record.clone();
            entry.run_id = None;
        }
        Ok(ended)
    }

    fn end_lapsed_now(&self, key: &str) -> Result<Option<Ended>, LockError> {
        validate_key(key)?;
        let now_millis = self.now_millis();
        let mut entries = self.entries();
        let entry = entries.get_mut(key).filter(|e| {
            let r = &e.record;
            r.status == LockStatus::InProgress
                && !r.waiters.is_empty()
                && r.expires_at_ms <= takeover_before_ms(now_millis, &self.options)
        });
        Ok(entry.map(|entry| self.end_entry(entry, &Ending::Lapsed, now_millis)))
    }

    fn renew_now(&self, key: &str, lock_id: &str, ttl: Duration) -> Result<LockRecord, LockError> {
        validate_renew(key, ttl)?;
        let now_ms = self.now_millis();
        let expires_at = lease_end(now_ms, ttl);
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(key).filter(|e| e.owned_by(lock_id, None)) else {
            let current = entries.get(key).map(|e| e.record.clone());
            return ownership_refused(key, lock_id, current, |_| false);
        };
        entry.record.expires_at = expires_at;
        entry.record.expires_at_ms = lease_end_millis(now_ms, ttl);
        entry.record.ttl = Some(expires_at.saturating_add(self.retention_secs()));
        Ok(entry.record.clone())
    }

    fn set_run_now(
        &self,
        key: &str,
        lock_id: &str,
        run_id: Option<u64>,
        run_url: &str,
    ) -> Result<LockRecord, LockError> {
        validate_key(key)?;
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(key).filter(|e| e.owned_by(lock_id, None)) else {
            let current = entries.get(key).map(|e| e.record.clone());
            return ownership_refused(key, lock_id, current, set_run_already_done(run_id, run_url));
        };
        entry.record.run_url = Some(run_url.to_owned());
        if let Some(id) = run_id {
            entry.run_id = Some(id);
            if let Some(pipeline) = entry.record.pipeline.as_mut() {
                pipeline.run_id = Some(id);
            }
        }
        Ok(entry.record.clone())
    }

    fn force_unlock_now(
        &self,
        key: &str,
        (actor, actor_arn): (&str, Option<&str>),
        reason: &str,
        only_lock_id: Option<&str>,
        granted_by: Option<u64>,
    ) -> Result<Ended, LockError> {
        validate_force_unlock(key, actor, reason)?;
        let now_millis = self.now_millis();
        let granted_by = granted_by.map(granted_by_bound);
        let mut entries = self.entries();
        let entry = entries.get_mut(key).filter(|e| {
            let r = &e.record;
            r.status == LockStatus::InProgress
                && only_lock_id.is_none_or(|id| r.lock_id == id)
                && granted_by
                    .as_deref()
                    .is_none_or(|by| r.locked_at.as_str() <= by)
        });
        let Some(entry) = entry else {
            let current = entries.get(key).map(|e| e.record.clone());
            return force_unlock_refused(key, actor, reason, current).map(Ended::alone);
        };
        let ending = Ending::Forced {
            actor: actor.to_owned(),
            actor_arn: actor_arn.map(str::to_owned),
            reason: reason.to_owned(),
        };
        Ok(self.end_entry(entry, &ending, now_millis))
    }

    fn status_now(&self, key: &str) -> Result<Option<LockRecord>, LockError> {
        validate_key(key)?;
        Ok(self.entries().get(key).map(|e| e.record.clone()))
    }

    /// Reads the way the active index is queried: `IN_PROGRESS` records in
    /// key order after the page token; `page_size` records are read (matching
    /// the key prefix) before the environment filter drops any, and a page
    /// that read that many names its last key as the next token.
    fn list_now(&self, query: &ListQuery) -> LockPage {
        let limit = usize::try_from(query.page_size.unwrap_or(50).clamp(1, 1000)).unwrap_or(50);
        let prefix = query.prefix.as_deref().unwrap_or_default();
        let start = match query.page_token.as_deref() {
            Some(token) => Bound::Excluded(token),
            None => Bound::Unbounded,
        };
        let entries = self.entries();
        let read: Vec<&LockRecord> = entries
            .range::<str, _>((start, Bound::Unbounded))
            .map(|(_, e)| &e.record)
            .filter(|r| r.status == LockStatus::InProgress && r.lock_key.starts_with(prefix))
            .take(limit)
            .collect();
        let next_page_token = (read.len() == limit)
            .then(|| read.last().map(|r| r.lock_key.clone()))
            .flatten();
        let locks = read
            .into_iter()
            .filter(|r| {
                query
                    .environment
                    .as_deref()
                    .is_none_or(|env| r.environment.as_deref() == Some(env))
            })
            .cloned()
            .collect();
        LockPage {
            locks,
            next_page_token,
        }
    }
}

/// The run condition of a completion: the grant's pipeline binding and its
/// recorded run id must be exactly the ones the completion names.
fn run_matches(entry: &Entry, run: &RunCheck) -> bool {
    match run {
        RunCheck::Unchecked => true,
        RunCheck::Recorded {
            repository,
            workflow,
            run_id,
        } => {
            entry
                .record
                .pipeline
                .as_ref()
                .is_some_and(|p| p.repository == *repository && p.workflow == *workflow)
                && entry.run_id == Some(*run_id)
        }
    }
}

/// The memory adapter: every operation is decided under the store's lock
/// and is complete when its future is first polled.
impl LockStore for MemoryStore {
    fn options(&self) -> &LockOptions {
        &self.options
    }

    fn now_millis(&self) -> u64 {
        clock::now_epoch_millis().saturating_add(self.shared.ahead_millis.load(Ordering::SeqCst))
    }

    async fn acquire(&self, request: &AcquireRequest) -> Result<Grant, LockError> {
        self.acquire_now(request)
    }

    async fn release(&self, request: &ReleaseRequest) -> Result<Ended, LockError> {
        self.release_now(request)
    }

    async fn take_over(
        &self,
        request: &AcquireRequest,
        from_lock_id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Ended, LockError> {
        self.take_over_now(request, from_lock_id, actor, reason)
    }

    async fn enqueue(&self, request: &JoinRequest, _seen: LockRecord) -> Result<Joined, LockError> {
        self.enqueue_now(request)
    }

    async fn leave(&self, key: &str, who: &str) -> Result<Left, LockError> {
        self.leave_now(key, who)
    }

    /// Decides on the key's record as it is now (under the store's lock),
    /// like the DynamoDB write conditioned on the record seen.
    async fn end_lapsed(&self, seen: &LockRecord) -> Result<Option<Ended>, LockError> {
        self.end_lapsed_now(&seen.lock_key)
    }

    async fn renew(
        &self,
        key: &str,
        lock_id: &str,
        ttl: Duration,
    ) -> Result<LockRecord, LockError> {
        self.renew_now(key, lock_id, ttl)
    }

    async fn set_run(
        &self,
        key: &str,
        lock_id: &str,
        run_id: Option<u64>,
        run_url: &str,
    ) -> Result<LockRecord, LockError> {
        self.set_run_now(key, lock_id, run_id, run_url)
    }

    async fn force_unlock(
        &self,
        key: &str,
        actor: &str,
        reason: &str,
        only_lock_id: Option<&str>,
    ) -> Result<Ended, LockError> {
        self.force_unlock_now(key, (actor, None), reason, only_lock_id, None)
    }

    async fn force_unlock_as(
        &self,
        key: &str,
        actor: &str,
        actor_arn: Option<&str>,
        reason: &str,
        only_lock_id: Option<&str>,
    ) -> Result<Ended, LockError> {
        self.force_unlock_now(key, (actor, actor_arn), reason, only_lock_id, None)
    }

    async fn force_unlock_seen(
        &self,
        key: &str,
        actor: &str,
        reason: &str,
        granted_by: u64,
    ) -> Result<Ended, LockError> {
        self.force_unlock_now(key, (actor, None), reason, None, Some(granted_by))
    }

    async fn status(&self, key: &str) -> Result<Option<LockRecord>, LockError> {
        self.status_now(key)
    }

    async fn list(&self, query: &ListQuery) -> Result<LockPage, LockError> {
        Ok(self.list_now(query))
    }

    async fn freeze(&self, request: &FreezeRequest) -> Result<FreezeRecord, LockError> {
        self.freeze_now(request)
    }

    async fn unfreeze(
        &self,
        key: &FreezeKey,
        actor: &str,
    ) -> Result<Option<FreezeRecord>, LockError> {
        self.unfreeze_now(key, actor)
    }

    async fn freeze_status(&self, key: &FreezeKey) -> Result<Option<FreezeRecord>, LockError> {
        Ok(self.freezes().get(key.as_str()).cloned())
    }
}
