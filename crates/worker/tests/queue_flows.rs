//! Waiting lines and the escape hatches (an admin's takeover, test runs,
//! the original bot's command forms) through the binary a user deploys:
//! each step is one
//! `baton-worker --event FILE` (or `--reconcile`) on DynamoDB Local, with
//! loopback recorders standing in for Slack and GitHub. What a person sees
//! (the replies, the channel notices) and what the lock table holds are
//! checked after every step.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use baton_chatops::{CommandMessage, CompletionMessage, Conclusion, QueueMessage};
use baton_lock::{AcquireRequest, JoinRequest, LineMode, LockRecord, LockStatus, PipelineRun};
use baton_testkit::{Reply, unique_name};
use serde_json::{Value, json};
use stage::Stage;

mod stage;

const CONFIG: &str = r#"
[commands."/deploy"]
lock_ttl = "30m"
components = ["api", "web"]
environments = ["plt", "prod"]
on_conflict = "queue"
max_queue = 2
max_wait = "20m"
unlock_users = ["UADMIN"]
test_mode = true
[commands."/deploy".pipeline]
repo = "acme/platform"
workflow = "deploy.yml"

[commands."/build"]
lock_ttl = "10m"
components = ["api", "web"]
environments = ["plt", "prod"]
on_conflict = "queue-latest"
[commands."/build".pipeline]
repo = "acme/platform"
workflow = "build.yml"

[commands."/lint"]
lock_ttl = "10m"
components = ["api"]
environments = ["plt"]
[commands."/lint".pipeline]
repo = "acme/platform"
workflow = "lint.yml"
"#;

const DISPATCH_DEPLOY: &str = "/repos/acme/platform/actions/workflows/deploy.yml/dispatches";
const DISPATCH_BUILD: &str = "/repos/acme/platform/actions/workflows/build.yml/dispatches";
const POST_MESSAGE: &str = "/api/chat.postMessage";
const POST_EPHEMERAL: &str = "/api/chat.postEphemeral";
const KEY: &str = "deploy-api-plt";

/// Run ids GitHub's stand-in hands out, unique across the suite.
static NEXT_RUN: AtomicU64 = AtomicU64::new(101);

/// A fresh stage for this suite: its config, and the reconciler starting a
/// handed-off run at once.
async fn stage() -> Stage {
    Stage::new(CONFIG, &[("BATON_HANDOFF_GRACE", "0s")]).await
}

impl Stage {
    /// GitHub answers the next dispatch of `path` with a new run id.
    fn next_dispatch_starts_a_run(&self, path: &str) -> u64 {
        let id = NEXT_RUN.fetch_add(1, Ordering::SeqCst);
        self.github.script(
            path,
            [Reply::json(
                200,
                json!({"workflow_run_id": id, "html_url": format!("https://github.example/acme/platform/actions/runs/{id}")}),
            )],
        );
        id
    }

    /// `/command text` from `user`, through the binary; the reply it got.
    async fn say(&self, user: &str, command: &str, text: &str) -> Value {
        let message = self.command(user, command, text);
        let response = self
            .deliver(&[QueueMessage::Command(message.clone())])
            .await;
        assert_eq!(
            response["batchItemFailures"],
            json!([]),
            "the command was handled"
        );
        self.reply_to(&message)
    }

    fn reply_to(&self, message: &CommandMessage) -> Value {
        let replies = self.replies_to(message);
        assert_eq!(replies.len(), 1, "one reply to {}", message.text);
        replies[0].clone()
    }

    fn dispatches(&self, path: &str) -> Vec<Value> {
        self.github
            .requests_to(path)
            .iter()
            .map(|r| r.json())
            .collect()
    }

    /// The completion the pipeline of `lock`'s run reports.
    fn completion(&self, lock: &LockRecord, run_id: u64) -> QueueMessage {
        QueueMessage::Completion(CompletionMessage {
            lock_key: lock.lock_key.clone(),
            lock_id: lock.lock_id.clone(),
            fence: lock.fence,
            conclusion: Conclusion::Success,
            run_url: None,
            run_id: Some(run_id),
            repository: Some("acme/platform".into()),
            workflow: Some("deploy.yml".into()),
            channel_id: None,
            reported_by: Some("github".into()),
            reason: None,
        })
    }
}

fn text(reply: &Value) -> String {
    reply["text"].as_str().unwrap_or_default().to_owned()
}

fn waiting(record: &LockRecord) -> Vec<&str> {
    record.waiters.iter().map(|w| w.owner.as_str()).collect()
}

#[tokio::test]
async fn a_held_deploy_queues_in_order_and_the_head_starts_when_the_holder_completes() {
    let s = stage().await;
    let first_run = s.next_dispatch_starts_a_run(DISPATCH_DEPLOY);
    s.say("U1", "/deploy", "api plt").await;
    let holder = s.record(KEY).await;
    assert_eq!(holder.locked_by, "U1");

    let bob = s.say("U2", "/deploy", "api plt").await;
    assert_eq!(bob["response_type"], "ephemeral", "told privately");
    let t = text(&bob);
    assert!(
        t.contains("position 1") && t.contains("you're next") && t.contains("<@U1>"),
        "{t}"
    );
    let carol = s.say("U3", "/deploy", "api plt").await;
    assert!(text(&carol).contains("position 2"), "{}", text(&carol));
    assert_eq!(
        s.dispatches(DISPATCH_DEPLOY).len(),
        1,
        "waiting starts nothing"
    );

    // Asking again is told the same place; a third waiter finds the line full.
    let again = s.say("U2", "/deploy", "api plt").await;
    assert!(
        text(&again).contains("already in line") && text(&again).contains("position 1"),
        "{}",
        text(&again)
    );
    let full = s.say("U4", "/deploy", "api plt").await;
    assert!(text(&full).contains("full (2 waiting"), "{}", text(&full));
    assert_eq!(waiting(&s.record(KEY).await), ["U2", "U3"]);

    // The holder's run ends: the same write grants the head, whose run starts.
    let second_run = s.next_dispatch_starts_a_run(DISPATCH_DEPLOY);
    let completion = s.completion(&holder, first_run);
    s.deliver(std::slice::from_ref(&completion)).await;
    let handed = s.record(KEY).await;
    assert_eq!(handed.locked_by, "U2");
    assert_eq!(handed.status, LockStatus::InProgress);
    assert_eq!(handed.fence, holder.fence + 1);
    let previous = handed.previous.as_ref().expect("the ended grant is copied");
    assert_eq!(
        (previous.lock_id.as_str(), previous.status),
        (holder.lock_id.as_str(), LockStatus::Completed)
    );
    assert_eq!(waiting(&handed), ["U3"]);
    assert_eq!(
        handed.pipeline.as_ref().and_then(|p| p.run_id),
        Some(second_run)
    );
    let dispatches = s.dispatches(DISPATCH_DEPLOY);
    assert_eq!(dispatches.len(), 2);
    assert_eq!(dispatches[1]["inputs"]["lock_id"], handed.lock_id.as_str());
    assert_eq!(dispatches[1]["inputs"]["fence"], handed.fence.to_string());
    assert_eq!(dispatches[1]["inputs"]["requested_by"], "U2");
    let notices: Vec<String> = s
        .slack
        .requests_to(POST_MESSAGE)
        .iter()
        .map(|r| text(&r.json()))
        .collect();
    assert!(
        notices
            .iter()
            .any(|n| n.contains("Starting <@U2>'s queued `/deploy api plt`, waited")),
        "{notices:?}"
    );

    // A redelivered completion hands nothing off twice.
    s.deliver(&[completion]).await;
    assert_eq!(s.dispatches(DISPATCH_DEPLOY).len(), 2);
    assert_eq!(s.record(KEY).await.lock_id, handed.lock_id);

    // Carol leaves; leaving twice is told so; nobody else is touched.
    let left = s.say("U3", "/deploy", "leave api plt").await;
    assert!(text(&left).contains("You left the line"), "{}", text(&left));
    let twice = s.say("U3", "/deploy", "leave api plt").await;
    assert!(text(&twice).contains("not waiting"), "{}", text(&twice));
    let after = s.record(KEY).await;
    assert!(after.waiters.is_empty());
    assert_eq!(after.lock_id, handed.lock_id);
}

#[tokio::test]
async fn queue_shows_the_lines_and_a_reject_command_says_it_does_not_queue() {
    let s = stage().await;
    s.next_dispatch_starts_a_run(DISPATCH_DEPLOY);
    s.say("U1", "/deploy", "api plt").await;
    s.say("U2", "/deploy", "api plt").await;
    let lines = text(&s.say("U9", "/deploy", "queue").await);
    assert!(
        lines.contains("`deploy-api-plt`: held by <@U1>")
            && lines.contains("1. <@U2> `/deploy api plt`, waiting"),
        "{lines}"
    );
    let one = text(&s.say("U9", "/deploy", "queue web prod").await);
    assert!(one.contains("No one is waiting"), "{one}");
    for words in ["queue", "leave api plt"] {
        let refused = text(&s.say("U1", "/lint", words).await);
        assert!(refused.contains("does not queue"), "{refused}");
    }
    let bad = text(&s.say("U1", "/deploy", "leave api").await);
    assert!(
        bad.contains("`/deploy leave` takes a component and an environment"),
        "{bad}"
    );
}

#[tokio::test]
async fn queue_latest_keeps_the_newest_request_and_tells_the_one_it_replaced() {
    let s = stage().await;
    s.next_dispatch_starts_a_run(DISPATCH_BUILD);
    s.say("U1", "/build", "api plt").await;
    s.say("U2", "/build", "api plt").await;
    let newest = s.say("U3", "/build", "api plt").await;
    assert!(text(&newest).contains("position 1"), "{}", text(&newest));
    assert_eq!(waiting(&s.record("build-api-plt").await), ["U3"]);
    let told = s.slack.requests_to(POST_EPHEMERAL);
    assert_eq!(told.len(), 1, "only the replaced waiter is told");
    let body = told[0].json();
    assert_eq!(
        (body["user"].as_str(), body["channel"].as_str()),
        (Some("U2"), Some("C0DEPLOYS"))
    );
    assert!(text(&body).contains("replaced by <@U3>"), "{body}");
}

#[tokio::test]
async fn a_cancel_hands_the_lock_to_the_next_in_line() {
    let s = stage().await;
    let run = s.next_dispatch_starts_a_run(DISPATCH_DEPLOY);
    s.say("U1", "/deploy", "api plt").await;
    s.say("U2", "/deploy", "api plt").await;
    s.next_dispatch_starts_a_run(DISPATCH_DEPLOY);
    s.github.default_reply(
        &format!("/repos/acme/platform/actions/runs/{run}/cancel"),
        Reply::new(202, "{}"),
    );
    let cancelled = s.say("U1", "/deploy", "cancel api plt").await;
    assert!(text(&cancelled).contains("cancel"), "{}", text(&cancelled));
    let now = s.record(KEY).await;
    assert_eq!(now.locked_by, "U2");
    assert_eq!(
        now.previous.as_ref().map(|p| p.status),
        Some(LockStatus::Failed)
    );
    assert_eq!(
        s.dispatches(DISPATCH_DEPLOY).len(),
        2,
        "the waiter's run started"
    );
}

/// A waiter whose request carries `message`, joined behind `holder` on
/// `key` directly through the library, with a maximum wait of `max_wait`.
async fn join_directly(s: &Stage, key: &str, message: &CommandMessage, max_wait: Duration) {
    let mut acquire = AcquireRequest::new(key, &message.user_id, Duration::from_secs(600));
    acquire.request_id = Some(format!("slack:{}", message.trigger_id));
    acquire.purpose = Some(format!("{} {}", message.command, message.text));
    acquire.context = serde_json::to_string(message).ok();
    acquire.pipeline = Some(PipelineRun {
        repository: "acme/platform".into(),
        workflow: "deploy.yml".into(),
        run_id: None,
    });
    let join = JoinRequest {
        acquire,
        mode: LineMode::Fifo { max: 20 },
        max_wait,
        claim: None,
        member: Some(message.user_id.clone()),
    };
    s.locks.join(&join).await.expect("join the line");
}

#[tokio::test]
async fn the_reconciler_drops_a_waiter_past_its_maximum_wait_and_tells_it() {
    let s = stage().await;
    s.next_dispatch_starts_a_run(DISPATCH_DEPLOY);
    s.say("U1", "/deploy", "api plt").await;
    let late = s.command("U2", "/deploy", "api plt");
    join_directly(&s, KEY, &late, Duration::from_secs(1)).await;
    let patient = s.command("U3", "/deploy", "api plt");
    join_directly(&s, KEY, &patient, Duration::from_secs(3600)).await;
    let overdue_at = s.record(KEY).await.waiters[0].deadline_ms;
    while baton_lock::clock::now_epoch_millis() <= overdue_at {
        tokio::time::sleep(Duration::from_millis(
            overdue_at + 1 - baton_lock::clock::now_epoch_millis(),
        ))
        .await;
    }
    s.binary(&["--reconcile"]).await;
    assert_eq!(waiting(&s.record(KEY).await), ["U3"]);
    let told = s.slack.requests_to(POST_EPHEMERAL);
    assert_eq!(told.len(), 1);
    let body = told[0].json();
    assert_eq!(body["user"], "U2");
    assert!(text(&body).contains("was dropped after waiting"), "{body}");
}

#[tokio::test]
async fn the_reconciler_starts_a_hand_off_whose_worker_stopped_before_dispatching() {
    let s = stage().await;
    let first = s.next_dispatch_starts_a_run(DISPATCH_DEPLOY);
    s.say("U1", "/deploy", "api plt").await;
    let holder = s.record(KEY).await;
    let queued = s.command("U2", "/deploy", "api plt");
    join_directly(&s, KEY, &queued, Duration::from_secs(3600)).await;
    // The holder's grant ends and hands off, but whoever ended it never
    // started the waiter's run (a worker that stopped in between).
    let mut release = baton_lock::ReleaseRequest::new(KEY, &holder.lock_id, LockStatus::Completed);
    release.run = baton_lock::RunCheck::Recorded {
        repository: "acme/platform".into(),
        workflow: "deploy.yml".into(),
        run_id: first,
    };
    let ended = s.locks.release(&release).await.expect("release");
    let handed = ended.next.expect("handed off").record;
    assert_eq!(handed.locked_by, "U2");
    let runs = "/repos/acme/platform/actions/workflows/deploy.yml/runs";
    s.github.default_reply(
        runs,
        Reply::json(200, json!({"total_count": 0, "workflow_runs": []})),
    );
    let second = s.next_dispatch_starts_a_run(DISPATCH_DEPLOY);

    s.binary(&["--reconcile"]).await;
    let now = s.record(KEY).await;
    assert_eq!(now.lock_id, handed.lock_id, "still the waiter's grant");
    assert_eq!(now.pipeline.as_ref().and_then(|p| p.run_id), Some(second));
    let dispatches = s.dispatches(DISPATCH_DEPLOY);
    assert_eq!(dispatches.len(), 2);
    assert_eq!(dispatches[1]["inputs"]["lock_id"], handed.lock_id.as_str());
    // A second pass finds the run recorded and starts nothing more.
    s.github.default_reply(
        &format!("/repos/acme/platform/actions/runs/{second}"),
        Reply::json(200, json!({
            "id": second, "status": "in_progress", "conclusion": null,
            "event": "workflow_dispatch", "path": ".github/workflows/deploy.yml",
            "display_title": format!("baton lock_key={KEY} lock_id={} fence={}", now.lock_id, now.fence),
        })),
    );
    s.binary(&["--reconcile"]).await;
    assert_eq!(s.dispatches(DISPATCH_DEPLOY).len(), 2);
}

fn cancels(s: &Stage) -> Vec<String> {
    s.github
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/cancel"))
        .map(|r| r.path.clone())
        .collect()
}

#[tokio::test]
async fn an_admin_takes_over_in_one_write_cancels_the_old_run_and_starts_theirs() {
    let s = stage().await;
    let first = s.next_dispatch_starts_a_run(DISPATCH_DEPLOY);
    s.say("U1", "/deploy", "api plt").await;
    let holder = s.record(KEY).await;
    s.say("U2", "/deploy", "api plt").await;
    let cancel = format!("/repos/acme/platform/actions/runs/{first}/cancel");
    s.github.default_reply(&cancel, Reply::new(202, "{}"));
    let second = s.next_dispatch_starts_a_run(DISPATCH_DEPLOY);

    s.say("UADMIN", "/deploy", "api plt --force \"roll back 1.4\"")
        .await;

    let now = s.record(KEY).await;
    assert_eq!(now.locked_by, "UADMIN");
    assert_eq!(now.fence, holder.fence + 1);
    let previous = now.previous.as_ref().expect("the holder's grant is copied");
    assert_eq!(previous.lock_id, holder.lock_id);
    assert_eq!(previous.status, LockStatus::Failed);
    assert_eq!(previous.released_by.as_deref(), Some("UADMIN"));
    assert_eq!(
        previous.release_reason.as_deref(),
        Some("taken over by <@UADMIN>: roll back 1.4")
    );
    assert_eq!(waiting(&now), ["U2"], "the line waits behind the admin");
    assert_eq!(cancels(&s), [cancel], "the holder's run is cancelled");
    let dispatches = s.dispatches(DISPATCH_DEPLOY);
    assert_eq!(dispatches.len(), 2);
    assert_eq!(dispatches[1]["inputs"]["lock_id"], now.lock_id.as_str());
    assert_eq!(now.pipeline.as_ref().and_then(|p| p.run_id), Some(second));
    let notices: Vec<String> = s
        .slack
        .requests_to(POST_MESSAGE)
        .iter()
        .map(|r| text(&r.json()))
        .collect();
    assert!(
        notices.iter().any(
            |n| n.contains("<@UADMIN> took over `deploy-api-plt` from <@U1>")
                && n.contains("roll back 1.4")
                && n.contains("cancelled")
        ),
        "{notices:?}"
    );
}

#[tokio::test]
async fn keep_run_leaves_the_old_run_going() {
    let s = stage().await;
    s.next_dispatch_starts_a_run(DISPATCH_DEPLOY);
    s.say("U1", "/deploy", "api plt").await;
    s.next_dispatch_starts_a_run(DISPATCH_DEPLOY);
    s.say("UADMIN", "/deploy", "api plt --keep-run --force hotfix")
        .await;
    assert_eq!(s.record(KEY).await.locked_by, "UADMIN");
    assert!(cancels(&s).is_empty());
}

#[tokio::test]
async fn a_takeover_by_a_non_admin_or_without_a_reason_changes_nothing() {
    let s = stage().await;
    s.next_dispatch_starts_a_run(DISPATCH_DEPLOY);
    s.say("U1", "/deploy", "api plt").await;
    let before = s.record(KEY).await;
    let refused = text(&s.say("U2", "/deploy", "api plt --force mine now").await);
    assert!(
        refused.contains("Only `/deploy` admins may take a lock over")
            && refused.contains("<@UADMIN>"),
        "{refused}"
    );
    let no_reason = text(&s.say("UADMIN", "/deploy", "api plt --force").await);
    assert!(
        no_reason.contains("Please say why you're taking the lock over, e.g."),
        "{no_reason}"
    );
    assert_eq!(s.record(KEY).await, before);
    assert!(cancels(&s).is_empty());
    assert_eq!(s.dispatches(DISPATCH_DEPLOY).len(), 1);
}

#[tokio::test]
async fn test_runs_and_real_runs_do_not_block_each_other() {
    let s = stage().await;
    s.next_dispatch_starts_a_run(DISPATCH_DEPLOY);
    s.say("U1", "/deploy", "api plt").await;
    s.next_dispatch_starts_a_run(DISPATCH_DEPLOY);
    let test_run = s.say("U2", "/deploy", "api plt --test").await;
    assert!(
        text(&test_run).contains("deploy-api-plt#test"),
        "{}",
        text(&test_run)
    );
    let test_key = "deploy-api-plt#test";
    assert_eq!(s.record(test_key).await.locked_by, "U2");
    assert_eq!(
        s.record(KEY).await.locked_by,
        "U1",
        "the real run keeps its lock"
    );
    let dispatches = s.dispatches(DISPATCH_DEPLOY);
    assert_eq!(dispatches.len(), 2);
    assert_eq!(dispatches[1]["inputs"]["lock_key"], test_key);
    // Test runs exclude each other.
    let second_test = text(&s.say("U3", "/deploy", "api plt --test").await);
    assert!(second_test.contains("position 1"), "{second_test}");
    // A command without test mode says so.
    let no_test = text(&s.say("U1", "/build", "api plt --test").await);
    assert!(no_test.contains("`/build` has no test mode"), "{no_test}");
}

#[tokio::test]
async fn the_original_bots_command_forms_work() {
    let s = stage().await;
    s.next_dispatch_starts_a_run(DISPATCH_DEPLOY);
    s.say("U1", "/deploy", "api plt").await;
    let status = text(&s.say("U1", "/deploy", "status --locks").await);
    assert!(status.contains("deploy-api-plt"), "{status}");
    let unlock = text(&s.say("UADMIN", "/deploy", "unlock api plt").await);
    assert!(
        unlock.contains("Please say why you're unlocking, e.g. `/deploy unlock api plt"),
        "{unlock}"
    );
    assert_eq!(s.record(KEY).await.status, LockStatus::InProgress);
}

#[tokio::test]
async fn a_bypass_recorded_by_the_cli_shows_in_slack_status() {
    let s = stage().await;
    s.next_dispatch_starts_a_run(DISPATCH_DEPLOY);
    s.say("U1", "/deploy", "api plt").await;
    s.locks
        .record_bypass(
            KEY,
            "oncall@runner-7",
            "database restore",
            Some("runner-7"),
            None,
        )
        .await
        .expect("record the bypass");
    let status = text(&s.say("U2", "/deploy", "status").await);
    assert!(
        status.contains("Bypassed by oncall@runner-7") && status.contains("database restore"),
        "{status}"
    );
    assert_eq!(
        s.record(KEY).await.locked_by,
        "U1",
        "the grant is untouched"
    );
}

#[tokio::test]
async fn a_queued_message_with_a_forged_user_is_refused_and_changes_nothing() {
    let s = stage().await;
    let mut forged = s.command("U1", "/deploy", "api plt --force takeover");
    forged.user_id = "UADMIN> <!channel".into();
    let mut body = serde_json::to_value(QueueMessage::Command(forged)).expect("json");
    body["user_id"] = json!("UADMIN> <!channel");
    let mut record = SqsMessage::default();
    record.message_id = Some("forged-1".into());
    record.body = Some(body.to_string());
    record
        .attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    let mut event = SqsEvent::default();
    event.records = vec![record];
    let file = std::env::temp_dir().join(format!("{}.json", unique_name("sqs-event")));
    std::fs::write(&file, serde_json::to_string(&event).expect("event")).expect("write");
    let response = s.binary(&["--event", file.to_str().expect("utf-8")]).await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(
        response["batchItemFailures"],
        json!([{"itemIdentifier": "forged-1"}]),
        "refused, towards the dead-letter queue"
    );
    assert!(
        s.locks.status(KEY).await.expect("read").is_none(),
        "no lock was taken"
    );
    assert!(s.slack.requests().is_empty(), "nobody was told anything");
    assert!(s.github.requests().is_empty(), "nothing was dispatched");
}
