//! Mutual exclusion under contention: many contenders, one key, short leases
//! that expire mid-test, and an independent ledger that records who believed
//! they held the lock when.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_lock::{AcquireRequest, LockError, LockStatus, ReleaseRequest, clock::now_epoch_millis};
use baton_testkit::{TestTable, fast_options};

const CONTENDERS: usize = 32;
const TEST_TIME: Duration = Duration::from_secs(8);
/// How long the test may go on past [`TEST_TIME`] until a lease has lapsed
/// and been taken over: on a loaded machine contender 0's first grant (the
/// certain crash) can come so late that its lease outlives `TEST_TIME`.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// The test's own view of the lock, independent of DynamoDB.
#[derive(Default)]
struct Ledger {
    /// The grant that currently believes it holds the key: (fence, lease end).
    holder: Option<(u64, u64)>,
    /// Fences in the order their holders entered.
    entered: Vec<u64>,
    violations: Vec<String>,
    takeovers: usize,
}

impl Ledger {
    /// A contender starts working under `fence`. Another holder whose lease
    /// is still valid at this moment would be a double grant.
    fn enter(&mut self, fence: u64, expires_at: u64) {
        let now = now_epoch_millis();
        if let Some((other, other_expires)) = self.holder
            && now < other_expires
        {
            self.violations.push(format!(
                "fence {fence} entered while fence {other} still held a valid lease until {other_expires} (now {now})"
            ));
        }
        if let Some(&last) = self.entered.last()
            && fence <= last
        {
            self.violations
                .push(format!("fence {fence} granted after fence {last}"));
        }
        self.entered.push(fence);
        self.holder = Some((fence, expires_at));
    }

    /// The holder stops working (before it releases).
    fn exit(&mut self, fence: u64) {
        if self.holder.map(|(f, _)| f) == Some(fence) {
            self.holder = None;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_most_one_valid_holder_among_32_contenders_with_expiring_leases() {
    let table = TestTable::create().await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let started = tokio::time::Instant::now();
    let (deadline, limit) = (started + TEST_TIME, started + RUN_LIMIT);
    let mut tasks = Vec::new();
    for contender in 0..CONTENDERS {
        let (locks, ledger) = (table.client(fast_options()), Arc::clone(&ledger));
        tasks.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(contender as u64);
            let mut grants = 0;
            loop {
                let now = tokio::time::Instant::now();
                let taken_over = ledger.lock().unwrap().takeovers > 0;
                if now >= limit || (now >= deadline && taken_over) {
                    break;
                }
                let request = AcquireRequest::new(
                    "hot-key",
                    format!("contender-{contender}"),
                    Duration::from_secs(1),
                );
                match locks.acquire(&request).await {
                    Ok(grant) => {
                        grants += 1;
                        {
                            let mut l = ledger.lock().unwrap();
                            if grant.record.took_over_expired() {
                                l.takeovers += 1;
                            }
                            l.enter(grant.fence(), grant.record.expires_at_ms);
                        }
                        // Simulated work inside the critical section.
                        tokio::time::sleep(Duration::from_millis(rng.u64(0..30))).await;
                        if rng.u8(0..20) == 0 || (contender == 0 && grants == 1) {
                            // Crash (always on contender 0's first grant, so a
                            // takeover is certain): never release, never exit. The lease must
                            // expire and be taken over; the ledger's holder
                            // entry stays until then and is judged by its lease.
                            continue;
                        }
                        ledger.lock().unwrap().exit(grant.fence());
                        let release =
                            ReleaseRequest::new("hot-key", grant.lock_id(), LockStatus::Completed);
                        match locks.release(&release).await {
                            Ok(_) | Err(LockError::NotOwner { .. }) => {}
                            Err(e) => panic!("release failed: {e}"),
                        }
                    }
                    Err(LockError::Held { .. }) => {
                        tokio::time::sleep(Duration::from_millis(rng.u64(5..40))).await;
                    }
                    Err(e) => panic!("acquire failed: {e}"),
                }
            }
            grants
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }

    let (violations, entered, takeovers) = {
        let l = ledger.lock().unwrap();
        (l.violations.clone(), l.entered.clone(), l.takeovers)
    };
    assert!(violations.is_empty(), "{violations:#?}");
    assert_eq!(entered.len(), total);
    assert!(
        total >= 10,
        "the test must exercise many grants, got {total}"
    );
    assert!(
        takeovers >= 1,
        "leases must expire mid-test and be taken over"
    );
    let last = table
        .client(fast_options())
        .status("hot-key")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Some(&last.fence),
        entered.last(),
        "the store's fence is the last one granted"
    );
}
