//! Waiting for a key: polling with capped exponential backoff and jitter,
//! bounded by a deadline and cancellable.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::acquire::{AcquireRequest, Grant, grant_kind, takeover_before_ms};
use crate::client::LockClient;
use crate::error::LockError;
use crate::line::{JoinRequest, Joined, Place};
use crate::ownership::ReleaseRequest;
use crate::record::{LockRecord, LockState, LockStatus};
use crate::store::LockStore;

/// Delay schedule between polls: doubles from `initial` up to `max`, each
/// delay drawn uniformly from its upper half so that many waiters spread out.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            next: initial.max(Duration::from_millis(1)),
            max: max.max(initial),
        }
    }

    /// The next delay to sleep.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = ceiling / 2;
        half + Duration::from_secs_f64(half.as_secs_f64() * fastrand::f64())
    }
}

impl LockClient {
    /// Polls [`LockClient::status`] until `key` is free (absent, ended, or
    /// expired past the skew margin), `timeout` passes, or `cancel` fires.
    /// Returns the last record seen (the ended or expired grant), if any.
    pub async fn wait_until_free(
        &self,
        key: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Option<LockRecord>, LockError> {
        wait_until_free(self, key, timeout, cancel).await
    }

    /// [`LockClient::acquire`], retried while the key is held until `wait`
    /// passes or `cancel` fires; `on_held` sees the holder at each conflict
    /// (to tell a user whom they wait for, at no extra request). With a zero
    /// `wait` this is a single attempt.
    pub async fn acquire_with_wait(
        &self,
        request: &AcquireRequest,
        wait: Duration,
        cancel: &CancellationToken,
        on_held: impl FnMut(&LockRecord),
    ) -> Result<Grant, LockError> {
        acquire_with_wait(self, request, wait, cancel, on_held).await
    }
}

/// [`LockClient::wait_until_free`] on any store, deciding expiry by the
/// store's own clock.
pub(crate) async fn wait_until_free<S: LockStore>(
    store: &S,
    key: &str,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Option<LockRecord>, LockError> {
    let deadline = Instant::now() + timeout;
    let options = store.options();
    let mut backoff = Backoff::new(options.poll_initial, options.poll_max);
    loop {
        let current = store.status(key).await?;
        let holder = match current {
            Some(r) if blocks(store, &r) => r,
            other => return Ok(other),
        };
        pause(store, key, &holder, deadline, &mut backoff, cancel).await?;
    }
}

/// [`LockClient::acquire_with_wait`] on any store.
pub(crate) async fn acquire_with_wait<S: LockStore>(
    store: &S,
    request: &AcquireRequest,
    wait: Duration,
    cancel: &CancellationToken,
    mut on_held: impl FnMut(&LockRecord),
) -> Result<Grant, LockError> {
    let deadline = Instant::now() + wait;
    let options = store.options();
    let mut backoff = Backoff::new(options.poll_initial, options.poll_max);
    loop {
        match store.acquire(request).await {
            Err(LockError::Held { holder }) if !wait.is_zero() => {
                on_held(&holder);
                pause(store, &request.key, &holder, deadline, &mut backoff, cancel).await?;
            }
            other => return other,
        }
    }
}

/// True while `record` keeps others out: held, or expired but still inside
/// the clock-skew margin (to the millisecond).
fn blocks<S: LockStore>(store: &S, record: &LockRecord) -> bool {
    let now_ms = store.now_millis();
    match record.state_at_ms(now_ms) {
        LockState::Held => true,
        LockState::Expired => record.expires_at_ms > takeover_before_ms(now_ms, store.options()),
        LockState::Ended => false,
    }
}

/// Sleeps the next backoff delay, but never past the moment the holder's
/// lease can be taken over nor past the deadline.
async fn pause<S: LockStore>(
    store: &S,
    key: &str,
    holder: &LockRecord,
    deadline: Instant,
    backoff: &mut Backoff,
    cancel: &CancellationToken,
) -> Result<(), LockError> {
    let now = Instant::now();
    if now >= deadline {
        return Err(LockError::WaitTimedOut {
            key: key.to_owned(),
            holder: Some(Box::new(holder.clone())),
        });
    }
    let skew_ms = u64::try_from(store.options().clock_skew.as_millis()).unwrap_or(u64::MAX);
    let takeover_at_ms = holder.expires_at_ms.saturating_add(skew_ms);
    let until_takeover = Duration::from_millis(takeover_at_ms.saturating_sub(store.now_millis()))
        .max(Duration::from_millis(10));
    let delay = backoff.next_delay().min(until_takeover).min(deadline - now);
    tokio::select! {
        () = cancel.cancelled() => Err(LockError::Cancelled { key: key.to_owned() }),
        () = tokio::time::sleep(delay) => Ok(()),
    }
}

/// Joins `request`'s line (or takes the key at once) and waits for the
/// waiter's turn; see [`LockStore::acquire_in_line`].
pub(crate) async fn acquire_in_line<S: LockStore>(
    store: &S,
    request: &JoinRequest,
    wait: Duration,
    cancel: &CancellationToken,
    mut on_place: impl FnMut(&Place),
) -> Result<Grant, LockError> {
    let deadline = Instant::now() + wait;
    let key = request.acquire.key.as_str();
    // One request id for every attempt to join: a join whose answer was
    // lost is then found in the line, not made twice.
    let mut request = request.clone();
    request
        .acquire
        .request_id
        .get_or_insert_with(|| uuid::Uuid::new_v4().to_string());
    let mut place = loop {
        match store.join(&request).await {
            Ok(Joined::Granted(grant)) => return Ok(grant),
            Ok(Joined::Waiting(place)) => break *place,
            Err(e) if e.is_transient() && Instant::now() < deadline => {
                nap(store, key, deadline, cancel).await?;
            }
            Err(e) => return Err(e),
        }
    };
    on_place(&place);
    let ticket = place.waiter.ticket.clone();
    loop {
        // A read or a hand-off the store did not answer is tried again at
        // the next poll: the wait, not one request, bounds the waiter.
        match store.status(key).await {
            Ok(Some(r)) if r.lock_id == ticket && r.status == LockStatus::InProgress => {
                match take_turn(store, &place, r, deadline).await {
                    Err(e) if !matches!(e, LockError::NotWaiting { .. }) => {
                        give_up(store, key, &ticket, "its claim failed").await.ok();
                        return Err(e);
                    }
                    turn => return turn,
                }
            }
            Ok(Some(r)) if r.position_of(&ticket).is_some() => {
                let position = r.position_of(&ticket).unwrap_or(place.position);
                if position == 1 && !blocks(store, &r) {
                    // The holder died with us at the head: end its lapsed
                    // grant in our favour (or in a newer head's, if we
                    // were dropped meanwhile), then look again.
                    match store.end_lapsed(&r).await {
                        Ok(_) => continue,
                        Err(e) if e.is_transient() => {}
                        Err(e) => return Err(e),
                    }
                }
                if position != place.position {
                    place.position = position;
                    place.record = r;
                    on_place(&place);
                }
            }
            Ok(_) => {
                return Err(LockError::NotWaiting {
                    key: key.to_owned(),
                    who: ticket,
                });
            }
            Err(e) if e.is_transient() => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        if now >= deadline {
            give_up(store, key, &ticket, "the wait timed out").await?;
            return Err(LockError::WaitTimedOut {
                key: key.to_owned(),
                holder: store.status(key).await?.map(Box::new),
            });
        }
        // The head polls at `line_poll`; those behind it less often, as
        // their turn is further off (and the key is read less).
        let delay = (store.options().line_poll * u32::try_from(place.position).unwrap_or(u32::MAX))
            .min(store.options().poll_max.max(store.options().line_poll))
            .min(deadline - now);
        tokio::select! {
            () = cancel.cancelled() => {
                give_up(store, key, &ticket, "the wait was cancelled").await?;
                return Err(LockError::Cancelled { key: key.to_owned() });
            }
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// One `line_poll` pause before trying again, unless the wait is over or
/// cancelled.
async fn nap<S: LockStore>(
    store: &S,
    key: &str,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<(), LockError> {
    let delay = store
        .options()
        .line_poll
        .min(deadline.saturating_duration_since(Instant::now()));
    tokio::select! {
        () = cancel.cancelled() => Err(LockError::Cancelled { key: key.to_owned() }),
        () = tokio::time::sleep(delay) => Ok(()),
    }
}

/// The waiter's turn came: its grant, on its full lease if the hand-off
/// gave it a claim lease only. A renew the store does not answer is tried
/// again until the claim lease ends (then the turn is lost: `NotWaiting`).
async fn take_turn<S: LockStore>(
    store: &S,
    place: &Place,
    record: LockRecord,
    deadline: Instant,
) -> Result<Grant, LockError> {
    let waiter = &place.waiter;
    let record = if waiter.claim_ms.is_some() {
        let ttl = Duration::from_millis(waiter.ttl_ms);
        loop {
            match store.renew(&record.lock_key, &waiter.ticket, ttl).await {
                Ok(renewed) => break renewed,
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    tokio::time::sleep(store.options().line_poll).await;
                }
                Err(LockError::NotOwner { .. } | LockError::AlreadyEnded { .. }) => {
                    return Err(LockError::NotWaiting {
                        key: record.lock_key.clone(),
                        who: waiter.ticket.clone(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
    } else {
        record
    };
    Ok(Grant {
        kind: grant_kind(record.previous.as_ref()),
        record,
    })
}

/// Leaves the line; if the turn came just before leaving, ends the grant
/// it brought, so no key is held by a waiter that is gone.
async fn give_up<S: LockStore>(
    store: &S,
    key: &str,
    ticket: &str,
    why: &str,
) -> Result<(), LockError> {
    match store.leave(key, ticket).await {
        Ok(_) => Ok(()),
        Err(LockError::NotWaiting { .. }) => {
            let mut release = ReleaseRequest::new(key, ticket, LockStatus::Failed);
            release.reason = Some(format!("{why} as its turn came"));
            match store.release(&release).await {
                Ok(_) | Err(LockError::NotOwner { .. } | LockError::AlreadyEnded { .. }) => Ok(()),
                Err(err) => Err(err),
            }
        }
        Err(err) => Err(err),
    }
}
