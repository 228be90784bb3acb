//! The waiting line's promises, each run on both adapters (DynamoDB Local
//! and the memory store): joining in order, hand-off in the write that ends
//! a grant, leaving, dropping overdue waiters, the newest-only line, and
//! waiting for one's turn.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_lock::{
    AcquireRequest, CancellationToken, GrantKind, JoinRequest, Joined, LineMode, LockError,
    LockStatus, Place, ReleaseRequest,
};

#[macro_use]
mod common;
use common::Subject;

conformance! {
    joining_a_held_key_takes_a_place_in_arrival_order,
    the_same_member_or_request_is_told_its_place_not_queued_twice,
    a_full_line_refuses_and_writes_nothing,
    a_release_hands_the_key_to_the_head_in_the_same_write,
    a_force_unlock_hands_off_too,
    no_one_jumps_the_line_not_even_over_a_lapsed_grant,
    leaving_takes_the_waiter_out_and_moves_the_others_up,
    overdue_waiters_are_dropped_by_the_hand_off,
    a_latest_line_keeps_only_the_newest_waiter,
    a_lapsed_grant_goes_to_the_head_with_a_claim_lease,
    waiters_are_served_in_arrival_order,
    a_waiter_that_gives_up_leaves_the_line,
}

fn acquire(key: &str, owner: &str) -> AcquireRequest {
    AcquireRequest::new(key, owner, Duration::from_secs(60))
}

fn join(key: &str, owner: &str) -> JoinRequest {
    let mut acquire = acquire(key, owner);
    acquire.context = Some(format!("tell {owner}"));
    JoinRequest {
        acquire,
        mode: LineMode::Fifo { max: 20 },
        max_wait: Duration::from_secs(3600),
        claim: None,
        member: Some(owner.to_owned()),
    }
}

async fn waiting<S: Subject>(store: &S, request: &JoinRequest) -> Place {
    match store.join(request).await.expect("join") {
        Joined::Waiting(place) => *place,
        Joined::Granted(g) => panic!("expected to wait, was granted {:?}", g.record),
    }
}

fn owners(record: &baton_lock::LockRecord) -> Vec<&str> {
    record.waiters.iter().map(|w| w.owner.as_str()).collect()
}

async fn joining_a_held_key_takes_a_place_in_arrival_order<S: Subject>(store: S) {
    // A free key is simply granted.
    let holder = match store.join(&join("k", "alice")).await.unwrap() {
        Joined::Granted(g) => g,
        Joined::Waiting(p) => panic!("free key must be granted, got place {}", p.position),
    };
    let bob = waiting(&store, &join("k", "bob")).await;
    let carol = waiting(&store, &join("k", "carol")).await;
    assert_eq!((bob.position, carol.position), (1, 2));
    assert_eq!(
        carol.record.lock_id,
        holder.lock_id(),
        "the holder is shown"
    );
    assert_eq!(owners(&carol.record), ["bob", "carol"]);
    let status = store.status("k").await.unwrap().unwrap();
    assert_eq!(owners(&status), ["bob", "carol"]);
    assert_eq!(status.waiters[1].context.as_deref(), Some("tell carol"));
    assert_eq!(
        status.lock_id,
        holder.lock_id(),
        "joining never touches the grant"
    );
    assert_eq!(status.fence, holder.fence());
    assert_ne!(bob.waiter.ticket, carol.waiter.ticket);
}

async fn the_same_member_or_request_is_told_its_place_not_queued_twice<S: Subject>(store: S) {
    store.acquire(&acquire("k", "alice")).await.unwrap();
    let first = waiting(&store, &join("k", "bob")).await;
    waiting(&store, &join("k", "carol")).await;
    // Bob asks again with another request: his place, nothing written.
    let again = waiting(&store, &join("k", "bob")).await;
    assert!(again.already_waiting);
    assert_eq!(again.position, 1);
    assert_eq!(again.waiter.ticket, first.waiter.ticket);
    // A redelivery of a request, even without a member, finds its place.
    let mut original = join("k", "dave");
    original.acquire.request_id = Some("dave-request".into());
    waiting(&store, &original).await;
    let mut dave_again = original.clone();
    dave_again.member = None;
    let again = waiting(&store, &dave_again).await;
    assert!(again.already_waiting);
    assert_eq!(again.position, 3);
    let status = store.status("k").await.unwrap().unwrap();
    assert_eq!(owners(&status), ["bob", "carol", "dave"]);
}

async fn a_full_line_refuses_and_writes_nothing<S: Subject>(store: S) {
    store.acquire(&acquire("k", "alice")).await.unwrap();
    let full = |owner: &str| JoinRequest {
        mode: LineMode::Fifo { max: 2 },
        ..join("k", owner)
    };
    waiting(&store, &full("bob")).await;
    waiting(&store, &full("carol")).await;
    let before = store.status("k").await.unwrap().unwrap();
    match store.join(&full("dave")).await {
        Err(LockError::LineFull { holder, .. }) => assert_eq!(holder.waiters.len(), 2),
        other => panic!("expected LineFull, got {other:?}"),
    }
    assert_eq!(store.status("k").await.unwrap().unwrap(), before);
}

async fn a_release_hands_the_key_to_the_head_in_the_same_write<S: Subject>(store: S) {
    let alice = store.acquire(&acquire("k", "alice")).await.unwrap();
    let mut bob_join = join("k", "bob");
    bob_join.acquire.request_id = Some("bob-request".into());
    let bob = waiting(&store, &bob_join).await;
    waiting(&store, &join("k", "carol")).await;

    let mut release = ReleaseRequest::new("k", alice.lock_id(), LockStatus::Completed);
    release.reason = Some("done".into());
    let ended = store.release(&release).await.unwrap();
    assert_eq!(ended.record.lock_id, alice.lock_id());
    assert_eq!(ended.record.status, LockStatus::Completed);
    assert_eq!(ended.record.release_reason.as_deref(), Some("done"));
    let next = ended.next.as_ref().expect("bob is handed the key");
    assert_eq!(
        next.record.lock_id, bob.waiter.ticket,
        "granted under bob's ticket"
    );
    assert_eq!(next.record.request_id.as_deref(), Some("bob-request"));
    assert_eq!(next.record.locked_by, "bob");
    assert_eq!(
        next.record.context.as_deref(),
        Some("tell bob"),
        "the waiter's context goes with its grant"
    );
    assert_eq!(
        next.fence(),
        alice.fence() + 1,
        "the fence grows with the hand-off"
    );
    assert_eq!(
        next.kind,
        GrantKind::New,
        "the previous grant ended, not lapsed"
    );
    let previous = next.record.previous.as_ref().unwrap();
    assert_eq!(previous.lock_id, alice.lock_id());
    assert_eq!(previous.status, LockStatus::Completed);

    let status = store.status("k").await.unwrap().unwrap();
    assert_eq!(status.lock_id, bob.waiter.ticket);
    assert_eq!(status.status, LockStatus::InProgress);
    assert_eq!(owners(&status), ["carol"]);
    // Bob's own request id re-enters his grant; alice's late duplicate does not.
    let mut bob_again = acquire("k", "bob");
    bob_again.request_id = Some("bob-request".into());
    let again = store.acquire(&bob_again).await.unwrap();
    assert_eq!(again.kind, GrantKind::Existing);
    assert_eq!(again.lock_id(), bob.waiter.ticket);
    // The same release again is a repeat, not a second hand-off.
    let repeat = store.release(&release).await.unwrap();
    assert!(repeat.next.is_none());
    assert_eq!(
        store.status("k").await.unwrap().unwrap().lock_id,
        bob.waiter.ticket
    );
}

async fn a_force_unlock_hands_off_too<S: Subject>(store: S) {
    let alice = store.acquire(&acquire("k", "alice")).await.unwrap();
    let bob = waiting(&store, &join("k", "bob")).await;
    let ended = store
        .force_unlock("k", "ops", "stuck deploy", Some(alice.lock_id()))
        .await
        .unwrap();
    assert!(ended.record.forced);
    assert_eq!(ended.record.released_by.as_deref(), Some("ops"));
    let next = ended.next.as_ref().expect("bob is handed the key");
    assert_eq!(next.lock_id(), bob.waiter.ticket);
    assert_eq!(
        next.record.previous.as_ref().unwrap().status,
        LockStatus::Failed
    );
    // Bob's grant was made by the forced write but is not itself forced;
    // the one it replaced was.
    assert!(!next.record.forced);
    assert!(next.record.previous.as_ref().unwrap().forced);
    let status = store.status("k").await.unwrap().unwrap();
    assert!(status.waiters.is_empty());
    assert_eq!(status.lock_id, bob.waiter.ticket);
    assert!(!status.forced, "{status:?}");
    assert!(status.previous.as_ref().unwrap().forced);
}

async fn no_one_jumps_the_line_not_even_over_a_lapsed_grant<S: Subject>(store: S) {
    let alice = store
        .acquire(&AcquireRequest::new("k", "alice", Duration::from_secs(1)))
        .await
        .unwrap();
    waiting(&store, &join("k", "bob")).await;
    store.reach(alice.record.expires_at + 1).await;
    match store.acquire(&acquire("k", "mallory")).await {
        Err(LockError::Held { holder }) => assert_eq!(owners(&holder), ["bob"]),
        other => panic!("a key with a line is not for the taking: {other:?}"),
    }
    assert_eq!(
        store.status("k").await.unwrap().unwrap().lock_id,
        alice.lock_id()
    );
}

async fn leaving_takes_the_waiter_out_and_moves_the_others_up<S: Subject>(store: S) {
    store.acquire(&acquire("k", "alice")).await.unwrap();
    let bob = waiting(&store, &join("k", "bob")).await;
    waiting(&store, &join("k", "carol")).await;
    let left = store.leave("k", "bob").await.unwrap();
    assert_eq!(left.waiter.ticket, bob.waiter.ticket);
    assert_eq!(owners(&left.record), ["carol"]);
    assert_eq!(left.record.position_of("carol"), Some(1));
    match store.leave("k", "bob").await {
        Err(LockError::NotWaiting { who, .. }) => assert_eq!(who, "bob"),
        other => panic!("expected NotWaiting, got {other:?}"),
    }
    assert!(matches!(
        store.leave("nobody-here", "bob").await,
        Err(LockError::NotWaiting { .. })
    ));
    // A ticket works as well as a member.
    let carol = store.status("k").await.unwrap().unwrap().waiters[0]
        .ticket
        .clone();
    store.leave("k", &carol).await.unwrap();
    assert!(store.status("k").await.unwrap().unwrap().waiters.is_empty());
}

async fn overdue_waiters_are_dropped_by_the_hand_off<S: Subject>(store: S) {
    let alice = store.acquire(&acquire("k", "alice")).await.unwrap();
    let hasty = JoinRequest {
        max_wait: Duration::from_secs(1),
        ..join("k", "bob")
    };
    waiting(&store, &hasty).await;
    let carol = waiting(&store, &join("k", "carol")).await;
    store.reach(store.now_secs() + 2).await;
    let ended = store
        .release(&ReleaseRequest::new(
            "k",
            alice.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .unwrap();
    let dropped: Vec<&str> = ended.dropped.iter().map(|w| w.owner.as_str()).collect();
    assert_eq!(dropped, ["bob"]);
    assert_eq!(ended.next.as_ref().unwrap().lock_id(), carol.waiter.ticket);
    assert!(store.status("k").await.unwrap().unwrap().waiters.is_empty());
}

async fn a_latest_line_keeps_only_the_newest_waiter<S: Subject>(store: S) {
    store.acquire(&acquire("k", "alice")).await.unwrap();
    let latest = |owner: &str| JoinRequest {
        mode: LineMode::Latest,
        ..join("k", owner)
    };
    let bob = waiting(&store, &latest("bob")).await;
    assert!(bob.superseded.is_empty());
    let carol = waiting(&store, &latest("carol")).await;
    assert_eq!(carol.position, 1);
    let superseded: Vec<&str> = carol.superseded.iter().map(|w| w.owner.as_str()).collect();
    assert_eq!(superseded, ["bob"], "bob must be told he was superseded");
    assert_eq!(
        owners(&store.status("k").await.unwrap().unwrap()),
        ["carol"]
    );
}

async fn a_lapsed_grant_goes_to_the_head_with_a_claim_lease<S: Subject>(store: S) {
    let alice = store
        .acquire(&AcquireRequest::new("k", "alice", Duration::from_secs(1)))
        .await
        .unwrap();
    let claimed = JoinRequest {
        claim: Some(Duration::from_secs(5)),
        ..join("k", "bob")
    };
    let bob = waiting(&store, &claimed).await;
    // Still live: nothing to hand.
    assert!(
        store
            .end_lapsed(&store.status("k").await.unwrap().unwrap())
            .await
            .unwrap()
            .is_none()
    );
    store.reach(alice.record.expires_at + 1).await;
    let ended = store
        .end_lapsed(&store.status("k").await.unwrap().unwrap())
        .await
        .unwrap()
        .expect("handed off");
    let next = ended.next.expect("bob is granted");
    assert_eq!(next.lock_id(), bob.waiter.ticket);
    assert!(
        matches!(next.kind, GrantKind::TakenOver { ref from } if from.lock_id == alice.lock_id()),
        "a lapsed grant handed on is a takeover: {:?}",
        next.kind
    );
    let lease = next.record.expires_at.saturating_sub(store.now_secs());
    assert!(lease <= 6, "first lease is the claim window, was {lease} s");
    assert!(
        store
            .end_lapsed(&store.status("k").await.unwrap().unwrap())
            .await
            .unwrap()
            .is_none(),
        "no line left"
    );
}

async fn waiters_are_served_in_arrival_order<S: Subject>(store: S) {
    let alice = store.acquire(&acquire("k", "alice")).await.unwrap();
    let served = Arc::new(Mutex::new(Vec::new()));
    let cancel = CancellationToken::new();
    let mut tasks = Vec::new();
    for owner in ["w1", "w2", "w3"] {
        // Join in a known order, then wait concurrently.
        let (place_tx, place_rx) = tokio::sync::oneshot::channel();
        let (store, served, cancel) = (store.clone(), served.clone(), cancel.clone());
        let mut place_tx = Some(place_tx);
        tasks.push(tokio::spawn(async move {
            let grant = store
                .acquire_in_line(&join("k", owner), Duration::from_secs(30), &cancel, |p| {
                    if let Some(tx) = place_tx.take() {
                        let _ = tx.send(p.position);
                    }
                })
                .await
                .expect("granted in turn");
            served.lock().unwrap().push(owner);
            let release = ReleaseRequest::new("k", grant.lock_id(), LockStatus::Completed);
            store.release(&release).await.expect("release");
        }));
        place_rx.await.expect("joined");
    }
    store
        .release(&ReleaseRequest::new(
            "k",
            alice.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*served.lock().unwrap(), ["w1", "w2", "w3"]);
    let last = store.status("k").await.unwrap().unwrap();
    assert_eq!(last.status, LockStatus::Completed);
    assert_eq!(last.fence, alice.fence() + 3);
}

async fn a_waiter_that_gives_up_leaves_the_line<S: Subject>(store: S) {
    store.acquire(&acquire("k", "alice")).await.unwrap();
    let cancel = CancellationToken::new();
    match store
        .acquire_in_line(
            &join("k", "bob"),
            Duration::from_millis(100),
            &cancel,
            |_| {},
        )
        .await
    {
        Err(LockError::WaitTimedOut { holder, .. }) => {
            assert!(holder.unwrap().waiters.is_empty(), "bob left the line")
        }
        other => panic!("expected WaitTimedOut, got {other:?}"),
    }
    cancel.cancel();
    match store
        .acquire_in_line(
            &join("k", "carol"),
            Duration::from_secs(30),
            &cancel,
            |_| {},
        )
        .await
    {
        Err(LockError::Cancelled { .. }) => {}
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert!(store.status("k").await.unwrap().unwrap().waiters.is_empty());
}
