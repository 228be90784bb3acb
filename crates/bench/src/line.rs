//! Figure 8: waiting lines. Requests per line operation counted at the wire
//! (a passthrough proxy in front of DynamoDB Local); throughput of 16
//! contenders that queue, each holding the lock 5 ms, with the lock's idle
//! share and the largest overtaking; fairness of 16 queued waiters against
//! 16 pollers on one key; and the worker's hand-off latency, from a
//! completion record arriving to the next waiter's run being dispatched.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use baton_chatops::{CompletionMessage, Conclusion, Config, QueueMessage};
use baton_lock::{
    AcquireRequest, CancellationToken, JoinRequest, Joined, LineMode, LockClient, LockOptions,
    LockStatus, LockStore, ReleaseRequest,
};
use baton_testkit::{FaultProxy, HttpRecorder, fast_options, local_dynamodb_client};
use baton_worker::{Worker, WorkerSettings};
use serde_json::json;

use crate::Env;
use crate::fixtures;
use crate::report::{Row, Verdict, describe, ms, ms_f};
use crate::stats::Samples;

const SECTION: &str = "8 line";
const CONTENDERS: usize = 16;
const HOLD: Duration = Duration::from_millis(5);
/// How often a waiter reads the key to see whether its turn came.
const LINE_POLL: Duration = Duration::from_millis(5);

pub async fn run(env: &Env) -> anyhow::Result<Vec<Row>> {
    let table = fixtures::create_table(&env.ddb).await?;
    let result = async {
        let mut rows = requests(env, &table).await?;
        rows.push(throughput(env, &table).await?);
        rows.extend(fairness(env, &table).await?);
        rows.push(hand_off_latency(env, &table).await?);
        Ok(rows)
    }
    .await;
    fixtures::drop_table(&env.ddb, &table).await;
    result
}

fn options() -> LockOptions {
    LockOptions {
        line_poll: LINE_POLL,
        ..fast_options()
    }
}

fn join(key: &str, owner: &str) -> JoinRequest {
    JoinRequest {
        acquire: AcquireRequest::new(key, owner, Duration::from_secs(30)),
        mode: LineMode::Fifo { max: 100 },
        max_wait: Duration::from_secs(120),
        claim: None,
        member: Some(owner.to_owned()),
    }
}

fn count_row(what: &str, ops: &[String], floor: usize, why: &str) -> Row {
    Row::new(
        SECTION,
        format!("DynamoDB requests: {what}"),
        format!("{} ({})", ops.len(), describe(ops)),
    )
    .target(
        format!("{floor} (floor)"),
        Verdict::meets(ops.len() <= floor),
    )
    .note(format!("{what}: {why}"))
    .data(json!({ "requests": ops.len(), "operations": ops }))
}

/// Requests per line operation, at the wire.
async fn requests(env: &Env, table: &str) -> anyhow::Result<Vec<Row>> {
    let proxy = FaultProxy::passthrough(&env.ddb).await?;
    let locks = LockClient::with_options(local_dynamodb_client(&proxy.url(), 3), table, options());
    let ops = |proxy: &FaultProxy| {
        let ops = proxy.operations();
        proxy.clear();
        ops
    };
    let key = "bench-line-requests";
    let holder = locks
        .acquire(&AcquireRequest::new(key, "holder", Duration::from_secs(60)))
        .await
        .context("holder")?;
    proxy.clear();
    let Joined::Waiting(first) = locks.join(&join(key, "first")).await.context("join")? else {
        bail!("a held key granted a join");
    };
    let joined = ops(&proxy);
    locks.join(&join(key, "second")).await.context("join")?;
    proxy.clear();
    locks.leave(key, "second").await.context("leave")?;
    let left = ops(&proxy);
    let ended = locks
        .release(&ReleaseRequest::new(
            key,
            holder.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .context("release with a line")?;
    let handed_blind = ops(&proxy);
    let next = ended.next.context("no hand-off")?;
    if next.lock_id() != first.waiter.ticket {
        bail!("the hand-off went to someone else than the head");
    }
    // The new holder sees the line in its own grant's record, and a waiter
    // joins behind it after it looked: its view of the head is still right.
    let Joined::Waiting(third) = locks.join(&join(key, "third")).await.context("join")? else {
        bail!("a held key granted a join");
    };
    locks.join(&join(key, "fourth")).await.context("join")?;
    let mut seen = third.record.clone();
    seen.waiters.truncate(1);
    proxy.clear();
    let mut release = ReleaseRequest::new(key, next.lock_id(), LockStatus::Completed);
    release.seen = Some(Box::new(seen));
    let ended = locks
        .release(&release)
        .await
        .context("release, line seen")?;
    let handed_seen = ops(&proxy);
    if ended.next.map(|g| g.record.lock_id) != Some(third.waiter.ticket) {
        bail!("the hand-off with a seen line went to someone else than the head");
    }
    let last = locks.status(key).await?.context("the key")?;
    let mut release = ReleaseRequest::new(key, &last.lock_id, LockStatus::Completed);
    release.seen = Some(Box::new(last));
    locks.release(&release).await.context("hand to the last")?;
    let last = locks.status(key).await?.context("the key")?;
    proxy.clear();
    locks
        .release(&ReleaseRequest::new(
            key,
            &last.lock_id,
            LockStatus::Completed,
        ))
        .await
        .context("release without a line")?;
    let alone = ops(&proxy);
    Ok(vec![
        count_row(
            "join (acquire refused, then the join)",
            &joined,
            2,
            "the acquire's refusal returns the holder and the line; one conditional write adds the waiter to exactly that line",
        ),
        count_row(
            "hand-off, the releaser saw the line",
            &handed_seen,
            1,
            "the release names the head it saw (ReleaseRequest::seen: the holder's own grant record, a renew's answer); one conditional write ends the grant and grants that head, whoever joined behind it since",
        ),
        count_row(
            "hand-off, the releaser did not see the line",
            &handed_blind,
            2,
            "the plain release is refused because someone waits (its answer carries the line), then one write ends the grant and grants the head together (a completion reported by a pipeline ends this way)",
        ),
        count_row(
            "leave",
            &left,
            1,
            "a strongly consistent read to find the waiter's place, then one conditional write: DynamoDB cannot remove a list element by value",
        ),
        count_row(
            "release with no one waiting",
            &alone,
            1,
            "unchanged by the line",
        ),
    ])
}

/// What one contender saw.
#[derive(Default)]
struct Tally {
    /// `(fence, arrival)` of each grant: arrival is the line version the
    /// waiter's join wrote (`None`: granted at once, it never waited).
    grants: Vec<(u64, Option<u64>)>,
    waits: Vec<Duration>,
    held: Duration,
    errors: Vec<String>,
}

/// 16 contenders on one key, each joining the line, holding 5 ms and
/// joining again, for the contention time.
async fn throughput(env: &Env, table: &str) -> anyhow::Result<Row> {
    let key = "bench-line-throughput";
    let ddb = local_dynamodb_client(&env.ddb, 3);
    let started = Instant::now();
    let deadline = started + env.contention_time;
    let mut tasks = Vec::new();
    for c in 0..CONTENDERS {
        let locks = LockClient::with_options(ddb.clone(), table, options());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let cancel = CancellationToken::new();
            while Instant::now() < deadline {
                let asked = Instant::now();
                let mut arrival = None;
                let request = join(key, &format!("contender-{c}"));
                let granted = locks
                    .acquire_in_line(&request, Duration::from_secs(60), &cancel, |place| {
                        arrival.get_or_insert(place.record.line_version);
                    })
                    .await;
                match granted {
                    Ok(grant) => {
                        tally.waits.push(asked.elapsed());
                        let hold = Instant::now();
                        tokio::time::sleep(HOLD).await;
                        tally.held += hold.elapsed();
                        tally.grants.push((grant.fence(), arrival));
                        let mut release =
                            ReleaseRequest::new(key, grant.lock_id(), LockStatus::Completed);
                        release.seen = Some(Box::new(grant.record.clone()));
                        if let Err(e) = locks.release(&release).await {
                            tally.errors.push(format!("release: {e}"));
                        }
                    }
                    Err(e) => tally.errors.push(format!("acquire_in_line: {e}")),
                }
            }
            tally
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.push(task.await.context("contender")?);
    }
    let elapsed = started.elapsed();
    let grants: usize = all.iter().map(|t| t.grants.len()).sum();
    let served = all.iter().filter(|t| !t.grants.is_empty()).count();
    let held: Duration = all.iter().map(|t| t.held).sum();
    let errors: Vec<&String> = all.iter().flat_map(|t| &t.errors).collect();
    let rate = grants as f64 / elapsed.as_secs_f64();
    let idle = 1.0 - (held.as_secs_f64() / elapsed.as_secs_f64()).min(1.0);
    let overtaking = largest_overtaking(all.iter().flat_map(|t| t.grants.iter().copied()));
    let waits = Samples::new(all.iter().flat_map(|t| t.waits.iter().copied()).collect());
    let ok = rate >= 40.0 && served == CONTENDERS && overtaking == 0 && errors.is_empty();
    Ok(Row::new(
        SECTION,
        format!("throughput: {CONTENDERS} queued contenders on one key, each holding {} ms", HOLD.as_millis()),
        format!(
            "{rate:.1} grants/s, {served}/{CONTENDERS} served, largest overtaking {overtaking}, lock idle {:.0}%",
            idle * 100.0
        ),
    )
    .target(">= 40 grants/s, all served in arrival order", Verdict::meets(ok))
    .note(format!(
        "throughput: each contender joins the line (acquire_in_line), holds {} ms, releases (which hands the key to the next) and joins again, for {:.0} s; waiters read the key every {} ms to see their turn. Idle is the share of wall time no one was inside the lock: the release's two writes, the head noticing its turn, and the join after it. Wait p50 {}, p99 {}. {} errors{}",
        HOLD.as_millis(),
        elapsed.as_secs_f64(),
        LINE_POLL.as_millis(),
        ms(waits.p50()),
        ms(waits.p99()),
        errors.len(),
        errors.first().map(|e| format!(" (first: {e})")).unwrap_or_default()
    ))
    .data(json!({
        "grants": grants, "seconds": elapsed.as_secs_f64(), "rate": rate, "served": served,
        "idle": idle, "largest_overtaking": overtaking, "wait_ms": waits.json(), "errors": errors.len(),
    })))
}

/// The most earlier arrivals any one grant went ahead of: for grants in
/// fence order, how many grants that came later had arrived before it.
/// Grants made at once (no wait) have no arrival and are not ranked.
fn largest_overtaking(grants: impl Iterator<Item = (u64, Option<u64>)>) -> usize {
    let mut ranked: Vec<(u64, u64)> = grants
        .filter_map(|(fence, arrival)| arrival.map(|a| (fence, a)))
        .collect();
    ranked.sort_unstable();
    (0..ranked.len())
        .map(|i| {
            ranked[i + 1..]
                .iter()
                .filter(|(_, later)| *later < ranked[i].1)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// 16 queued waiters and 16 pollers, each wanting the key once, all
/// starting together while it is held.
async fn fairness(env: &Env, table: &str) -> anyhow::Result<Vec<Row>> {
    let key = "bench-line-fairness";
    let ddb = local_dynamodb_client(&env.ddb, 3);
    let setup = LockClient::with_options(ddb.clone(), table, options());
    let holder = setup
        .acquire(&AcquireRequest::new(key, "holder", Duration::from_secs(60)))
        .await
        .context("holder")?;
    let order = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..2 * CONTENDERS {
        let queued = c % 2 == 0;
        let locks = LockClient::with_options(ddb.clone(), table, options());
        let order = Arc::clone(&order);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(c as u64)).await;
            let asked = Instant::now();
            let cancel = CancellationToken::new();
            let owner = format!("{}-{c}", if queued { "queued" } else { "poller" });
            let mut arrival = None;
            let granted = if queued {
                locks
                    .acquire_in_line(&join(key, &owner), Duration::from_secs(120), &cancel, |p| {
                        arrival.get_or_insert(p.record.line_version);
                    })
                    .await
            } else {
                let request = AcquireRequest::new(key, &owner, Duration::from_secs(30));
                locks
                    .acquire_with_wait(&request, Duration::from_secs(120), &cancel, |_| {})
                    .await
            };
            let grant = granted.map_err(|e| anyhow::anyhow!("{owner}: {e}"))?;
            let waited = asked.elapsed();
            tokio::time::sleep(HOLD).await;
            if let Ok(mut o) = order.lock() {
                o.push((queued, grant.fence(), arrival));
            }
            locks
                .release(&ReleaseRequest::new(
                    key,
                    grant.lock_id(),
                    LockStatus::Completed,
                ))
                .await
                .map_err(|e| anyhow::anyhow!("{owner} release: {e}"))?;
            anyhow::Ok((queued, waited))
        }));
    }
    // Let everyone arrive (the queued ones join within their first
    // attempt), then let the holder go.
    tokio::time::sleep(Duration::from_millis(2 * CONTENDERS as u64 + 50)).await;
    setup
        .release(&ReleaseRequest::new(
            key,
            holder.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .context("release the holder")?;
    let (mut queued_waits, mut poller_waits) = (Vec::new(), Vec::new());
    for task in tasks {
        let (queued, waited) = task.await.context("contender")??;
        if queued {
            queued_waits.push(waited);
        } else {
            poller_waits.push(waited);
        }
    }
    let elapsed = started.elapsed();
    let order = order.lock().map(|o| o.clone()).unwrap_or_default();
    let overtaking = largest_overtaking(
        order
            .iter()
            .filter(|(queued, _, _)| *queued)
            .map(|&(_, fence, arrival)| (fence, arrival)),
    );
    let (q, p) = (Samples::new(queued_waits), Samples::new(poller_waits));
    Ok(vec![
        Row::new(
            SECTION,
            format!("fairness: {CONTENDERS} queued waiters against {CONTENDERS} pollers, one key"),
            format!(
                "queued: largest overtaking {overtaking}, wait p99 {}; pollers: wait p99 {}",
                ms(q.p99()),
                ms(p.p99())
            ),
        )
        .target("queued granted in arrival order (overtaking 0)", Verdict::meets(overtaking == 0))
        .note(format!(
            "fairness: 16 tasks wait in the line (acquire_in_line) and 16 poll (acquire_with_wait, backoff 20-200 ms), all asking within 32 ms while the key is held, each holding it {} ms once; {:.1} s in all. A key with a line is never granted to a poller, so the pollers come after the whole line: that is the point of the line, and their p99 shows its price.",
            HOLD.as_millis(),
            elapsed.as_secs_f64()
        ))
        .data(json!({
            "queued_wait_ms": q.json(), "poller_wait_ms": p.json(), "largest_overtaking": overtaking,
            "order": order.iter().map(|(queued, fence, _)| json!({"queued": queued, "fence": fence})).collect::<Vec<_>>(),
        })),
    ])
}

/// The worker, in process: a `/deploy` holds a key and another waits in its
/// line; the time from handing the holder's completion record to the
/// worker to the waiter's run being dispatched (inside that call).
async fn hand_off_latency(env: &Env, table: &str) -> anyhow::Result<Row> {
    let slack = HttpRecorder::start().await?;
    let github = HttpRecorder::start().await?;
    fixtures::github_stub(&github);
    let toml = fixtures::config_toml().replace(
        "lock_ttl = \"30m\"",
        "lock_ttl = \"30m\"\non_conflict = \"queue\"",
    );
    let config = Config::from_toml_str(&toml).context("queue config")?;
    let settings = WorkerSettings {
        default_budget: Duration::from_secs(20),
        ..WorkerSettings::local(config, &slack.url(), &github.url())
    };
    let locks = LockClient::with_options(local_dynamodb_client(&env.ddb, 3), table, fast_options());
    let worker = Worker::new(locks.clone(), settings)?;
    let prefix = format!("{}/response/", slack.url());
    let n = env.scale(60);
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let component = fixtures::component(i);
        for user in ["U0HOLDER", "U0WAITER"] {
            let body = fixtures::command_body(
                "/deploy",
                &format!("{component} plt"),
                user,
                &format!("{prefix}{i}/{user}"),
            );
            worker
                .handle(fixtures::sqs_event(&[(
                    uuid::Uuid::new_v4().to_string(),
                    body,
                )])?)
                .await;
        }
        let key = format!("deploy-{component}-plt");
        let held = locks.status(&key).await?.context("holder's grant")?;
        if held.waiters.len() != 1 {
            bail!("{key}: expected one waiter, found {}", held.waiters.len());
        }
        let completion = QueueMessage::Completion(CompletionMessage {
            lock_key: key.clone(),
            lock_id: held.lock_id.clone(),
            fence: held.fence,
            conclusion: Conclusion::Success,
            run_url: None,
            run_id: Some(99),
            repository: Some("acme/platform".into()),
            workflow: Some("deploy.yml".into()),
            channel_id: None,
            reported_by: Some("github".into()),
            reason: None,
        });
        let dispatched_before = github
            .requests_to("/repos/acme/platform/actions/workflows/deploy.yml/dispatches")
            .len();
        let event =
            fixtures::sqs_event(&[(uuid::Uuid::new_v4().to_string(), completion.to_json())])?;
        let t = Instant::now();
        worker.handle(event).await;
        let took = t.elapsed();
        let dispatched = github
            .requests_to("/repos/acme/platform/actions/workflows/deploy.yml/dispatches")
            .len();
        let now = locks.status(&key).await?.context("waiter's grant")?;
        if dispatched != dispatched_before + 1 || now.locked_by != "U0WAITER" {
            bail!("{key}: the completion did not start the waiter's run");
        }
        samples.push(took);
    }
    let s = Samples::new(samples);
    Ok(Row::new(
        SECTION,
        "hand-off: completion record to the next waiter's dispatch (worker, loopback)",
        format!("p50 {}, p99 {}", ms(s.p50()), ms(s.p99())),
    )
    .note(format!(
        "hand-off: {n} times, a /deploy holds a key and another waits; the completion record is handed to Worker::handle, whose release refuses (the line), ends and grants in one write, dispatches the waiter's run (recorder as GitHub), records it and posts to the channel (recorder as Slack); timed from the call to its return, which includes the channel notices. DynamoDB Local and recorders on loopback: real services add their latency per request"
    ))
    .data(json!({ "ms": s.json(), "p50_ms": ms_f(s.p50()) })))
}
