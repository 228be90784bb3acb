//! What only the DynamoDB adapter can show, against DynamoDB Local: one
//! request per operation (counted at the wire by a loopback proxy), the
//! stored item, fences across TTL collection, ambiguous writes and a missing
//! table. The promises every store keeps are in `conformance.rs`.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use baton_lock::{
    AcquireRequest, GrantKind, ListQuery, LockError, LockState, LockStatus, ReleaseRequest,
    clock::now_epoch_secs,
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

#[tokio::test]
async fn a_takeover_is_one_write_and_no_contender_gets_in_between() {
    let table = TestTable::create().await;
    let direct = table.client(fast_options());
    let holder = direct
        .acquire(&AcquireRequest::new("k", "U1", Duration::from_secs(600)))
        .await
        .unwrap();
    let proxy = FaultProxy::passthrough(&table.endpoint).await.unwrap();
    let locks = table.client_via(&proxy.url(), 1, fast_options());
    let admin = AcquireRequest::new("k", "UADMIN", Duration::from_secs(600));
    // A contender races the takeover the whole time.
    let racing = {
        let direct = direct.clone();
        tokio::spawn(async move {
            let mut won = Vec::new();
            for i in 0..50 {
                let contender =
                    AcquireRequest::new("k", format!("racer-{i}"), Duration::from_secs(600));
                if let Ok(g) = direct.acquire(&contender).await {
                    won.push(g.record.locked_by);
                }
            }
            won
        })
    };
    let ended = locks
        .take_over(&admin, holder.lock_id(), "UADMIN", "rollback")
        .await
        .unwrap();
    assert_eq!(proxy.operations(), vec!["UpdateItem"], "one write");
    assert!(
        racing.await.unwrap().is_empty(),
        "no contender ever got the key"
    );
    let next = ended.next.expect("the admin's grant");
    assert_eq!(next.record.locked_by, "UADMIN");
    assert_eq!(next.fence(), holder.fence() + 1);
    let stored = direct.status("k").await.unwrap().unwrap();
    assert_eq!(stored.lock_id, next.lock_id());
}

fn checked_request(key: &str, owner: &str, scope: &str) -> AcquireRequest {
    let mut req = request(key, owner, 600);
    req.unless_frozen = Some(baton_lock::FreezeKey::new(scope).unwrap());
    req
}

#[tokio::test]
async fn a_freeze_checked_acquire_is_one_transaction_granted_held_or_frozen() {
    let table = TestTable::create().await;
    let proxy = FaultProxy::passthrough(&table.endpoint).await.unwrap();
    let locks = table.client_via(&proxy.url(), 1, fast_options());

    let grant = locks
        .acquire(&checked_request("deploy-api-prod", "U1", "deploy/prod"))
        .await
        .unwrap();
    assert_eq!(proxy.operations(), vec!["TransactWriteItems"], "granted");
    assert_eq!(grant.kind, GrantKind::Checked);

    proxy.clear();
    let held = locks
        .acquire(&checked_request("deploy-api-prod", "U2", "deploy/prod"))
        .await;
    assert!(matches!(held, Err(LockError::Held { .. })), "{held:?}");
    assert_eq!(proxy.operations(), vec!["TransactWriteItems"], "held");

    locks
        .freeze(&baton_lock::FreezeRequest {
            key: baton_lock::FreezeKey::new("deploy/prod").unwrap(),
            by: "U0ADMIN".into(),
            by_name: None,
            reason: "release week".into(),
            duration: Duration::from_secs(600),
        })
        .await
        .unwrap();
    proxy.clear();
    let frozen = locks
        .acquire(&checked_request("deploy-web-prod", "U2", "deploy/prod"))
        .await;
    assert!(
        matches!(frozen, Err(LockError::Frozen { .. })),
        "{frozen:?}"
    );
    assert_eq!(proxy.operations(), vec!["TransactWriteItems"], "frozen");

    // Without the check, an acquire stays one plain UpdateItem.
    proxy.clear();
    locks
        .acquire(&request("deploy-web-prod", "U2", 600))
        .await
        .unwrap();
    assert_eq!(proxy.operations(), vec!["UpdateItem"]);
}

#[tokio::test]
async fn a_checked_acquire_on_a_fence_ahead_of_the_clock_still_grows_it() {
    let table = TestTable::create().await;
    let proxy = FaultProxy::passthrough(&table.endpoint).await.unwrap();
    let locks = table.client_via(&proxy.url(), 1, fast_options());
    // A key whose fences were issued by a clock far ahead of this one.
    let ahead = baton_lock::clock::now_epoch_millis() + 1_000_000_000;
    let item = [
        ("lockKey", AttributeValue::S("deploy-api-prod".into())),
        ("lockId", AttributeValue::S("old-grant".into())),
        ("lockedBy", AttributeValue::S("U0".into())),
        ("status", AttributeValue::S("COMPLETED".into())),
        ("expiresAt", AttributeValue::N("1".into())),
        ("fence", AttributeValue::N(ahead.to_string())),
    ];
    locks
        .dynamodb()
        .put_item()
        .table_name(&table.name)
        .set_item(Some(
            item.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        ))
        .send()
        .await
        .unwrap();
    proxy.clear();

    let grant = locks
        .acquire(&checked_request("deploy-api-prod", "U1", "deploy/prod"))
        .await
        .unwrap();

    assert_eq!(grant.fence(), ahead + 1);
    assert_eq!(
        proxy.operations(),
        vec!["TransactWriteItems", "TransactWriteItems"],
        "the fence floor failed once, then the fence as seen was used"
    );
    let stored = locks.status("deploy-api-prod").await.unwrap().unwrap();
    assert_eq!(stored.fence, ahead + 1);
    assert_eq!(stored.lock_id, grant.lock_id());
    assert_eq!(stored.previous.unwrap().lock_id, "old-grant");
}
