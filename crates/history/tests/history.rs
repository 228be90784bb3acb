//! The history of grants, end to end on DynamoDB Local: real lock
//! operations write the lock table, its stream is read through the streams
//! API, and the consumer's entries are read back the way `baton history`
//! reads them.

use std::time::Duration;

use baton_lock::history::Outcome;
use baton_lock::{
    AcquireRequest, HistoryClient, HistoryQuery, JoinRequest, Joined, LineMode, LockClient,
    LockStatus, ReleaseRequest,
};
use baton_testkit::{TestTable, fast_options};

struct Setup {
    locks: LockClient,
    history: HistoryClient,
    table: TestTable,
}

async fn setup() -> Setup {
    let table = TestTable::create().await;
    let locks = table.client(fast_options());
    let history = table.create_history().await;
    Setup {
        locks,
        history,
        table,
    }
}

impl Setup {
    async fn record_stream(&self) -> baton_history::consume::Tally {
        self.table.record_history().await
    }

    async fn entries(&self, key: &str) -> Vec<baton_lock::history::HistoryEntry> {
        self.history
            .for_key(key, &HistoryQuery::default())
            .await
            .expect("history read")
            .entries
    }
}

/// `owner` joins the line of key `k`, which is held.
async fn wait_in_line(s: &Setup, owner: &str) {
    let minute = Duration::from_secs(60);
    let join = JoinRequest {
        acquire: request("k", owner, minute),
        mode: LineMode::Fifo { max: 5 },
        max_wait: minute,
        claim: None,
        member: None,
    };
    assert!(matches!(
        s.locks.join(&join).await.unwrap(),
        Joined::Waiting(_)
    ));
}

fn request(key: &str, owner: &str, ttl: Duration) -> AcquireRequest {
    let mut r = AcquireRequest::new(key, owner, ttl);
    r.purpose = Some(format!("deploy by {owner}"));
    r.environment = Some("prod".into());
    r
}

#[tokio::test]
async fn every_way_a_grant_ends_is_recorded_once_with_its_outcome() {
    let s = setup().await;
    let minute = Duration::from_secs(60);

    // Released by its holder.
    let a = s
        .locks
        .acquire(&request("k", "alice", minute))
        .await
        .unwrap();
    s.locks
        .release(&ReleaseRequest::new(
            "k",
            a.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .unwrap();
    // Forced by an operator.
    let b = s.locks.acquire(&request("k", "bob", minute)).await.unwrap();
    s.locks
        .force_unlock("k", "ops", "stuck deploy", None)
        .await
        .unwrap();
    // Lapsed and taken over.
    let c = s
        .locks
        .acquire(&request("k", "carol", Duration::from_secs(1)))
        .await
        .unwrap();
    let lapse = c.record.expires_at_ms;
    while baton_lock::clock::now_epoch_millis() <= lapse {
        tokio::time::sleep(Duration::from_millis(
            lapse + 1 - baton_lock::clock::now_epoch_millis(),
        ))
        .await;
    }
    let d = s
        .locks
        .acquire(&request("k", "dave", minute))
        .await
        .unwrap();
    // Failed, with someone waiting: the release hands the key on.
    wait_in_line(&s, "erin").await;
    let mut failed = ReleaseRequest::new("k", d.lock_id(), LockStatus::Failed);
    failed.reason = Some("tests failed".into());
    let ended = s.locks.release(&failed).await.unwrap();
    let erin = ended.next.expect("erin was handed the key");

    let tally = s.record_stream().await;
    assert_eq!(
        tally.written, 6,
        "four ended grants, and who came next after the two that ended alone: {tally:?}"
    );

    let entries = s.entries("k").await;
    let summary: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.fence,
                e.locked_by.as_str(),
                e.outcome,
                e.ended_by.as_deref(),
                e.next_holder.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                d.fence(),
                "dave",
                Outcome::Failed,
                Some("dave"),
                Some("erin")
            ),
            (c.fence(), "carol", Outcome::Expired, None, Some("dave")),
            (
                b.fence(),
                "bob",
                Outcome::Forced,
                Some("ops"),
                Some("carol")
            ),
            (
                a.fence(),
                "alice",
                Outcome::Completed,
                Some("alice"),
                Some("bob")
            ),
        ],
        "newest first, each with how it ended and who came next"
    );
    assert_eq!(entries[0].reason.as_deref(), Some("tests failed"));
    assert_eq!(entries[0].next_fence, Some(erin.fence()));
    assert_eq!(entries[2].reason.as_deref(), Some("stuck deploy"));
    assert_eq!(
        entries[1].ended_at_ms, lapse,
        "a lapsed grant ends at its lease end"
    );
    assert!(
        entries
            .iter()
            .all(|e| e.purpose.is_some() && e.environment.as_deref() == Some("prod"))
    );
    assert!(
        entries.iter().all(|e| e.duration_ms < 60_000),
        "{entries:?}"
    );

    // The stream delivered again from its start: nothing new, nothing twice.
    let again = s.record_stream().await;
    assert_eq!(again.written, 0, "{again:?}");
    assert_eq!(again.already_there, 6, "{again:?}");
    assert_eq!(s.entries("k").await, entries);
}

/// A forced end that hands the key to a waiter, and an operator's
/// takeover, end the grant in the write that grants the next one: the new
/// item's `forcedLockId` names the grant it replaced, so the entry still
/// says FORCED.
#[tokio::test]
async fn a_forced_end_in_the_same_write_as_the_next_grant_is_recorded_as_forced() {
    let s = setup().await;
    let minute = Duration::from_secs(60);
    let a = s
        .locks
        .acquire(&request("k", "alice", minute))
        .await
        .unwrap();
    wait_in_line(&s, "bob").await;
    let ended = s
        .locks
        .force_unlock("k", "ops", "stuck deploy", Some(a.lock_id()))
        .await
        .unwrap();
    let bob = ended.next.expect("bob was handed the key");
    let taken = s
        .locks
        .take_over(
            &request("k", "admin", minute),
            bob.lock_id(),
            "admin",
            "rollback",
        )
        .await
        .unwrap();
    let admin = taken.next.expect("the operator's grant");
    s.record_stream().await;

    let summary: Vec<_> = s
        .entries("k")
        .await
        .iter()
        .map(|e| (e.fence, e.outcome, e.ended_by.clone(), e.next_fence))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                bob.fence(),
                Outcome::Forced,
                Some("admin".to_owned()),
                Some(admin.fence())
            ),
            (
                a.fence(),
                Outcome::Forced,
                Some("ops".to_owned()),
                Some(bob.fence())
            ),
        ]
    );
}

#[tokio::test]
async fn history_pages_newest_first_per_key_and_across_keys() {
    let s = setup().await;
    let minute = Duration::from_secs(60);
    let mut api_fences = Vec::new();
    for round in 0..3 {
        for key in ["api-prod", "web-prod"] {
            let g = s
                .locks
                .acquire(&request(key, &format!("user{round}"), minute))
                .await
                .unwrap();
            if key == "api-prod" {
                api_fences.insert(0, g.fence());
            }
            s.locks
                .release(&ReleaseRequest::new(
                    key,
                    g.lock_id(),
                    LockStatus::Completed,
                ))
                .await
                .unwrap();
        }
    }
    s.record_stream().await;

    // One key, two per page.
    let mut query = HistoryQuery {
        page_size: Some(2),
        ..HistoryQuery::default()
    };
    let mut fences = Vec::new();
    loop {
        let page = s.history.for_key("api-prod", &query).await.unwrap();
        fences.extend(page.entries.iter().map(|e| e.fence));
        match page.next_page_token {
            Some(token) => query.page_token = Some(token),
            None => break,
        }
    }
    assert_eq!(fences, api_fences, "newest first, across pages");

    // Every key, by the time each grant ended, newest first.
    let now = baton_lock::clock::now_epoch_millis();
    let mut query = HistoryQuery {
        page_size: Some(4),
        ..HistoryQuery::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = s.history.recent(&query, now).await.unwrap();
        seen.extend(
            page.entries
                .iter()
                .map(|e| (e.ended_at_ms, e.lock_key.clone(), e.fence)),
        );
        match page.next_page_token {
            Some(token) => query.page_token = Some(token),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0].0 >= w[1].0),
        "newest first: {seen:?}"
    );

    // `since` leaves out what ended before it.
    let latest = seen[0].0;
    let page = s
        .history
        .recent(
            &HistoryQuery {
                since_ms: Some(latest),
                ..HistoryQuery::default()
            },
            now,
        )
        .await
        .unwrap();
    assert!(page.entries.iter().all(|e| e.ended_at_ms >= latest));
    assert!(!page.entries.is_empty());

    // A token this history never gave is refused, not misread.
    let bad = s
        .history
        .for_key(
            "api-prod",
            &HistoryQuery {
                page_token: Some("not-a-token".into()),
                ..HistoryQuery::default()
            },
        )
        .await;
    assert!(
        matches!(bad, Err(baton_lock::LockError::InvalidInput(_))),
        "{bad:?}"
    );
}

#[tokio::test]
async fn a_read_across_keys_never_walks_back_further_than_its_limit() {
    let s = setup().await;
    let proxy = baton_testkit::FaultProxy::passthrough(&s.table.endpoint)
        .await
        .unwrap();
    let reader = HistoryClient::new(
        baton_testkit::local_dynamodb_client(&proxy.url(), 3),
        baton_lock::schema::history::table_for(&s.table.name),
    );
    let query = HistoryQuery {
        since_ms: Some(0),
        ..HistoryQuery::default()
    };
    let page = reader
        .recent(&query, baton_lock::clock::now_epoch_millis())
        .await
        .unwrap();
    assert!(page.entries.is_empty() && page.next_page_token.is_none());
    let days = baton_lock::MAX_RECENT_WINDOW.as_secs() / 86_400;
    let queries = proxy.operations().len() as u64;
    assert!(
        (days..=days + 1).contains(&queries),
        "one Query per day of the window, not per day since 1970: {queries}"
    );
}
