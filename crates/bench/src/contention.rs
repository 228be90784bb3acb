//! Figure 3: many contenders on one key for a fixed time. Each contender
//! loops: acquire (timed: the time to a decision, granted or held); when
//! granted, enter an independent ledger, work 0.5–2 ms, leave the ledger,
//! then release; when held, sleep as `LockClient::wait` would (baton-lock's
//! own jittered `Backoff`, here 20 ms doubling to 200 ms) and try again. The
//! ledger counts overlapping holders (a grant while another grant's lease
//! was still believed valid) and fences that failed to grow; both must be 0.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use baton_lock::clock::now_epoch_secs;
use baton_lock::{AcquireRequest, Backoff, LockClient, LockError, LockStatus, ReleaseRequest};
use baton_testkit::{fast_options, local_dynamodb_client};
use serde_json::json;

use crate::Env;
use crate::fixtures;
use crate::report::{Row, Verdict, ms};
use crate::stats::Samples;

const SECTION: &str = "3 contention";

#[derive(Default)]
struct Ledger {
    /// The grant that believes it holds the key: (fence, lease end).
    holder: Option<(u64, u64)>,
    last_fence: Option<u64>,
    overlaps: usize,
    fence_regressions: usize,
}

impl Ledger {
    fn enter(&mut self, fence: u64, expires_at: u64) {
        if let Some((_, other_expires)) = self.holder
            && now_epoch_secs() < other_expires
        {
            self.overlaps += 1;
        }
        if self.last_fence.is_some_and(|last| fence <= last) {
            self.fence_regressions += 1;
        }
        self.last_fence = Some(fence);
        self.holder = Some((fence, expires_at));
    }

    fn exit(&mut self, fence: u64) {
        if self.holder.map(|(f, _)| f) == Some(fence) {
            self.holder = None;
        }
    }
}

#[derive(Default)]
struct Tally {
    decisions: Vec<Duration>,
    grants: usize,
    errors: Vec<String>,
}

pub async fn run(env: &Env) -> anyhow::Result<Vec<Row>> {
    let table = fixtures::create_table(&env.ddb).await?;
    let mut rows = Vec::new();
    let mut result = Ok(());
    for contenders in [8, 32, 64] {
        match round(env, &table, contenders).await {
            Ok(row) => rows.push(row),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    fixtures::drop_table(&env.ddb, &table).await;
    result.map(|()| rows)
}

async fn round(env: &Env, table: &str, contenders: usize) -> anyhow::Result<Row> {
    let duration = env.contention_time;
    let ddb = local_dynamodb_client(&env.ddb, 3);
    let key = format!("bench-hot-{contenders}");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for contender in 0..contenders {
        let locks = LockClient::with_options(ddb.clone(), table, fast_options());
        let (ledger, key) = (Arc::clone(&ledger), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(contender as u64);
            let options = locks.options().clone();
            let mut backoff = Backoff::new(options.poll_initial, options.poll_max);
            let mut tally = Tally::default();
            // Start spread over the first 10 ms, as independent processes would.
            tokio::time::sleep(Duration::from_micros(rng.u64(0..10_000))).await;
            while Instant::now() < deadline {
                let request = AcquireRequest::new(
                    &key,
                    format!("contender-{contender}"),
                    Duration::from_secs(30),
                );
                let asked = Instant::now();
                let outcome = locks.acquire(&request).await;
                tally.decisions.push(asked.elapsed());
                match outcome {
                    Ok(grant) => {
                        tally.grants += 1;
                        backoff = Backoff::new(options.poll_initial, options.poll_max);
                        if let Ok(mut l) = ledger.lock() {
                            l.enter(grant.fence(), grant.record.expires_at);
                        }
                        // Work under the lock for 0.5–2 ms, then leave the
                        // ledger before the release is sent: the next grant
                        // can only follow the release landing.
                        tokio::time::sleep(Duration::from_micros(rng.u64(500..2000))).await;
                        if let Ok(mut l) = ledger.lock() {
                            l.exit(grant.fence());
                        }
                        let release =
                            ReleaseRequest::new(&key, grant.lock_id(), LockStatus::Completed);
                        if let Err(e) = locks.release(&release).await {
                            tally.errors.push(format!("release: {e}"));
                        }
                    }
                    Err(LockError::Held { .. }) => {
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                    Err(e) => {
                        tally.errors.push(format!("acquire: {e}"));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            tally
        }));
    }
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await.context("contender task")?;
        all.decisions.extend(t.decisions);
        all.grants += t.grants;
        all.errors.extend(t.errors);
    }
    let elapsed = started.elapsed();
    let (overlaps, regressions) = ledger
        .lock()
        .map(|l| (l.overlaps, l.fence_regressions))
        .unwrap_or((usize::MAX, 0));
    let decisions = Samples::new(all.decisions);
    let grants_per_s = all.grants as f64 / elapsed.as_secs_f64();
    let decisions_per_s = decisions.len() as f64 / elapsed.as_secs_f64();
    let ok = overlaps == 0 && regressions == 0;
    let mut row = Row::new(
        SECTION,
        format!("{contenders} contenders, one key, {} s", duration.as_secs()),
        format!(
            "{grants_per_s:.0} grants/s; decision p50 {} p99 {}; overlaps {overlaps}",
            ms(decisions.p50()),
            ms(decisions.p99())
        ),
    )
    .target("0 overlapping holders", Verdict::meets(ok))
    .data(json!({
        "contenders": contenders,
        "seconds": elapsed.as_secs_f64(),
        "grants": all.grants,
        "grants_per_s": grants_per_s,
        "decisions": decisions.len(),
        "decisions_per_s": decisions_per_s,
        "time_to_decision": decisions.json(),
        "overlapping_holders": overlaps,
        "fence_regressions": regressions,
        "errors": all.errors.len(),
        "first_errors": all.errors.iter().take(5).collect::<Vec<_>>(),
    }));
    let mut note = format!(
        "{contenders} contenders: {} decisions ({decisions_per_s:.0}/s, each one UpdateItem) and {} grants in {:.1} s; \
         {regressions} fence regressions",
        decisions.len(),
        all.grants,
        elapsed.as_secs_f64()
    );
    if !all.errors.is_empty() {
        note.push_str(&format!(
            "; {} errors, first: {}",
            all.errors.len(),
            all.errors[0]
        ));
    }
    row = row.note(note);
    Ok(row)
}
