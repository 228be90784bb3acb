//! The lock's promises, each written once against [`LockStore`] and run on
//! both adapters: a fresh DynamoDB Local table (`dynamodb::…`) and a fresh
//! [`MemoryStore`] (`memory::…`). A case that passes on one adapter and
//! fails on the other is a difference in behaviour, so the memory store can
//! stand in for DynamoDB in decision tests elsewhere.
//!
//! Lease expiry is time passing on the store's clock: the DynamoDB cases
//! wait for the wall clock to reach a lease end (a second or two), the
//! memory cases move the memory store's clock there at once.
//!
//! DynamoDB facts (one request per operation, the schema, a missing table,
//! ambiguous writes) stay in `lock_semantics.rs` and `fault_injection.rs`.

use std::time::Duration;

use baton_lock::{
    AcquireRequest, CancellationToken, FreezeKey, FreezeRequest, GrantKind, ListQuery, LockError,
    LockOptions, LockState, LockStatus, PipelineRun, ReleaseRequest, RunCheck, Takeover,
};
use baton_testkit::fast_options;

#[macro_use]
mod common;
use common::Subject;

conformance! {
    acquire_when_free_writes_the_record,
    acquire_when_held_returns_the_holder,
    ended_records_stay_for_audit_and_are_free_to_acquire,
    expired_lock_is_taken_over_at_once_and_the_takeover_is_recorded,
    a_lease_ends_to_the_millisecond,
    clock_skew_margin_delays_takeover with LockOptions {
        clock_skew: Duration::from_secs(1),
        ..fast_options()
    },
    fence_grows_by_one_across_release_expiry_and_force_unlock,
    release_renew_and_annotate_need_the_current_lock_id,
    repeating_a_release_or_annotation_that_already_happened_succeeds,
    acquire_is_reentrant_by_request_id,
    a_request_id_is_no_credential_another_owner_gets_a_conflict,
    a_lapsed_grant_is_never_handed_back_to_its_request,
    a_lapsed_grant_not_taken_over_can_still_be_renewed_released_or_forced,
    a_late_duplicate_of_any_of_the_last_eight_requests_is_refused,
    renew_extends_the_lease,
    wait_times_out_with_the_holder_and_can_be_cancelled,
    wait_returns_once_the_holder_releases,
    acquire_with_wait_gets_the_lock_when_the_lease_lapses,
    force_unlock_records_actor_and_reason_and_needs_a_reason,
    a_grant_after_a_forced_end_is_not_forced,
    caller_arns_are_recorded_on_grants_and_force_unlocks_and_never_inherited,
    a_takeover_ends_the_holder_and_grants_the_operator_together,
    force_unlock_seen_never_ends_a_grant_made_after_the_request,
    list_reads_only_active_locks_by_page_prefix_and_environment,
    list_pages_count_records_read_before_the_environment_filter,
    invalid_arguments_are_refused_and_write_nothing,
    only_the_recorded_run_can_end_a_pipeline_grant,
    a_completion_can_never_end_a_grant_without_a_pipeline,
    an_expired_grant_with_a_recorded_run_is_spared_when_asked,
    a_run_recorded_on_a_grant_without_a_pipeline_spares_it_too,
    a_freeze_refuses_a_checked_acquire_with_the_freeze_and_writes_nothing,
    an_ended_freeze_allows_a_checked_acquire,
    a_lifted_freeze_allows_and_unfreeze_says_what_it_lifted,
    a_checked_acquire_without_a_freeze_keeps_every_acquire_promise,
    a_freeze_key_is_never_a_lock_key,
}

fn request(key: &str, owner: &str, ttl_secs: u64) -> AcquireRequest {
    AcquireRequest::new(key, owner, Duration::from_secs(ttl_secs))
}

fn release(key: &str, lock_id: &str, outcome: LockStatus) -> ReleaseRequest {
    ReleaseRequest::new(key, lock_id, outcome)
}

const RETENTION_SECS: u64 = 30 * 24 * 3600;

async fn acquire_when_free_writes_the_record<S: Subject>(store: S) {
    let mut req = request("build-router-plt", "U1", 600);
    req.owner_name = Some("alice".into());
    req.purpose = Some("/build router plt".into());
    req.component = Some("router".into());
    req.environment = Some("plt".into());
    req.correlation_id = Some("corr-1".into());
    req.host = Some("runner-1".into());
    req.pid = Some(4242);
    req.run_url = Some("https://ci.example/runs/1".into());
    req.request_id = Some("msg-1".into());
    let before = store.now_millis();

    let grant = store.acquire(&req).await.unwrap();

    let after = store.now_millis();
    assert_eq!(grant.kind, GrantKind::New);
    let stored = store.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(stored, grant.record, "the grant is what the store holds");
    assert_eq!(stored.lock_key, "build-router-plt");
    assert_eq!(stored.status, LockStatus::InProgress);
    assert_eq!(stored.request_id.as_deref(), Some("msg-1"));
    assert_eq!(stored.locked_by, "U1");
    assert_eq!(stored.locked_by_name.as_deref(), Some("alice"));
    assert_eq!(stored.purpose.as_deref(), Some("/build router plt"));
    assert_eq!(stored.component.as_deref(), Some("router"));
    assert_eq!(stored.environment.as_deref(), Some("plt"));
    assert_eq!(stored.correlation_id.as_deref(), Some("corr-1"));
    assert_eq!(stored.host.as_deref(), Some("runner-1"));
    assert_eq!(stored.pid, Some(4242));
    assert_eq!(stored.run_url.as_deref(), Some("https://ci.example/runs/1"));
    assert_eq!(stored.pipeline, None);
    assert_eq!(stored.previous, None, "nothing was replaced");
    assert!(!stored.forced);
    assert_eq!(
        (
            &stored.ended_at,
            &stored.released_by,
            &stored.release_reason
        ),
        (&None, &None, &None)
    );
    assert!(
        stored.locked_at.ends_with('Z') && stored.locked_at.contains('T'),
        "{}",
        stored.locked_at
    );
    // A key without history starts its fences at the clock's epoch millis.
    assert!(
        stored.fence > before && stored.fence <= after + 1,
        "fence {} outside ({before}, {after}]",
        stored.fence
    );
    // The lease ends `ttl` from now, rounded up to a whole second.
    assert!(stored.expires_at >= before.div_ceil(1000) + 600);
    assert!(stored.expires_at <= after.div_ceil(1000) + 600);
    // TTL only collects garbage: 30 days past the lease end by default.
    assert_eq!(stored.ttl, Some(stored.expires_at + RETENTION_SECS));
    assert_eq!(stored.state_at(store.now_secs()), LockState::Held);
    assert_eq!(store.status("other-key").await.unwrap(), None);
}

async fn acquire_when_held_returns_the_holder<S: Subject>(store: S) {
    let first = store
        .acquire(&request("deploy-api-prod", "U1", 600))
        .await
        .unwrap();

    match store.acquire(&request("deploy-api-prod", "U2", 600)).await {
        Err(LockError::Held { holder }) => assert_eq!(*holder, first.record),
        other => panic!("expected Held, got {other:?}"),
    }
    // The same owner with another request is not re-entrant either.
    match store.acquire(&request("deploy-api-prod", "U1", 600)).await {
        Err(LockError::Held { holder }) => assert_eq!(holder.lock_id, first.lock_id()),
        other => panic!("expected Held, got {other:?}"),
    }
    let after = store.status("deploy-api-prod").await.unwrap().unwrap();
    assert_eq!(after, first.record, "a refused acquire writes nothing");
}

async fn ended_records_stay_for_audit_and_are_free_to_acquire<S: Subject>(store: S) {
    let mut first_req = request("k", "U1", 600);
    first_req.request_id = Some("msg-1".into());
    first_req.component = Some("api".into());
    let first = store.acquire(&first_req).await.unwrap();
    store
        .set_run("k", first.lock_id(), None, "https://ci.example/runs/1")
        .await
        .unwrap();
    let mut ending = release("k", first.lock_id(), LockStatus::Completed);
    ending.reason = Some("pipeline succeeded".into());
    let ended_from = store.now_secs();
    let released = store.release(&ending).await.unwrap().record;
    assert_eq!(released.status, LockStatus::Completed);
    assert_eq!(
        released.released_by.as_deref(),
        Some("U1"),
        "defaults to the holder"
    );
    assert_eq!(
        released.release_reason.as_deref(),
        Some("pipeline succeeded")
    );
    assert!(released.ended_at.is_some());
    assert!(!released.forced);
    assert_eq!(released.fence, first.fence());
    let ttl = released.ttl.unwrap();
    assert!(
        ttl >= ended_from + RETENTION_SECS && ttl <= store.now_secs() + RETENTION_SECS,
        "an ended record is kept for the retention from its end: {ttl}"
    );

    let audit = store.status("k").await.unwrap().unwrap();
    assert_eq!(
        audit, released,
        "the ended grant stays as the status record"
    );
    assert_eq!(audit.state_at(store.now_secs()), LockState::Ended);

    let second = store.acquire(&request("k", "U2", 600)).await.unwrap();
    assert_eq!(second.kind, GrantKind::New);
    assert_eq!(second.fence(), first.fence() + 1);
    let prev = second.record.previous.clone().unwrap();
    assert_eq!(prev.lock_id, first.lock_id());
    assert_eq!(prev.status, LockStatus::Completed);
    assert_eq!(prev.locked_by, "U1");
    assert_eq!(prev.request_id.as_deref(), Some("msg-1"));
    assert_eq!(prev.expires_at, first.record.expires_at);
    assert!(!second.record.took_over_expired());
    let stored = store.status("k").await.unwrap().unwrap();
    assert_eq!(stored, second.record);
    assert_eq!(
        stored.ended_at, None,
        "a new grant does not inherit the old release fields"
    );
    assert_eq!(stored.release_reason, None);
    assert_eq!(stored.released_by, None);
    assert_eq!(stored.run_url, None, "nor the old run");
    assert_eq!(stored.component, None, "nor the old description");
}

async fn expired_lock_is_taken_over_at_once_and_the_takeover_is_recorded<S: Subject>(store: S) {
    let mut crashed = request("k", "crashed-runner", 1);
    crashed.request_id = Some("msg-1".into());
    let first = store.acquire(&crashed).await.unwrap();
    assert!(matches!(
        store.acquire(&request("k", "U2", 60)).await,
        Err(LockError::Held { .. })
    ));
    store.reach(first.record.expires_at).await;
    let seen = store.status("k").await.unwrap().unwrap();
    assert_eq!(seen.state_at(store.now_secs()), LockState::Expired);

    let second = store.acquire(&request("k", "U2", 60)).await.unwrap();

    match &second.kind {
        GrantKind::TakenOver { from } => {
            assert_eq!(from.lock_id, first.lock_id());
            assert_eq!(from.request_id.as_deref(), Some("msg-1"));
            assert_eq!(from.locked_by, "crashed-runner");
            assert_eq!(from.status, LockStatus::InProgress);
            assert_eq!(from.expires_at, first.record.expires_at);
        }
        other => panic!("expected a takeover, got {other:?}"),
    }
    let stored = store.status("k").await.unwrap().unwrap();
    assert_eq!(stored, second.record);
    assert!(
        stored.took_over_expired(),
        "the record itself records the takeover"
    );
    assert_eq!(stored.previous.unwrap().locked_by, "crashed-runner");
    assert_eq!(stored.fence, first.fence() + 1);
}

/// With a one-second margin, a lease is taken over one second after it ends
/// and not before; `wait_until_free` agrees with acquire on that moment.
/// Validity is decided by the lease end in milliseconds; the seconds
/// attribute is that end rounded up, for readers.
async fn a_lease_ends_to_the_millisecond<S: Subject>(store: S) {
    // Start 100 ms into a second, so the lease ends 400 ms into one and the
    // rounded seconds would keep it 600 ms longer.
    store
        .reach_ms((store.now_millis() / 1000 + 1) * 1000 + 100)
        .await;
    let mut short = request("k", "crashed", 0);
    short.ttl = Duration::from_millis(1300);
    let first = store.acquire(&short).await.unwrap();
    let end_ms = first.record.expires_at_ms;
    assert_eq!(first.record.expires_at, end_ms.div_ceil(1000));
    assert_eq!(
        store.status("k").await.unwrap().unwrap().expires_at_ms,
        end_ms
    );

    store.reach_ms(end_ms - 200).await;
    assert!(matches!(
        store.acquire(&request("k", "early", 60)).await,
        Err(LockError::Held { .. })
    ));
    store.reach_ms(end_ms).await;
    let taken = store.acquire(&request("k", "U2", 60)).await.unwrap();
    assert!(matches!(taken.kind, GrantKind::TakenOver { .. }));
    assert!(
        store.now_millis() < first.record.expires_at * 1000,
        "taken over at the millisecond end, before the rounded-up second"
    );
    // A renew moves the millisecond end too.
    let renewed = store
        .renew("k", taken.lock_id(), Duration::from_millis(1500))
        .await
        .unwrap();
    assert!(renewed.expires_at_ms >= store.now_millis() + 1400);
    assert_eq!(renewed.expires_at, renewed.expires_at_ms.div_ceil(1000));
}

async fn clock_skew_margin_delays_takeover<S: Subject>(store: S) {
    let first = store.acquire(&request("k", "U1", 1)).await.unwrap();
    store.reach(first.record.expires_at).await;

    let err = store.acquire(&request("k", "U2", 60)).await.unwrap_err();
    assert!(
        matches!(err, LockError::Held { ref holder } if holder.lock_id == first.lock_id()),
        "{err:?}"
    );
    let mut careful = request("k", "U2", 60);
    careful.takeover = Takeover::UnlessPipeline;
    assert!(matches!(
        store.acquire(&careful).await,
        Err(LockError::Held { .. })
    ));

    store.reach(first.record.expires_at + 1).await;
    let freed = store
        .wait_until_free("k", Duration::ZERO, &CancellationToken::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(freed.lock_id, first.lock_id());
    let second = store.acquire(&request("k", "U2", 60)).await.unwrap();
    assert!(
        matches!(second.kind, GrantKind::TakenOver { ref from } if from.lock_id == first.lock_id())
    );
}

async fn fence_grows_by_one_across_release_expiry_and_force_unlock<S: Subject>(store: S) {
    let mut fences = Vec::new();

    let mut a = request("k", "a", 600);
    a.request_id = Some("a-1".into());
    let g = store.acquire(&a).await.unwrap();
    fences.push(g.fence());
    let again = store.acquire(&a).await.unwrap();
    assert_eq!(again.kind, GrantKind::Existing);
    assert_eq!(again.fence(), g.fence(), "re-entry is no new grant");
    store
        .release(&release("k", g.lock_id(), LockStatus::Completed))
        .await
        .unwrap();

    let g = store.acquire(&request("k", "b", 1)).await.unwrap();
    fences.push(g.fence());
    store.reach(g.record.expires_at).await;

    let g = store.acquire(&request("k", "c", 600)).await.unwrap();
    fences.push(g.fence());
    store
        .force_unlock("k", "admin", "stuck", None)
        .await
        .unwrap();

    let g = store.acquire(&request("k", "d", 600)).await.unwrap();
    fences.push(g.fence());
    let renewed = store
        .renew("k", g.lock_id(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(renewed.fence, g.fence(), "renewing is no new grant");
    store
        .release(&release("k", g.lock_id(), LockStatus::Failed))
        .await
        .unwrap();

    let g = store.acquire(&request("k", "e", 600)).await.unwrap();
    fences.push(g.fence());

    assert!(
        fences.windows(2).all(|w| w[1] == w[0] + 1),
        "each grant's fence is one above the last: {fences:?}"
    );
    let other = store.acquire(&request("k2", "a", 600)).await.unwrap();
    assert!(
        other.fence() > fences[0],
        "a new key starts at the clock, above a key made earlier"
    );
}

async fn release_renew_and_annotate_need_the_current_lock_id<S: Subject>(store: S) {
    let grant = store.acquire(&request("k", "U1", 600)).await.unwrap();

    let wrong = release("k", "not-the-lock-id", LockStatus::Completed);
    match store.release(&wrong).await.unwrap_err() {
        LockError::NotOwner {
            key,
            lock_id,
            current,
        } => {
            assert_eq!((key.as_str(), lock_id.as_str()), ("k", "not-the-lock-id"));
            assert_eq!(*current.unwrap(), grant.record);
        }
        other => panic!("expected NotOwner, got {other:?}"),
    }
    let err = store
        .renew("k", "not-the-lock-id", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LockError::NotOwner { current: Some(ref c), .. } if c.locked_by == "U1"),
        "{err:?}"
    );
    let err = store
        .set_run("k", "nope", None, "https://example.invalid/run")
        .await
        .unwrap_err();
    assert!(matches!(err, LockError::NotOwner { .. }), "{err:?}");
    match store
        .release(&release("never-locked", "id", LockStatus::Completed))
        .await
    {
        Err(LockError::NotOwner { current: None, .. }) => {}
        other => panic!("a key without a record has no owner: {other:?}"),
    }
    assert!(matches!(
        store
            .renew("never-locked", "id", Duration::from_secs(60))
            .await,
        Err(LockError::NotOwner { current: None, .. })
    ));

    // A completion report from the same grant but with the wrong fence is refused too.
    let mut stale = release("k", grant.lock_id(), LockStatus::Completed);
    stale.fence = Some(grant.fence() - 1);
    assert!(matches!(
        store.release(&stale).await.unwrap_err(),
        LockError::NotOwner { .. }
    ));
    let untouched = store.status("k").await.unwrap().unwrap();
    assert_eq!(untouched, grant.record, "refused writes change nothing");

    let annotated = store
        .set_run("k", grant.lock_id(), None, "https://ci.example/run/1")
        .await
        .unwrap();
    assert_eq!(
        annotated.run_url.as_deref(),
        Some("https://ci.example/run/1")
    );
    assert_eq!(annotated.pipeline, None);
    assert_eq!(store.status("k").await.unwrap().unwrap(), annotated);

    let mut ending = release("k", grant.lock_id(), LockStatus::Failed);
    ending.reason = Some("tests failed".into());
    ending.fence = Some(grant.fence());
    ending.actor = Some("reconciler".into());
    let ended = store.release(&ending).await.unwrap();
    assert_eq!(ended.status, LockStatus::Failed);
    assert_eq!(ended.release_reason.as_deref(), Some("tests failed"));
    assert_eq!(ended.released_by.as_deref(), Some("reconciler"));
    assert_eq!(
        ended.run_url.as_deref(),
        Some("https://ci.example/run/1"),
        "the run stays on the ended record"
    );

    // Releasing a grant that was force-unlocked is refused with the record.
    let grant = store.acquire(&request("k", "U2", 600)).await.unwrap();
    store
        .force_unlock("k", "admin", "hung deploy", None)
        .await
        .unwrap();
    let err = store
        .release(&release("k", grant.lock_id(), LockStatus::Completed))
        .await
        .unwrap_err();
    match err {
        LockError::AlreadyEnded { record } => {
            assert!(record.forced);
            assert_eq!(record.released_by.as_deref(), Some("admin"));
        }
        other => panic!("expected AlreadyEnded, got {other:?}"),
    }
    // Even a FAILED release (the outcome the force unlock recorded) is no repeat.
    assert!(matches!(
        store
            .release(&release("k", grant.lock_id(), LockStatus::Failed))
            .await,
        Err(LockError::AlreadyEnded { .. })
    ));
    assert!(matches!(
        store
            .renew("k", grant.lock_id(), Duration::from_secs(60))
            .await,
        Err(LockError::AlreadyEnded { .. })
    ));
    assert!(matches!(
        store
            .set_run("k", grant.lock_id(), None, "https://ci.example/run/2")
            .await,
        Err(LockError::AlreadyEnded { .. })
    ));
}

/// A write that finds its own effect already on the record succeeds again
/// (a redelivered completion, a retried annotation), whatever else differs
/// is refused.
async fn repeating_a_release_or_annotation_that_already_happened_succeeds<S: Subject>(store: S) {
    let grant = store.acquire(&request("k", "U1", 600)).await.unwrap();
    store
        .set_run("k", grant.lock_id(), Some(5), "https://ci.example/run/5")
        .await
        .unwrap();
    let mut done = release("k", grant.lock_id(), LockStatus::Completed);
    done.actor = Some("ci".into());
    done.reason = Some("green".into());
    let first = store.release(&done).await.unwrap().record;

    let again = store.release(&done).await.unwrap();
    assert_eq!(
        again.record, first,
        "the same release again is the same result"
    );
    let mut no_actor = done.clone();
    no_actor.actor = None;
    assert_eq!(store.release(&no_actor).await.unwrap().record, first);
    let mut other_actor = done.clone();
    other_actor.actor = Some("someone-else".into());
    assert!(matches!(
        store.release(&other_actor).await,
        Err(LockError::AlreadyEnded { .. })
    ));
    assert!(matches!(
        store
            .release(&release("k", grant.lock_id(), LockStatus::Failed))
            .await,
        Err(LockError::AlreadyEnded { .. })
    ));
    // The annotation it already carries is a repeat; another is refused.
    assert_eq!(
        store
            .set_run("k", grant.lock_id(), None, "https://ci.example/run/5")
            .await
            .unwrap(),
        first
    );
    assert!(matches!(
        store
            .set_run("k", grant.lock_id(), Some(6), "https://ci.example/run/5")
            .await,
        Err(LockError::AlreadyEnded { .. })
    ));
    assert_eq!(store.status("k").await.unwrap().unwrap(), first);

    // Once the key is granted again, a repeat of the release that ended
    // our grant is recognised in the new grant's copy of it.
    let next = store.acquire(&request("k", "U2", 600)).await.unwrap();
    let mut with_fence = done.clone();
    with_fence.fence = Some(grant.fence());
    let recognised = store.release(&with_fence).await.unwrap();
    assert_eq!(recognised.lock_id, grant.lock_id());
    assert_eq!(recognised.status, LockStatus::Completed);
    assert_eq!(recognised.fence, grant.fence());
    assert_eq!(recognised.locked_by, "U1");
    assert_eq!(
        store.status("k").await.unwrap().unwrap(),
        next.record,
        "the new grant is untouched"
    );
    // A release asking for another outcome meets the new holder.
    match store
        .release(&release("k", grant.lock_id(), LockStatus::Failed))
        .await
    {
        Err(LockError::NotOwner {
            current: Some(current),
            ..
        }) => assert_eq!(current.lock_id, next.lock_id()),
        other => panic!("expected NotOwner, got {other:?}"),
    }
}

async fn acquire_is_reentrant_by_request_id<S: Subject>(store: S) {
    let mut req = request("build-router-plt", "U1", 600);
    req.request_id = Some("sqs-message-1".into());
    let first = store.acquire(&req).await.unwrap();

    let mut redelivered = req.clone();
    redelivered.ttl = Duration::from_secs(3600);
    redelivered.purpose = Some("changed".into());
    let again = store.acquire(&redelivered).await.unwrap();
    assert_eq!(again.kind, GrantKind::Existing);
    assert_eq!(again.record, first.record, "the grant as it stands");
    assert_eq!(
        store.status("build-router-plt").await.unwrap().unwrap(),
        first.record,
        "nothing was written"
    );

    let mut other = request("build-router-plt", "U2", 600);
    other.request_id = Some("sqs-message-2".into());
    assert!(matches!(
        store.acquire(&other).await,
        Err(LockError::Held { .. })
    ));

    // Even after the run ended, a redelivery of the same message does not
    // start a second run: it is told its grant already ended.
    store
        .release(&release(
            "build-router-plt",
            first.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .unwrap();
    match store.acquire(&req).await {
        Err(LockError::RequestEnded { record }) => {
            assert_eq!(record.status, LockStatus::Completed);
            assert_eq!(record.fence, first.fence());
        }
        other => panic!("a redelivery after the run ended must be RequestEnded: {other:?}"),
    }
    // The same holds after a force unlock.
    let mut next = request("build-router-plt", "U1", 600);
    next.request_id = Some("sqs-message-3".into());
    let third = store.acquire(&next).await.unwrap();
    store
        .force_unlock("build-router-plt", "admin", "stuck", None)
        .await
        .unwrap();
    match store.acquire(&next).await {
        Err(LockError::RequestEnded { record }) => {
            assert!(record.forced);
            assert_eq!(record.lock_id, third.lock_id());
        }
        other => panic!("a redelivery after a force unlock must be RequestEnded: {other:?}"),
    }
}

async fn a_request_id_is_no_credential_another_owner_gets_a_conflict<S: Subject>(store: S) {
    let mut mine = request("deploy-api-prod", "U1", 600);
    mine.request_id = Some("shared-id".into());
    let granted = store.acquire(&mine).await.unwrap();

    let mut theirs = request("deploy-api-prod", "U2", 600);
    theirs.request_id = Some("shared-id".into());
    match store.acquire(&theirs).await {
        Err(LockError::Held { holder }) => {
            assert_eq!(holder.locked_by, "U1");
            assert_eq!(holder.lock_id, granted.lock_id());
        }
        other => panic!("another owner's request id must be a conflict: {other:?}"),
    }
    let after = store.status("deploy-api-prod").await.unwrap().unwrap();
    assert_eq!(after.lock_id, granted.lock_id(), "nothing was written");

    // Once the grant ended the key is free, but not to a request id it has
    // seen: another owner presenting it still meets the (ended) grant.
    store
        .release(&release(
            "deploy-api-prod",
            granted.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .unwrap();
    match store.acquire(&theirs).await {
        Err(LockError::Held { holder }) => {
            assert_eq!(holder.lock_id, granted.lock_id());
            assert_eq!(holder.status, LockStatus::Completed);
        }
        other => panic!("a seen request id is never granted again: {other:?}"),
    }
}

async fn a_lapsed_grant_is_never_handed_back_to_its_request<S: Subject>(store: S) {
    let mut req = request("build-router-plt", "U1", 1);
    req.request_id = Some("trigger-1".into());
    let first = store.acquire(&req).await.unwrap();
    store.reach(first.record.expires_at).await;
    match store.acquire(&req).await {
        Err(LockError::RequestLapsed { record }) => {
            assert_eq!(*record, first.record);
            assert_eq!(record.status, LockStatus::InProgress);
        }
        other => panic!("a lapsed grant must not come back as held: {other:?}"),
    }
    assert_eq!(
        store.status("build-router-plt").await.unwrap().unwrap(),
        first.record,
        "nothing was written"
    );
}

/// Expiry alone ends nothing: until someone takes the key over, the holder
/// can renew or release its lapsed grant, an operator can force it, and it
/// is still listed as active. Once taken over, the old lock id is no
/// owner any more.
async fn a_lapsed_grant_not_taken_over_can_still_be_renewed_released_or_forced<S: Subject>(
    store: S,
) {
    let mut revived_req = request("lapsed-revived", "U1", 1);
    revived_req.request_id = Some("revive-1".into());
    let revived = store.acquire(&revived_req).await.unwrap();
    let released = store
        .acquire(&request("lapsed-released", "U1", 1))
        .await
        .unwrap();
    let forced = store
        .acquire(&request("lapsed-forced", "U1", 1))
        .await
        .unwrap();
    let taken = store
        .acquire(&request("lapsed-taken", "U1", 1))
        .await
        .unwrap();
    let last_end = [&revived, &released, &forced, &taken]
        .iter()
        .map(|g| g.record.expires_at)
        .max()
        .unwrap();
    store.reach(last_end).await;

    let page = store
        .list(&ListQuery {
            prefix: Some("lapsed-".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.locks.len(), 4, "expired grants are still active");

    let renewed = store
        .renew(
            "lapsed-revived",
            revived.lock_id(),
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    assert_eq!(renewed.fence, revived.fence());
    assert_eq!(renewed.state_at(store.now_secs()), LockState::Held);
    assert_eq!(
        store.acquire(&revived_req).await.unwrap().kind,
        GrantKind::Existing,
        "renewed, the grant is live again for its request"
    );
    assert!(matches!(
        store.acquire(&request("lapsed-revived", "U2", 60)).await,
        Err(LockError::Held { .. })
    ));

    let ended = store
        .release(&release(
            "lapsed-released",
            released.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .unwrap();
    assert_eq!(ended.status, LockStatus::Completed);

    let broken = store
        .force_unlock("lapsed-forced", "admin", "runner gone", None)
        .await
        .unwrap();
    assert!(broken.forced);
    assert_eq!(broken.lock_id, forced.lock_id());

    let taker = store
        .acquire(&request("lapsed-taken", "U2", 600))
        .await
        .unwrap();
    match store
        .renew("lapsed-taken", taken.lock_id(), Duration::from_secs(600))
        .await
    {
        Err(LockError::NotOwner {
            current: Some(current),
            ..
        }) => assert_eq!(*current, taker.record),
        other => panic!("a grant taken over cannot be renewed: {other:?}"),
    }
    assert!(matches!(
        store
            .release(&release(
                "lapsed-taken",
                taken.lock_id(),
                LockStatus::Completed
            ))
            .await,
        Err(LockError::NotOwner { .. })
    ));
}

async fn a_late_duplicate_of_any_of_the_last_eight_requests_is_refused<S: Subject>(store: S) {
    let mut first = request("k", "U1", 600);
    first.request_id = Some("sqs-message-1".into());
    let later: Vec<AcquireRequest> = (2..=8)
        .map(|n| {
            let mut r = request("k", "U2", 600);
            r.request_id = Some(format!("sqs-message-{n}"));
            r
        })
        .collect();
    for req in std::iter::once(&first).chain(&later) {
        let grant = store.acquire(req).await.unwrap();
        store
            .release(&release("k", grant.lock_id(), LockStatus::Completed))
            .await
            .unwrap();
    }

    match store.acquire(&first).await {
        Err(LockError::RequestSuperseded {
            request_id,
            current,
        }) => {
            assert_eq!(request_id, "sqs-message-1");
            assert_eq!(current.request_id.as_deref(), Some("sqs-message-8"));
        }
        other => {
            panic!("a duplicate of message 1, seven grants later, must not run again: {other:?}")
        }
    }
    assert!(matches!(
        store.acquire(&later[3]).await,
        Err(LockError::RequestSuperseded { .. })
    ));
    let mut new = request("k", "U3", 600);
    new.request_id = Some("sqs-message-9".into());
    let ninth = store.acquire(&new).await.unwrap();
    assert_eq!(ninth.kind, GrantKind::New, "new requests still get the key");
    assert_eq!(
        ninth
            .record
            .previous
            .as_ref()
            .unwrap()
            .request_id
            .as_deref(),
        Some("sqs-message-8")
    );

    // The window is eight requests: message 1 has left it (it now meets the
    // holder like any stranger), message 2 is still in it.
    match store.acquire(&first).await {
        Err(LockError::Held { holder }) => assert_eq!(holder.lock_id, ninth.lock_id()),
        other => panic!("message 1 is out of the window: {other:?}"),
    }
    assert!(matches!(
        store.acquire(&later[0]).await,
        Err(LockError::RequestSuperseded { .. })
    ));
}

async fn renew_extends_the_lease<S: Subject>(store: S) {
    let grant = store.acquire(&request("k", "U1", 1)).await.unwrap();

    let from = store.now_secs();
    let renewed = store
        .renew("k", grant.lock_id(), Duration::from_secs(3600))
        .await
        .unwrap();

    assert!(renewed.expires_at >= from + 3600);
    assert!(renewed.expires_at <= store.now_secs() + 3601);
    assert_eq!(renewed.ttl, Some(renewed.expires_at + RETENTION_SECS));
    assert_eq!(renewed.fence, grant.fence(), "renewing is not a new grant");
    assert_eq!(renewed.locked_at, grant.record.locked_at);
    assert_eq!(store.status("k").await.unwrap().unwrap(), renewed);
    store.reach(grant.record.expires_at + 1).await;
    assert!(matches!(
        store.acquire(&request("k", "U2", 60)).await,
        Err(LockError::Held { .. })
    ));
}

async fn wait_times_out_with_the_holder_and_can_be_cancelled<S: Subject>(store: S) {
    let grant = store.acquire(&request("k", "U1", 600)).await.unwrap();
    let never = CancellationToken::new();

    match store
        .wait_until_free("k", Duration::from_millis(300), &never)
        .await
    {
        Err(LockError::WaitTimedOut { holder, key }) => {
            assert_eq!(key, "k");
            assert_eq!(holder.unwrap().lock_id, grant.lock_id())
        }
        other => panic!("expected a timeout, got {other:?}"),
    }

    let cancel = CancellationToken::new();
    let waiter = {
        let (store, cancel) = (store.clone(), cancel.clone());
        tokio::spawn(async move {
            store
                .wait_until_free("k", Duration::from_secs(600), &cancel)
                .await
        })
    };
    cancel.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(outcome, Err(LockError::Cancelled { .. })),
        "{outcome:?}"
    );
    assert_eq!(
        store
            .wait_until_free("never-locked", Duration::ZERO, &never)
            .await
            .unwrap(),
        None,
        "a key without a record is free"
    );
}

async fn wait_returns_once_the_holder_releases<S: Subject>(store: S) {
    let grant = store.acquire(&request("k", "U1", 600)).await.unwrap();
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .wait_until_free("k", Duration::from_secs(30), &CancellationToken::new())
                .await
        })
    };
    store
        .release(&release("k", grant.lock_id(), LockStatus::Completed))
        .await
        .unwrap();
    let freed = waiter.await.unwrap().unwrap().unwrap();
    assert_eq!(freed.status, LockStatus::Completed);
    assert_eq!(freed.lock_id, grant.lock_id());
}

async fn acquire_with_wait_gets_the_lock_when_the_lease_lapses<S: Subject>(store: S) {
    let crashed = store.acquire(&request("k", "crashed", 1)).await.unwrap();

    let mut conflicts = Vec::new();
    let grant = store
        .acquire_with_wait(
            &request("k", "U2", 60),
            Duration::from_secs(20),
            &CancellationToken::new(),
            |holder| conflicts.push(holder.lock_id.clone()),
        )
        .await
        .unwrap();

    assert!(
        !conflicts.is_empty(),
        "the caller is told whom it waits for"
    );
    assert!(conflicts.iter().all(|id| id == crashed.lock_id()));
    assert!(
        matches!(grant.kind, GrantKind::TakenOver { ref from } if from.lock_id == crashed.lock_id())
    );
    assert!(store.now_millis() >= crashed.record.expires_at_ms);

    // Without time to wait, a held key is a single refused attempt.
    let mut calls = 0;
    let err = store
        .acquire_with_wait(
            &request("k", "U3", 60),
            Duration::ZERO,
            &CancellationToken::new(),
            |_| calls += 1,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LockError::Held { .. }), "{err:?}");
    assert_eq!(calls, 0);
}

/// An operator's takeover: the holder's grant ends as a forced FAILED with
/// who and why, the operator's grant begins, the fence grows by one, and
/// the line stays behind the new holder.
async fn a_takeover_ends_the_holder_and_grants_the_operator_together<S: Subject>(store: S) {
    let holder = store.acquire(&request("k", "U1", 600)).await.unwrap();
    let waiter = baton_lock::JoinRequest {
        acquire: request("k", "UW", 600),
        mode: baton_lock::LineMode::Fifo { max: 5 },
        max_wait: Duration::from_secs(600),
        claim: None,
        member: Some("UW".into()),
    };
    store.join(&waiter).await.unwrap();
    let ended = store
        .take_over(
            &request("k", "UADMIN", 600),
            holder.lock_id(),
            "UADMIN",
            "rollback",
        )
        .await
        .unwrap();
    assert_eq!(ended.record.lock_id, holder.lock_id());
    assert_eq!(ended.record.status, LockStatus::Failed);
    assert!(ended.record.forced);
    assert_eq!(ended.record.released_by.as_deref(), Some("UADMIN"));
    assert_eq!(ended.record.release_reason.as_deref(), Some("rollback"));
    let next = ended.next.expect("the operator's grant");
    assert_eq!(next.record.locked_by, "UADMIN");
    assert_eq!(next.fence(), holder.fence() + 1);
    let stored = store.status("k").await.unwrap().unwrap();
    assert_eq!(stored.lock_id, next.lock_id());
    let previous = stored.previous.expect("the ended grant is copied");
    assert_eq!(
        (previous.lock_id.as_str(), previous.status),
        (holder.lock_id(), LockStatus::Failed)
    );
    assert_eq!(previous.released_by.as_deref(), Some("UADMIN"));
    assert_eq!(previous.release_reason.as_deref(), Some("rollback"));
    assert!(previous.forced, "the ended grant was forced");
    assert!(!stored.forced, "the operator's own grant is not");
    assert_eq!(
        stored.waiters.len(),
        1,
        "the line waits behind the new holder"
    );

    // The grant taken over is no longer current: a second takeover of it is refused.
    match store
        .take_over(&request("k", "U9", 60), holder.lock_id(), "U9", "again")
        .await
    {
        Err(LockError::NotHeld {
            current: Some(c), ..
        }) => assert_eq!(c.lock_id, next.lock_id()),
        other => panic!("expected NotHeld, got {other:?}"),
    }
    assert!(matches!(
        store
            .take_over(&request("k", "U9", 60), next.lock_id(), "U9", " ")
            .await,
        Err(LockError::InvalidInput(_))
    ));
    assert_eq!(
        store.status("k").await.unwrap().unwrap().lock_id,
        next.lock_id()
    );
}

async fn force_unlock_records_actor_and_reason_and_needs_a_reason<S: Subject>(store: S) {
    let grant = store.acquire(&request("k", "U1", 600)).await.unwrap();

    assert!(matches!(
        store.force_unlock("k", "admin", "  ", None).await,
        Err(LockError::InvalidInput(_))
    ));
    assert!(matches!(
        store.force_unlock("k", " ", "reason", None).await,
        Err(LockError::InvalidInput(_))
    ));
    match store
        .force_unlock("k", "admin", "old", Some("some-other-grant"))
        .await
    {
        Err(LockError::NotHeld {
            key,
            current: Some(current),
        }) => {
            assert_eq!(key, "k");
            assert_eq!(*current, grant.record);
        }
        other => panic!("only the named grant may be broken: {other:?}"),
    }

    let ended = store
        .force_unlock("k", "admin", "runner died", Some(grant.lock_id()))
        .await
        .unwrap()
        .record;
    assert_eq!(
        ended.locked_by, "U1",
        "the result names whose lock was broken"
    );
    assert_eq!(ended.lock_id, grant.lock_id());
    assert_eq!(ended.fence, grant.fence());
    assert_eq!(ended.status, LockStatus::Failed);
    assert!(ended.forced);
    assert!(ended.ended_at.is_some());
    assert_eq!(ended.released_by.as_deref(), Some("admin"));
    assert_eq!(ended.release_reason.as_deref(), Some("runner died"));
    assert_eq!(store.status("k").await.unwrap().unwrap(), ended);

    // The same force unlock again is recognised as done.
    assert_eq!(
        store
            .force_unlock("k", "admin", "runner died", None)
            .await
            .unwrap()
            .record,
        ended
    );
    match store.force_unlock("k", "admin", "again", None).await {
        Err(LockError::NotHeld {
            current: Some(c), ..
        }) => assert_eq!(c.status, LockStatus::Failed),
        other => panic!("expected NotHeld, got {other:?}"),
    }
    assert!(matches!(
        store.force_unlock("never-locked", "admin", "x", None).await,
        Err(LockError::NotHeld { current: None, .. })
    ));
    assert_eq!(store.status("never-locked").await.unwrap(), None);

    // A released grant is not held either.
    let next = store.acquire(&request("k", "U2", 600)).await.unwrap();
    store
        .release(&release("k", next.lock_id(), LockStatus::Completed))
        .await
        .unwrap();
    assert!(matches!(
        store.force_unlock("k", "admin", "runner died", None).await,
        Err(LockError::NotHeld {
            current: Some(_),
            ..
        })
    ));
}

async fn force_unlock_seen_never_ends_a_grant_made_after_the_request<S: Subject>(store: S) {
    let asked_at = store.now_secs() - 5;
    let fresh = store
        .acquire(&request("deploy-api-prod", "U2", 600))
        .await
        .unwrap();
    match store
        .force_unlock_seen("deploy-api-prod", "UADMIN", "stuck", asked_at)
        .await
    {
        Err(LockError::NotHeld {
            current: Some(current),
            ..
        }) => {
            assert_eq!(current.lock_id, fresh.lock_id());
        }
        other => panic!("a newer grant than the one seen must survive: {other:?}"),
    }
    assert_eq!(
        store.status("deploy-api-prod").await.unwrap().unwrap(),
        fresh.record
    );
    let ended = store
        .force_unlock_seen("deploy-api-prod", "UADMIN", "stuck", store.now_secs())
        .await
        .unwrap();
    assert!(ended.forced);
    assert_eq!(ended.lock_id, fresh.lock_id());
    assert!(matches!(
        store
            .force_unlock_seen("never-locked", "UADMIN", "stuck", store.now_secs())
            .await,
        Err(LockError::NotHeld { current: None, .. })
    ));
}

/// Reads every page of `query`, returning the keys of each page.
async fn pages<S: Subject>(store: &S, mut query: ListQuery) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    loop {
        let page = store.list(&query).await.unwrap();
        pages.push(page.locks.into_iter().map(|r| r.lock_key).collect());
        match page.next_page_token {
            Some(token) => query.page_token = Some(token),
            None => return pages,
        }
    }
}

async fn list_reads_only_active_locks_by_page_prefix_and_environment<S: Subject>(store: S) {
    for (key, env) in [
        ("deploy-web-dev", "dev"),
        ("build-api-prod", "prod"),
        ("build-api-dev", "dev"),
        ("deploy-api-prod", "prod"),
        ("build-web-prod", "prod"),
    ] {
        let mut r = request(key, "U1", 600);
        r.environment = Some(env.into());
        store.acquire(&r).await.unwrap();
    }
    let ended = store
        .acquire(&request("build-old-dev", "U1", 600))
        .await
        .unwrap();
    store
        .release(&release(
            "build-old-dev",
            ended.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .unwrap();
    let forced = store
        .acquire(&request("build-zzz-dev", "U1", 600))
        .await
        .unwrap();
    store
        .force_unlock("build-zzz-dev", "admin", "gone", Some(forced.lock_id()))
        .await
        .unwrap();

    let all = pages(
        &store,
        ListQuery {
            page_size: Some(2),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        all,
        vec![
            vec!["build-api-dev", "build-api-prod"],
            vec!["build-web-prod", "deploy-api-prod"],
            vec!["deploy-web-dev"],
        ],
        "active grants only, in key order, page by page"
    );
    let one_page = store.list(&ListQuery::default()).await.unwrap();
    assert_eq!(one_page.locks.len(), 5);
    assert_eq!(one_page.next_page_token, None);
    let listed = one_page
        .locks
        .iter()
        .find(|r| r.lock_key == "build-api-prod")
        .unwrap();
    assert_eq!(
        *listed,
        store.status("build-api-prod").await.unwrap().unwrap(),
        "a listed record is the whole record"
    );

    let by_prefix = store
        .list(&ListQuery {
            prefix: Some("deploy-".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let keys: Vec<_> = by_prefix
        .locks
        .iter()
        .map(|r| r.lock_key.as_str())
        .collect();
    assert_eq!(keys, vec!["deploy-api-prod", "deploy-web-dev"]);

    let prod_builds = store
        .list(&ListQuery {
            prefix: Some("build-".into()),
            environment: Some("prod".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let keys: Vec<_> = prod_builds
        .locks
        .iter()
        .map(|r| r.lock_key.as_str())
        .collect();
    assert_eq!(keys, vec!["build-api-prod", "build-web-prod"]);
    let empty_prefix = store
        .list(&ListQuery {
            prefix: Some(String::new()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(empty_prefix.locks.len(), 5, "an empty prefix is no filter");
}

/// A page reads `page_size` active records, then drops those of other
/// environments: pages can be short or empty while more follow, and a page
/// that read a full `page_size` always names a next page.
async fn list_pages_count_records_read_before_the_environment_filter<S: Subject>(store: S) {
    for (key, env) in [("a", "dev"), ("b", "prod"), ("c", "prod"), ("d", "dev")] {
        let mut r = request(key, "U1", 600);
        r.environment = Some(env.into());
        store.acquire(&r).await.unwrap();
    }
    let dev = pages(
        &store,
        ListQuery {
            environment: Some("dev".into()),
            page_size: Some(2),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(dev, vec![vec!["a"], vec!["d"], vec![]]);
    let prod = pages(
        &store,
        ListQuery {
            environment: Some("prod".into()),
            page_size: Some(1),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(prod, vec![vec![], vec!["b"], vec!["c"], vec![], vec![]]);
    let none = pages(
        &store,
        ListQuery {
            environment: Some("staging".into()),
            page_size: Some(3),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(none, vec![Vec::<String>::new(), vec![]]);
    let all = pages(
        &store,
        ListQuery {
            page_size: Some(0),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(all.len(), 5, "a page size below one reads one: {all:?}");
    let after_b = store
        .list(&ListQuery {
            page_token: Some("b".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let keys: Vec<_> = after_b.locks.iter().map(|r| r.lock_key.as_str()).collect();
    assert_eq!(keys, vec!["c", "d"], "a page starts after its token");
}

async fn invalid_arguments_are_refused_and_write_nothing<S: Subject>(store: S) {
    fn invalid<T>(r: Result<T, LockError>) -> bool {
        matches!(r, Err(LockError::InvalidInput(_)))
    }
    assert!(invalid(
        store
            .acquire(&request("", "U1", 60))
            .await
            .map(|g| g.record)
    ));
    assert!(invalid(
        store
            .acquire(&request("  ", "U1", 60))
            .await
            .map(|g| g.record)
    ));
    assert!(invalid(
        store
            .acquire(&request(&"k".repeat(1025), "U1", 60))
            .await
            .map(|g| g.record)
    ));
    assert!(invalid(
        store
            .acquire(&request("k", " ", 60))
            .await
            .map(|g| g.record)
    ));
    assert!(invalid(
        store
            .acquire(&request("k", "U1", 0))
            .await
            .map(|g| g.record)
    ));
    let mut sub_second = request("k", "U1", 0);
    sub_second.ttl = Duration::from_millis(999);
    assert!(invalid(store.acquire(&sub_second).await.map(|g| g.record)));
    assert!(invalid(
        store
            .release(&release("k", "id", LockStatus::InProgress))
            .await
    ));
    assert!(invalid(
        store
            .release(&release("", "id", LockStatus::Completed))
            .await
    ));
    assert!(invalid(
        store.renew("k", "id", Duration::from_millis(500)).await
    ));
    assert!(invalid(
        store.renew("", "id", Duration::from_secs(60)).await
    ));
    assert!(invalid(store.set_run("", "id", None, "u").await));
    assert!(invalid(store.force_unlock("", "admin", "x", None).await));
    assert!(invalid(store.force_unlock_seen("k", "", "x", 0).await));
    assert!(matches!(
        store.status("").await,
        Err(LockError::InvalidInput(_))
    ));
    assert_eq!(store.status("k").await.unwrap(), None);
    assert!(
        store
            .list(&ListQuery::default())
            .await
            .unwrap()
            .locks
            .is_empty()
    );

    // A key of exactly 1024 bytes is fine.
    let longest = "k".repeat(1024);
    store.acquire(&request(&longest, "U1", 60)).await.unwrap();
    assert!(store.status(&longest).await.unwrap().is_some());
}

fn pipeline_request(key: &str, owner: &str, ttl_secs: u64) -> AcquireRequest {
    let mut req = request(key, owner, ttl_secs);
    req.pipeline = Some(PipelineRun {
        repository: "acme/platform".into(),
        workflow: "deploy.yml".into(),
        run_id: None,
    });
    req
}

fn completion_of(lock_id: &str, fence: u64, run_id: u64) -> ReleaseRequest {
    let mut completion = release("deploy-api-prod", lock_id, LockStatus::Completed);
    completion.fence = Some(fence);
    completion.run = RunCheck::Recorded {
        repository: "acme/platform".into(),
        workflow: "deploy.yml".into(),
        run_id,
    };
    completion
}

async fn only_the_recorded_run_can_end_a_pipeline_grant<S: Subject>(store: S) {
    let grant = store
        .acquire(&pipeline_request("deploy-api-prod", "U1", 600))
        .await
        .unwrap();
    assert_eq!(
        grant.record.pipeline,
        pipeline_request("deploy-api-prod", "U1", 600).pipeline
    );
    // Before a run is recorded, no completion applies.
    assert!(matches!(
        store
            .release(&completion_of(grant.lock_id(), grant.fence(), 41))
            .await,
        Err(LockError::NotOwner { .. })
    ));
    // A link alone records no run.
    store
        .set_run(
            "deploy-api-prod",
            grant.lock_id(),
            None,
            "https://github.example/runs/",
        )
        .await
        .unwrap();
    let recorded = store
        .set_run(
            "deploy-api-prod",
            grant.lock_id(),
            Some(42),
            "https://github.example/runs/42",
        )
        .await
        .unwrap();
    assert_eq!(recorded.pipeline.as_ref().and_then(|p| p.run_id), Some(42));
    assert_eq!(
        recorded.run_url.as_deref(),
        Some("https://github.example/runs/42")
    );
    // Another run, even with the right lock id and fence, is refused.
    assert!(matches!(
        store
            .release(&completion_of(grant.lock_id(), grant.fence(), 41))
            .await,
        Err(LockError::NotOwner { .. })
    ));
    let mut foreign = completion_of(grant.lock_id(), grant.fence(), 42);
    foreign.run = RunCheck::Recorded {
        repository: "fork/platform".into(),
        workflow: "deploy.yml".into(),
        run_id: 42,
    };
    assert!(matches!(
        store.release(&foreign).await,
        Err(LockError::NotOwner { .. })
    ));
    let mut other_workflow = completion_of(grant.lock_id(), grant.fence(), 42);
    other_workflow.run = RunCheck::Recorded {
        repository: "acme/platform".into(),
        workflow: "build.yml".into(),
        run_id: 42,
    };
    assert!(matches!(
        store.release(&other_workflow).await,
        Err(LockError::NotOwner { .. })
    ));
    let still = store.status("deploy-api-prod").await.unwrap().unwrap();
    assert_eq!(still.status, LockStatus::InProgress);
    assert_eq!(still, recorded);

    let ended = store
        .release(&completion_of(grant.lock_id(), grant.fence(), 42))
        .await
        .unwrap();
    assert_eq!(ended.status, LockStatus::Completed);
    assert_eq!(ended.pipeline, recorded.pipeline, "the binding stays");
}

async fn a_completion_can_never_end_a_grant_without_a_pipeline<S: Subject>(store: S) {
    let cli = store
        .acquire(&request("deploy-api-prod", "ci@host", 600))
        .await
        .unwrap();
    assert!(matches!(
        store
            .release(&completion_of(cli.lock_id(), cli.fence(), 42))
            .await,
        Err(LockError::NotOwner { .. })
    ));
    // Not even once a run id was recorded on it.
    store
        .set_run(
            "deploy-api-prod",
            cli.lock_id(),
            Some(42),
            "https://github.example/runs/42",
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .release(&completion_of(cli.lock_id(), cli.fence(), 42))
            .await,
        Err(LockError::NotOwner { .. })
    ));
    let after = store.status("deploy-api-prod").await.unwrap().unwrap();
    assert_eq!(after.status, LockStatus::InProgress);
    assert!(after.pipeline.is_none());
}

async fn an_expired_grant_with_a_recorded_run_is_spared_when_asked<S: Subject>(store: S) {
    let grant = store
        .acquire(&pipeline_request("deploy-api-prod", "U1", 1))
        .await
        .unwrap();
    store
        .set_run(
            "deploy-api-prod",
            grant.lock_id(),
            Some(7),
            "https://github.example/runs/7",
        )
        .await
        .unwrap();
    // A grant whose dispatch named no run yet.
    let unnamed = store
        .acquire(&pipeline_request("deploy-web-prod", "U1", 1))
        .await
        .unwrap();
    store
        .set_run(
            "deploy-web-prod",
            unnamed.lock_id(),
            None,
            "https://github.example/runs/",
        )
        .await
        .unwrap();
    // A grant made with its run already known.
    let mut known = pipeline_request("deploy-db-prod", "U1", 1);
    known.pipeline.as_mut().unwrap().run_id = Some(9);
    let known = store.acquire(&known).await.unwrap();
    store
        .reach(grant.record.expires_at.max(unnamed.record.expires_at))
        .await;
    store.reach(known.record.expires_at).await;

    let mut careful = pipeline_request("deploy-api-prod", "U2", 600);
    careful.takeover = Takeover::UnlessPipeline;
    match store.acquire(&careful).await {
        Err(LockError::Held { holder }) => {
            assert_eq!(holder.lock_id, grant.lock_id());
            assert_eq!(holder.state_at(store.now_secs()), LockState::Expired);
        }
        other => panic!("a lapsed grant with a live-looking run must be spared: {other:?}"),
    }
    careful.key = "deploy-db-prod".into();
    assert!(matches!(
        store.acquire(&careful).await,
        Err(LockError::Held { .. })
    ));
    // Made for a pipeline whose run is not known yet: the run may be
    // working all the same, so it is spared too.
    careful.key = "deploy-web-prod".into();
    match store.acquire(&careful).await {
        Err(LockError::Held { holder }) => assert_eq!(holder.lock_id, unnamed.lock_id()),
        other => panic!("a lapsed pipeline grant without a run id must be spared: {other:?}"),
    }
    // A plain contender (a CLI job) still takes the expired lease over, and
    // the new grant carries no pipeline binding of its predecessor.
    let taken = store
        .acquire(&request("deploy-api-prod", "ci@host", 600))
        .await
        .unwrap();
    assert!(matches!(taken.kind, GrantKind::TakenOver { .. }));
    let now = store.status("deploy-api-prod").await.unwrap().unwrap();
    assert!(now.pipeline.is_none(), "{now:?}");
    assert!(now.run_url.is_none(), "{now:?}");
}

/// `set_run` records a run id on any grant. A grant without a pipeline
/// binding does not show it, but a careful acquire still spares it: the
/// run may be working.
async fn a_run_recorded_on_a_grant_without_a_pipeline_spares_it_too<S: Subject>(store: S) {
    let cli = store
        .acquire(&request("deploy-api-prod", "ci@host", 1))
        .await
        .unwrap();
    let annotated = store
        .set_run(
            "deploy-api-prod",
            cli.lock_id(),
            Some(5),
            "https://github.example/runs/5",
        )
        .await
        .unwrap();
    assert_eq!(annotated.pipeline, None, "no binding to show the run in");
    store.reach(cli.record.expires_at).await;

    let mut careful = pipeline_request("deploy-api-prod", "U2", 600);
    careful.takeover = Takeover::UnlessPipeline;
    match store.acquire(&careful).await {
        Err(LockError::Held { holder }) => assert_eq!(*holder, annotated),
        other => panic!("a recorded run spares the grant: {other:?}"),
    }
    careful.takeover = Takeover::Expired;
    careful.ttl = Duration::from_secs(1);
    let taken = store.acquire(&careful).await.unwrap();
    assert!(matches!(taken.kind, GrantKind::TakenOver { .. }));
    assert_eq!(
        taken.record.pipeline.as_ref().and_then(|p| p.run_id),
        None,
        "the old run id does not carry over"
    );
    // Once that lapses in turn it is spared for its own pipeline, not for
    // the old run; a plain contender takes it over.
    store.reach(taken.record.expires_at).await;
    careful.takeover = Takeover::UnlessPipeline;
    assert!(matches!(
        store.acquire(&careful).await,
        Err(LockError::Held { .. })
    ));
    let next = store
        .acquire(&request("deploy-api-prod", "ci@host", 60))
        .await
        .unwrap();
    assert!(
        matches!(next.kind, GrantKind::TakenOver { ref from } if from.lock_id == taken.lock_id())
    );
}

/// A force unlock marks the grant it ended, never the key: the grants after
/// it are not forced (no later write has to clear the mark, so a role that
/// may not force unlock can still take the key), while their record of the
/// grant before them says whether that one was.
async fn a_grant_after_a_forced_end_is_not_forced<S: Subject>(store: S) {
    let first = store.acquire(&request("k", "U1", 600)).await.unwrap();
    let ended = store
        .force_unlock("k", "admin", "runner gone", None)
        .await
        .unwrap();
    assert!(ended.forced);
    assert_eq!(ended.lock_id, first.lock_id());
    assert!(store.status("k").await.unwrap().unwrap().forced);

    let second = store.acquire(&request("k", "U2", 600)).await.unwrap();
    assert_eq!(second.kind, GrantKind::New);
    assert!(!second.record.forced);
    let previous = second.record.previous.as_ref().unwrap();
    assert_eq!(previous.lock_id, first.lock_id());
    assert!(previous.forced);
    let stored = store.status("k").await.unwrap().unwrap();
    assert_eq!(stored.lock_id, second.lock_id());
    assert!(!stored.forced, "{stored:?}");
    assert!(stored.previous.as_ref().unwrap().forced);

    // Ended by its holder, the second grant is not forced either, and the
    // grant after it finds an unforced predecessor.
    let released = store
        .release(&release("k", second.lock_id(), LockStatus::Completed))
        .await
        .unwrap();
    assert!(!released.forced, "{released:?}");
    assert!(!store.status("k").await.unwrap().unwrap().forced);
    let third = store.acquire(&request("k", "U3", 600)).await.unwrap();
    assert!(!third.record.forced);
    assert!(!third.record.previous.as_ref().unwrap().forced);

    // Forced again: the mark follows the grant it ended.
    let again = store
        .force_unlock("k", "admin", "again", Some(third.lock_id()))
        .await
        .unwrap();
    assert!(again.forced);
    let stored = store.status("k").await.unwrap().unwrap();
    assert!(stored.forced);
    assert_eq!(stored.lock_id, third.lock_id());
    // A repeat of that force unlock is recognised as done.
    let repeat = store
        .force_unlock("k", "admin", "again", None)
        .await
        .unwrap();
    assert_eq!(repeat.lock_id, third.lock_id());
}

/// The identities AWS authenticated stay with what they did: the caller of
/// a grant on that grant only, the caller of a force unlock on the grant it
/// ended only.
async fn caller_arns_are_recorded_on_grants_and_force_unlocks_and_never_inherited<S: Subject>(
    store: S,
) {
    const CI: &str = "arn:aws:sts::123456789012:assumed-role/baton-ci/run-1";
    const OPS: &str = "arn:aws:sts::123456789012:assumed-role/baton-admin/alice";
    let mut req = request("k", "github:acme/api#1", 600);
    req.caller_arn = Some(CI.into());
    let first = store.acquire(&req).await.unwrap();
    assert_eq!(first.record.caller_arn.as_deref(), Some(CI));
    let stored = store.status("k").await.unwrap().unwrap();
    assert_eq!(stored.caller_arn.as_deref(), Some(CI));
    assert_eq!(stored.forced_by_arn, None);

    let ended = store
        .force_unlock_as("k", "ops", Some(OPS), "runner gone", None)
        .await
        .unwrap();
    assert_eq!(ended.forced_by_arn.as_deref(), Some(OPS));
    assert_eq!(ended.released_by.as_deref(), Some("ops"));
    let stored = store.status("k").await.unwrap().unwrap();
    assert!(stored.forced);
    assert_eq!(stored.forced_by_arn.as_deref(), Some(OPS));
    assert_eq!(
        stored.caller_arn.as_deref(),
        Some(CI),
        "the grant's caller stays"
    );

    // A grant without a known caller inherits neither identity.
    let second = store.acquire(&request("k", "U2", 600)).await.unwrap();
    assert_eq!(second.record.caller_arn, None);
    let stored = store.status("k").await.unwrap().unwrap();
    assert_eq!((stored.caller_arn, stored.forced_by_arn), (None, None));

    // A later force unlock by someone AWS did not name does not take the
    // earlier one's ARN.
    let ended = store
        .force_unlock("k", "admin", "again", Some(second.lock_id()))
        .await
        .unwrap();
    assert_eq!(ended.forced_by_arn, None);
    let stored = store.status("k").await.unwrap().unwrap();
    assert!(stored.forced);
    assert_eq!(stored.forced_by_arn, None, "{stored:?}");
}

fn freeze_of(scope: &str, secs: u64) -> FreezeRequest {
    FreezeRequest {
        key: FreezeKey::new(scope).unwrap(),
        by: "U0ADMIN".into(),
        by_name: Some("alice".into()),
        reason: "release week".into(),
        duration: Duration::from_secs(secs),
    }
}

fn checked(key: &str, owner: &str, scope: &str) -> AcquireRequest {
    let mut req = request(key, owner, 600);
    req.unless_frozen = Some(FreezeKey::new(scope).unwrap());
    req
}

async fn a_freeze_refuses_a_checked_acquire_with_the_freeze_and_writes_nothing<S: Subject>(
    store: S,
) {
    let before = store.now_millis();
    let set = store.freeze(&freeze_of("deploy/prod", 3600)).await.unwrap();
    assert!(set.start_ms >= before && set.until_ms == set.start_ms + 3_600_000);

    let refused = store
        .acquire(&checked("deploy-api-prod", "U1", "deploy/prod"))
        .await;

    match refused {
        Err(LockError::Frozen { key, freeze }) => {
            assert_eq!(key, "deploy-api-prod");
            assert_eq!(*freeze, set, "the freeze as stored, from the same request");
            assert_eq!(freeze.scope, "deploy/prod");
            assert_eq!(freeze.by, "U0ADMIN");
            assert_eq!(freeze.by_label(), "alice");
            assert_eq!(freeze.reason, "release week");
        }
        other => panic!("expected Frozen, got {other:?}"),
    }
    assert_eq!(store.status("deploy-api-prod").await.unwrap(), None);
    // Another scope's freeze, and an acquire that asks for no check, are
    // not refused.
    store
        .acquire(&checked("deploy-api-dev", "U1", "deploy/dev"))
        .await
        .unwrap();
    let plain = store
        .acquire(&request("deploy-api-prod", "U1", 600))
        .await
        .unwrap();
    assert_eq!(plain.kind, GrantKind::New);
    // A held key under a freeze answers the freeze first.
    match store
        .acquire(&checked("deploy-api-prod", "U2", "deploy/prod"))
        .await
    {
        Err(LockError::Frozen { .. }) => {}
        other => panic!("expected Frozen, got {other:?}"),
    }
}

async fn an_ended_freeze_allows_a_checked_acquire<S: Subject>(store: S) {
    let first = store
        .acquire(&request("deploy-api-prod", "U1", 600))
        .await
        .unwrap();
    store
        .release(&release(
            "deploy-api-prod",
            first.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .unwrap();
    let set = store.freeze(&freeze_of("deploy/prod", 1)).await.unwrap();
    assert!(
        store
            .acquire(&checked("deploy-api-prod", "U2", "deploy/prod"))
            .await
            .is_err()
    );

    store.reach_ms(set.until_ms).await;
    let grant = store
        .acquire(&checked("deploy-api-prod", "U2", "deploy/prod"))
        .await
        .unwrap();

    assert_eq!(grant.kind, GrantKind::Checked);
    assert!(grant.fence() > first.fence(), "the fence only grows");
    let stored = store.status("deploy-api-prod").await.unwrap().unwrap();
    assert_eq!(stored.fence, grant.fence(), "the caller knows its fence");
    assert_eq!(stored.lock_id, grant.lock_id());
    assert_eq!(stored.locked_by, "U2");
    assert_eq!(stored.status, LockStatus::InProgress);
    let previous = stored
        .previous
        .expect("the stored record names its predecessor");
    assert_eq!(previous.lock_id, first.lock_id());
    assert_eq!(previous.status, LockStatus::Completed);
    let status = store
        .freeze_status(&FreezeKey::new("deploy/prod").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.active_at(store.now_millis()));
}

async fn a_lifted_freeze_allows_and_unfreeze_says_what_it_lifted<S: Subject>(store: S) {
    let key = FreezeKey::new("deploy/prod").unwrap();
    assert_eq!(store.unfreeze(&key, "U0ADMIN").await.unwrap(), None);
    let set = store.freeze(&freeze_of("deploy/prod", 3600)).await.unwrap();

    let lifted = store.unfreeze(&key, "U0OTHER").await.unwrap();

    assert_eq!(lifted, Some(set.clone()), "the freeze as it was");
    let now = store.now_millis();
    let after = store.freeze_status(&key).await.unwrap().unwrap();
    assert_eq!(after.lifted_by.as_deref(), Some("U0OTHER"));
    assert_eq!(after.reason, set.reason);
    assert!(after.until_ms <= now && !after.active_at(now));
    assert_eq!(
        store.unfreeze(&key, "U0ADMIN").await.unwrap(),
        None,
        "nothing left to lift"
    );
    let grant = store
        .acquire(&checked("deploy-api-prod", "U1", "deploy/prod"))
        .await
        .unwrap();
    assert_eq!(grant.kind, GrantKind::Checked);
    // Freezing again replaces the lifted record.
    let again = store.freeze(&freeze_of("deploy/prod", 3600)).await.unwrap();
    assert_eq!(store.freeze_status(&key).await.unwrap(), Some(again));
}

async fn a_checked_acquire_without_a_freeze_keeps_every_acquire_promise<S: Subject>(store: S) {
    let mut first = checked("deploy-api-prod", "U1", "deploy/prod");
    first.request_id = Some("msg-1".into());
    let before = store.now_millis();
    let grant = store.acquire(&first).await.unwrap();
    assert_eq!(grant.kind, GrantKind::Checked);
    assert!(
        grant.fence() >= before,
        "a new key's fence starts at the clock"
    );
    let stored = store.status("deploy-api-prod").await.unwrap().unwrap();
    assert_eq!(stored.fence, grant.fence());
    assert_eq!(stored.request_id.as_deref(), Some("msg-1"));

    // Held: the holder, from the same request.
    match store
        .acquire(&checked("deploy-api-prod", "U2", "deploy/prod"))
        .await
    {
        Err(LockError::Held { holder }) => assert_eq!(holder.lock_id, grant.lock_id()),
        other => panic!("expected Held, got {other:?}"),
    }
    // Re-entry by request id.
    let again = store.acquire(&first).await.unwrap();
    assert_eq!(again.kind, GrantKind::Existing);
    assert_eq!(again.lock_id(), grant.lock_id());

    // Plain and checked grants in turn: the fence grows every time.
    let mut fences = vec![grant.fence()];
    let mut holder = grant.lock_id().to_owned();
    for i in 0..4 {
        store
            .release(&release("deploy-api-prod", &holder, LockStatus::Completed))
            .await
            .unwrap();
        let next = if i % 2 == 0 {
            request("deploy-api-prod", "U3", 600)
        } else {
            checked("deploy-api-prod", "U3", "deploy/prod")
        };
        let g = store.acquire(&next).await.unwrap();
        fences.push(g.fence());
        holder = g.lock_id().to_owned();
    }
    assert!(fences.windows(2).all(|w| w[1] > w[0]), "{fences:?}");

    // An expired grant is taken over by a checked acquire too.
    let lapsed = store
        .acquire(&request("deploy-web-prod", "U1", 1))
        .await
        .unwrap();
    store.reach(lapsed.record.expires_at + 1).await;
    let taken = store
        .acquire(&checked("deploy-web-prod", "U2", "deploy/prod"))
        .await
        .unwrap();
    assert!(taken.fence() > lapsed.fence());
    let stored = store.status("deploy-web-prod").await.unwrap().unwrap();
    assert_eq!(stored.previous.unwrap().lock_id, lapsed.lock_id());
}

async fn a_freeze_key_is_never_a_lock_key<S: Subject>(store: S) {
    let key = FreezeKey::new("deploy/prod").unwrap();
    assert_eq!(key.as_str(), "!freeze/deploy/prod");
    assert_eq!(key.scope(), "deploy/prod");
    store.freeze(&freeze_of("deploy/prod", 3600)).await.unwrap();
    for refused in [
        store.acquire(&request(key.as_str(), "U1", 600)).await.err(),
        store.status(key.as_str()).await.err(),
    ] {
        match refused {
            Some(LockError::InvalidInput(why)) => assert!(why.contains("!freeze/"), "{why}"),
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }
    assert!(FreezeKey::new(" ").is_err());
    let mut no_reason = freeze_of("deploy/prod", 3600);
    no_reason.reason = " ".into();
    assert!(matches!(
        store.freeze(&no_reason).await,
        Err(LockError::InvalidInput(_))
    ));
    // The freeze is still the one set, untouched by the refused calls.
    let status = store.freeze_status(&key).await.unwrap().unwrap();
    assert_eq!(status.reason, "release week");
}
