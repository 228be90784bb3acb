//! The lock library's promises, each proved against DynamoDB Local, with
//! request counts taken at the wire by a loopback proxy.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use baton_lock::{
    AcquireRequest, CancellationToken, GrantKind, ListQuery, LockError, LockOptions, LockState,
    LockStatus, PipelineRun, ReleaseRequest, RunCheck, Takeover, clock::now_epoch_secs,
};
use baton_testkit::{FaultAction, FaultProxy, TestTable, fast_options, unique_name};

fn request(key: &str, owner: &str, ttl_secs: u64) -> AcquireRequest {
    AcquireRequest::new(key, owner, Duration::from_secs(ttl_secs))
}

/// Sleeps until the wall clock reaches `epoch_secs`: lease expiry is a matter
/// of time passing, not of synchronisation.
async fn until_epoch(epoch_secs: u64) {
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let target = Duration::from_secs(epoch_secs);
        if now >= target {
            return;
        }
        tokio::time::sleep(target - now).await;
    }
}

#[tokio::test]
async fn acquire_when_free_is_one_request_and_writes_the_record() {
    let table = TestTable::create().await;
    let proxy = FaultProxy::passthrough(&table.endpoint).await.unwrap();
    let locks = table.client_via(&proxy.url(), 1, fast_options());
    let mut req = request("build-router-plt", "U1", 600);
    req.owner_name = Some("alice".into());
    req.purpose = Some("/build router plt".into());
    req.component = Some("router".into());
    req.environment = Some("plt".into());
    req.correlation_id = Some("corr-1".into());
    req.host = Some("runner-1".into());
    req.pid = Some(4242);
    req.run_url = Some("https://ci.example/runs/1".into());

    let grant = locks.acquire(&req).await.unwrap();

    assert_eq!(proxy.operations(), vec!["UpdateItem"]);
    assert_eq!(grant.kind, GrantKind::New);
    let stored = table
        .client(fast_options())
        .status("build-router-plt")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.lock_id, grant.lock_id());
    assert_eq!(stored.fence, grant.fence());
    assert_eq!(stored.status, LockStatus::InProgress);
    assert_eq!(stored.locked_by, "U1");
    assert_eq!(stored.locked_by_name.as_deref(), Some("alice"));
    assert_eq!(stored.purpose.as_deref(), Some("/build router plt"));
    assert_eq!(stored.component.as_deref(), Some("router"));
    assert_eq!(stored.environment.as_deref(), Some("plt"));
    assert_eq!(stored.correlation_id.as_deref(), Some("corr-1"));
    assert_eq!(stored.host.as_deref(), Some("runner-1"));
    assert_eq!(stored.pid, Some(4242));
    assert_eq!(stored.run_url.as_deref(), Some("https://ci.example/runs/1"));
    assert!(
        stored.locked_at.ends_with('Z') && stored.locked_at.contains('T'),
        "{}",
        stored.locked_at
    );
    let now = now_epoch_secs();
    assert!(stored.expires_at >= now + 599 && stored.expires_at <= now + 601);
    // TTL only collects garbage: 30 days past the lease end by default.
    assert_eq!(stored.ttl, Some(stored.expires_at + 30 * 24 * 3600));
    assert_eq!(stored.state_at(now), LockState::Held);
}

#[tokio::test]
async fn acquire_when_held_returns_the_holder_from_the_same_request() {
    let table = TestTable::create().await;
    let proxy = FaultProxy::passthrough(&table.endpoint).await.unwrap();
    let locks = table.client_via(&proxy.url(), 1, fast_options());
    let first = locks
        .acquire(&request("deploy-api-prod", "U1", 600))
        .await
        .unwrap();
    proxy.clear();

    let err = locks
        .acquire(&request("deploy-api-prod", "U2", 600))
        .await
        .unwrap_err();

    assert_eq!(
        proxy.operations(),
        vec!["UpdateItem"],
        "no GetItem after a conflict"
    );
    match err {
        LockError::Held { holder } => {
            assert_eq!(holder.lock_id, first.lock_id());
            assert_eq!(holder.locked_by, "U1");
            assert_eq!(holder.fence, first.fence());
        }
        other => panic!("expected Held, got {other:?}"),
    }
}

#[tokio::test]
async fn ended_records_stay_for_audit_and_are_free_to_acquire() {
    let table = TestTable::create().await;
    let locks = table.client(fast_options());
    let first = locks.acquire(&request("k", "U1", 600)).await.unwrap();
    locks
        .set_run("k", first.lock_id(), None, "https://ci.example/runs/1")
        .await
        .unwrap();
    let mut release = ReleaseRequest::new("k", first.lock_id(), LockStatus::Completed);
    release.reason = Some("pipeline succeeded".into());
    let released = locks.release(&release).await.unwrap();
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

    let audit = locks.status("k").await.unwrap().unwrap();
    assert_eq!(audit.status, LockStatus::Completed);
    assert_eq!(audit.lock_id, first.lock_id());

    let second = locks.acquire(&request("k", "U2", 600)).await.unwrap();
    assert_eq!(second.kind, GrantKind::New);
    assert!(second.fence() > first.fence());
    let prev = second.record.previous.clone().unwrap();
    assert_eq!(
        (prev.lock_id.as_str(), prev.status),
        (first.lock_id(), LockStatus::Completed)
    );
    let stored = locks.status("k").await.unwrap().unwrap();
    assert_eq!(
        stored.ended_at, None,
        "a new grant does not inherit the old release fields"
    );
    assert_eq!(stored.release_reason, None);
    assert_eq!(stored.run_url, None, "nor the old run");
}

#[tokio::test]
async fn expired_lock_is_taken_over_at_once_and_the_takeover_is_recorded() {
    let table = TestTable::create().await;
    let locks = table.client(fast_options());
    let first = locks
        .acquire(&request("k", "crashed-runner", 1))
        .await
        .unwrap();
    until_epoch(first.record.expires_at).await;

    let second = locks.acquire(&request("k", "U2", 60)).await.unwrap();

    match &second.kind {
        GrantKind::TakenOver { from } => {
            assert_eq!(from.lock_id, first.lock_id());
            assert_eq!(from.locked_by, "crashed-runner");
            assert_eq!(from.expires_at, first.record.expires_at);
        }
        other => panic!("expected a takeover, got {other:?}"),
    }
    let stored = locks.status("k").await.unwrap().unwrap();
    assert!(
        stored.took_over_expired(),
        "the item itself records the takeover"
    );
    assert_eq!(stored.previous.unwrap().locked_by, "crashed-runner");
    assert_eq!(stored.fence, first.fence() + 1);
}

#[tokio::test]
async fn clock_skew_margin_delays_takeover() {
    let table = TestTable::create().await;
    let options = LockOptions {
        clock_skew: Duration::from_secs(30),
        ..fast_options()
    };
    let locks = table.client(options);
    let first = locks.acquire(&request("k", "U1", 1)).await.unwrap();
    until_epoch(first.record.expires_at).await;

    let err = locks.acquire(&request("k", "U2", 60)).await.unwrap_err();
    assert!(
        matches!(err, LockError::Held { ref holder } if holder.lock_id == first.lock_id()),
        "{err:?}"
    );
}

#[tokio::test]
async fn fence_grows_across_release_expiry_force_unlock_and_ttl_collection() {
    let table = TestTable::create().await;
    let locks = table.client(fast_options());
    let mut fences = Vec::new();

    let g = locks.acquire(&request("k", "a", 600)).await.unwrap();
    fences.push(g.fence());
    locks
        .release(&ReleaseRequest::new(
            "k",
            g.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .unwrap();

    let g = locks.acquire(&request("k", "b", 1)).await.unwrap();
    fences.push(g.fence());
    until_epoch(g.record.expires_at).await;

    let g = locks.acquire(&request("k", "c", 600)).await.unwrap();
    fences.push(g.fence());
    locks
        .force_unlock("k", "admin", "stuck", None)
        .await
        .unwrap();

    let g = locks.acquire(&request("k", "d", 600)).await.unwrap();
    fences.push(g.fence());
    locks
        .release(&ReleaseRequest::new("k", g.lock_id(), LockStatus::Failed))
        .await
        .unwrap();

    // DynamoDB TTL eventually deletes an idle item; a new history must still
    // start above every fence the key ever issued.
    table_delete(&locks, "k").await;
    let g = locks.acquire(&request("k", "e", 600)).await.unwrap();
    fences.push(g.fence());

    assert!(
        fences.windows(2).all(|w| w[0] < w[1]),
        "fences must strictly grow: {fences:?}"
    );
}

async fn table_delete(locks: &baton_lock::LockClient, key: &str) {
    locks
        .dynamodb()
        .delete_item()
        .table_name(locks.table())
        .key("lockKey", AttributeValue::S(key.into()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn release_renew_and_annotate_need_the_current_lock_id() {
    let table = TestTable::create().await;
    let locks = table.client(fast_options());
    let grant = locks.acquire(&request("k", "U1", 600)).await.unwrap();

    let wrong = ReleaseRequest::new("k", "not-the-lock-id", LockStatus::Completed);
    match locks.release(&wrong).await.unwrap_err() {
        LockError::NotOwner { current, .. } => {
            assert_eq!(current.unwrap().lock_id, grant.lock_id())
        }
        other => panic!("expected NotOwner, got {other:?}"),
    }
    let err = locks
        .renew("k", "not-the-lock-id", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LockError::NotOwner { current: Some(ref c), .. } if c.locked_by == "U1"),
        "{err:?}"
    );
    let err = locks
        .set_run("k", "nope", None, "https://example.invalid/run")
        .await
        .unwrap_err();
    assert!(matches!(err, LockError::NotOwner { .. }), "{err:?}");

    // A completion report from the same grant but with the wrong fence is refused too.
    let mut stale = ReleaseRequest::new("k", grant.lock_id(), LockStatus::Completed);
    stale.fence = Some(grant.fence() - 1);
    assert!(matches!(
        locks.release(&stale).await.unwrap_err(),
        LockError::NotOwner { .. }
    ));

    let annotated = locks
        .set_run("k", grant.lock_id(), None, "https://ci.example/run/1")
        .await
        .unwrap();
    assert_eq!(
        annotated.run_url.as_deref(),
        Some("https://ci.example/run/1")
    );

    let mut release = ReleaseRequest::new("k", grant.lock_id(), LockStatus::Failed);
    release.reason = Some("tests failed".into());
    release.fence = Some(grant.fence());
    let ended = locks.release(&release).await.unwrap();
    assert_eq!(ended.status, LockStatus::Failed);
    assert_eq!(ended.release_reason.as_deref(), Some("tests failed"));

    // Releasing a grant that was force-unlocked is refused with the record.
    let grant = locks.acquire(&request("k", "U2", 600)).await.unwrap();
    locks
        .force_unlock("k", "admin", "hung deploy", None)
        .await
        .unwrap();
    let err = locks
        .release(&ReleaseRequest::new(
            "k",
            grant.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .unwrap_err();
    match err {
        LockError::AlreadyEnded { record } => {
            assert!(record.forced);
            assert_eq!(record.released_by.as_deref(), Some("admin"));
        }
        other => panic!("expected AlreadyEnded, got {other:?}"),
    }
}

#[tokio::test]
async fn acquire_is_reentrant_by_request_id() {
    let table = TestTable::create().await;
    let proxy = FaultProxy::passthrough(&table.endpoint).await.unwrap();
    let locks = table.client_via(&proxy.url(), 1, fast_options());
    let mut req = request("build-router-plt", "U1", 600);
    req.request_id = Some("sqs-message-1".into());
    let first = locks.acquire(&req).await.unwrap();
    proxy.clear();

    let again = locks.acquire(&req).await.unwrap();
    assert_eq!(again.kind, GrantKind::Existing);
    assert_eq!(again.lock_id(), first.lock_id());
    assert_eq!(again.fence(), first.fence());
    assert_eq!(proxy.operations(), vec!["UpdateItem"]);

    let mut other = request("build-router-plt", "U2", 600);
    other.request_id = Some("sqs-message-2".into());
    assert!(matches!(
        locks.acquire(&other).await,
        Err(LockError::Held { .. })
    ));

    // Even after the run ended, a redelivery of the same message does not
    // start a second run: it is told its grant already ended.
    locks
        .release(&ReleaseRequest::new(
            "build-router-plt",
            first.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .unwrap();
    match locks.acquire(&req).await {
        Err(LockError::RequestEnded { record }) => {
            assert_eq!(record.status, LockStatus::Completed);
            assert_eq!(record.fence, first.fence());
        }
        other => panic!("a redelivery after the run ended must be RequestEnded: {other:?}"),
    }
}

#[tokio::test]
async fn a_request_id_is_no_credential_another_owner_gets_a_conflict() {
    let table = TestTable::create().await;
    let locks = table.client(fast_options());
    let mut mine = request("deploy-api-prod", "U1", 600);
    mine.request_id = Some("shared-id".into());
    let granted = locks.acquire(&mine).await.unwrap();

    let mut theirs = request("deploy-api-prod", "U2", 600);
    theirs.request_id = Some("shared-id".into());
    match locks.acquire(&theirs).await {
        Err(LockError::Held { holder }) => {
            assert_eq!(holder.locked_by, "U1");
            assert_eq!(holder.lock_id, granted.lock_id());
        }
        other => panic!("another owner's request id must be a conflict: {other:?}"),
    }
    let after = locks.status("deploy-api-prod").await.unwrap().unwrap();
    assert_eq!(after.lock_id, granted.lock_id(), "nothing was written");
}

#[tokio::test]
async fn a_lapsed_grant_is_never_handed_back_to_its_request() {
    let table = TestTable::create().await;
    let locks = table.client(fast_options());
    let mut req = request("build-router-plt", "U1", 1);
    req.request_id = Some("trigger-1".into());
    let first = locks.acquire(&req).await.unwrap();
    until_epoch(first.record.expires_at).await;
    match locks.acquire(&req).await {
        Err(LockError::RequestLapsed { record }) => {
            assert_eq!(record.lock_id, first.lock_id());
            assert_eq!(record.status, LockStatus::InProgress);
        }
        other => panic!("a lapsed grant must not come back as held: {other:?}"),
    }
}

#[tokio::test]
async fn a_late_duplicate_of_any_of_the_last_eight_requests_is_refused() {
    let table = TestTable::create().await;
    let locks = table.client(fast_options());
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
        let grant = locks.acquire(req).await.unwrap();
        locks
            .release(&ReleaseRequest::new(
                "k",
                grant.lock_id(),
                LockStatus::Completed,
            ))
            .await
            .unwrap();
    }

    match locks.acquire(&first).await {
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
        locks.acquire(&later[3]).await,
        Err(LockError::RequestSuperseded { .. })
    ));
    let mut new = request("k", "U3", 600);
    new.request_id = Some("sqs-message-9".into());
    assert_eq!(
        locks.acquire(&new).await.unwrap().kind,
        GrantKind::New,
        "new requests still get the key"
    );
}

fn first_update_lands_but_answers(
    status: u16,
) -> impl Fn(&baton_testkit::ProxiedRequest) -> FaultAction {
    let fired = std::sync::atomic::AtomicBool::new(false);
    move |r| {
        if r.operation == "UpdateItem" && !fired.swap(true, std::sync::atomic::Ordering::SeqCst) {
            FaultAction::ForwardThenRespond {
                status,
                body: r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}"#.into(),
            }
        } else {
            FaultAction::Forward
        }
    }
}

#[tokio::test]
async fn ambiguous_acquire_is_recognised_as_our_own_grant() {
    let table = TestTable::create().await;
    let proxy = FaultProxy::start(&table.endpoint, first_update_lands_but_answers(500))
        .await
        .unwrap();
    let locks = table.client_via(&proxy.url(), 3, fast_options());

    let grant = locks.acquire(&request("k", "U1", 600)).await.unwrap();

    assert_eq!(
        proxy.operations(),
        vec!["UpdateItem", "UpdateItem"],
        "the SDK retried once"
    );
    let stored = table
        .client(fast_options())
        .status("k")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.lock_id, grant.lock_id());
    assert_eq!(stored.fence, grant.fence());
}

#[tokio::test]
async fn ambiguous_release_after_a_dropped_response_succeeds() {
    let table = TestTable::create().await;
    let direct = table.client(fast_options());
    let grant = direct.acquire(&request("k", "U1", 600)).await.unwrap();
    let dropped = std::sync::atomic::AtomicBool::new(false);
    let proxy = FaultProxy::start(&table.endpoint, move |r| {
        if r.operation == "UpdateItem" && !dropped.swap(true, std::sync::atomic::Ordering::SeqCst) {
            FaultAction::ForwardThenDrop
        } else {
            FaultAction::Forward
        }
    })
    .await
    .unwrap();
    let locks = table.client_via(&proxy.url(), 3, fast_options());

    let released = locks
        .release(&ReleaseRequest::new(
            "k",
            grant.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .unwrap();

    assert_eq!(proxy.operations(), vec!["UpdateItem", "UpdateItem"]);
    assert_eq!(released.status, LockStatus::Completed);
}

#[tokio::test]
async fn renew_extends_the_lease_in_one_request() {
    let table = TestTable::create().await;
    let proxy = FaultProxy::passthrough(&table.endpoint).await.unwrap();
    let locks = table.client_via(&proxy.url(), 1, fast_options());
    let grant = locks.acquire(&request("k", "U1", 2)).await.unwrap();
    proxy.clear();

    let renewed = locks
        .renew("k", grant.lock_id(), Duration::from_secs(3600))
        .await
        .unwrap();

    assert_eq!(proxy.operations(), vec!["UpdateItem"]);
    assert!(renewed.expires_at >= now_epoch_secs() + 3599);
    assert_eq!(renewed.fence, grant.fence(), "renewing is not a new grant");
    until_epoch(grant.record.expires_at + 1).await;
    assert!(matches!(
        locks.acquire(&request("k", "U2", 60)).await,
        Err(LockError::Held { .. })
    ));
}

#[tokio::test]
async fn wait_times_out_with_the_holder_and_can_be_cancelled() {
    let table = TestTable::create().await;
    let locks = table.client(fast_options());
    let grant = locks.acquire(&request("k", "U1", 600)).await.unwrap();
    let never = CancellationToken::new();

    match locks
        .wait_until_free("k", Duration::from_millis(300), &never)
        .await
    {
        Err(LockError::WaitTimedOut { holder, .. }) => {
            assert_eq!(holder.unwrap().lock_id, grant.lock_id())
        }
        other => panic!("expected a timeout, got {other:?}"),
    }

    let cancel = CancellationToken::new();
    let waiter = {
        let (locks, cancel) = (locks.clone(), cancel.clone());
        tokio::spawn(async move {
            locks
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
}

#[tokio::test]
async fn wait_returns_once_the_holder_releases() {
    let table = TestTable::create().await;
    let locks = table.client(fast_options());
    let grant = locks.acquire(&request("k", "U1", 600)).await.unwrap();
    let waiter = {
        let locks = locks.clone();
        tokio::spawn(async move {
            locks
                .wait_until_free("k", Duration::from_secs(30), &CancellationToken::new())
                .await
        })
    };
    locks
        .release(&ReleaseRequest::new(
            "k",
            grant.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .unwrap();
    let freed = waiter.await.unwrap().unwrap().unwrap();
    assert_eq!(freed.status, LockStatus::Completed);
}

#[tokio::test]
async fn acquire_with_wait_gets_the_lock_when_the_lease_lapses() {
    let table = TestTable::create().await;
    let locks = table.client(fast_options());
    let crashed = locks.acquire(&request("k", "crashed", 1)).await.unwrap();

    let mut conflicts = Vec::new();
    let grant = locks
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
    assert!(now_epoch_secs() >= crashed.record.expires_at);
}

#[tokio::test]
async fn force_unlock_records_actor_and_reason_and_needs_a_reason() {
    let table = TestTable::create().await;
    let locks = table.client(fast_options());
    let grant = locks.acquire(&request("k", "U1", 600)).await.unwrap();

    assert!(matches!(
        locks.force_unlock("k", "admin", "  ", None).await,
        Err(LockError::InvalidInput(_))
    ));
    assert!(matches!(
        locks
            .force_unlock("k", "admin", "old", Some("some-other-grant"))
            .await,
        Err(LockError::NotHeld {
            current: Some(_),
            ..
        })
    ));

    let ended = locks
        .force_unlock("k", "admin", "runner died", Some(grant.lock_id()))
        .await
        .unwrap();
    assert_eq!(
        ended.locked_by, "U1",
        "the result names whose lock was broken"
    );
    assert_eq!(ended.status, LockStatus::Failed);
    assert!(ended.forced);
    assert_eq!(ended.released_by.as_deref(), Some("admin"));
    assert_eq!(ended.release_reason.as_deref(), Some("runner died"));

    match locks.force_unlock("k", "admin", "again", None).await {
        Err(LockError::NotHeld {
            current: Some(c), ..
        }) => assert_eq!(c.status, LockStatus::Failed),
        other => panic!("expected NotHeld, got {other:?}"),
    }
    assert!(matches!(
        locks.force_unlock("never-locked", "admin", "x", None).await,
        Err(LockError::NotHeld { current: None, .. })
    ));
}

#[tokio::test]
async fn list_reads_only_active_locks_by_page_prefix_and_environment() {
    let table = TestTable::create().await;
    let proxy = FaultProxy::passthrough(&table.endpoint).await.unwrap();
    let locks = table.client_via(&proxy.url(), 1, fast_options());
    for (key, env) in [
        ("build-api-dev", "dev"),
        ("build-api-prod", "prod"),
        ("build-web-prod", "prod"),
        ("deploy-api-prod", "prod"),
        ("deploy-web-dev", "dev"),
    ] {
        let mut r = request(key, "U1", 600);
        r.environment = Some(env.into());
        locks.acquire(&r).await.unwrap();
    }
    let ended = locks
        .acquire(&request("build-old-dev", "U1", 600))
        .await
        .unwrap();
    locks
        .release(&ReleaseRequest::new(
            "build-old-dev",
            ended.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .unwrap();
    proxy.clear();

    let mut seen = Vec::new();
    let mut query = ListQuery {
        page_size: Some(2),
        ..Default::default()
    };
    let mut pages = 0;
    loop {
        let page = locks.list(&query).await.unwrap();
        pages += 1;
        seen.extend(page.locks.into_iter().map(|r| r.lock_key));
        match page.next_page_token {
            Some(token) => query.page_token = Some(token),
            None => break,
        }
    }
    assert_eq!(
        seen,
        vec![
            "build-api-dev",
            "build-api-prod",
            "build-web-prod",
            "deploy-api-prod",
            "deploy-web-dev"
        ]
    );
    assert!(
        proxy.operations().iter().all(|op| op == "Query"),
        "{:?}",
        proxy.operations()
    );
    assert_eq!(proxy.operations().len(), pages);

    let by_prefix = locks
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

    let prod_builds = locks
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
}

#[tokio::test]
async fn a_missing_table_is_a_typed_error_that_says_so() {
    let table = TestTable::create().await;
    let locks = baton_lock::LockClient::new(
        baton_testkit::local_dynamodb_client(&table.endpoint, 1),
        unique_name("no-such-table"),
    );
    let err = locks.acquire(&request("k", "U1", 60)).await.unwrap_err();
    assert!(matches!(err, LockError::TableNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("baton table create"), "{err}");
    assert!(matches!(
        locks.status("k").await.unwrap_err(),
        LockError::TableNotFound { .. }
    ));
    assert!(matches!(
        locks.list(&ListQuery::default()).await.unwrap_err(),
        LockError::TableNotFound { .. }
    ));
}

#[tokio::test]
async fn invalid_arguments_are_refused_before_any_request() {
    let table = TestTable::create().await;
    let proxy = FaultProxy::passthrough(&table.endpoint).await.unwrap();
    let locks = table.client_via(&proxy.url(), 1, fast_options());
    assert!(matches!(
        locks.acquire(&request("", "U1", 60)).await,
        Err(LockError::InvalidInput(_))
    ));
    assert!(matches!(
        locks.acquire(&request("k", " ", 60)).await,
        Err(LockError::InvalidInput(_))
    ));
    assert!(matches!(
        locks.acquire(&request("k", "U1", 0)).await,
        Err(LockError::InvalidInput(_))
    ));
    let in_progress = ReleaseRequest::new("k", "id", LockStatus::InProgress);
    assert!(matches!(
        locks.release(&in_progress).await,
        Err(LockError::InvalidInput(_))
    ));
    assert!(proxy.operations().is_empty());
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
    let mut release = ReleaseRequest::new("deploy-api-prod", lock_id, LockStatus::Completed);
    release.fence = Some(fence);
    release.run = RunCheck::Recorded {
        repository: "acme/platform".into(),
        workflow: "deploy.yml".into(),
        run_id,
    };
    release
}

#[tokio::test]
async fn only_the_recorded_run_can_end_a_pipeline_grant() {
    let table = TestTable::create().await;
    let locks = table.client(fast_options());
    let grant = locks
        .acquire(&pipeline_request("deploy-api-prod", "U1", 600))
        .await
        .unwrap();
    // Before a run is recorded, no completion applies.
    assert!(matches!(
        locks
            .release(&completion_of(grant.lock_id(), grant.fence(), 41))
            .await,
        Err(LockError::NotOwner { .. })
    ));
    let recorded = locks
        .set_run(
            "deploy-api-prod",
            grant.lock_id(),
            Some(42),
            "https://github.example/runs/42",
        )
        .await
        .unwrap();
    assert_eq!(recorded.pipeline.as_ref().and_then(|p| p.run_id), Some(42));
    // Another run, even with the right lock id and fence, is refused.
    assert!(matches!(
        locks
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
        locks.release(&foreign).await,
        Err(LockError::NotOwner { .. })
    ));
    let still = locks.status("deploy-api-prod").await.unwrap().unwrap();
    assert_eq!(still.status, LockStatus::InProgress);

    let ended = locks
        .release(&completion_of(grant.lock_id(), grant.fence(), 42))
        .await
        .unwrap();
    assert_eq!(ended.status, LockStatus::Completed);
}

#[tokio::test]
async fn a_completion_can_never_end_a_grant_without_a_pipeline() {
    let table = TestTable::create().await;
    let locks = table.client(fast_options());
    let cli = locks
        .acquire(&request("deploy-api-prod", "ci@host", 600))
        .await
        .unwrap();
    assert!(matches!(
        locks
            .release(&completion_of(cli.lock_id(), cli.fence(), 42))
            .await,
        Err(LockError::NotOwner { .. })
    ));
    let after = locks.status("deploy-api-prod").await.unwrap().unwrap();
    assert_eq!(after.status, LockStatus::InProgress);
    assert!(after.pipeline.is_none());
}

#[tokio::test]
async fn an_expired_grant_with_a_recorded_run_is_spared_when_asked() {
    let table = TestTable::create().await;
    let locks = table.client(fast_options());
    let grant = locks
        .acquire(&pipeline_request("deploy-api-prod", "U1", 1))
        .await
        .unwrap();
    locks
        .set_run(
            "deploy-api-prod",
            grant.lock_id(),
            Some(7),
            "https://github.example/runs/7",
        )
        .await
        .unwrap();
    until_epoch(grant.record.expires_at).await;

    let mut careful = pipeline_request("deploy-api-prod", "U2", 600);
    careful.takeover = Takeover::UnlessRunRecorded;
    match locks.acquire(&careful).await {
        Err(LockError::Held { holder }) => {
            assert_eq!(holder.lock_id, grant.lock_id());
            assert_eq!(holder.state_at(now_epoch_secs()), LockState::Expired);
        }
        other => panic!("a lapsed grant with a live-looking run must be spared: {other:?}"),
    }
    // A plain contender (a CLI job) still takes the expired lease over, and
    // the new grant carries no pipeline binding of its predecessor.
    let taken = locks
        .acquire(&request("deploy-api-prod", "ci@host", 600))
        .await
        .unwrap();
    assert!(matches!(taken.kind, GrantKind::TakenOver { .. }));
    let now = locks.status("deploy-api-prod").await.unwrap().unwrap();
    assert!(now.pipeline.is_none(), "{now:?}");
}

#[tokio::test]
async fn force_unlock_seen_never_ends_a_grant_made_after_the_request() {
    let table = TestTable::create().await;
    let locks = table.client(fast_options());
    let asked_at = now_epoch_secs() - 5;
    let fresh = locks
        .acquire(&request("deploy-api-prod", "U2", 600))
        .await
        .unwrap();
    match locks
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
    let ended = locks
        .force_unlock_seen("deploy-api-prod", "UADMIN", "stuck", now_epoch_secs())
        .await
        .unwrap();
    assert!(ended.forced);
}
