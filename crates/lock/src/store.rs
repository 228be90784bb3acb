//! [`LockStore`]: the lock operations as a port, so code that decides what
//! to do with a lock can be written (and tested) once and run on any store:
//! [`LockClient`] on DynamoDB in production, [`crate::MemoryStore`] in
//! decision tests that should not need DynamoDB Local. Both promise the same
//! behaviour, proved case by case by the conformance suite
//! (`crates/lock/tests/conformance.rs`).

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::acquire::{AcquireRequest, Grant};
use crate::client::{ListQuery, LockClient, LockOptions, LockPage};
use crate::clock;
use crate::error::LockError;
use crate::freeze::{FreezeKey, FreezeRecord, FreezeRequest};
use crate::handoff::Ended;
use crate::line::{JoinRequest, Joined, Left};
use crate::ownership::ReleaseRequest;
use crate::record::LockRecord;
use crate::wait;

/// A store of lock records that grants, ends and reports leases with fencing
/// tokens. Every method has the meaning (and the errors) documented on the
/// [`LockClient`] method of the same name; an adapter differs only in where
/// the records live.
///
/// The futures are `Send` and the store `Clone + Send + Sync + 'static`, so a
/// generic caller (`Worker<S: LockStore>`) can hold a store, clone it into
/// spawned tasks and await its operations on any runtime thread.
pub trait LockStore: Clone + Send + Sync + 'static {
    /// The tunables this store decides with: waiting reads the poll schedule
    /// and the clock-skew margin from here, so one wait loop serves every store.
    fn options(&self) -> &LockOptions;

    /// The clock this store decides leases by, in epoch milliseconds. The
    /// wall clock of [`crate::clock`] unless the store says otherwise (a
    /// memory store can run ahead, so tests expire leases without waiting);
    /// waiting asks this clock, so it agrees with the store on expiry.
    fn now_millis(&self) -> u64 {
        clock::now_epoch_millis()
    }

    /// Takes `request.key` if it is free, expired (past the skew margin and
    /// allowed by `request.takeover`) or already ours by request id; see
    /// [`LockClient::acquire`].
    fn acquire(
        &self,
        request: &AcquireRequest,
    ) -> impl Future<Output = Result<Grant, LockError>> + Send;

    /// Ends the grant `request.lock_id` as COMPLETED or FAILED, keeping the
    /// record, and hands the key to the head of its line; see
    /// [`LockClient::release`].
    fn release(
        &self,
        request: &ReleaseRequest,
    ) -> impl Future<Output = Result<Ended, LockError>> + Send;

    /// Ends grant `from_lock_id` as a forced FAILED and grants `request` in
    /// one write; see [`LockClient::take_over`].
    fn take_over(
        &self,
        request: &AcquireRequest,
        from_lock_id: &str,
        actor: &str,
        reason: &str,
    ) -> impl Future<Output = Result<Ended, LockError>> + Send;

    /// Takes the key, or joins its waiting line; see [`LockClient::join`].
    fn join(
        &self,
        request: &JoinRequest,
    ) -> impl Future<Output = Result<Joined, LockError>> + Send {
        async move {
            crate::line::validate_join(request)?;
            match self.acquire(&request.acquire).await {
                Ok(grant) => Ok(Joined::Granted(grant)),
                Err(LockError::Held { holder }) => self.enqueue(request, *holder).await,
                Err(err) => Err(err),
            }
        }
    }

    /// Joins the line of `seen`, the holder an acquire of the caller's
    /// just met; see [`LockClient::enqueue`].
    fn enqueue(
        &self,
        request: &JoinRequest,
        seen: LockRecord,
    ) -> impl Future<Output = Result<Joined, LockError>> + Send;

    /// Takes the waiter `who` (ticket or member) out of `key`'s line; see
    /// [`LockClient::leave`].
    fn leave(&self, key: &str, who: &str) -> impl Future<Output = Result<Left, LockError>> + Send;

    /// Hands the key of `seen`, whose grant lapsed, to the head of its
    /// line; see [`LockClient::end_lapsed`].
    fn end_lapsed(
        &self,
        seen: &LockRecord,
    ) -> impl Future<Output = Result<Option<Ended>, LockError>> + Send;

    /// Extends the lease of grant `lock_id` to `ttl` from now; see
    /// [`LockClient::renew`].
    fn renew(
        &self,
        key: &str,
        lock_id: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<LockRecord, LockError>> + Send;

    /// Records the pipeline run working under grant `lock_id`; see
    /// [`LockClient::set_run`].
    fn set_run(
        &self,
        key: &str,
        lock_id: &str,
        run_id: Option<u64>,
        run_url: &str,
    ) -> impl Future<Output = Result<LockRecord, LockError>> + Send;

    /// Ends whatever grant holds `key` (or only `only_lock_id`) as a forced
    /// FAILED; see [`LockClient::force_unlock`].
    fn force_unlock(
        &self,
        key: &str,
        actor: &str,
        reason: &str,
        only_lock_id: Option<&str>,
    ) -> impl Future<Output = Result<Ended, LockError>> + Send;

    /// A force unlock that records who asked as AWS authenticated them;
    /// see [`LockClient::force_unlock_as`].
    fn force_unlock_as(
        &self,
        key: &str,
        actor: &str,
        actor_arn: Option<&str>,
        reason: &str,
        only_lock_id: Option<&str>,
    ) -> impl Future<Output = Result<Ended, LockError>> + Send;

    /// Force unlock of a grant made no later than `granted_by` (epoch
    /// seconds) only; see [`LockClient::force_unlock_seen`].
    fn force_unlock_seen(
        &self,
        key: &str,
        actor: &str,
        reason: &str,
        granted_by: u64,
    ) -> impl Future<Output = Result<Ended, LockError>> + Send;

    /// The current record of `key`, ended grants included; see
    /// [`LockClient::status`].
    fn status(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<LockRecord>, LockError>> + Send;

    /// One page of the `IN_PROGRESS` records in key order; see
    /// [`LockClient::list`].
    fn list(&self, query: &ListQuery) -> impl Future<Output = Result<LockPage, LockError>> + Send;

    /// Freezes `request.key` from now for its duration, replacing any
    /// freeze there; see [`LockClient::freeze`].
    fn freeze(
        &self,
        request: &FreezeRequest,
    ) -> impl Future<Output = Result<FreezeRecord, LockError>> + Send;

    /// Lifts the freeze on `key` now (`None`: nothing was frozen); see
    /// [`LockClient::unfreeze`].
    fn unfreeze(
        &self,
        key: &FreezeKey,
        actor: &str,
    ) -> impl Future<Output = Result<Option<FreezeRecord>, LockError>> + Send;

    /// The freeze on `key`, in force or ended; see
    /// [`LockClient::freeze_status`].
    fn freeze_status(
        &self,
        key: &FreezeKey,
    ) -> impl Future<Output = Result<Option<FreezeRecord>, LockError>> + Send;

    /// Polls [`LockStore::status`] until `key` is free, `timeout` passes or
    /// `cancel` fires; see [`LockClient::wait_until_free`].
    fn wait_until_free(
        &self,
        key: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> impl Future<Output = Result<Option<LockRecord>, LockError>> + Send {
        wait::wait_until_free(self, key, timeout, cancel)
    }

    /// [`LockStore::acquire`], retried while the key is held; see
    /// [`LockClient::acquire_with_wait`].
    fn acquire_with_wait(
        &self,
        request: &AcquireRequest,
        wait: Duration,
        cancel: &CancellationToken,
        on_held: impl FnMut(&LockRecord) + Send,
    ) -> impl Future<Output = Result<Grant, LockError>> + Send {
        wait::acquire_with_wait(self, request, wait, cancel, on_held)
    }

    /// Takes the key, or waits in its line until the waiter's turn comes
    /// (a hand-off grants it), `wait` passes or `cancel` fires; a waiter
    /// that gives up leaves the line. `on_place` sees the waiter's place
    /// when it joins and whenever it moves up.
    fn acquire_in_line(
        &self,
        request: &JoinRequest,
        wait: Duration,
        cancel: &CancellationToken,
        on_place: impl FnMut(&crate::line::Place) + Send,
    ) -> impl Future<Output = Result<Grant, LockError>> + Send {
        wait::acquire_in_line(self, request, wait, cancel, on_place)
    }
}

/// The DynamoDB adapter: each method is the inherent [`LockClient`] method of
/// the same name, one conditional write (or read) per operation.
impl LockStore for LockClient {
    fn options(&self) -> &LockOptions {
        &self.options
    }

    fn acquire(
        &self,
        request: &AcquireRequest,
    ) -> impl Future<Output = Result<Grant, LockError>> + Send {
        LockClient::acquire(self, request)
    }

    fn release(
        &self,
        request: &ReleaseRequest,
    ) -> impl Future<Output = Result<Ended, LockError>> + Send {
        LockClient::release(self, request)
    }

    fn enqueue(
        &self,
        request: &JoinRequest,
        seen: LockRecord,
    ) -> impl Future<Output = Result<Joined, LockError>> + Send {
        LockClient::enqueue(self, request, seen)
    }

    fn take_over(
        &self,
        request: &AcquireRequest,
        from_lock_id: &str,
        actor: &str,
        reason: &str,
    ) -> impl Future<Output = Result<Ended, LockError>> + Send {
        LockClient::take_over(self, request, from_lock_id, actor, reason)
    }

    fn leave(&self, key: &str, who: &str) -> impl Future<Output = Result<Left, LockError>> + Send {
        LockClient::leave(self, key, who)
    }

    fn end_lapsed(
        &self,
        seen: &LockRecord,
    ) -> impl Future<Output = Result<Option<Ended>, LockError>> + Send {
        LockClient::end_lapsed(self, seen)
    }

    fn renew(
        &self,
        key: &str,
        lock_id: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<LockRecord, LockError>> + Send {
        LockClient::renew(self, key, lock_id, ttl)
    }

    fn set_run(
        &self,
        key: &str,
        lock_id: &str,
        run_id: Option<u64>,
        run_url: &str,
    ) -> impl Future<Output = Result<LockRecord, LockError>> + Send {
        LockClient::set_run(self, key, lock_id, run_id, run_url)
    }

    fn force_unlock(
        &self,
        key: &str,
        actor: &str,
        reason: &str,
        only_lock_id: Option<&str>,
    ) -> impl Future<Output = Result<Ended, LockError>> + Send {
        LockClient::force_unlock(self, key, actor, reason, only_lock_id)
    }

    fn force_unlock_as(
        &self,
        key: &str,
        actor: &str,
        actor_arn: Option<&str>,
        reason: &str,
        only_lock_id: Option<&str>,
    ) -> impl Future<Output = Result<Ended, LockError>> + Send {
        LockClient::force_unlock_as(self, key, actor, actor_arn, reason, only_lock_id)
    }

    fn force_unlock_seen(
        &self,
        key: &str,
        actor: &str,
        reason: &str,
        granted_by: u64,
    ) -> impl Future<Output = Result<Ended, LockError>> + Send {
        LockClient::force_unlock_seen(self, key, actor, reason, granted_by)
    }

    fn status(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<LockRecord>, LockError>> + Send {
        LockClient::status(self, key)
    }

    fn list(&self, query: &ListQuery) -> impl Future<Output = Result<LockPage, LockError>> + Send {
        LockClient::list(self, query)
    }

    fn freeze(
        &self,
        request: &FreezeRequest,
    ) -> impl Future<Output = Result<FreezeRecord, LockError>> + Send {
        LockClient::freeze(self, request)
    }

    fn unfreeze(
        &self,
        key: &FreezeKey,
        actor: &str,
    ) -> impl Future<Output = Result<Option<FreezeRecord>, LockError>> + Send {
        LockClient::unfreeze(self, key, actor)
    }

    fn freeze_status(
        &self,
        key: &FreezeKey,
    ) -> impl Future<Output = Result<Option<FreezeRecord>, LockError>> + Send {
        LockClient::freeze_status(self, key)
    }
}
