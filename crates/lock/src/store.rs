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
    /// record; see [`LockClient::release`].
    fn release(
        &self,
        request: &ReleaseRequest,
    ) -> impl Future<Output = Result<LockRecord, LockError>> + Send;

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
    ) -> impl Future<Output = Result<LockRecord, LockError>> + Send;

    /// Force unlock of a grant made no later than `granted_by` (epoch
    /// seconds) only; see [`LockClient::force_unlock_seen`].
    fn force_unlock_seen(
        &self,
        key: &str,
        actor: &str,
        reason: &str,
        granted_by: u64,
    ) -> impl Future<Output = Result<LockRecord, LockError>> + Send;

    /// The current record of `key`, ended grants included; see
    /// [`LockClient::status`].
    fn status(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<LockRecord>, LockError>> + Send;

    /// One page of the `IN_PROGRESS` records in key order; see
    /// [`LockClient::list`].
    fn list(&self, query: &ListQuery) -> impl Future<Output = Result<LockPage, LockError>> + Send;

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
    ) -> impl Future<Output = Result<LockRecord, LockError>> + Send {
        LockClient::release(self, request)
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
    ) -> impl Future<Output = Result<LockRecord, LockError>> + Send {
        LockClient::force_unlock(self, key, actor, reason, only_lock_id)
    }

    fn force_unlock_seen(
        &self,
        key: &str,
        actor: &str,
        reason: &str,
        granted_by: u64,
    ) -> impl Future<Output = Result<LockRecord, LockError>> + Send {
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
}
