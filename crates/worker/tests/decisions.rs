//! The worker's decisions on in-memory adapters: the lock store is a
//! `MemoryStore` (held to the DynamoDB adapter's semantics by the lock
//! crate's conformance suite), chat and pipeline are the worker's fakes. No
//! DynamoDB Local and no HTTP: these run in milliseconds, and time is moved
//! on by the store's clock instead of waited for. `worker_flows.rs` proves
//! the same paths over the real wire.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use baton_chatops::{CommandMessage, CompletionMessage, Conclusion, Config, QueueMessage};
use baton_lock::{AcquireRequest, LockRecord, LockStatus, LockStore, MemoryStore};
use baton_worker::fakes::{FakeChat, FakePipeline, Said, run_page};
use baton_worker::{Worker, WorkerSettings};
use tokio::time::Instant;

const CONFIG: &str = r#"
[commands."/build"]
lock_ttl = "10m"
components = ["router", "api", "web"]
environments = ["dev", "plt", "prod"]
unlock_users = ["UADMIN"]
[commands."/build".pipeline]
repo = "acme/platform"
workflow = "build.yml"
ref = "main"
"#;

const KEY: &str = "build-router-plt";

struct Harness {
    store: MemoryStore,
    chat: FakeChat,
    pipeline: FakePipeline,
    worker: Worker<MemoryStore, FakeChat, FakePipeline>,
    next: std::cell::Cell<u32>,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(|_| {})
    }

    fn with(adjust: impl FnOnce(&mut WorkerSettings)) -> Harness {
        let mut settings = WorkerSettings::local(
            Config::from_toml_str(CONFIG).unwrap(),
            "http://127.0.0.1:9",
            "http://127.0.0.1:9",
        );
        settings.default_budget = Duration::from_secs(2);
        adjust(&mut settings);
        let (store, chat, pipeline) = (
            MemoryStore::new(),
            FakeChat::default(),
            FakePipeline::default(),
        );
        let worker = Worker::with_parts(store.clone(), settings, chat.clone(), pipeline.clone());
        Harness {
            store,
            chat,
            pipeline,
            worker,
            next: std::cell::Cell::new(0),
        }
    }

    /// A command typed now by `user`, with a fresh Slack trigger id.
    fn command(&self, user: &str, text: &str) -> CommandMessage {
        let n = self.next.get() + 1;
        self.next.set(n);
        CommandMessage {
            command: "/build".into(),
            text: text.into(),
            user_id: user.into(),
            user_name: None,
            channel_id: "C0BUILDS".into(),
            channel_name: None,
            team_id: "T0ACME".into(),
            team_domain: None,
            enterprise_id: None,
            response_url: format!("https://hooks.slack.com/commands/{user}/{n}"),
            trigger_id: format!("trigger-{n}"),
            api_app_id: None,
            received_at: self.store.now_millis(),
        }
    }

    async fn deliver(&self, id: &str, body: String, receive_count: u32) -> SqsBatchResponse {
        let mut record = SqsMessage::default();
        record.message_id = Some(id.into());
        record.body = Some(body);
        record
            .attributes
            .insert("ApproximateReceiveCount".into(), receive_count.to_string());
        let mut event = SqsEvent::default();
        event.records = vec![record];
        self.worker.handle(event).await
    }

    async fn run(&self, id: &str, message: &CommandMessage, receive_count: u32) -> Vec<String> {
        let body = QueueMessage::Command(message.clone()).to_json();
        failures(self.deliver(id, body, receive_count).await)
    }

    async fn send(&self, id: &str, user: &str, text: &str) -> CommandMessage {
        let message = self.command(user, text);
        assert!(self.run(id, &message, 1).await.is_empty());
        message
    }

    async fn report(&self, id: &str, completion: CompletionMessage) -> Vec<String> {
        let body = QueueMessage::Completion(completion).to_json();
        failures(self.deliver(id, body, 1).await)
    }

    async fn lock(&self) -> LockRecord {
        self.store
            .status(KEY)
            .await
            .unwrap()
            .expect("the lock record")
    }

    /// What `message`'s requester was told through its `response_url`.
    fn told(&self, message: &CommandMessage) -> Vec<String> {
        self.chat
            .said()
            .iter()
            .filter(|s| matches!(s, Said::Reply { response_url, .. } if *response_url == message.response_url))
            .map(|s| s.text().to_owned())
            .collect()
    }

    fn notices(&self) -> Vec<String> {
        self.chat
            .said()
            .iter()
            .filter(|s| matches!(s, Said::Notice { .. }))
            .map(|s| s.text().to_owned())
            .collect()
    }

    async fn reconcile(&self) -> baton_worker::ReconcileReport {
        self.worker
            .reconcile(Instant::now() + Duration::from_secs(2))
            .await
    }
}

fn failures(response: SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

/// The completion GitHub's webhook would bring for `run_id` under `lock`.
fn completion(lock: &LockRecord, run_id: u64, conclusion: Conclusion) -> CompletionMessage {
    CompletionMessage {
        lock_key: lock.lock_key.clone(),
        lock_id: lock.lock_id.clone(),
        fence: lock.fence,
        conclusion,
        run_url: Some(run_page(run_id)),
        run_id: Some(run_id),
        repository: Some("acme/platform".into()),
        workflow: Some("build.yml".into()),
        channel_id: None,
        reported_by: Some("github".into()),
        reason: None,
    }
}

#[tokio::test]
async fn a_free_build_takes_the_lock_dispatches_once_and_records_its_run() {
    let h = Harness::new();
    h.send("m-1", "U1", "router plt").await;

    let runs = h.pipeline.runs();
    assert_eq!(runs.len(), 1);
    let lock = h.lock().await;
    assert_eq!(lock.status, LockStatus::InProgress);
    assert_eq!(runs[0].inputs["lock_id"], lock.lock_id);
    assert_eq!(runs[0].inputs["fence"], lock.fence.to_string());
    let pipeline = lock
        .pipeline
        .expect("a chatops grant is bound to its pipeline");
    assert_eq!(pipeline.run_id, Some(runs[0].id));
    assert_eq!(lock.run_url.as_deref(), Some(run_page(runs[0].id).as_str()));
}

#[tokio::test]
async fn a_held_lock_is_told_to_the_requester_and_nothing_is_dispatched() {
    let h = Harness::new();
    h.send("m-1", "U1", "router plt").await;
    let second = h.send("m-2", "U2", "router plt").await;

    assert_eq!(h.pipeline.runs().len(), 1);
    let told = h.told(&second);
    assert_eq!(told.len(), 1);
    assert!(
        told[0].contains("already running") && told[0].contains("<@U1>"),
        "{told:?}"
    );
}

#[tokio::test]
async fn a_redelivered_command_never_dispatches_twice() {
    let h = Harness::new();
    let first = h.send("m-1", "U1", "router plt").await;
    // The same Slack invocation again, under another SQS message id.
    assert!(h.run("m-9", &first, 2).await.is_empty());
    assert_eq!(h.pipeline.runs().len(), 1);
}

#[tokio::test]
async fn a_lost_dispatch_answer_is_found_on_redelivery_instead_of_repeated() {
    let h = Harness::new();
    h.pipeline.lose_next_answer();
    let cmd = h.command("U1", "router plt");
    assert_eq!(h.run("m-1", &cmd, 1).await, ["m-1"], "back to the queue");
    assert!(h.run("m-1", &cmd, 2).await.is_empty());

    let runs = h.pipeline.runs();
    assert_eq!(
        runs.len(),
        1,
        "the run the lost answer started is found, not repeated"
    );
    assert_eq!(h.lock().await.pipeline.unwrap().run_id, Some(runs[0].id));
}

#[tokio::test]
async fn only_the_recorded_run_ends_the_lock() {
    let h = Harness::new();
    h.send("m-1", "U1", "router plt").await;
    let lock = h.lock().await;
    let run_id = h.pipeline.runs()[0].id;

    // Another run, and the right run from another workflow: nothing ends.
    h.report("c-1", completion(&lock, run_id + 7, Conclusion::Success))
        .await;
    let mut foreign = completion(&lock, run_id, Conclusion::Success);
    foreign.workflow = Some("deploy.yml".into());
    h.report("c-2", foreign).await;
    assert_eq!(h.lock().await.status, LockStatus::InProgress);
    assert!(h.notices().is_empty());

    h.report("c-3", completion(&lock, run_id, Conclusion::Failure))
        .await;
    assert_eq!(h.lock().await.status, LockStatus::Failed);
    let notices = h.notices();
    assert_eq!(notices.len(), 1);
    assert!(notices[0].contains("failed"), "{notices:?}");
}

#[tokio::test]
async fn a_completion_never_ends_a_grant_without_a_pipeline() {
    let h = Harness::new();
    let cli = h
        .store
        .acquire(&AcquireRequest::new(
            KEY,
            "ci-runner",
            Duration::from_secs(600),
        ))
        .await
        .unwrap();
    h.report("c-1", completion(&cli.record, 1000, Conclusion::Success))
        .await;
    let after = h.lock().await;
    assert_eq!(after.status, LockStatus::InProgress);
    assert_eq!(after.lock_id, cli.record.lock_id);
}

#[tokio::test]
async fn the_reconciler_keeps_a_working_run_locked_and_ends_a_finished_one() {
    let h = Harness::with(|s| s.reconcile_lease = Duration::from_secs(600));
    h.send("m-1", "U1", "router plt").await;
    let lock = h.lock().await;

    // Nine minutes on, the lease has one left: under half of the reconcile lease.
    h.store.advance_clock(Duration::from_secs(9 * 60));
    let pass = h.reconcile().await;
    assert_eq!(
        (pass.checked, pass.renewed, pass.ended),
        (1, 1, 0),
        "{pass:?}"
    );
    let renewed = h.lock().await;
    assert_eq!(renewed.lock_id, lock.lock_id);
    assert!(renewed.expires_at > lock.expires_at, "{renewed:?}");

    // The run ends and its webhook is lost: the next pass ends the lock.
    h.pipeline.finish(h.pipeline.runs()[0].id, "success");
    let pass = h.reconcile().await;
    assert_eq!(pass.ended, 1, "{pass:?}");
    assert_eq!(h.lock().await.status, LockStatus::Completed);
    assert!(
        h.notices()[0].contains("never arrived"),
        "{:?}",
        h.notices()
    );
}

#[tokio::test]
async fn a_contender_never_takes_over_a_lapsed_lock_whose_run_is_working() {
    let h = Harness::new();
    h.send("m-1", "U1", "router plt").await;
    let lock = h.lock().await;
    h.store.advance_clock(Duration::from_secs(11 * 60));

    let second = h.send("m-2", "U2", "router plt").await;

    assert_eq!(
        h.pipeline.runs().len(),
        1,
        "no second run beside the working one"
    );
    let now = h.lock().await;
    assert_eq!(now.lock_id, lock.lock_id);
    assert!(
        now.expires_at * 1000 > h.store.now_millis(),
        "renewed for its holder"
    );
    assert!(
        h.told(&second)[0].contains("already running"),
        "{:?}",
        h.told(&second)
    );
}

#[tokio::test]
async fn a_redelivery_after_the_lease_lapsed_never_dispatches_under_the_dead_grant() {
    let h = Harness::new();
    h.pipeline.set_down(true);
    let cmd = h.command("U1", "router plt");
    assert_eq!(h.run("m-1", &cmd, 1).await, ["m-1"]);
    h.pipeline.set_down(false);
    h.store.advance_clock(Duration::from_secs(11 * 60));

    h.run("m-1", &cmd, 2).await;

    assert!(
        h.pipeline.runs().is_empty(),
        "nothing runs under a lapsed grant"
    );
    assert_eq!(h.lock().await.status, LockStatus::Failed);
    assert!(h.told(&cmd)[0].contains("lapsed"), "{:?}", h.told(&cmd));
}

#[tokio::test]
async fn a_stale_command_is_answered_and_not_run() {
    let h = Harness::new();
    let mut cmd = h.command("U1", "router plt");
    cmd.received_at -= 16 * 60 * 1000;
    h.run("m-1", &cmd, 1).await;

    assert!(h.pipeline.runs().is_empty());
    assert!(h.store.status(KEY).await.unwrap().is_none());
    assert!(
        h.told(&cmd)[0].contains("Run it again"),
        "{:?}",
        h.told(&cmd)
    );
}

#[tokio::test]
async fn an_unlocked_command_dispatches_once_and_claims_no_lock() {
    let h = Harness::with(|s| s.locking_enabled = false);
    let cmd = h.command("U1", "router plt");
    h.run("m-1", &cmd, 1).await;
    h.run("m-2", &cmd, 2).await;

    assert_eq!(h.pipeline.runs().len(), 1);
    assert!(h.store.status(KEY).await.unwrap().is_none());
    let told = h.told(&cmd);
    assert!(
        told[0].contains("without a lock") && !told[0].contains("held until"),
        "{told:?}"
    );
}

#[tokio::test]
async fn unlock_ends_only_the_grant_the_admin_saw_and_cancels_its_run() {
    let h = Harness::new();
    let mut late = h.command("UADMIN", "unlock router plt stuck");
    h.store.advance_clock(Duration::from_secs(5));
    h.send("m-1", "U1", "router plt").await;
    late.received_at = h.store.now_millis() - 5_000;
    h.run("m-2", &late, 1).await;
    assert_eq!(h.lock().await.status, LockStatus::InProgress);
    assert!(
        h.told(&late)[0].contains("changed since you asked"),
        "{:?}",
        h.told(&late)
    );
    assert!(!h.pipeline.runs()[0].cancel_requested);

    h.send("m-3", "UADMIN", "unlock router plt runner died")
        .await;
    assert_eq!(h.lock().await.status, LockStatus::Failed);
    assert!(
        h.pipeline.runs()[0].cancel_requested,
        "the unlocked run was cancelled"
    );
}

#[tokio::test]
async fn unlock_keep_run_leaves_the_pipeline_going() {
    let h = Harness::new();
    h.send("m-1", "U1", "router plt").await;
    h.store.advance_clock(Duration::from_secs(2));
    h.send(
        "m-2",
        "UADMIN",
        "unlock router plt --keep-run moving it by hand",
    )
    .await;
    assert_eq!(h.lock().await.status, LockStatus::Failed);
    assert!(!h.pipeline.runs()[0].cancel_requested);
}

#[tokio::test]
async fn the_holder_cancels_their_own_run_and_nobody_else_can() {
    let h = Harness::new();
    h.send("m-1", "U1", "router plt").await;

    let other = h.send("m-2", "U2", "cancel router plt").await;
    assert_eq!(h.lock().await.status, LockStatus::InProgress);
    assert!(!h.pipeline.runs()[0].cancel_requested);
    assert!(!h.told(&other).is_empty());

    h.send("m-3", "U1", "cancel router plt").await;
    let lock = h.lock().await;
    assert_eq!(lock.status, LockStatus::Failed);
    assert_eq!(lock.released_by.as_deref(), Some("U1"));
    assert!(h.pipeline.runs()[0].cancel_requested);
}

#[tokio::test]
async fn chat_down_keeps_the_lock_and_the_run_and_retries_the_message() {
    let h = Harness::new();
    h.chat.set_down(true);
    let cmd = h.command("U1", "router plt");
    assert_eq!(h.run("m-1", &cmd, 1).await, ["m-1"]);
    assert_eq!(h.pipeline.runs().len(), 1);
    assert_eq!(h.lock().await.status, LockStatus::InProgress);

    h.chat.set_down(false);
    assert!(h.run("m-1", &cmd, 2).await.is_empty());
    assert_eq!(
        h.pipeline.runs().len(),
        1,
        "the retry tells, it does not dispatch again"
    );
    assert!(!h.told(&cmd).is_empty());
}
