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
//! delivered again as duplicates, and every run GitHub started reports its
//! completion through the queue.
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
//! - no lock outlives its TTL without a live pipeline: a finished run's lock
//!   is released, and whatever is still IN_PROGRESS at the end has a lease
//!   no longer than the command's TTL from its grant, and belongs to a
//!   request that was dead-lettered (or a run whose completion was).
//!
//! Deterministic given a seed, as far as real time allows: every fault is
//! decided by the seed and the request's logical identity (what it asks for,
//! and how many times it was asked before), the queue by a seeded generator,
//! and the invocation deadline is generous except during the outage. What
//! can still differ between two runs of one seed is what races the clock:
//! retries cut short by the outage's deadline, backoff jitter, and which of
//! two concurrent runs-list lookups in one batch meets which fault.
//! `BATON_FAULT_SEED=<n>` runs that seed only; every failure names the seed,
//! and `BATON_FAULT_TRACE=1` prints each batch and each started run.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use baton_chatops::{CommandMessage, CompletionMessage, Conclusion, Config, QueueMessage};
use baton_lock::clock::now_epoch_secs;
use baton_lock::{LockClient, LockRecord, LockStatus};
use baton_testkit::chaos::{Schedule, mask_volatile, seed_from_env, stable_hash};
use baton_testkit::{
    DynamoChaos, FaultProxy, HttpRecorder, RecordedRequest, Reply, TestTable, fast_options,
};
use baton_worker::{Worker, WorkerSettings};
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
const TARGETS: [&str; 3] = ["router plt", "api plt", "web dev"];
const USERS: [&str; 4] = ["U1ALICE", "U2BOB", "U3CAROL", "U4DAVE"];
const RUN_COMMANDS: usize = 60;
const MAX_RECEIVES: u32 = 5;
const HTTP_TIMEOUT: Duration = Duration::from_millis(300);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(400);
/// Rates of injected failures per request, per far side.
const DYNAMO_FAULT_RATE: f64 = 0.25;
const SLACK_FAULT_RATE: f64 = 0.25;
const GITHUB_FAULT_RATE: f64 = 0.3;
const MAX_ROUNDS: usize = 400;
/// Rounds during which GitHub fails every request: long enough for commands
/// to use up their deliveries and meet the worker's last-try path.
const GITHUB_OUTAGE: std::ops::Range<usize> = 8..14;
/// Time left in an invocation (Lambda's deadline), normally and during the outage.
const BUDGET: Duration = Duration::from_secs(6);
const OUTAGE_BUDGET: Duration = Duration::from_millis(1200);

const SEEDS: [u64; 3] = [7, 0x5eed_0b0b, 20_260_601];

/// Two worker bugs this suite found, both fixed and each pinned by a
/// deterministic `finding_*` test below. While they were open this switch
/// let the suite tolerate exactly their signatures; it stays off.
/// - F1: a duplicate delivery of a finished command, after the key was
///   granted to another request, starts the command's pipeline again.
/// - F2: on a record's last delivery, a dispatch the worker cannot confirm
///   (GitHub answered 5xx or timed out, or the runs list was unavailable) is
///   given up: the lock is released and the user told the pipeline did not
///   start (or, when that reply fails too, the record is dead-lettered),
///   although it may have — the next command then runs alongside it.
const TOLERATE_KNOWN_FINDINGS: bool = false;

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
    for k in &outcome.known {
        eprintln!("KNOWN FINDING (tolerated, see the finding_* tests): {k}");
    }
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
    // the GitHub outage; the last-delivery paths have their own
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
}

#[derive(Debug, Clone)]
struct StartedRun {
    id: u64,
    lock_key: String,
    lock_id: String,
    fence: u64,
    /// The request (SQS message id) of the grant it runs under, per the store.
    request_id: Option<String>,
    /// Its completion was sent: the pipeline is no longer running.
    finished: bool,
    /// Its request had already been processed to the end (deleted from the
    /// queue) when this run was dispatched: a duplicate delivery started it.
    request_was_finished: bool,
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
    /// Messages processed to the end at least once.
    finished_requests: BTreeSet<String>,
    /// (new run, run still running on the same key when the new one started).
    overlaps: Vec<(u64, u64, Option<baton_lock::PreviousGrant>)>,
    /// Known findings seen (see `TOLERATE_KNOWN_FINDINGS`).
    known: Vec<String>,
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
/// it, so the worker can confirm a run whose id it never recorded.
fn run_handler(world: Shared) -> impl Fn(RecordedRequest) -> baton_testkit::ReplyFuture {
    move |request| {
        let w = world.lock().unwrap();
        let id: Option<u64> = request.path.rsplit('/').next().and_then(|i| i.parse().ok());
        let reply = match w.runs.iter().find(|r| Some(r.id) == id) {
            Some(r) => Reply::json(
                200,
                json!({
                    "id": r.id,
                    "status": if r.finished { "completed" } else { "in_progress" },
                    "conclusion": if r.finished { Some("success") } else { None },
                    "event": "workflow_dispatch",
                    "path": ".github/workflows/build.yml",
                    "display_title": format!("baton lock_key={} lock_id={} fence={}", r.lock_key, r.lock_id, r.fence),
                    "html_url": run_url(r.id),
                }),
            ),
            None => Reply::json(404, json!({"message": "Not Found"})),
        };
        drop(w);
        Box::pin(async move { reply })
    }
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
                        "display_title": format!("baton lock_key={} lock_id={} fence={}", r.lock_key, r.lock_id, r.fence),
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
        let fate = if rng.f64() < GITHUB_FAULT_RATE || outage {
            match rng.u8(0..4) {
                0 => DispatchFate::Refuse(Reply::new(
                    if rng.bool() { 500 } else { 503 },
                    "GitHub is down",
                )),
                1 => DispatchFate::Refuse(
                    Reply::new(429, "secondary rate limit").header("retry-after", "1"),
                ),
                2 => DispatchFate::StartThenFail,
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
            let mut w = world.lock().unwrap();
            let store = store.unwrap_or_else(|e| {
                w.violation(format!(
                    "could not read {lock_key} straight from DynamoDB Local: {e}"
                ));
                None
            });
            let started = !matches!(fate, DispatchFate::Refuse(_));
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
                started,
                request_id: store
                    .as_ref()
                    .and_then(|r| r.request_id.as_deref().map(message_of)),
            });
            match fate {
                DispatchFate::Refuse(reply) => {
                    w.stats.github_failures += 1;
                    reply
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
                    let request_id = store.and_then(|r| r.request_id.as_deref().map(message_of));
                    let request_was_finished = request_id
                        .as_ref()
                        .is_some_and(|r| w.finished_requests.contains(r));
                    w.runs.push(StartedRun {
                        id,
                        lock_key,
                        lock_id,
                        fence,
                        request_id,
                        finished: false,
                        request_was_finished,
                    });
                    w.stats.runs_started += 1;
                    let details = Reply::json(
                        200,
                        json!({"workflow_run_id": id, "run_url": "x", "html_url": run_url(id)}),
                    );
                    match fate {
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
                    }
                }
            }
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
}

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
    completed_runs: BTreeSet<u64>,
}

struct Outcome {
    violations: Vec<String>,
    known: Vec<String>,
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
            run_handler(Arc::clone(&world)),
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
            completed_runs: BTreeSet::new(),
        }
    }

    fn enqueue(&mut self, id: String, body: String, group: String, reply_path: Option<String>) {
        let index = self.messages.len();
        self.messages.push(Message {
            id,
            body,
            group: group.clone(),
            receives: 0,
            fate: Fate::Queued,
            reply_path,
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
            1 => (format!("{target} --dry-run"), lock_key(target)),
            2 if n.is_multiple_of(3) => ("help".to_owned(), "build".to_owned()),
            3 if n.is_multiple_of(4) => ("routr plt".to_owned(), "build".to_owned()),
            _ => (target.to_owned(), lock_key(target)),
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
        );
    }

    /// Pipelines that are running finish now and then, and say so.
    fn finish_some_runs(&mut self, all: bool) {
        let finishing: Vec<StartedRun> = {
            let mut w = self.world.lock().unwrap();
            let mut out = Vec::new();
            for run in w.runs.iter_mut().filter(|r| !r.finished) {
                if all || self.rng.u8(0..3) == 0 {
                    run.finished = true;
                    out.push(run.clone());
                }
            }
            w.stats.completions += out.len();
            out
        };
        for run in finishing {
            let conclusion = [
                Conclusion::Success,
                Conclusion::Failure,
                Conclusion::Cancelled,
            ][self.rng.usize(..3)];
            let completion = CompletionMessage {
                lock_key: run.lock_key.clone(),
                lock_id: run.lock_id.clone(),
                fence: run.fence,
                conclusion,
                run_url: Some(run_url(run.id)),
                run_id: Some(run.id),
                repository: Some("acme/platform".into()),
                workflow: Some("build.yml".into()),
                channel_id: None,
                reported_by: Some("github".into()),
                reason: None,
            };
            self.completed_runs.insert(run.id);
            self.enqueue(
                format!("c-{}", run.id),
                QueueMessage::Completion(completion).to_json(),
                run.lock_key,
                None,
            );
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
        if batch.is_empty() && duplicates.is_empty() {
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
        // the GitHub outage, where waiting longer would change nothing.
        let outage = self.world.lock().unwrap().github_outage;
        let budget = if outage { OUTAGE_BUDGET } else { BUDGET };
        let response = self
            .worker
            .handle_until(event, tokio::time::Instant::now() + budget)
            .await;
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
                self.world
                    .lock()
                    .unwrap()
                    .finished_requests
                    .insert(m.id.clone());
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
            if all_sent && self.idle() {
                let running = self.world.lock().unwrap().runs.iter().any(|r| !r.finished);
                if !running {
                    break;
                }
                continue;
            }
            self.world.lock().unwrap().github_outage = GITHUB_OUTAGE.contains(&rounds);
            self.round().await;
        }
        self.world.lock().unwrap().stats.commands = sent;
        self.check_end().await;
        let dynamo_faults = self.chaos.tally().values().sum();
        let dynamo_requests = self.chaos.requests();
        let mut w = self.world.lock().unwrap();
        w.stats.dead_lettered = self
            .messages
            .iter()
            .filter(|m| m.fate == Fate::DeadLettered)
            .count();
        Outcome {
            violations: std::mem::take(&mut w.violations),
            known: std::mem::take(&mut w.known),
            stats: w.stats.clone(),
            dynamo_faults,
            dynamo_requests,
        }
    }

    /// The invariants that are judged once everything has settled.
    async fn check_end(&mut self) {
        let mut finals: HashMap<String, Option<LockRecord>> = HashMap::new();
        for target in TARGETS {
            let key = lock_key(target);
            let record = self
                .direct
                .status(&key)
                .await
                .unwrap_or_else(|e| panic!("seed {}: reading {key}: {e}", self.seed));
            finals.insert(key, record);
        }
        let by_id: HashMap<&str, &Message> =
            self.messages.iter().map(|m| (m.id.as_str(), m)).collect();
        let fate_of = |id: &str| by_id.get(id).map(|m| m.fate);
        let mut w = self.world.lock().unwrap();
        let mut problems = Vec::new();
        let mut known = Vec::new();
        let told = |w: &World, m: &Message| -> Vec<Value> {
            m.reply_path
                .as_ref()
                .and_then(|p| w.told.get(p))
                .cloned()
                .unwrap_or_default()
        };
        // Known finding F2: on its last delivery the worker gave up on a
        // dispatch it could not confirm and released the lock (then told the
        // user the pipeline did not start, or failed to tell them and the
        // record went to the dead-letter queue), although GitHub had started
        // the run.
        let gave_up = |w: &World, request: Option<&str>| -> bool {
            request.and_then(|r| by_id.get(r)).is_some_and(|m| {
                let told_failed = told(w, m).iter().any(|r| {
                    r["text"]
                        .as_str()
                        .is_some_and(|t| t.contains("couldn't start the pipeline"))
                });
                m.receives >= MAX_RECEIVES && (told_failed || m.fate == Fate::DeadLettered)
            })
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
            let message = format!(
                "run {new} started on {} (fence {}, request {:?}) while run {live} (fence {}, request {:?}) was still running; the new grant replaced {:?}",
                new_run.lock_key,
                new_run.fence,
                new_run.request_id,
                live_run.fence,
                live_run.request_id,
                replaced
                    .as_ref()
                    .map(|p| (&p.lock_id, p.status, &p.locked_by))
            );
            if gave_up(&w, live_run.request_id.as_deref()) {
                known.push(format!("F2: {message}; the worker had released run {live}'s lock on its request's last delivery"));
            } else {
                problems.push(message);
            }
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
                let message = format!(
                    "request {request} started run {} (fence {}) and again run {} (fence {}); its dispatches: {attempts:?}",
                    earlier.id, earlier.fence, later.id, later.fence
                );
                // Known finding F1: a duplicate delivery of a request that had
                // already finished, after another grant replaced its own, is
                // granted the key afresh (re-entrancy only knows the latest grant).
                if later.request_was_finished && later.fence > earlier.fence + 1 {
                    known.push(format!("F1: {message}, by a duplicate delivery after the key had been granted to another request"));
                } else {
                    problems.push(message);
                }
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
            if runs_per_request.contains_key(&m.id)
                && !told.is_empty()
                && !told.iter().any(|r| r["response_type"] == "in_channel")
                && !told_unconfirmed(&w, &m.id)
            {
                let texts: Vec<&str> = told.iter().filter_map(|r| r["text"].as_str()).collect();
                let message = format!(
                    "{}: its run started but the user was only told {texts:?}",
                    m.id
                );
                if gave_up(&w, Some(&m.id)) {
                    known.push(format!("F2: {message}"));
                } else {
                    problems.push(message);
                }
            }
        }

        // No lock outlives its TTL without a live pipeline.
        for run in &w.runs {
            let finished_ok = fate_of(&format!("c-{}", run.id)) == Some(Fate::Done);
            if let Some(Some(r)) = finals.get(&run.lock_key)
                && finished_ok
                && r.lock_id == run.lock_id
                && r.status == LockStatus::InProgress
            {
                problems.push(format!(
                    "{}: run {} finished and its completion was processed, but its lock {} is still IN_PROGRESS",
                    run.lock_key, run.id, run.lock_id
                ));
            }
        }
        for (key, record) in &finals {
            let Some(r) = record else { continue };
            if r.status != LockStatus::InProgress {
                continue;
            }
            let granted = humantime::parse_rfc3339(&r.locked_at)
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            if r.expires_at > granted + LOCK_TTL_SECS + 1 {
                problems.push(format!("{key}: lease runs to {} although it was granted at {granted} for {LOCK_TTL_SECS} s", r.expires_at));
            }
            let request = message_of(r.request_id.as_deref().unwrap_or_default());
            let request = request.as_str();
            let run = w.runs.iter().find(|run| run.lock_id == r.lock_id);
            let justified = match run {
                // A run whose completion never made it through the queue is,
                // as far as anyone can tell, still running.
                Some(run) => fate_of(&format!("c-{}", run.id)) == Some(Fate::DeadLettered),
                // No run: only a request that was given up on, or whose user
                // was told the dispatch is unconfirmed, may leave its lock to expire.
                None => {
                    fate_of(request) == Some(Fate::DeadLettered) || told_unconfirmed(&w, request)
                }
            };
            if !justified {
                problems.push(format!(
                    "{key}: lock {} (request {request}, fence {}) is IN_PROGRESS at the end without a live pipeline: run {:?}, request {:?}",
                    r.lock_id,
                    r.fence,
                    run.map(|r| r.id),
                    fate_of(request)
                ));
            }
        }
        for p in problems {
            w.violation(p);
        }
        for k in known {
            if TOLERATE_KNOWN_FINDINGS {
                let seed = w.seed;
                w.known.push(format!("[seed {seed}] {k}"));
            } else {
                w.violation(k);
            }
        }
    }
}

fn lock_key(target: &str) -> String {
    format!("build-{}", target.replace(' ', "-"))
}

// ---------------------------------------------------------------------------
// The findings, each reproduced deterministically, without random faults.

/// A worker against fault-free DynamoDB Local and loopback Slack/GitHub,
/// where GitHub starts a run for every dispatch that reaches it and answers
/// with `dispatch_status` (200, or e.g. 502 to lose the answer), and lists
/// the runs it started unless `runs_list_down`.
struct Quiet {
    _table: TestTable,
    locks: LockClient,
    slack: HttpRecorder,
    _github: HttpRecorder,
    worker: Worker,
    /// (run id, lock id) of every run GitHub started.
    started: Arc<Mutex<Vec<(u64, String)>>>,
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
        github.handler(RUNS, move |_| {
            let listed: Vec<Value> = runs
                .lock()
                .unwrap()
                .iter()
                .map(|(id, lock_id)| json!({"id": id, "display_title": format!("baton lock_id={lock_id}"), "html_url": run_url(*id)}))
                .collect();
            let reply = if runs_list_down { Reply::new(503, "unavailable") } else { Reply::json(200, json!({"workflow_runs": listed})) };
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
        }
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

/// The queue message a grant's request id names: the worker keys a
/// command's grant on `slack:<trigger_id>`, and this suite's trigger ids are
/// its message ids.
fn message_of(request_id: &str) -> String {
    request_id
        .strip_prefix("slack:")
        .unwrap_or(request_id)
        .to_owned()
}
