//! The lock's promises under failure. Sixteen contenders fight over three
//! keys, each through its own loopback proxy in front of DynamoDB Local that
//! injects, at a seeded 25% rate, 5xx answers, throttling
//! (`ThrottlingException`, `ProvisionedThroughputExceededException`), delays
//! past the SDK's attempt timeout (the delayed write still lands, late),
//! dropped connections, and writes that land but whose answer is lost
//! (connection dropped, or a 500 instead of the result).
//!
//! An independent ledger records who believed they held which key, with
//! which fence and until when, and every outcome is checked against the
//! store itself (read directly, not through a proxy):
//! - never two valid holders of one key;
//! - fences only grow, per key, in the order holders entered and in every
//!   contender's reads;
//! - a grant reported to a caller is the store's grant (same lock id and
//!   fence, or a later grant that replaced it only after its lease ended);
//! - a holder's lease in the store is never shorter than the holder was told;
//! - failures that survive the SDK's retries are typed `LockError::Dynamo`
//!   (or a conflict naming a live holder), never a wrong success.
//!
//! Seeded: each contender's fault schedule and choices (keys, crashes,
//! renewals, pauses) are fixed by the seed, and faults are decided by each
//! request's logical identity, not by arrival order. How sixteen contenders
//! interleave is up to the scheduler and DynamoDB Local, so a seed replays
//! the same faults and decisions, not the exact same race.
//! `BATON_FAULT_SEED=<n>` runs that seed only; otherwise the test runs three
//! fixed seeds one after the other. Every failure names the seed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_lock::clock::now_epoch_millis;
use baton_lock::{
    AcquireRequest, Grant, GrantKind, HistoryQuery, LockClient, LockError, LockRecord, LockStatus,
    ReleaseRequest,
};
use baton_testkit::chaos::seed_from_env;
use baton_testkit::{DynamoChaos, DynamoFault, FaultProxy, TestTable, fast_options};

const CONTENDERS: usize = 16;
const KEYS: [&str; 3] = ["fi-alpha", "fi-beta", "fi-gamma"];
const RUN_TIME: Duration = Duration::from_secs(5);
/// The longest a seed may run when a loaded machine makes it slow to reach
/// the floors the suite asserts.
const RUN_LIMIT: Duration = Duration::from_secs(30);
const LEASE: Duration = Duration::from_secs(1);
const FAULT_RATE: f64 = 0.25;
/// The suite's SDK attempt timeout (production uses 2 s; shorter keeps the suite fast).
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(250);
/// How long a delayed request is held before it is forwarded anyway.
const DELAY: Duration = Duration::from_millis(400);
const SDK_ATTEMPTS: u32 = 3;

/// The seeds run when `BATON_FAULT_SEED` is not set.
const SEEDS: [u64; 3] = [1, 0x5eed_0002, 0xbad_c0ffee];

/// All seeds in one test, one after the other: three at once would load
/// DynamoDB Local enough to disturb the timing-sensitive tests beside them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_promises_hold_under_injected_faults() {
    match seed_from_env() {
        Some(seed) => run_seed(seed).await,
        None => {
            for seed in SEEDS {
                run_seed(seed).await;
            }
        }
    }
}

async fn run_seed(seed: u64) {
    eprintln!("lock fault suite: seed {seed} (reproduce with BATON_FAULT_SEED={seed})");
    let started = std::time::Instant::now();
    let report = scenario(seed).await;
    eprintln!(
        "seed {seed}: {:.1} s, {} requests, faults {:?}, {:?}",
        started.elapsed().as_secs_f64(),
        report.requests,
        report.faults,
        report.ledger.stats
    );
    let ledger = report.ledger;
    if ledger.stats.landed_releases_reported_not_owner > 0 {
        eprintln!(
            "KNOWN FINDING F3 (tolerated, see finding_f3_*): seed {seed}: {} release(s) landed but were reported as NotOwner",
            ledger.stats.landed_releases_reported_not_owner
        );
    }
    assert!(
        ledger.violations.is_empty(),
        "seed {seed}: {} violation(s) (reproduce with BATON_FAULT_SEED={seed}):\n{}",
        ledger.violations.len(),
        ledger.violations.join("\n")
    );
    // The suite must have exercised what it claims to.
    assert!(
        ledger.stats.grants >= 20,
        "seed {seed}: too few grants to mean anything: {:?}",
        ledger.stats
    );
    assert!(
        ledger.stats.history_entries >= ledger.stats.grants / 2,
        "seed {seed}: too little history to mean anything: {:?}",
        ledger.stats
    );
    assert!(
        ledger.stats.takeovers >= 1,
        "seed {seed}: no expired lease was taken over: {:?}",
        ledger.stats
    );
    assert!(
        ledger.stats.ambiguous_grants >= 1,
        "seed {seed}: no grant survived a lost answer: {:?}",
        ledger.stats
    );
    assert!(
        ledger.stats.held >= 20,
        "seed {seed}: too little contention: {:?}",
        ledger.stats
    );
    for fault in DynamoFault::ALL {
        assert!(
            report.faults.get(&fault).copied().unwrap_or(0) >= 1,
            "seed {seed}: {fault:?} was never injected: {:?}",
            report.faults
        );
    }
}

#[derive(Debug)]
struct Report {
    faults: BTreeMap<DynamoFault, usize>,
    requests: usize,
    ledger: Ledger,
}

#[derive(Debug, Default)]
struct Stats {
    grants: usize,
    /// Entries the history holds at the end, over all keys.
    history_entries: usize,
    takeovers: usize,
    /// Grants whose acquire saw a write land with its answer lost.
    ambiguous_grants: usize,
    reentrant: usize,
    held: usize,
    renewals: usize,
    releases: usize,
    crashes: usize,
    /// Operations that failed after the SDK's retries (typed `Dynamo`).
    surfaced_errors: usize,
    lost_leases: usize,
    /// Releases that landed, lost their answer, and were reported as
    /// `NotOwner` because the key was granted again before the SDK retried.
    landed_releases_reported_not_owner: usize,
}

#[derive(Debug, Clone)]
struct Holding {
    contender: usize,
    lock_id: String,
    fence: u64,
    /// The lease end the holder was told (acquire or last renew).
    expires_at: u64,
}

#[derive(Debug, Default)]
struct KeyLedger {
    holder: Option<Holding>,
    /// Fences in the order their holders entered.
    entered: Vec<u64>,
    /// Every grant reported to a caller: fence -> lock id.
    granted: BTreeMap<u64, String>,
}

/// The suite's own view of who holds what, independent of DynamoDB.
#[derive(Debug, Default)]
struct Ledger {
    keys: HashMap<String, KeyLedger>,
    /// The lease end each grant's holder was last told, by lock id.
    told: HashMap<String, u64>,
    violations: Vec<String>,
    stats: Stats,
}

impl Ledger {
    fn violation(&mut self, message: String) {
        if self.violations.len() < 50 {
            self.violations.push(message);
        }
    }

    /// A contender starts working under `grant`.
    fn enter(&mut self, contender: usize, grant: &Grant) {
        let now = now_epoch_millis();
        let key = grant.record.lock_key.clone();
        let entry = self.keys.entry(key.clone()).or_default();
        let mut problems = Vec::new();
        if let Some(other) = &entry.holder
            && other.lock_id != grant.lock_id()
            && now < other.expires_at
        {
            problems.push(format!(
                "key {key}: contender {contender} entered with fence {} while contender {} still held fence {} until {} (now {now})",
                grant.fence(),
                other.contender,
                other.fence,
                other.expires_at
            ));
        }
        match entry.granted.get(&grant.fence()) {
            Some(id) if id != grant.lock_id() => problems.push(format!(
                "key {key}: fence {} reported for two grants, {id} and {}",
                grant.fence(),
                grant.lock_id()
            )),
            _ => {}
        }
        if let Some(&last) = entry.entered.last()
            && grant.fence() <= last
        {
            problems.push(format!(
                "key {key}: fence {} entered after fence {last}",
                grant.fence()
            ));
        }
        if let GrantKind::TakenOver { from } = &grant.kind {
            // Whoever held `from` may have been told a lease end; the takeover
            // must come after it, whether or not that holder is still working.
            let told = self
                .told
                .get(&from.lock_id)
                .copied()
                .unwrap_or(0)
                .max(from.expires_at.saturating_sub(1) * 1000);
            if now < told {
                problems.push(format!(
                    "key {key}: fence {} took over {} whose lease runs to {told} (now {now})",
                    grant.fence(),
                    from.lock_id
                ));
            }
        }
        self.told
            .insert(grant.lock_id().to_owned(), grant.record.expires_at_ms);
        entry
            .granted
            .insert(grant.fence(), grant.lock_id().to_owned());
        entry.entered.push(grant.fence());
        entry.holder = Some(Holding {
            contender,
            lock_id: grant.lock_id().to_owned(),
            fence: grant.fence(),
            expires_at: grant.record.expires_at_ms,
        });
        for p in problems {
            self.violation(p);
        }
    }

    /// The holder learned a later lease end from a successful renew.
    fn extend(&mut self, key: &str, lock_id: &str, expires_at: u64) {
        let told = self.told.entry(lock_id.to_owned()).or_insert(0);
        *told = (*told).max(expires_at);
        if let Some(h) = self.keys.get_mut(key).and_then(|k| k.holder.as_mut())
            && h.lock_id == lock_id
        {
            h.expires_at = h.expires_at.max(expires_at);
        }
    }

    /// The holder stops working (before it releases, or on losing the lease).
    fn exit(&mut self, key: &str, lock_id: &str) {
        if let Some(k) = self.keys.get_mut(key)
            && k.holder.as_ref().is_some_and(|h| h.lock_id == lock_id)
        {
            k.holder = None;
        }
    }
}

async fn scenario(seed: u64) -> Report {
    let table = TestTable::create().await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let deadline = tokio::time::Instant::now() + RUN_TIME;
    let mut chaos_all = Vec::new();
    let mut proxies = Vec::new();
    let mut tasks = Vec::new();
    for contender in 0..CONTENDERS {
        // One proxy and schedule per contender: each contender's requests
        // meet the same faults in every run with this seed, however the
        // contenders interleave.
        let chaos = Arc::new(DynamoChaos::new(
            baton_testkit::chaos::stable_hash(&[&seed.to_le_bytes(), &contender.to_le_bytes()]),
            FAULT_RATE,
            DELAY,
        ));
        let rule_chaos = Arc::clone(&chaos);
        let proxy = FaultProxy::start(&table.endpoint, move |r| rule_chaos.action(r))
            .await
            .unwrap();
        let contender_state = Contender {
            id: contender,
            seed,
            locks: table.client_via_tuned(
                &proxy.url(),
                SDK_ATTEMPTS,
                ATTEMPT_TIMEOUT,
                true,
                fast_options(),
            ),
            direct: table.client(fast_options()),
            chaos: Arc::clone(&chaos),
            ledger: Arc::clone(&ledger),
            rng: fastrand::Rng::with_seed(baton_testkit::chaos::stable_hash(&[
                b"driver",
                &seed.to_le_bytes(),
                &contender.to_le_bytes(),
            ])),
            last_read: HashMap::new(),
        };
        proxies.push(proxy);
        chaos_all.push(chaos);
        tasks.push(tokio::spawn(contender_state.run(deadline)));
    }
    for task in tasks {
        task.await
            .unwrap_or_else(|e| panic!("seed {seed}: a contender panicked: {e}"));
    }

    // The store's final word: no fence ever reported is above the current one.
    let direct = table.client(fast_options());
    let mut ledger = Arc::into_inner(ledger).unwrap().into_inner().unwrap();
    for key in KEYS {
        let stored = direct
            .status(key)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: reading {key}: {e}"));
        let max_reported = ledger
            .keys
            .get(key)
            .and_then(|k| k.granted.keys().last().copied());
        match (stored, max_reported) {
            (Some(record), Some(max)) if record.fence < max => {
                ledger.violation(format!(
                    "key {key}: the store's fence {} is below reported fence {max}",
                    record.fence
                ));
            }
            (None, Some(max)) => ledger.violation(format!(
                "key {key}: fence {max} was reported but the key has no record"
            )),
            _ => {}
        }
    }
    check_history(&table, &direct, &mut ledger).await;
    let mut faults = BTreeMap::new();
    let mut requests = 0;
    for chaos in &chaos_all {
        requests += chaos.requests();
        for (fault, n) in chaos.tally() {
            *faults.entry(fault).or_insert(0) += n;
        }
    }
    drop(proxies);
    Report {
        faults,
        requests,
        ledger,
    }
}

/// Every grant a contender was told of that has ended is in the history
/// exactly once, under its own lock id, whatever the faults did to the
/// writes; and recording the whole stream again adds nothing.
async fn check_history(table: &TestTable, direct: &LockClient, ledger: &mut Ledger) {
    let history = table.create_history().await;
    table.record_history().await;
    let again = table.record_history().await;
    if again.written != 0 {
        ledger.violation(format!(
            "recording the stream a second time wrote {} entries",
            again.written
        ));
    }
    for key in KEYS {
        let mut entries = Vec::new();
        let mut query = HistoryQuery {
            page_size: Some(200),
            ..HistoryQuery::default()
        };
        loop {
            let page = history
                .for_key(key, &query)
                .await
                .unwrap_or_else(|e| panic!("reading {key}'s history: {e}"));
            entries.extend(page.entries);
            match page.next_page_token {
                Some(token) => query.page_token = Some(token),
                None => break,
            }
        }
        let current = direct.status(key).await.ok().flatten();
        let live = current
            .filter(|r| r.status == LockStatus::InProgress)
            .map(|r| r.fence);
        let recorded: BTreeMap<u64, &str> = entries
            .iter()
            .map(|e| (e.fence, e.lock_id.as_str()))
            .collect();
        if recorded.len() != entries.len() {
            ledger.violation(format!("key {key}: a grant is in the history twice"));
        }
        let granted = ledger
            .keys
            .get(key)
            .map(|k| k.granted.clone())
            .unwrap_or_default();
        for (fence, lock_id) in &granted {
            match recorded.get(fence) {
                _ if Some(*fence) == live => {}
                Some(id) if id == lock_id => {}
                other => ledger.violation(format!(
                    "key {key}: ended grant {fence} ({lock_id}) has history {other:?}"
                )),
            }
        }
        if let Some(fence) = live.filter(|f| recorded.contains_key(f)) {
            ledger.violation(format!(
                "key {key}: the live grant {fence} is in the history"
            ));
        }
        ledger.stats.history_entries += entries.len();
    }
}

struct Contender {
    id: usize,
    seed: u64,
    /// Through the faulty proxy.
    locks: LockClient,
    /// Straight to DynamoDB Local: the suite's window on the truth.
    direct: LockClient,
    chaos: Arc<DynamoChaos>,
    ledger: Arc<Mutex<Ledger>>,
    rng: fastrand::Rng,
    /// The highest fence this contender has read per key.
    last_read: HashMap<String, u64>,
}

/// Whether a write's answer was lost during one call (the write landed, the
/// caller never heard).
fn lost_answers(
    before: &BTreeMap<DynamoFault, usize>,
    after: &BTreeMap<DynamoFault, usize>,
) -> bool {
    [DynamoFault::SuccessThenDrop, DynamoFault::SuccessThen500]
        .iter()
        .any(|f| after.get(f).copied().unwrap_or(0) > before.get(f).copied().unwrap_or(0))
}

impl Contender {
    fn violation(&self, message: String) {
        let seed = self.seed;
        self.ledger
            .lock()
            .unwrap()
            .violation(format!("[seed {seed}, contender {}] {message}", self.id));
    }

    fn stats(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.ledger.lock().unwrap().stats);
    }

    /// Whether the run has exercised what the suite's floors ask for.
    fn floors_met(&self) -> bool {
        self.ledger.lock().is_ok_and(|l| {
            let s = &l.stats;
            s.grants >= 20 && s.takeovers >= 1 && s.ambiguous_grants >= 1 && s.held >= 20
        })
    }

    /// Contends until `deadline`, and past it (up to [`RUN_LIMIT`]) until
    /// the suite has seen what its floors ask for: on a loaded machine the
    /// same faults take longer, and the floors must not depend on speed.
    async fn run(mut self, deadline: tokio::time::Instant) {
        let limit = deadline + RUN_LIMIT.saturating_sub(RUN_TIME);
        while tokio::time::Instant::now() < deadline
            || (tokio::time::Instant::now() < limit && !self.floors_met())
        {
            let key = KEYS[self.rng.usize(..KEYS.len())];
            let request = AcquireRequest::new(key, format!("contender-{}", self.id), LEASE);
            let before = self.chaos.tally();
            let outcome = self.locks.acquire(&request).await;
            let ambiguous = lost_answers(&before, &self.chaos.tally());
            match outcome {
                Ok(grant) => {
                    if grant.kind == GrantKind::Existing {
                        self.violation(format!("key {key}: a fresh request id came back as an existing grant: {grant:?}"));
                        continue;
                    }
                    self.hold(key, grant, ambiguous).await;
                }
                Err(LockError::Held { holder }) => {
                    self.stats(|s| s.held += 1);
                    self.check_held(key, &holder, None);
                    tokio::time::sleep(Duration::from_millis(self.rng.u64(20..80))).await;
                }
                Err(LockError::Dynamo { .. }) => self.stats(|s| s.surfaced_errors += 1),
                Err(other) => self.violation(format!(
                    "key {key}: acquire failed with an unexpected error: {other:?}"
                )),
            }
        }
    }

    /// A `Held` answer must name a live holder other than the asker.
    fn check_held(&self, key: &str, holder: &LockRecord, ours: Option<&str>) {
        if holder.lock_key != key || holder.status != LockStatus::InProgress {
            self.violation(format!(
                "key {key}: `Held` named a holder that does not hold: {holder:?}"
            ));
        }
        if ours.is_some_and(|id| id == holder.lock_id) {
            self.violation(format!(
                "key {key}: `Held` named our own grant {}",
                holder.lock_id
            ));
        }
    }

    /// Reads the key straight from DynamoDB and checks that fences only grow.
    async fn read(&mut self, key: &str) -> Option<LockRecord> {
        let record = match self.direct.status(key).await {
            Ok(r) => r,
            Err(e) => panic!(
                "seed {}: direct read of {key} failed (no faults on this path): {e}",
                self.seed
            ),
        };
        if let Some(r) = &record {
            let last = self.last_read.get(key).copied().unwrap_or(0);
            if r.fence < last {
                self.violation(format!(
                    "key {key}: fence went back from {last} to {}",
                    r.fence
                ));
            }
            self.last_read.insert(key.to_owned(), r.fence.max(last));
        }
        record
    }

    /// Checks a grant we were told we hold against the store, right away.
    async fn check_granted(&mut self, key: &str, lock_id: &str, fence: u64, told_expires: u64) {
        let Some(stored) = self.read(key).await else {
            self.violation(format!(
                "key {key}: granted fence {fence} but the key has no record"
            ));
            return;
        };
        let now = now_epoch_millis();
        if stored.fence == fence {
            if stored.lock_id != lock_id {
                self.violation(format!("key {key}: told lock id {lock_id} with fence {fence}, the store has {} for that fence", stored.lock_id));
            }
            if stored.status == LockStatus::InProgress && stored.expires_at_ms < told_expires {
                self.violation(format!(
                    "key {key}: lease of {lock_id} is {} in the store, shorter than the {told_expires} its holder was told",
                    stored.expires_at_ms
                ));
            }
        } else if stored.fence < fence {
            self.violation(format!(
                "key {key}: told fence {fence}, the store is still at {}",
                stored.fence
            ));
        } else if now < told_expires {
            self.violation(format!(
                "key {key}: a later grant (fence {}, {}) replaced ours (fence {fence}) before our lease ended at {told_expires} (now {now})",
                stored.fence, stored.lock_id
            ));
        } else if stored.fence == fence + 1
            && stored.previous.as_ref().map(|p| p.lock_id.as_str()) != Some(lock_id)
        {
            self.violation(format!(
                "key {key}: fence {} does not record ours ({lock_id}) as the grant it replaced: {:?}",
                stored.fence, stored.previous
            ));
        }
    }

    async fn hold(&mut self, key: &str, grant: Grant, ambiguous: bool) {
        let lock_id = grant.lock_id().to_owned();
        let fence = grant.fence();
        if grant.record.lock_key != key || grant.record.status != LockStatus::InProgress {
            self.violation(format!(
                "key {key}: the grant is not an IN_PROGRESS lease on this key: {grant:?}"
            ));
        }
        {
            let mut ledger = self.ledger.lock().unwrap();
            ledger.stats.grants += 1;
            if matches!(grant.kind, GrantKind::TakenOver { .. }) {
                ledger.stats.takeovers += 1;
            }
            if ambiguous {
                ledger.stats.ambiguous_grants += 1;
            }
            ledger.enter(self.id, &grant);
        }
        let mut told_expires = grant.record.expires_at_ms;
        self.check_granted(key, &lock_id, fence, told_expires).await;
        tokio::time::sleep(Duration::from_millis(self.rng.u64(0..30))).await;

        // A redelivered request: the same request id must find this grant.
        if self.rng.u8(0..4) == 0 {
            let mut again = AcquireRequest::new(key, format!("contender-{}", self.id), LEASE);
            again.request_id = Some(lock_id.clone());
            match self.locks.acquire(&again).await {
                Ok(g) if g.kind == GrantKind::Existing => {
                    self.stats(|s| s.reentrant += 1);
                    if g.lock_id() != lock_id || g.fence() != fence {
                        self.violation(format!("key {key}: re-entry returned {} / fence {} instead of {lock_id} / {fence}", g.lock_id(), g.fence()));
                    }
                }
                Ok(g) => self.violation(format!(
                    "key {key}: re-entry while holding made a new grant: {g:?}"
                )),
                Err(LockError::RequestLapsed { record }) => {
                    // Only possible once our lease ended.
                    if record.lock_id != lock_id || now_epoch_millis() < told_expires {
                        self.violation(format!("key {key}: re-entry of fence {fence} (lease to {told_expires}) was called lapsed: {record:?}"));
                    }
                    self.lose(key, &lock_id);
                    return;
                }
                Err(LockError::Held { holder }) => {
                    // Only possible when our lease ended and someone took over.
                    self.check_held(key, &holder, Some(&lock_id));
                    if holder.fence <= fence || now_epoch_millis() < told_expires {
                        self.violation(format!("key {key}: re-entry of fence {fence} (lease to {told_expires}) was refused for {holder:?}"));
                    }
                    self.lose(key, &lock_id);
                    return;
                }
                Err(LockError::Dynamo { .. }) => self.stats(|s| s.surfaced_errors += 1),
                Err(other) => self.violation(format!(
                    "key {key}: re-entry failed with an unexpected error: {other:?}"
                )),
            }
        }

        // Renew, sometimes twice in a row.
        for _ in 0..self.rng.u8(0..3) {
            match self.locks.renew(key, &lock_id, LEASE).await {
                Ok(record) => {
                    self.stats(|s| s.renewals += 1);
                    if record.lock_id != lock_id
                        || record.fence != fence
                        || record.status != LockStatus::InProgress
                    {
                        self.violation(format!(
                            "key {key}: renew of {lock_id} returned another grant: {record:?}"
                        ));
                    }
                    told_expires = told_expires.max(record.expires_at_ms);
                    self.ledger
                        .lock()
                        .unwrap()
                        .extend(key, &lock_id, told_expires);
                }
                Err(LockError::NotOwner { current, .. }) => {
                    let now = now_epoch_millis();
                    let justified =
                        current.as_ref().is_some_and(|c| c.fence > fence) && now >= told_expires;
                    if !justified {
                        self.violation(format!("key {key}: renew of fence {fence} (lease to {told_expires}, now {now}) refused for {current:?}"));
                    }
                    self.lose(key, &lock_id);
                    return;
                }
                Err(LockError::Dynamo { .. }) => self.stats(|s| s.surfaced_errors += 1),
                Err(other) => self.violation(format!(
                    "key {key}: renew failed with an unexpected error: {other:?}"
                )),
            }
        }
        self.check_granted(key, &lock_id, fence, told_expires).await;

        if self.rng.u8(0..8) == 0 {
            // Crash: never release. The lease must run out and be taken over;
            // the ledger keeps this holder until then, judged by its lease.
            self.stats(|s| s.crashes += 1);
            return;
        }
        self.ledger.lock().unwrap().exit(key, &lock_id);
        match self
            .locks
            .release(&ReleaseRequest::new(key, &lock_id, LockStatus::Completed))
            .await
        {
            Ok(record) => {
                self.stats(|s| s.releases += 1);
                if record.lock_id != lock_id || record.status != LockStatus::Completed {
                    self.violation(format!(
                        "key {key}: release of {lock_id} returned {record:?}"
                    ));
                }
                // The store must show the release (or a later grant).
                if let Some(stored) = self.read(key).await
                    && stored.fence == fence
                    && stored.status != LockStatus::Completed
                {
                    self.violation(format!(
                        "key {key}: release of fence {fence} reported but the store says {}",
                        stored.status
                    ));
                }
            }
            Err(LockError::NotOwner { current, .. }) => {
                // A later grant replaced ours: either our lease ran out and it
                // was taken over (the ledger checks that takeover's timing), or
                // our release landed, its answer was lost, and the key was
                // granted again before the SDK's retry, which then cannot
                // recognise the release as done.
                let now = now_epoch_millis();
                match current.as_deref() {
                    Some(c) if c.fence > fence && now >= told_expires => {
                        self.stats(|s| s.lost_leases += 1);
                    }
                    // Within our lease only our own release can have freed the
                    // key (a takeover of a valid lease is caught when its
                    // grantee enters the ledger). F3 (pinned by `finding_f3_*`)
                    // is fixed for one grant in between (the new item names
                    // ours as its predecessor). With two or more full grants
                    // between our lost answer and the SDK's retry, nothing on
                    // the item names our grant any more: the release happened
                    // but is reported as NotOwner. A documented limitation,
                    // counted, not a double grant (the ledger checks those).
                    Some(c) if c.fence > fence + 1 => {
                        self.stats(|s| s.landed_releases_reported_not_owner += 1);
                    }
                    _ => self.violation(format!(
                        "key {key}: release of fence {fence} (lease to {told_expires}, now {now}) refused for {current:?}"
                    )),
                }
            }
            Err(LockError::Dynamo { .. }) => self.stats(|s| s.surfaced_errors += 1),
            Err(other) => self.violation(format!(
                "key {key}: release failed with an unexpected error: {other:?}"
            )),
        }
    }

    fn lose(&self, key: &str, lock_id: &str) {
        let mut ledger = self.ledger.lock().unwrap();
        ledger.stats.lost_leases += 1;
        ledger.exit(key, lock_id);
    }
}

/// F3. A release lands but its answer is lost (a 500 after the write); before
/// the SDK's retry arrives, another caller acquires the now free key. The
/// retry fails its condition against the new grant, and the release is
/// reported as `NotOwner` although it happened: the caller (e.g. `baton
/// release`) reports a failure for a lock it did release. The new grant's
/// item even names the released grant as its predecessor, with the outcome.
#[tokio::test]
async fn finding_f3_a_release_that_landed_is_not_reported_as_not_owner() {
    use baton_testkit::FaultAction;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let table = TestTable::create().await;
    let retry_arrived = Arc::new(tokio::sync::Notify::new());
    let releases = Arc::new(AtomicUsize::new(0));
    let (signal, count) = (Arc::clone(&retry_arrived), Arc::clone(&releases));
    let proxy = FaultProxy::start(&table.endpoint, move |r| {
        let release =
            r.operation == "UpdateItem" && String::from_utf8_lossy(&r.body).contains("COMPLETED");
        if !release {
            return FaultAction::Forward;
        }
        match count.fetch_add(1, Ordering::SeqCst) {
            // The release lands; its answer is a 500.
            0 => DynamoFault::SuccessThen500.action(DELAY),
            // The SDK's retry is held (well within its 2 s attempt timeout)
            // while another caller takes the key.
            1 => {
                signal.notify_one();
                FaultAction::Delay(Duration::from_millis(1000))
            }
            _ => FaultAction::Forward,
        }
    })
    .await
    .unwrap();
    let holder = table.client_via(&proxy.url(), 3, fast_options());
    let grant = holder
        .acquire(&AcquireRequest::new("k", "ci-1", Duration::from_secs(60)))
        .await
        .unwrap();
    let lock_id = grant.lock_id().to_owned();
    let release = tokio::spawn({
        let lock_id = lock_id.clone();
        async move {
            holder
                .release(&ReleaseRequest::new("k", lock_id, LockStatus::Completed))
                .await
        }
    });

    retry_arrived.notified().await;
    let next = table
        .client(fast_options())
        .acquire(&AcquireRequest::new("k", "ci-2", Duration::from_secs(60)))
        .await
        .expect("the key is free: the release landed");
    let previous = next.record.previous.clone().unwrap();
    assert_eq!(
        (previous.lock_id.as_str(), previous.status),
        (lock_id.as_str(), LockStatus::Completed)
    );

    let outcome = release.await.unwrap();
    assert!(
        outcome.is_ok(),
        "the release happened, but the caller was told: {outcome:?}"
    );
}
