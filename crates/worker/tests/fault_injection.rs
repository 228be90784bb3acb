//! The worker's promises under failure, end to end through its public
//! handler. DynamoDB is reached through a seeded fault-injecting proxy (5xx,
//! throttling, delays past the SDK's attempt timeout, dropped connections,
//! writes whose answer is lost); the Slack and GitHub stand-ins fail a seeded
//! share of requests (5xx, 429 with `Retry-After`, answers slower than the
//! worker's HTTP timeout) and GitHub sometimes starts a run and then answers
//! 502, as if the answer were lost on the way back.
//!
//! A FIFO-like queue drives many commands from several users over a few lock
//! keys: records the worker hands back in `batchItemFailures` are delivered
//! again (with `ApproximateReceiveCount` raised; the fifth failure sends them
//! to the dead-letter queue), already-processed records are sometimes
//! delivered again as duplicates, and every run GitHub started finishes and
//! reports its completion through the queue, except the runs whose
//! `workflow_run` webhook is lost: GitHub's stand-in shows them `completed`
//! and only the reconciler can end their locks.
//!
//! Pipelines on the [`SHORT_TTL_TARGETS`] outlive their lock's TTL: the lease
//! of a grant whose run starts there is cut to [`SHORT_LEASE`] when the
//! dispatch reaches GitHub (as if the command's TTL were that short; the
//! config refuses anything under a minute, longer than this suite runs), and
//! such a run works on past that lease: until it has been seen lapsed and
//! then renewed, or for [`LONG_RUN_SECS`] when no lapse was seen. The reconciler, whose
//! [`RECONCILE_LEASE`] is as short, runs in one round in
//! [`RECONCILE_ONE_IN`] alongside the batch (`tokio::join!`), so leases are
//! renewed before they end, or lapse and are settled by the next pass or by
//! a command contending for the key. Forged and late completions go through
//! the queue too: duplicates of a completion after the key moved on to another
//! grant; completions naming another run id, another repository or
//! workflow, a random lock id, another fence, no run at all; and completions
//! naming a lock held by a CLI-style grant without a pipeline ([`CLI_KEY`]).
//!
//! Invariants:
//! - no dispatch without a held lock: at the moment a dispatch reaches GitHub,
//!   its `lock_id`/`fence` inputs are the store's current, unexpired
//!   IN_PROGRESS grant (read straight from DynamoDB Local);
//! - never two valid holders: no run starts on a key while another started
//!   run on that key has not finished;
//! - fences only grow, per key, across dispatches and in the final record;
//! - no second run for one request (SQS message id), whatever was lost;
//! - every command ends with its user told (a reply Slack accepted), or is
//!   still going back to the queue until the dead-letter queue takes it; a
//!   user whose run started is told so, not only that something failed;
//! - a lock follows its run (checked after every round, straight from the
//!   store): while a run works, its grant stays the key's IN_PROGRESS grant
//!   (its lease may lapse, but nobody takes it over or ends it: not a late
//!   or forged completion, not a contender, not the reconciler); a grant
//!   that was taken over had lapsed; a grant ended by a completion or by the
//!   reconciler has a finished run of its own and carries that run's
//!   outcome; no forged completion ever ends a grant; the CLI grant stays
//!   held by its owner throughout;
//! - no lock outlives its run: at the end, after the reconciler's last
//!   passes, no grant whose run finished (reported or not) is still
//!   IN_PROGRESS; whatever is still IN_PROGRESS has no run, a lease no
//!   longer than the command's TTL from its grant, and belongs to a request
//!   that was dead-lettered or whose user was told the dispatch is
//!   unconfirmed (besides the CLI grant).
//!
//! Deterministic given a seed, as far as real time allows: every fault is
//! decided by the seed and the request's logical identity (what it asks for,
//! and how many times it was asked before), the queue, the forgeries and the
//! reconciler's schedule by a seeded generator, and the invocation deadline
//! is generous except during the outages. What can still differ between two
//! runs of one seed is what races the clock: retries cut short by the
//! outage's deadline, backoff jitter, which of two concurrent requests of one
//! identity (runs-list lookups in one batch, run lookups by the reconciler
//! and by the batch) meets which fault, whether a short lease lapses before
//! the reconciler renews it, and in which round a run on a short-TTL target
//! is free to finish.
//! `BATON_FAULT_SEED=<n>` runs that seed only; every failure names the seed,
//! and `BATON_FAULT_TRACE=1` prints each batch, reconciler pass, forgery and
//! started run.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use baton_chatops::{CommandMessage, CompletionMessage, Conclusion, Config, QueueMessage};
use baton_lock::clock::now_epoch_secs;
use baton_lock::{AcquireRequest, LockClient, LockRecord, LockStatus};
use baton_testkit::chaos::{Schedule, mask_volatile, seed_from_env, stable_hash};
use baton_testkit::{
    DynamoChaos, FaultProxy, HttpRecorder, RecordedRequest, Reply, TestTable, fast_options,
};
use baton_worker::{ReconcileReport, Worker, WorkerSettings};
use serde_json::{Value, json};

const CONFIG: &str = r#"
[commands."/build"]
lock_ttl = "10m"
components = ["router", "api", "web"]
environments = ["dev", "plt"]
[commands."/build".pipeline]
repo = "acme/platform"
workflow = "build.yml"
ref = "main"
"#;
const LOCK_TTL_SECS: u64 = 600;
const DISPATCH: &str = "/repos/acme/platform/actions/workflows/build.yml/dispatches";
const RUNS: &str = "/repos/acme/platform/actions/workflows/build.yml/runs";
const TARGETS: [&str; 4] = ["router plt", "api plt", "web dev", "router dev"];
const USERS: [&str; 4] = ["U1ALICE", "U2BOB", "U3CAROL", "U4DAVE"];
const RUN_COMMANDS: usize = 64;
const MAX_RECEIVES: u32 = 5;
const HTTP_TIMEOUT: Duration = Duration::from_millis(300);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(400);
/// Rates of injected failures per request, per far side.
const DYNAMO_FAULT_RATE: f64 = 0.25;
const SLACK_FAULT_RATE: f64 = 0.25;
const GITHUB_FAULT_RATE: f64 = 0.3;
const MAX_ROUNDS: usize = 400;
/// Rounds during which GitHub fails every request: long enough for commands
/// to use up their deliveries and meet the worker's last-try path, and for
/// short leases to lapse while neither the reconciler nor a contending
/// command can ask about their runs. The second comes once runs on the
/// short-TTL targets are under way.
const GITHUB_OUTAGES: [std::ops::Range<usize>; 2] = [8..14, 24..29];
/// Time left in an invocation (Lambda's deadline), normally and during an outage.
const BUDGET: Duration = Duration::from_secs(6);
const OUTAGE_BUDGET: Duration = Duration::from_millis(1200);

/// The targets whose pipelines run longer than their lock's TTL.
const SHORT_TTL_TARGETS: [&str; 2] = ["web dev", "router dev"];
/// The lease a grant on one of the [`SHORT_TTL_TARGETS`] keeps once its run starts.
const SHORT_LEASE: Duration = Duration::from_secs(2);
/// The lease the reconciler gives a working run (renewed once less than
/// half of it is left).
const RECONCILE_LEASE: Duration = Duration::from_secs(2);
/// How long a run with a short lease works at least when its lease is never
/// seen lapsed, in seconds (one that was seen lapsed works until it has been
/// seen renewed).
const LONG_RUN_SECS: u64 = 8;
/// A reconciler pass runs in one round in this many.
const RECONCILE_ONE_IN: u8 = 3;
/// A key held by a CLI-style grant (no pipeline) for the whole scenario,
/// which completions name but must never end.
const CLI_KEY: &str = "build-api-dev";
const CLI_OWNER: &str = "ci";
/// One finished run in this many never sends its completion.
const LOST_WEBHOOK_ONE_IN: u8 = 3;
/// Final reconciler passes at most, once every run finished.
const FINAL_PASSES: usize = 8;
/// Who ends a grant, as its `releasedBy` records it: a completion's
/// `reported_by` (a run's own report, or a forgery's, named after its kind
/// behind the prefix), or the reconciler's logic.
const GENUINE_REPORTER: &str = "github";
const FORGER_PREFIX: &str = "forged:";
const RECONCILER_ACTOR: &str = "baton:reconciler";

const SEEDS: [u64; 3] = [7, 0x5eed_0b0b, 20_260_601];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_promises_hold_under_injected_faults_first_seed() {
    run_seed(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_promises_hold_under_injected_faults_second_seed() {
    run_seed(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_promises_hold_under_injected_faults_third_seed() {
    run_seed(2).await;
}

/// Runs `SEEDS[slot]`, or, when `BATON_FAULT_SEED` is set, that seed in slot 0 only.
async fn run_seed(slot: usize) {
    let seed = match seed_from_env() {
        Some(pinned) if slot == 0 => pinned,
        Some(pinned) => {
            eprintln!(
                "BATON_FAULT_SEED={pinned} is set: the first-seed test runs it; nothing to do here"
            );
            return;
        }
        None => SEEDS[slot],
    };
    eprintln!("worker fault suite: seed {seed} (reproduce with BATON_FAULT_SEED={seed})");
    let started = std::time::Instant::now();
    let outcome = Scenario::new(seed).await.run().await;
    eprintln!(
        "seed {seed}: {:.1} s, {:?}",
        started.elapsed().as_secs_f64(),
        outcome.stats
    );
    eprintln!(
        "seed {seed}: DynamoDB faults {:?} over {} requests",
        outcome.dynamo_faults, outcome.dynamo_requests
    );
    assert!(
        outcome.violations.is_empty(),
        "seed {seed}: {} violation(s) (reproduce with BATON_FAULT_SEED={seed}):\n{}",
        outcome.violations.len(),
        outcome.violations.join("\n")
    );
    let s = &outcome.stats;
    // The scenario must have exercised what it claims to. The floors are
    // what a run on a loaded 2-core machine still reaches (seen: 8 runs and
    // 15 redeliveries at the low end); the invariants above are the test.
    assert!(
        s.runs_started >= 5,
        "seed {seed}: too few runs started: {s:?}"
    );
    assert!(
        s.redeliveries >= 5,
        "seed {seed}: too few redeliveries: {s:?}"
    );
    assert!(
        s.duplicates >= 5,
        "seed {seed}: too few duplicate deliveries: {s:?}"
    );
    // Whether a record reaches its fifth delivery depends on timing inside
    // the GitHub outages; the last-delivery paths have their own
    // deterministic tests (finding_f2_*), so this is reported, not required.
    if s.last_tries == 0 {
        eprintln!("seed {seed}: no record reached its last delivery this run");
    }
    assert!(
        s.lost_dispatch_answers >= 1,
        "seed {seed}: no dispatch lost its answer: {s:?}"
    );
    assert!(
        s.slack_failures >= 5 && s.github_failures >= 5,
        "seed {seed}: too few HTTP faults: {s:?}"
    );
    assert!(
        outcome.dynamo_faults >= 10,
        "seed {seed}: too few DynamoDB faults"
    );
    // Run integrity: runs outlived their first lease, leases lapsed under
    // working runs and were renewed (the lapse met by a pass or by a
    // contending command), the reconciler renewed leases, ran beside
    // batches, and ended the locks of runs whose completion never came; late
    // and forged completions reached the worker.
    assert!(
        s.outlived_lease >= 1 && s.renewed >= 1,
        "seed {seed}: no run outlived its lease under renewals: {s:?}"
    );
    assert!(
        s.renewed_after_lapse + s.lapse_notices >= 1,
        "seed {seed}: no lease lapsed under a working run and was renewed: {s:?}"
    );
    assert!(
        s.concurrent_passes >= 5,
        "seed {seed}: too few reconciler passes beside a batch: {s:?}"
    );
    assert!(
        s.lost_webhooks_settled >= 1,
        "seed {seed}: no lost webhook's lock was ended by the reconciler: {s:?}"
    );
    assert!(
        s.forged_refused >= 8 && s.late_refused >= 1 && s.cli_forgeries_refused >= 1,
        "seed {seed}: too few forged or late completions processed: {s:?}"
    );
}

// ---------------------------------------------------------------------------
// The far side: what Slack and GitHub saw, decided and started.

#[derive(Debug, Default, Clone)]
struct Stats {
    commands: usize,
    deliveries: usize,
    redeliveries: usize,
    /// Deliveries with `ApproximateReceiveCount` at the queue's maximum.
    last_tries: usize,
    duplicates: usize,
    dead_lettered: usize,
    dispatches: usize,
    runs_started: usize,
    /// Runs that started although GitHub's answer said otherwise or never came.
    lost_dispatch_answers: usize,
    completions: usize,
    slack_failures: usize,
    github_failures: usize,
    replies_delivered: usize,
    rounds: usize,
    /// Reconciler passes, and those that ran alongside a batch.
    passes: usize,
    concurrent_passes: usize,
    /// Sums over the passes' reports.
    renewed: usize,
    reconciler_ended: usize,
    reconciler_unknown: usize,
    /// Runs whose lease was cut short, and those that finished only after
    /// that lease had ended.
    short_lease_runs: usize,
    outlived_lease: usize,
    /// Working runs whose grant was seen lapsed, and seen renewed afterwards.
    lapses_seen: usize,
    renewed_after_lapse: usize,
    /// Channel notices that a lease lapsed under a working run and the
    /// worker renewed it (the lapse met by a pass or a contending command
    /// within a round, where the look after the round cannot see it).
    lapse_notices: usize,
    /// Finished runs whose completion was never sent, and those whose lock
    /// was ended all the same (only the reconciler's logic can).
    lost_webhooks: usize,
    lost_webhooks_settled: usize,
    /// Late duplicates of completions (sent after the key moved on), forged
    /// completions, and forged completions naming the CLI grant, sent and
    /// processed to the end (the invariants show they ended nothing).
    late_sent: usize,
    late_refused: usize,
    forged_sent: usize,
    forged_refused: usize,
    cli_forgeries_refused: usize,
}

#[derive(Debug, Clone)]
struct StartedRun {
    id: u64,
    lock_key: String,
    lock_id: String,
    fence: u64,
    /// The request (SQS message id) of the grant it runs under, per the store.
    request_id: Option<String>,
    /// The pipeline is no longer running (whether or not it said so).
    finished: bool,
    /// How it ended, as GitHub shows it once finished.
    conclusion: Option<Conclusion>,
    /// Its completion was never sent: the `workflow_run` webhook was lost.
    silent: bool,
    /// When GitHub started it (epoch seconds).
    started_at: u64,
    /// The end of the short lease its grant was cut to when it started.
    short_lease_until: Option<u64>,
    /// Its grant was seen lapsed while it worked, and renewed after that.
    lapse_seen: bool,
    renewed_after_lapse: bool,
    /// Its grant was seen ended (or replaced after ending) since it finished.
    grant_ended: bool,
    /// Its grant was found gone while it worked (reported once).
    grant_lost: bool,
    /// Its grant as last seen while it worked.
    last_seen: Option<LockRecord>,
}

#[derive(Debug, Clone)]
struct DispatchSeen {
    lock_key: String,
    lock_id: String,
    fence: u64,
    started: bool,
    /// The request of the store's grant at the moment the dispatch arrived.
    request_id: Option<String>,
}

#[derive(Default)]
struct World {
    seed: u64,
    /// During an outage every GitHub request fails (in one of the ways above).
    github_outage: bool,
    /// (new run, run still running on the same key when the new one started).
    overlaps: Vec<(u64, u64, Option<baton_lock::PreviousGrant>)>,
    runs: Vec<StartedRun>,
    dispatches: Vec<DispatchSeen>,
    /// Replies Slack accepted, by `response_url` path.
    told: HashMap<String, Vec<Value>>,
    violations: Vec<String>,
    stats: Stats,
}

impl World {
    fn violation(&mut self, message: String) {
        if self.violations.len() < 60 {
            let seed = self.seed;
            self.violations.push(format!("[seed {seed}] {message}"));
        }
    }

    fn run_mut(&mut self, id: u64) -> Option<&mut StartedRun> {
        self.runs.iter_mut().find(|r| r.id == id)
    }
}

type Shared = Arc<Mutex<World>>;

fn slack_handler(
    world: Shared,
    schedule: Arc<Schedule>,
) -> impl Fn(RecordedRequest) -> baton_testkit::ReplyFuture {
    move |request| {
        let identity = format!(
            "slack {} {}",
            request.path,
            mask_volatile(&String::from_utf8_lossy(&request.body))
        );
        let mut rng = schedule.rng_for(&identity);
        let post = request.path.starts_with("/api/");
        let ok = || {
            if post {
                Reply::json(200, json!({"ok": true}))
            } else {
                Reply::new(200, "ok")
            }
        };
        let mut delivered = true;
        let reply = if rng.f64() < SLACK_FAULT_RATE {
            match rng.u8(0..4) {
                0 => {
                    delivered = false;
                    Reply::new(
                        if rng.bool() { 500 } else { 503 },
                        "slack is having a moment",
                    )
                }
                1 => {
                    delivered = false;
                    Reply::new(429, "rate limited")
                        .header("retry-after", if rng.u8(0..4) == 0 { "1" } else { "0" })
                }
                2 => {
                    delivered = false;
                    Reply::new(502, "bad gateway")
                }
                // Slack took it, but answered after the worker stopped waiting.
                _ => ok().delayed(HTTP_TIMEOUT + Duration::from_millis(150)),
            }
        } else {
            ok()
        };
        let mut w = world.lock().unwrap();
        if delivered {
            w.stats.replies_delivered += 1;
            let body = request.json();
            if body["text"]
                .as_str()
                .is_some_and(|t| t.contains("lapsed while the run was still working"))
            {
                w.stats.lapse_notices += 1;
            }
            w.told
                .entry(request.path.clone())
                .or_default()
                .push(request.json());
        } else {
            w.stats.slack_failures += 1;
        }
        drop(w);
        Box::pin(async move { reply })
    }
}

/// `GET /repos/{owner}/{repo}/actions/runs/{id}`: one run as GitHub shows
/// it (`completed` once finished, whether or not its completion was sent),
/// so the worker can confirm a run whose id it never recorded and the
/// reconciler can follow the runs of the grants it reads. It fails like the
/// rest of GitHub: a seeded share of lookups, and all during an outage.
fn run_handler(
    world: Shared,
    schedule: Arc<Schedule>,
) -> impl Fn(RecordedRequest) -> baton_testkit::ReplyFuture {
    move |request| {
        let mut w = world.lock().unwrap();
        let id: Option<u64> = request.path.rsplit('/').next().and_then(|i| i.parse().ok());
        let mut rng = schedule.rng_for(&format!("github run {id:?}"));
        let reply = if rng.f64() < GITHUB_FAULT_RATE || w.github_outage {
            w.stats.github_failures += 1;
            match rng.u8(0..3) {
                0 => Reply::new(502, "bad gateway"),
                1 => Reply::new(429, "slow down").header("retry-after", "0"),
                _ => Reply::new(504, "gateway timeout")
                    .delayed(HTTP_TIMEOUT + Duration::from_millis(150)),
            }
        } else {
            match w.runs.iter().find(|r| Some(r.id) == id) {
                Some(r) => Reply::json(
                    200,
                    json!({
                        "id": r.id,
                        "status": if r.finished { "completed" } else { "in_progress" },
                        "conclusion": r.conclusion.map(Conclusion::as_str),
                        "event": "workflow_dispatch",
                        "path": ".github/workflows/build.yml",
                        "display_title": run_title(r),
                        "html_url": run_url(r.id),
                    }),
                ),
                None => Reply::json(404, json!({"message": "Not Found"})),
            }
        };
        drop(w);
        Box::pin(async move { reply })
    }
}

/// The run's name, as the example workflow sets it from baton's inputs.
fn run_title(r: &StartedRun) -> String {
    format!(
        "baton lock_key={} lock_id={} fence={}",
        r.lock_key, r.lock_id, r.fence
    )
}

fn runs_handler(
    world: Shared,
    schedule: Arc<Schedule>,
) -> impl Fn(RecordedRequest) -> baton_testkit::ReplyFuture {
    move |_request| {
        let mut w = world.lock().unwrap();
        // Which lock a lookup is for is not in the request; keying the
        // schedule by round keeps one round's lookups from shifting the next's.
        let mut rng = schedule.rng_for(&format!("github runs, round {}", w.stats.rounds));
        let reply = if rng.f64() < GITHUB_FAULT_RATE || w.github_outage {
            w.stats.github_failures += 1;
            match rng.u8(0..3) {
                0 => Reply::new(500, "oops"),
                1 => Reply::new(429, "slow down").header("retry-after", "0"),
                _ => Reply::json(200, json!({"workflow_runs": []}))
                    .delayed(HTTP_TIMEOUT + Duration::from_millis(150)),
            }
        } else {
            // Newest first, one page of 50, as GitHub lists them.
            let runs: Vec<Value> = w
                .runs
                .iter()
                .rev()
                .take(50)
                .map(|r| {
                    json!({
                        "id": r.id,
                        "display_title": run_title(r),
                        "html_url": run_url(r.id),
                        "event": "workflow_dispatch",
                    })
                })
                .collect();
            Reply::json(
                200,
                json!({"total_count": w.runs.len(), "workflow_runs": runs}),
            )
        };
        drop(w);
        Box::pin(async move { reply })
    }
}

fn run_url(id: u64) -> String {
    format!("https://github.example/acme/platform/actions/runs/{id}")
}

/// What GitHub does with one dispatch.
enum DispatchFate {
    Start,
    /// 5xx or 429: nothing started.
    Refuse(Reply),
    /// The run starts, then the answer is a 502.
    StartThenFail,
    /// The run starts; the answer comes after the worker's timeout.
    StartSlowly,
}

fn dispatch_handler(
    world: Shared,
    schedule: Arc<Schedule>,
    direct: LockClient,
) -> impl Fn(RecordedRequest) -> baton_testkit::ReplyFuture {
    move |request| {
        let (world, direct) = (Arc::clone(&world), direct.clone());
        let identity = format!(
            "dispatch {}",
            mask_volatile(&String::from_utf8_lossy(&request.body))
        );
        let mut rng = schedule.rng_for(&identity);
        let outage = world.lock().unwrap().github_outage;
        // Two faults in three start the run and lose the answer, the case
        // every later delivery has to get right.
        let fate = if rng.f64() < GITHUB_FAULT_RATE || outage {
            match rng.u8(0..6) {
                0 => DispatchFate::Refuse(Reply::new(
                    if rng.bool() { 500 } else { 503 },
                    "GitHub is down",
                )),
                1 => DispatchFate::Refuse(
                    Reply::new(429, "secondary rate limit").header("retry-after", "1"),
                ),
                2 | 3 => DispatchFate::StartThenFail,
                _ => DispatchFate::StartSlowly,
            }
        } else {
            DispatchFate::Start
        };
        Box::pin(async move {
            let body = request.json();
            let input = |name: &str| body["inputs"][name].as_str().unwrap_or_default().to_owned();
            let (lock_key, lock_id) = (input("lock_key"), input("lock_id"));
            let fence: u64 = input("fence").parse().unwrap_or(0);
            // The truth at the moment the dispatch arrives, read past the proxy.
            let store = direct.status(&lock_key).await;
            let started = {
                let mut w = world.lock().unwrap();
                let store = store.unwrap_or_else(|e| {
                    w.violation(format!(
                        "could not read {lock_key} straight from DynamoDB Local: {e}"
                    ));
                    None
                });
                let now = now_epoch_secs();
                w.stats.dispatches += 1;
                match &store {
                    Some(r)
                        if r.lock_id == lock_id
                            && r.fence == fence
                            && r.status == LockStatus::InProgress
                            && now < r.expires_at => {}
                    other => {
                        let message = format!(
                            "dispatch on {lock_key} with lock_id {lock_id} fence {fence} while the store held {:?}",
                            other
                                .as_ref()
                                .map(|r| (&r.lock_id, r.fence, r.status, r.expires_at))
                        );
                        w.violation(message);
                    }
                }
                if let Some(prev) = w.dispatches.iter().rev().find(|d| d.lock_key == lock_key)
                    && (fence < prev.fence || (fence == prev.fence && lock_id != prev.lock_id))
                {
                    let message = format!(
                        "fence went back on {lock_key}: dispatch with {fence} after {}",
                        prev.fence
                    );
                    w.violation(message);
                }
                w.dispatches.push(DispatchSeen {
                    lock_key: lock_key.clone(),
                    lock_id: lock_id.clone(),
                    fence,
                    started: !matches!(fate, DispatchFate::Refuse(_)),
                    request_id: store
                        .as_ref()
                        .and_then(|r| r.request_id.as_deref().map(message_of)),
                });
                match fate {
                    DispatchFate::Refuse(reply) => {
                        w.stats.github_failures += 1;
                        Err(reply)
                    }
                    fate => {
                        let id = 1000 + w.runs.len() as u64;
                        if let Some(live) = w
                            .runs
                            .iter()
                            .find(|r| r.lock_key == lock_key && !r.finished)
                        {
                            let live = live.id;
                            let replaced = store.as_ref().and_then(|r| r.previous.clone());
                            w.overlaps.push((id, live, replaced));
                        }
                        if std::env::var_os("BATON_FAULT_TRACE").is_some() {
                            let request = store.as_ref().and_then(|r| r.request_id.clone());
                            eprintln!(
                                "[seed {}] run {id} starts on {lock_key} fence {fence} for request {request:?}",
                                w.seed
                            );
                        }
                        let request_id =
                            store.and_then(|r| r.request_id.as_deref().map(message_of));
                        w.runs.push(StartedRun {
                            id,
                            lock_key: lock_key.clone(),
                            lock_id: lock_id.clone(),
                            fence,
                            request_id,
                            finished: false,
                            conclusion: None,
                            silent: false,
                            started_at: now,
                            short_lease_until: None,
                            lapse_seen: false,
                            renewed_after_lapse: false,
                            grant_ended: false,
                            grant_lost: false,
                            last_seen: None,
                        });
                        w.stats.runs_started += 1;
                        let details = Reply::json(
                            200,
                            json!({"workflow_run_id": id, "run_url": "x", "html_url": run_url(id)}),
                        );
                        let reply = match fate {
                            DispatchFate::StartThenFail => {
                                w.stats.lost_dispatch_answers += 1;
                                w.stats.github_failures += 1;
                                Reply::new(502, "bad gateway")
                            }
                            DispatchFate::StartSlowly => {
                                w.stats.lost_dispatch_answers += 1;
                                w.stats.github_failures += 1;
                                details.delayed(HTTP_TIMEOUT + Duration::from_millis(150))
                            }
                            _ => details,
                        };
                        Ok((id, reply))
                    }
                }
            };
            let (id, reply) = match started {
                Ok(started) => started,
                Err(refused) => return refused,
            };
            // A run on a short-TTL target outlives its lock's TTL: its
            // grant keeps only a short lease from the moment the run starts,
            // before the worker hears back (an ownership-checked write that
            // changes nothing else on the grant).
            if SHORT_TTL_TARGETS.iter().any(|t| lock_key == lock_key_of(t))
                && let Ok(cut) = direct.renew(&lock_key, &lock_id, SHORT_LEASE).await
            {
                let mut w = world.lock().unwrap();
                w.stats.short_lease_runs += 1;
                if let Some(run) = w.run_mut(id) {
                    run.short_lease_until = Some(cut.expires_at);
                }
            }
            reply
        })
    }
}

// ---------------------------------------------------------------------------
// The queue.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Queued,
    Done,
    DeadLettered,
}

#[derive(Debug, Clone)]
struct Message {
    id: String,
    body: String,
    /// FIFO message group: the lock key, or the command for status and help.
    group: String,
    /// Deliveries so far.
    receives: u32,
    fate: Fate,
    /// For commands: where its replies go (a path on the Slack recorder).
    reply_path: Option<String>,
    kind: Kind,
}

/// What a queued message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Command,
    /// A run's own completion.
    Completion,
    /// A copy of a run's completion sent after its key was granted again.
    Late,
    /// A completion forged in the given way.
    Forged(Forgery),
}

/// How a forged completion differs from a genuine one. All but
/// [`Forgery::Cli`] name a working run's grant (lock key, lock id, fence)
/// and, unless said otherwise, that run's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forgery {
    /// Another run's id (of the same key or another, or one GitHub never ran).
    OtherRun,
    /// Another repository.
    OtherRepository,
    /// Another workflow of the same repository.
    OtherWorkflow,
    /// A random lock id.
    RandomLockId,
    /// The lock id with another fence.
    OtherFence,
    /// No run id at all.
    NoRun,
    /// The CLI grant's lock id and fence, with a run id (a working run's,
    /// or one GitHub never ran).
    Cli,
}

const FORGERIES: [Forgery; 7] = [
    Forgery::Cli,
    Forgery::OtherRun,
    Forgery::RandomLockId,
    Forgery::OtherRepository,
    Forgery::OtherFence,
    Forgery::OtherWorkflow,
    Forgery::NoRun,
];

struct Scenario {
    seed: u64,
    rng: fastrand::Rng,
    _table: TestTable,
    _proxy: FaultProxy,
    chaos: Arc<DynamoChaos>,
    _slack: HttpRecorder,
    _github: HttpRecorder,
    slack_url: String,
    direct: LockClient,
    worker: Worker,
    world: Shared,
    messages: Vec<Message>,
    /// Per group, indexes into `messages` waiting in FIFO order.
    queues: Vec<(String, VecDeque<usize>)>,
    /// The CLI grant on [`CLI_KEY`].
    cli: LockRecord,
    /// Every key's record at the last look straight into the store.
    seen: BTreeMap<String, Option<LockRecord>>,
    forgeries: usize,
}

struct Outcome {
    violations: Vec<String>,
    stats: Stats,
    dynamo_faults: usize,
    dynamo_requests: usize,
}

impl Scenario {
    async fn new(seed: u64) -> Scenario {
        let table = TestTable::create().await;
        let chaos = Arc::new(DynamoChaos::new(
            stable_hash(&[b"dynamodb", &seed.to_le_bytes()]),
            DYNAMO_FAULT_RATE,
            ATTEMPT_TIMEOUT + Duration::from_millis(150),
        ));
        let rule = Arc::clone(&chaos);
        let proxy = FaultProxy::start(&table.endpoint, move |r| rule.action(r))
            .await
            .unwrap();
        let world: Shared = Arc::new(Mutex::new(World {
            seed,
            ..World::default()
        }));
        let direct = table.client(fast_options());
        let slack = HttpRecorder::start().await.unwrap();
        let github = HttpRecorder::start().await.unwrap();
        let schedule = Arc::new(Schedule::new(stable_hash(&[b"http", &seed.to_le_bytes()])));
        slack.handler(
            "/",
            slack_handler(Arc::clone(&world), Arc::clone(&schedule)),
        );
        github.handler(
            DISPATCH,
            dispatch_handler(Arc::clone(&world), Arc::clone(&schedule), direct.clone()),
        );
        github.handler(
            RUNS,
            runs_handler(Arc::clone(&world), Arc::clone(&schedule)),
        );
        github.handler(
            "/repos/acme/platform/actions/runs/",
            run_handler(Arc::clone(&world), Arc::clone(&schedule)),
        );
        let settings = WorkerSettings {
            config: Config::from_toml_str(CONFIG).unwrap(),
            locking_enabled: true,
            slack_api_url: format!("{}/api", slack.url()),
            slack_response_url_prefix: format!("{}/response/", slack.url()),
            slack_bot_token: "xoxb-test".into(),
            github_api_url: github.url(),
            github_web_url: "https://github.example".into(),
            github_token: "ghp-test".into(),
            max_receives: MAX_RECEIVES,
            default_budget: BUDGET,
            http_timeout: HTTP_TIMEOUT,
            reconcile_lease: RECONCILE_LEASE,
            ..WorkerSettings::local(
                Config::builtin(),
                "http://127.0.0.1:9",
                "http://127.0.0.1:9",
            )
        };
        // The production retry set-up (the SDK's shared retry quota), with a
        // short attempt timeout so delayed requests cost little time.
        let locks = table.client_via_tuned(&proxy.url(), 3, ATTEMPT_TIMEOUT, false, fast_options());
        let worker = Worker::new(locks, settings).unwrap();
        // A CI job holds one key through the CLI for the whole scenario: a
        // grant without a pipeline, which no completion may end.
        let mut cli = AcquireRequest::new(CLI_KEY, CLI_OWNER, Duration::from_secs(LOCK_TTL_SECS));
        cli.request_id = Some("ci-job-1".into());
        cli.purpose = Some("integration tests".into());
        let cli = direct
            .acquire(&cli)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: the CLI grant on {CLI_KEY}: {e}"))
            .record;
        Scenario {
            seed,
            rng: fastrand::Rng::with_seed(stable_hash(&[b"queue", &seed.to_le_bytes()])),
            slack_url: slack.url(),
            _table: table,
            _proxy: proxy,
            chaos,
            _slack: slack,
            _github: github,
            direct,
            worker,
            world,
            messages: Vec::new(),
            queues: Vec::new(),
            cli,
            seen: BTreeMap::new(),
            forgeries: 0,
        }
    }

    fn enqueue(
        &mut self,
        id: String,
        body: String,
        group: String,
        reply_path: Option<String>,
        kind: Kind,
    ) {
        let index = self.messages.len();
        self.messages.push(Message {
            id,
            body,
            group: group.clone(),
            receives: 0,
            fate: Fate::Queued,
            reply_path,
            kind,
        });
        match self.queues.iter_mut().find(|(g, _)| *g == group) {
            Some((_, q)) => q.push_back(index),
            None => self.queues.push((group, VecDeque::from([index]))),
        }
    }

    /// The next slash command of the script: mostly runs on a few keys,
    /// with some status, help, dry runs and typos.
    fn next_command(&mut self, n: usize) {
        let user = USERS[self.rng.usize(..USERS.len())];
        let target = TARGETS[self.rng.usize(..TARGETS.len())];
        let (text, group) = match self.rng.u8(0..10) {
            0 => ("status".to_owned(), "build".to_owned()),
            1 => (format!("{target} --dry-run"), lock_key_of(target)),
            2 if n.is_multiple_of(3) => ("help".to_owned(), "build".to_owned()),
            3 if n.is_multiple_of(4) => ("routr plt".to_owned(), "build".to_owned()),
            _ => (target.to_owned(), lock_key_of(target)),
        };
        let id = format!("m-{n}");
        let path = format!("/response/{user}/{id}");
        let command = CommandMessage {
            command: "/build".into(),
            text,
            user_id: user.into(),
            user_name: Some(user.to_lowercase()),
            channel_id: "C0BUILDS".into(),
            channel_name: None,
            team_id: "T0ACME".into(),
            team_domain: None,
            enterprise_id: None,
            response_url: format!("{}{path}", self.slack_url),
            trigger_id: format!("m-{n}"),
            api_app_id: None,
            received_at: baton_lock::clock::now_epoch_millis(),
        };
        self.enqueue(
            id,
            QueueMessage::Command(command).to_json(),
            group,
            Some(path),
            Kind::Command,
        );
    }

    /// Pipelines that are running finish now and then (a run on a short-TTL
    /// target only once its first lease has ended), and say so, unless their
    /// webhook is lost. `all` finishes every run.
    fn finish_some_runs(&mut self, all: bool) {
        let now = now_epoch_secs();
        let finishing: Vec<StartedRun> = {
            let mut w = self.world.lock().unwrap();
            let mut out = Vec::new();
            for run in w.runs.iter_mut().filter(|r| !r.finished) {
                let draw = self.rng.u8(0..3) == 0;
                // A run with a short lease works past its end; once its
                // lease was seen lapsed, until it was renewed under it (and
                // if no lapse was seen, or its grant was lost, for
                // LONG_RUN_SECS).
                let may_end = run.short_lease_until.is_none_or(|until| {
                    now > until
                        && if run.lapse_seen && !run.grant_lost {
                            run.renewed_after_lapse
                        } else {
                            now > run.started_at + LONG_RUN_SECS
                        }
                });
                if all || (draw && may_end) {
                    run.finished = true;
                    run.conclusion = Some(
                        [
                            Conclusion::Success,
                            Conclusion::Failure,
                            Conclusion::Cancelled,
                        ][self.rng.usize(..3)],
                    );
                    run.silent = self.rng.u8(0..LOST_WEBHOOK_ONE_IN) == 0;
                    out.push(run.clone());
                }
            }
            w.stats.completions += out.iter().filter(|r| !r.silent).count();
            w.stats.lost_webhooks += out.iter().filter(|r| r.silent).count();
            w.stats.outlived_lease += out
                .iter()
                .filter(|r| r.short_lease_until.is_some_and(|until| now > until))
                .count();
            out
        };
        for run in finishing {
            if run.silent {
                if std::env::var_os("BATON_FAULT_TRACE").is_some() {
                    eprintln!(
                        "[seed {}] run {} finished; its webhook is lost",
                        self.seed, run.id
                    );
                }
                continue;
            }
            self.enqueue(
                format!("c-{}", run.id),
                genuine_completion(&run),
                run.lock_key,
                None,
                Kind::Completion,
            );
        }
    }

    /// Now and then, a late copy of a completion whose key has since been
    /// granted again, and a forged completion (each way in turn).
    fn forge_some_completions(&mut self) {
        let late = self.rng.u8(0..3) == 0;
        let forge = self.rng.bool();
        let pick = self.rng.u64(..);
        let (candidates, working): (Vec<StartedRun>, Vec<StartedRun>) = {
            let w = self.world.lock().unwrap();
            let moved_on = |r: &&StartedRun| matches!(self.seen.get(&r.lock_key), Some(Some(now)) if now.lock_id != r.lock_id);
            let sent = |r: &&StartedRun| {
                self.messages
                    .iter()
                    .any(|m| m.id == format!("c-{}", r.id) && m.fate == Fate::Done)
            };
            (
                w.runs
                    .iter()
                    .filter(|r| r.finished && !r.silent)
                    .filter(moved_on)
                    .filter(sent)
                    .cloned()
                    .collect(),
                w.runs
                    .iter()
                    .filter(|r| !r.finished && !r.grant_lost)
                    .cloned()
                    .collect(),
            )
        };
        if late && !candidates.is_empty() {
            let run = &candidates[(pick % candidates.len() as u64) as usize];
            let n = self.messages.len();
            self.world.lock().unwrap().stats.late_sent += 1;
            self.trace_forgery(&format!("late-{n}: the completion of run {}", run.id));
            self.enqueue(
                format!("late-{n}"),
                genuine_completion(run),
                run.lock_key.clone(),
                None,
                Kind::Late,
            );
        }
        if !forge {
            return;
        }
        let mut kind = FORGERIES[self.forgeries % FORGERIES.len()];
        self.forgeries += 1;
        let target = if working.is_empty() {
            kind = Forgery::Cli;
            None
        } else {
            Some(&working[(pick % working.len() as u64) as usize])
        };
        let never_ran = 900_000 + self.rng.u64(..1000);
        let other_run = {
            let w = self.world.lock().unwrap();
            let others: Vec<u64> = w
                .runs
                .iter()
                .map(|r| r.id)
                .filter(|id| target.is_none_or(|t| t.id != *id))
                .collect();
            if others.is_empty() || self.rng.u8(0..4) == 0 {
                never_ran
            } else {
                others[self.rng.usize(..others.len())]
            }
        };
        let mut c = match (kind, target) {
            (Forgery::Cli, _) | (_, None) => CompletionMessage {
                lock_key: CLI_KEY.into(),
                lock_id: self.cli.lock_id.clone(),
                fence: self.cli.fence,
                conclusion: Conclusion::Success,
                run_url: None,
                run_id: Some(target.map_or(never_ran, |t| t.id)),
                repository: Some("acme/platform".into()),
                workflow: Some("build.yml".into()),
                channel_id: None,
                reported_by: None,
                reason: None,
            },
            (_, Some(t)) => completion_of(t),
        };
        c.conclusion = Conclusion::Success;
        c.reported_by = Some(format!("{FORGER_PREFIX}{kind:?}"));
        match kind {
            Forgery::OtherRun => c.run_id = Some(other_run),
            Forgery::OtherRepository => c.repository = Some("acme-fork/platform".into()),
            Forgery::OtherWorkflow => c.workflow = Some("release.yml".into()),
            Forgery::RandomLockId => c.lock_id = random_lock_id(&mut self.rng),
            Forgery::OtherFence if self.rng.bool() => c.fence += 1,
            Forgery::OtherFence => c.fence -= 1,
            Forgery::NoRun => c.run_id = None,
            Forgery::Cli => {}
        }
        let n = self.messages.len();
        let id = format!("forged-{n}");
        self.world.lock().unwrap().stats.forged_sent += 1;
        self.trace_forgery(&format!(
            "{id}: {kind:?} on {} lock {} fence {} run {:?} {:?}/{:?}",
            c.lock_key, c.lock_id, c.fence, c.run_id, c.repository, c.workflow
        ));
        let group = c.lock_key.clone();
        self.enqueue(
            id,
            QueueMessage::Completion(c).to_json(),
            group,
            None,
            Kind::Forged(kind),
        );
    }

    fn trace_forgery(&self, what: &str) {
        if std::env::var_os("BATON_FAULT_TRACE").is_some() {
            eprintln!("[seed {}] forged or late completion {what}", self.seed);
        }
    }

    fn record(&self, index: usize, receives: u32) -> SqsMessage {
        let m = &self.messages[index];
        let mut record = SqsMessage::default();
        record.message_id = Some(m.id.clone());
        record.body = Some(m.body.clone());
        record
            .attributes
            .insert("ApproximateReceiveCount".into(), receives.to_string());
        record
    }

    async fn round(&mut self) {
        // A batch: the first few messages of each group, in order, at most 10.
        let mut batch: Vec<usize> = Vec::new();
        let mut order: Vec<usize> = (0..self.queues.len()).collect();
        self.rng.shuffle(&mut order);
        for g in order {
            let take = self.rng.usize(1..=3);
            let queue = &mut self.queues[g].1;
            for _ in 0..take {
                if batch.len() >= 10 {
                    break;
                }
                match queue.pop_front() {
                    Some(i) => batch.push(i),
                    None => break,
                }
            }
        }
        // Now and then, an already-processed message arrives again.
        let mut duplicates = Vec::new();
        if batch.len() < 10 && self.rng.u8(0..3) == 0 {
            let done: Vec<usize> = (0..self.messages.len())
                .filter(|&i| self.messages[i].fate == Fate::Done && !batch.contains(&i))
                .collect();
            if !done.is_empty() {
                duplicates.push(done[self.rng.usize(..done.len())]);
            }
        }
        // The reconciler's schedule: in some rounds a pass runs alongside
        // the batch, seldom enough that a short lease often lapses first.
        let reconcile = self.rng.u8(0..RECONCILE_ONE_IN) == 0;
        let outage = self.world.lock().unwrap().github_outage;
        let budget = if outage { OUTAGE_BUDGET } else { BUDGET };
        if batch.is_empty() && duplicates.is_empty() {
            if reconcile {
                let report = self
                    .worker
                    .reconcile(tokio::time::Instant::now() + budget)
                    .await;
                self.count_pass(&report, false);
            }
            return;
        }
        let mut event = SqsEvent::default();
        for &i in batch.iter().chain(&duplicates) {
            self.messages[i].receives += 1;
            event
                .records
                .push(self.record(i, self.messages[i].receives));
        }
        // The time the invocation has left: generous, so that retries inside
        // the worker end by success or by fault rather than by a race with
        // the clock (which would make the run depend on timing), except during
        // a GitHub outage, where waiting longer would change nothing.
        let deadline = tokio::time::Instant::now() + budget;
        let response = if reconcile {
            let (response, report) = tokio::join!(
                self.worker.handle_until(event, deadline),
                self.worker.reconcile(deadline)
            );
            self.count_pass(&report, true);
            response
        } else {
            self.worker.handle_until(event, deadline).await
        };
        let failed: BTreeSet<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        if std::env::var_os("BATON_FAULT_TRACE").is_some() {
            let show = |i: &usize| {
                let m = &self.messages[*i];
                let mark = if failed.contains(&m.id) { "✗" } else { "✓" };
                format!("{}#{}{mark}", m.id, m.receives)
            };
            eprintln!(
                "[seed {}] batch {:?} duplicates {:?}{}",
                self.seed,
                batch.iter().map(show).collect::<Vec<_>>(),
                duplicates.iter().map(show).collect::<Vec<_>>(),
                if outage { " (GitHub outage)" } else { "" }
            );
        }
        {
            let mut w = self.world.lock().unwrap();
            w.stats.deliveries += batch.len() + duplicates.len();
            w.stats.duplicates += duplicates.len();
            w.stats.redeliveries += batch
                .iter()
                .filter(|&&i| self.messages[i].receives > 1)
                .count();
            w.stats.last_tries += batch
                .iter()
                .filter(|&&i| self.messages[i].receives >= MAX_RECEIVES)
                .count();
            w.stats.rounds += 1;
        }
        let known: BTreeSet<&str> = batch
            .iter()
            .chain(&duplicates)
            .map(|&i| self.messages[i].id.as_str())
            .collect();
        for id in &failed {
            if !known.contains(id.as_str()) {
                let seed = self.seed;
                self.world.lock().unwrap().violation(format!(
                    "batchItemFailures names {id}, which was not in the batch (seed {seed})"
                ));
            }
        }
        // Failed records go back to the front of their group, in order; the
        // fifth failed delivery goes to the dead-letter queue.
        for &i in batch.iter().rev() {
            let m = &mut self.messages[i];
            if !failed.contains(&m.id) {
                m.fate = Fate::Done;
            } else if m.receives >= MAX_RECEIVES {
                m.fate = Fate::DeadLettered;
            } else {
                let group = m.group.clone();
                let queue = &mut self.queues.iter_mut().find(|(g, _)| *g == group).unwrap().1;
                queue.push_front(i);
            }
        }
        // A failed duplicate is the same message again: back on the queue.
        for &i in &duplicates {
            if failed.contains(&self.messages[i].id) {
                let m = &mut self.messages[i];
                if m.receives >= MAX_RECEIVES {
                    m.fate = Fate::DeadLettered;
                } else {
                    m.fate = Fate::Queued;
                    let group = m.group.clone();
                    let queue = &mut self.queues.iter_mut().find(|(g, _)| *g == group).unwrap().1;
                    queue.push_back(i);
                }
            }
        }
    }

    fn count_pass(&self, report: &ReconcileReport, concurrent: bool) {
        if std::env::var_os("BATON_FAULT_TRACE").is_some() {
            eprintln!(
                "[seed {}] reconciler pass{}: {report:?}",
                self.seed,
                if concurrent { " beside the batch" } else { "" }
            );
        }
        let mut w = self.world.lock().unwrap();
        w.stats.passes += 1;
        w.stats.concurrent_passes += usize::from(concurrent);
        w.stats.renewed += report.renewed;
        w.stats.reconciler_ended += report.ended;
        w.stats.reconciler_unknown += report.unknown;
    }

    fn idle(&self) -> bool {
        self.queues.iter().all(|(_, q)| q.is_empty())
    }

    async fn run(mut self) -> Outcome {
        let mut sent = 0;
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(
                rounds <= MAX_ROUNDS,
                "seed {}: the queue did not drain in {MAX_ROUNDS} rounds",
                self.seed
            );
            for _ in 0..self.rng.usize(0..=3) {
                if sent < RUN_COMMANDS {
                    self.next_command(sent);
                    sent += 1;
                }
            }
            let all_sent = sent >= RUN_COMMANDS;
            self.finish_some_runs(all_sent && self.idle());
            if !all_sent {
                self.forge_some_completions();
            }
            if all_sent && self.idle() {
                let running = self.world.lock().unwrap().runs.iter().any(|r| !r.finished);
                if !running {
                    break;
                }
                continue;
            }
            self.world.lock().unwrap().github_outage =
                GITHUB_OUTAGES.iter().any(|o| o.contains(&rounds));
            self.round().await;
            self.observe().await;
        }
        self.world.lock().unwrap().stats.commands = sent;
        self.final_passes().await;
        self.check_end();
        let dynamo_faults = self.chaos.tally().values().sum();
        let dynamo_requests = self.chaos.requests();
        let mut w = self.world.lock().unwrap();
        w.stats.dead_lettered = self
            .messages
            .iter()
            .filter(|m| m.fate == Fate::DeadLettered)
            .count();
        let refused = |kind: fn(&Kind) -> bool| {
            self.messages
                .iter()
                .filter(|m| kind(&m.kind) && m.fate == Fate::Done)
                .count()
        };
        w.stats.late_refused = refused(|k| *k == Kind::Late);
        w.stats.forged_refused = refused(|k| matches!(k, Kind::Forged(_)));
        w.stats.cli_forgeries_refused = refused(|k| *k == Kind::Forged(Forgery::Cli));
        Outcome {
            violations: std::mem::take(&mut w.violations),
            stats: w.stats.clone(),
            dynamo_faults,
            dynamo_requests,
        }
    }

    /// Once every run has finished and the queue is drained, the scheduled
    /// reconciler keeps passing until no grant of a finished run is left
    /// IN_PROGRESS (the locks of runs whose completion was lost), or gives up
    /// after [`FINAL_PASSES`] and leaves the rest to `check_end`.
    async fn final_passes(&mut self) {
        self.world.lock().unwrap().github_outage = false;
        for _ in 0..FINAL_PASSES {
            let held_by_finished_run = {
                let w = self.world.lock().unwrap();
                self.seen.values().flatten().any(|r| {
                    r.status == LockStatus::InProgress
                        && w.runs.iter().any(|run| run.lock_id == r.lock_id)
                })
            };
            if !held_by_finished_run {
                break;
            }
            let report = self
                .worker
                .reconcile(tokio::time::Instant::now() + BUDGET)
                .await;
            self.count_pass(&report, false);
            self.observe().await;
        }
    }

    /// Looks straight into the store (past the proxy) after a round, and
    /// judges what happened to the grants of runs since the last look:
    /// - a working run's grant is still its key's IN_PROGRESS grant (its
    ///   lease may have lapsed; nobody took it over or ended it), and a
    ///   grant that was taken over had lapsed;
    /// - a grant ended by a completion or by the reconciler has a finished
    ///   run of its own and carries that run's outcome; no forged
    ///   completion ended a grant;
    /// - the CLI grant is held by its owner.
    ///
    /// It also counts lapsed and renewed leases of working runs, and the
    /// grants of runs whose completion was lost that were ended all the same.
    async fn observe(&mut self) {
        let mut keys: Vec<String> = TARGETS.iter().map(|t| lock_key_of(t)).collect();
        keys.push(CLI_KEY.to_owned());
        let mut problems = Vec::new();
        for key in keys {
            match self.direct.status(&key).await {
                Ok(record) => {
                    self.seen.insert(key, record);
                }
                Err(e) => problems.push(format!(
                    "could not read {key} straight from DynamoDB Local: {e}"
                )),
            }
        }
        let now = now_epoch_secs();
        let mut w = self.world.lock().unwrap();
        let mut stats = w.stats.clone();
        let mut trace = Vec::new();
        for run in &mut w.runs {
            let current = self.seen.get(&run.lock_key).and_then(Option::as_ref);
            let ours = current.filter(|r| r.lock_id == run.lock_id);
            if !run.finished {
                match ours {
                    _ if run.grant_lost => {}
                    Some(r) if r.status == LockStatus::InProgress => {
                        run.last_seen = Some(r.clone());
                        if r.expires_at <= now && !run.lapse_seen {
                            run.lapse_seen = true;
                            stats.lapses_seen += 1;
                            trace.push(format!(
                                "the lease of run {} lapsed: {}",
                                run.id,
                                describe(Some(r))
                            ));
                        } else if r.expires_at > now && run.lapse_seen && !run.renewed_after_lapse {
                            run.renewed_after_lapse = true;
                            stats.renewed_after_lapse += 1;
                            trace.push(format!(
                                "the lapsed lease of run {} was renewed: {}",
                                run.id,
                                describe(Some(r))
                            ));
                        }
                    }
                    _ => {
                        run.grant_lost = true;
                        problems.push(format!(
                            "run {} on {} (lock {} fence {}, request {:?}) is still working, but its grant is no longer held: the key shows {}; the grant was last seen as {}",
                            run.id,
                            run.lock_key,
                            run.lock_id,
                            run.fence,
                            run.request_id,
                            describe(current),
                            describe(run.last_seen.as_ref())
                        ));
                    }
                }
                continue;
            }
            if run.grant_ended {
                continue;
            }
            // Since it finished, its grant may end (by its completion, or by
            // the reconciler's logic when the completion was lost).
            let ended = match (ours, current) {
                (Some(r), _) => r.status != LockStatus::InProgress,
                (None, Some(r)) => r.previous.as_ref().is_some_and(|p| {
                    p.lock_id == run.lock_id && p.status != LockStatus::InProgress
                }),
                (None, None) => false,
            };
            if ended {
                run.grant_ended = true;
                stats.lost_webhooks_settled += usize::from(run.silent);
            }
        }
        for record in self.seen.values().flatten() {
            // A grant replaced while IN_PROGRESS had lapsed when it was.
            if let Some(p) = &record.previous
                && p.status == LockStatus::InProgress
                && p.expires_at > epoch_of(record)
            {
                problems.push(format!(
                    "{}: grant {} was taken over at {} although its lease ran to {}: {}",
                    record.lock_key,
                    p.lock_id,
                    epoch_of(record),
                    p.expires_at,
                    describe(Some(record))
                ));
            }
            if record.status == LockStatus::InProgress || record.lock_key == CLI_KEY {
                continue;
            }
            let by = record.released_by.as_deref().unwrap_or_default();
            if by.starts_with(FORGER_PREFIX) {
                problems.push(format!(
                    "{}: a forged completion ended grant {}: {}",
                    record.lock_key,
                    record.lock_id,
                    describe(Some(record))
                ));
            }
            if by != GENUINE_REPORTER && by != RECONCILER_ACTOR {
                continue;
            }
            let run = w.runs.iter().find(|r| r.lock_id == record.lock_id);
            let outcome = run.and_then(|r| r.conclusion).map(|c| {
                if c.succeeded() {
                    LockStatus::Completed
                } else {
                    LockStatus::Failed
                }
            });
            if outcome != Some(record.status) {
                problems.push(format!(
                    "{}: grant {} was ended by {by} as {}, but its run is {:?}: {}",
                    record.lock_key,
                    record.lock_id,
                    record.status,
                    run.map(|r| (r.id, r.finished, r.conclusion)),
                    describe(Some(record))
                ));
            }
        }
        let cli = self.seen.get(CLI_KEY).and_then(Option::as_ref);
        if !cli.is_some_and(|r| {
            r.lock_id == self.cli.lock_id
                && r.status == LockStatus::InProgress
                && r.locked_by == CLI_OWNER
                && r.expires_at == self.cli.expires_at
        }) {
            problems.push(format!(
                "{CLI_KEY}: the CLI grant {} is no longer held as it was taken: {}",
                self.cli.lock_id,
                describe(cli)
            ));
        }
        w.stats = stats;
        if std::env::var_os("BATON_FAULT_TRACE").is_some() {
            for t in trace {
                eprintln!("[seed {}] {t}", self.seed);
            }
        }
        for p in problems {
            // One report per problem: an ended grant stays ended until the
            // key is granted again.
            if !w.violations.iter().any(|v| v.ends_with(&p)) {
                w.violation(p);
            }
        }
    }

    /// The invariants that are judged once everything has settled.
    fn check_end(&mut self) {
        let finals = &self.seen;
        let by_id: HashMap<&str, &Message> =
            self.messages.iter().map(|m| (m.id.as_str(), m)).collect();
        let fate_of = |id: &str| by_id.get(id).map(|m| m.fate);
        let mut w = self.world.lock().unwrap();
        let mut problems = Vec::new();
        let told = |w: &World, m: &Message| -> Vec<Value> {
            m.reply_path
                .as_ref()
                .and_then(|p| w.told.get(p))
                .cloned()
                .unwrap_or_default()
        };

        // On its last delivery a dispatch GitHub never confirmed (and whose
        // run the runs list could not show) keeps its lock until the lease
        // ends and tells the user so: an honest answer either way.
        let told_unconfirmed = |w: &World, request: &str| -> bool {
            by_id.get(request).is_some_and(|m| {
                told(w, m).iter().any(|r| {
                    r["text"]
                        .as_str()
                        .is_some_and(|t| t.contains("didn't confirm the pipeline"))
                })
            })
        };

        // Fences only grow: the final record is at or above every dispatched fence.
        for d in &w.dispatches {
            match finals.get(&d.lock_key) {
                Some(Some(r)) if r.fence >= d.fence => {}
                other => problems.push(format!(
                    "{}: dispatched fence {} but the final record is {:?}",
                    d.lock_key,
                    d.fence,
                    other.map(|r| r.as_ref().map(|r| r.fence))
                )),
            }
        }

        // Never two pipelines on one key at once.
        for (new, live, replaced) in &w.overlaps {
            let (new, live) = (*new, *live);
            let (new_run, live_run) = (
                &w.runs[(new - 1000) as usize],
                &w.runs[(live - 1000) as usize],
            );
            problems.push(format!(
                "run {new} started on {} (fence {}, request {:?}) while run {live} (fence {}, request {:?}) was still running; the new grant replaced {:?}",
                new_run.lock_key,
                new_run.fence,
                new_run.request_id,
                live_run.fence,
                live_run.request_id,
                replaced
                    .as_ref()
                    .map(|p| (&p.lock_id, p.status, &p.locked_by))
            ));
        }

        // No second run for one request.
        let mut runs_per_request: BTreeMap<String, Vec<&StartedRun>> = BTreeMap::new();
        for run in &w.runs {
            match &run.request_id {
                Some(id) if by_id.contains_key(id.as_str()) => {
                    runs_per_request.entry(id.clone()).or_default().push(run)
                }
                other => problems.push(format!(
                    "run {} started under a grant with request id {other:?}, not one of ours",
                    run.id
                )),
            }
        }
        for (request, runs) in &runs_per_request {
            for pair in runs.windows(2) {
                let (earlier, later) = (pair[0], pair[1]);
                let attempts: Vec<String> = w
                    .dispatches
                    .iter()
                    .filter(|d| d.request_id.as_deref() == Some(request.as_str()))
                    .map(|d| {
                        format!(
                            "fence {} {}",
                            d.fence,
                            if d.started { "started" } else { "refused" }
                        )
                    })
                    .collect();
                problems.push(format!(
                    "request {request} started run {} (fence {}) and again run {} (fence {}); its dispatches: {attempts:?}",
                    earlier.id, earlier.fence, later.id, later.fence
                ));
            }
        }

        // Every command ends with its user told, or in the dead-letter queue.
        for m in &self.messages {
            if m.reply_path.is_none() {
                continue;
            }
            let told = told(&w, m);
            match m.fate {
                Fate::Queued => problems.push(format!("{} is still queued at the end", m.id)),
                Fate::DeadLettered => {}
                Fate::Done if told.is_empty() => problems.push(format!(
                    "{} was finished (deleted from the queue) but its user was never told",
                    m.id
                )),
                Fate::Done => {}
            }
            // Told it started (in the channel), or, when the start was
            // never announced and the run ended first, that it already ran.
            let told_it_ran = told.iter().any(|r| {
                r["response_type"] == "in_channel"
                    || r["text"]
                        .as_str()
                        .is_some_and(|t| t.contains("already ran"))
            });
            if runs_per_request.contains_key(&m.id)
                && !told.is_empty()
                && !told_it_ran
                && !told_unconfirmed(&w, &m.id)
            {
                let texts: Vec<&str> = told.iter().filter_map(|r| r["text"].as_str()).collect();
                problems.push(format!(
                    "{}: its run started but the user was only told {texts:?}",
                    m.id
                ));
            }
        }

        // No lock outlives its run: every run has finished by now, and the
        // reconciler has passed over the store since.
        for (key, record) in finals {
            let Some(r) = record else { continue };
            if r.status != LockStatus::InProgress || key == CLI_KEY {
                continue;
            }
            let granted = epoch_of(r);
            if r.expires_at > granted + LOCK_TTL_SECS + 1 {
                problems.push(format!("{key}: lease runs to {} although it was granted at {granted} for {LOCK_TTL_SECS} s", r.expires_at));
            }
            let request = message_of(r.request_id.as_deref().unwrap_or_default());
            let request = request.as_str();
            if let Some(run) = w.runs.iter().find(|run| run.lock_id == r.lock_id) {
                problems.push(format!(
                    "{key}: run {} finished ({}), but its lock {} (request {request}, fence {}) is still IN_PROGRESS after {} reconciler passes: {}",
                    run.id,
                    if run.silent { "its completion was lost" } else { "its completion was sent" },
                    r.lock_id,
                    r.fence,
                    w.stats.passes,
                    describe(Some(r))
                ));
                continue;
            }
            // No run: only a request that was given up on, or whose user
            // was told the dispatch is unconfirmed, may leave its lock to expire.
            if fate_of(request) != Some(Fate::DeadLettered) && !told_unconfirmed(&w, request) {
                problems.push(format!(
                    "{key}: lock {} (request {request}, fence {}) is IN_PROGRESS at the end without a run: request {:?}",
                    r.lock_id,
                    r.fence,
                    fate_of(request)
                ));
            }
        }
        for p in problems {
            w.violation(p);
        }
    }
}

/// When a grant was made, in epoch seconds.
fn epoch_of(record: &LockRecord) -> u64 {
    humantime::parse_rfc3339(&record.locked_at)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// A record as a violation shows it.
fn describe(record: Option<&LockRecord>) -> String {
    match record {
        None => "no record".to_owned(),
        Some(r) => format!(
            "lock {} fence {} {} by {} until {} (released by {:?}: {:?}; run {:?}; replaced {:?})",
            r.lock_id,
            r.fence,
            r.status,
            r.locked_by,
            r.expires_at,
            r.released_by,
            r.release_reason,
            r.pipeline.as_ref().and_then(|p| p.run_id),
            r.previous.as_ref().map(|p| (&p.lock_id, p.status))
        ),
    }
}

/// The completion a run's workflow sends when it finishes.
fn completion_of(run: &StartedRun) -> CompletionMessage {
    CompletionMessage {
        lock_key: run.lock_key.clone(),
        lock_id: run.lock_id.clone(),
        fence: run.fence,
        conclusion: run.conclusion.unwrap_or(Conclusion::Success),
        run_url: Some(run_url(run.id)),
        run_id: Some(run.id),
        repository: Some("acme/platform".into()),
        workflow: Some("build.yml".into()),
        channel_id: None,
        reported_by: Some(GENUINE_REPORTER.into()),
        reason: None,
    }
}

fn genuine_completion(run: &StartedRun) -> String {
    QueueMessage::Completion(completion_of(run)).to_json()
}

/// A lock id no grant has: a version-4 UUID from the scenario's generator.
fn random_lock_id(rng: &mut fastrand::Rng) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        rng.u32(..),
        rng.u16(..),
        rng.u16(..0x1000),
        rng.u16(..0x1000),
        rng.u64(..1 << 48)
    )
}

fn lock_key_of(target: &str) -> String {
    format!("build-{}", target.replace(' ', "-"))
}

// ---------------------------------------------------------------------------
// The findings, each reproduced deterministically, without random faults.
// All four are fixed; each test pins its fix. F3 and F4 were also met by the
// seeded scenario, as a working run's grant found ended or taken over, or a
// finished run's lock still held at the end, each without a run id.

/// A worker against fault-free DynamoDB Local and loopback Slack/GitHub,
/// where GitHub starts a run for every dispatch that reaches it and answers
/// with `dispatch_status` (200, or e.g. 502 to lose the answer), lists the
/// runs it started unless `runs_list_down`, and shows each run working until
/// the test finishes it.
struct Quiet {
    _table: TestTable,
    locks: LockClient,
    slack: HttpRecorder,
    _github: HttpRecorder,
    worker: Worker,
    /// (run id, lock id) of every run GitHub started.
    started: Arc<Mutex<Vec<(u64, String)>>>,
    /// Runs that have finished (GitHub shows them `completed`).
    finished: Arc<Mutex<BTreeSet<u64>>>,
    runs_list_down: Arc<AtomicBool>,
}

impl Quiet {
    async fn new(dispatch_status: u16, runs_list_down: bool) -> Quiet {
        let table = TestTable::create().await;
        let slack = HttpRecorder::start().await.unwrap();
        let github = HttpRecorder::start().await.unwrap();
        let started: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
        let runs = Arc::clone(&started);
        github.handler(DISPATCH, move |request| {
            let lock_id = request.json()["inputs"]["lock_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let mut runs = runs.lock().unwrap();
            let id = 1 + runs.len() as u64;
            runs.push((id, lock_id));
            let reply = match dispatch_status {
                200 => Reply::json(200, json!({"workflow_run_id": id, "html_url": run_url(id)})),
                status => Reply::new(status, "the answer was lost"),
            };
            Box::pin(async move { reply })
        });
        let runs = Arc::clone(&started);
        let runs_list_down = Arc::new(AtomicBool::new(runs_list_down));
        let down = Arc::clone(&runs_list_down);
        github.handler(RUNS, move |_| {
            let listed: Vec<Value> = runs
                .lock()
                .unwrap()
                .iter()
                .map(|(id, lock_id)| json!({"id": id, "display_title": format!("baton lock_id={lock_id}"), "html_url": run_url(*id)}))
                .collect();
            let reply = if down.load(Ordering::SeqCst) { Reply::new(503, "unavailable") } else { Reply::json(200, json!({"workflow_runs": listed})) };
            Box::pin(async move { reply })
        });
        let finished: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
        let (runs, ended) = (Arc::clone(&started), Arc::clone(&finished));
        github.handler("/repos/acme/platform/actions/runs/", move |request| {
            let id: Option<u64> = request.path.rsplit('/').next().and_then(|i| i.parse().ok());
            let run = runs
                .lock()
                .unwrap()
                .iter()
                .find(|(r, _)| Some(*r) == id)
                .cloned();
            let reply = match run {
                Some((id, lock_id)) => {
                    let done = ended.lock().unwrap().contains(&id);
                    Reply::json(
                        200,
                        json!({
                            "id": id,
                            "status": if done { "completed" } else { "in_progress" },
                            "conclusion": done.then_some("success"),
                            "event": "workflow_dispatch",
                            "path": ".github/workflows/build.yml",
                            "display_title": format!("baton lock_id={lock_id}"),
                            "html_url": run_url(id),
                        }),
                    )
                }
                None => Reply::json(404, json!({"message": "Not Found"})),
            };
            Box::pin(async move { reply })
        });
        let settings = WorkerSettings {
            config: Config::from_toml_str(CONFIG).unwrap(),
            locking_enabled: true,
            slack_api_url: format!("{}/api", slack.url()),
            slack_response_url_prefix: format!("{}/response/", slack.url()),
            slack_bot_token: "xoxb-test".into(),
            github_api_url: github.url(),
            github_web_url: "https://github.example".into(),
            github_token: "ghp-test".into(),
            max_receives: MAX_RECEIVES,
            default_budget: Duration::from_millis(800),
            http_timeout: HTTP_TIMEOUT,
            reconcile_lease: RECONCILE_LEASE,
            ..WorkerSettings::local(
                Config::builtin(),
                "http://127.0.0.1:9",
                "http://127.0.0.1:9",
            )
        };
        let locks = table.client(fast_options());
        let worker = Worker::new(locks.clone(), settings).unwrap();
        Quiet {
            _table: table,
            locks,
            slack,
            _github: github,
            worker,
            started,
            finished,
            runs_list_down,
        }
    }

    /// GitHub's runs list answers again.
    fn runs_list_back(&self) {
        self.runs_list_down.store(false, Ordering::SeqCst);
    }

    /// Run `id` finishes; its completion never reaches the queue.
    fn finish_silently(&self, id: u64) {
        self.finished.lock().unwrap().insert(id);
    }

    /// The grant on `key` keeps a one-second lease, and this returns once
    /// the clock has passed its end: a run that outlives its lock's TTL.
    async fn lapse(&self, key: &str) {
        let lock = self.locks.status(key).await.unwrap().unwrap();
        let cut = self
            .locks
            .renew(key, &lock.lock_id, Duration::from_secs(1))
            .await
            .unwrap();
        while now_epoch_secs() <= cut.expires_at {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn reconcile(&self) -> ReconcileReport {
        self.worker
            .reconcile(tokio::time::Instant::now() + Duration::from_secs(2))
            .await
    }

    fn command(&self, id: &str, user: &str, text: &str, receive_count: u32) -> SqsMessage {
        let command = CommandMessage {
            command: "/build".into(),
            text: text.into(),
            user_id: user.into(),
            user_name: None,
            channel_id: "C0BUILDS".into(),
            channel_name: None,
            team_id: "T0ACME".into(),
            team_domain: None,
            enterprise_id: None,
            response_url: format!("{}/response/{id}", self.slack.url()),
            trigger_id: id.to_owned(),
            api_app_id: None,
            received_at: baton_lock::clock::now_epoch_millis(),
        };
        sqs_record(id, QueueMessage::Command(command).to_json(), receive_count)
    }

    async fn complete_current(&self, key: &str, id: &str) {
        let lock = self.locks.status(key).await.unwrap().unwrap();
        let completion = CompletionMessage {
            lock_key: key.into(),
            lock_id: lock.lock_id,
            fence: lock.fence,
            conclusion: Conclusion::Success,
            run_url: None,
            run_id: lock.pipeline.as_ref().and_then(|p| p.run_id),
            repository: Some("acme/platform".into()),
            workflow: Some("build.yml".into()),
            channel_id: None,
            reported_by: Some("github".into()),
            reason: None,
        };
        self.deliver(sqs_record(
            id,
            QueueMessage::Completion(completion).to_json(),
            1,
        ))
        .await;
        assert_ne!(
            self.locks.status(key).await.unwrap().unwrap().status,
            LockStatus::InProgress
        );
    }

    async fn deliver(&self, record: SqsMessage) -> Vec<String> {
        let mut event = SqsEvent::default();
        event.records.push(record);
        let response = self.worker.handle(event).await;
        response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect()
    }

    fn runs(&self) -> usize {
        self.started.lock().unwrap().len()
    }

    fn told(&self, id: &str) -> Vec<String> {
        self.slack
            .requests_to(&format!("/response/{id}"))
            .iter()
            .map(|r| r.json()["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn sqs_record(id: &str, body: String, receive_count: u32) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(id.into());
    record.body = Some(body);
    record
        .attributes
        .insert("ApproximateReceiveCount".into(), receive_count.to_string());
    record
}

/// F1. m-1 runs and finishes; m-2 (another user) runs and finishes on the
/// same key; then SQS delivers m-1 once more. The lock's re-entrancy only
/// recognises the key's latest grant (m-2's), so m-1 is granted the key
/// afresh and its pipeline is dispatched a second time.
#[tokio::test]
async fn finding_f1_a_late_duplicate_of_a_finished_command_does_not_run_again() {
    let q = Quiet::new(200, false).await;
    assert!(
        q.deliver(q.command("m-1", "U1ALICE", "router plt", 1))
            .await
            .is_empty()
    );
    q.complete_current("build-router-plt", "c-1").await;
    assert!(
        q.deliver(q.command("m-2", "U2BOB", "router plt", 1))
            .await
            .is_empty()
    );
    q.complete_current("build-router-plt", "c-2").await;
    assert_eq!(q.runs(), 2);

    let duplicate = q
        .deliver(q.command("m-1", "U1ALICE", "router plt", 2))
        .await;

    assert!(duplicate.is_empty());
    assert_eq!(
        q.runs(),
        2,
        "the duplicate of m-1 started its pipeline again; told: {:?}",
        q.told("m-1")
    );
}

/// F2, first form. On its last delivery, m-1's dispatch reaches GitHub, the
/// run starts, and the answer is lost (502). The worker gives up at once:
/// it releases the lock as FAILED and tells the user the pipeline did not
/// start, without asking GitHub (whose runs list shows the run). The key is
/// free while the pipeline runs; the next command starts a second one.
#[tokio::test]
async fn finding_f2_a_lost_dispatch_answer_on_the_last_delivery_keeps_the_lock() {
    let q = Quiet::new(502, false).await;

    let failures = q
        .deliver(q.command("m-1", "U1ALICE", "router plt", MAX_RECEIVES))
        .await;

    assert!(failures.is_empty());
    assert_eq!(q.runs(), 1, "GitHub started the run");
    let lock = q.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(
        lock.status,
        LockStatus::InProgress,
        "the lock of a running pipeline was released ({:?}); the user was told {:?}",
        lock.release_reason,
        q.told("m-1")
    );
    q.deliver(q.command("m-2", "U2BOB", "router plt", 1)).await;
    assert_eq!(
        q.runs(),
        1,
        "a second pipeline started on the key while the first runs"
    );
}

/// F2, second form. m-1's dispatch started the run but lost its answer on an
/// earlier delivery; on the last delivery GitHub's runs list is unavailable,
/// so the worker cannot tell whether the run exists, and releases the lock
/// and tells the user the pipeline did not start.
#[tokio::test]
async fn finding_f2_an_unconfirmable_dispatch_on_the_last_delivery_keeps_the_lock() {
    let q = Quiet::new(502, true).await;
    let first = q
        .deliver(q.command("m-1", "U1ALICE", "router plt", MAX_RECEIVES - 1))
        .await;
    assert_eq!(
        first,
        vec!["m-1".to_owned()],
        "a lost dispatch answer goes back to the queue"
    );
    assert_eq!(q.runs(), 1, "GitHub started the run");

    let last = q
        .deliver(q.command("m-1", "U1ALICE", "router plt", MAX_RECEIVES))
        .await;

    assert!(last.is_empty());
    let lock = q.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(
        lock.status,
        LockStatus::InProgress,
        "the lock of a possibly running pipeline was released ({:?}); the user was told {:?}",
        lock.release_reason,
        q.told("m-1")
    );
}

/// F3. m-1's dispatch starts run 1 and its answer is lost (502), so m-1
/// goes back to the queue. Run 1 outlives its lock's TTL, and SQS delivers
/// m-1 again only after the lease lapsed. The worker used to take the lapsed
/// grant for one whose pipeline never started, end it and tell the user
/// nothing was started, without asking GitHub, whose runs list shows run 1
/// under that lock id; the next command then started a second run. Now it
/// asks, records run 1 and keeps its grant.
#[tokio::test]
async fn finding_f3_a_redelivery_after_the_lease_lapsed_keeps_the_grant_of_a_run_that_started() {
    let q = Quiet::new(502, false).await;
    let first = q
        .deliver(q.command("m-1", "U1ALICE", "router plt", 1))
        .await;
    assert_eq!(
        first,
        vec!["m-1".to_owned()],
        "a lost dispatch answer goes back to the queue"
    );
    assert_eq!(q.runs(), 1, "GitHub started the run");
    q.lapse("build-router-plt").await;

    q.deliver(q.command("m-1", "U1ALICE", "router plt", 2))
        .await;
    let lock = q.locks.status("build-router-plt").await.unwrap().unwrap();
    q.deliver(q.command("m-2", "U2BOB", "router plt", 1)).await;

    assert_eq!(
        q.runs(),
        1,
        "a second pipeline started beside run 1: m-1's redelivery left its grant {} ({:?}) and told the user {:?}",
        lock.status,
        lock.release_reason,
        q.told("m-1")
    );
}

/// F4, first form. m-1's dispatch starts run 1 and loses its answer, and on
/// m-1's last delivery GitHub's runs list is down: the worker keeps the lock
/// without a run id (see F2). Run 1 then finishes and its completion never
/// arrives. The reconciler used to follow only grants whose run id is
/// recorded, so the lock stayed IN_PROGRESS until its TTL, although GitHub's
/// runs list, back up, shows run 1 under that lock id and run 1 as completed.
/// Now it looks the run up by lock id, records it and follows it.
#[tokio::test]
async fn finding_f4_the_reconciler_ends_the_lock_of_a_finished_run_it_never_recorded() {
    let q = Quiet::new(502, true).await;
    q.deliver(q.command("m-1", "U1ALICE", "router plt", MAX_RECEIVES - 1))
        .await;
    q.deliver(q.command("m-1", "U1ALICE", "router plt", MAX_RECEIVES))
        .await;
    let kept = q.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(
        kept.status,
        LockStatus::InProgress,
        "the unconfirmed dispatch keeps its lock"
    );
    assert_eq!(q.runs(), 1, "GitHub started the run");
    q.runs_list_back();
    q.finish_silently(1);

    let pass = q.reconcile().await;

    let lock = q.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_ne!(
        lock.status,
        LockStatus::InProgress,
        "run 1 finished, but its lock is still held after a reconciler pass ({pass:?})"
    );
}

/// F4, second form. As above, but run 1 outlives its lock's TTL and no
/// reconciler pass comes before the next command. A contender used to settle
/// a lapsed grant against its run only when the grant recorded a run id, so
/// m-2 took the key over and started a second run beside run 1. Now every
/// lapsed pipeline grant is spared and settled first. (A grant can also miss its run id when recording it fails
/// after a dispatch that GitHub did answer: that failure is only logged.)
#[tokio::test]
async fn finding_f4_a_lapsed_grant_whose_run_was_never_recorded_is_not_taken_over() {
    let q = Quiet::new(502, true).await;
    q.deliver(q.command("m-1", "U1ALICE", "router plt", MAX_RECEIVES - 1))
        .await;
    q.deliver(q.command("m-1", "U1ALICE", "router plt", MAX_RECEIVES))
        .await;
    assert_eq!(q.runs(), 1, "GitHub started the run");
    q.runs_list_back();
    q.lapse("build-router-plt").await;

    q.deliver(q.command("m-2", "U2BOB", "router plt", 1)).await;

    assert_eq!(
        q.runs(),
        1,
        "a second pipeline started beside run 1; m-2 was told {:?}",
        q.told("m-2")
    );
}

/// The queue message a grant's request id names: the worker keys a
/// command's grant on `slack:<trigger_id>`, and this suite's trigger ids are
/// its message ids.
fn message_of(request_id: &str) -> String {
    request_id
        .strip_prefix("slack:")
        .unwrap_or(request_id)
        .to_owned()
}
