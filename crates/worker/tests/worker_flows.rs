//! The worker's behaviour through its public handler, with DynamoDB Local for
//! locks and loopback HTTP recorders standing in for Slack and GitHub.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use baton_chatops::{CommandMessage, CompletionMessage, Conclusion, Config, QueueMessage};
use baton_lock::{LockClient, LockStatus};
use baton_testkit::{HttpRecorder, RecordedRequest, Reply, TestTable, fast_options};
use baton_worker::{Worker, WorkerSettings};
use serde_json::{Value, json};

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
[commands."/build".pipeline.inputs]
channel = "builds"

[commands."/deploy"]
lock_ttl = "30m"
components = ["router", "api"]
environments = ["plt", "prod"]
unlock_users = ["UADMIN"]
[commands."/deploy".allowed_users]
prod = ["UADMIN"]
[commands."/deploy".pipeline]
repo = "acme/platform"
workflow = "deploy.yml"
"#;

const DISPATCH_BUILD: &str = "/repos/acme/platform/actions/workflows/build.yml/dispatches";
const RUNS_BUILD: &str = "/repos/acme/platform/actions/workflows/build.yml/runs";

struct Harness {
    table: TestTable,
    locks: LockClient,
    slack: HttpRecorder,
    github: HttpRecorder,
    worker: Worker,
}

impl Harness {
    async fn new() -> Harness {
        Self::with(|_| {}).await
    }

    async fn with(adjust: impl FnOnce(&mut WorkerSettings)) -> Harness {
        let table = TestTable::create().await;
        let slack = HttpRecorder::start().await.unwrap();
        let github = HttpRecorder::start().await.unwrap();
        github.default_reply(
            DISPATCH_BUILD,
            Reply::json(
                200,
                json!({"workflow_run_id": 99, "run_url": "x", "html_url": "https://github.example/acme/platform/actions/runs/99"}),
            ),
        );
        github.default_reply(
            RUNS_BUILD,
            Reply::json(200, json!({"total_count": 0, "workflow_runs": []})),
        );
        let mut settings = settings(&slack, &github);
        adjust(&mut settings);
        let locks = table.client(fast_options());
        let worker = Worker::new(locks.clone(), settings).unwrap();
        Harness {
            table,
            locks,
            slack,
            github,
            worker,
        }
    }

    fn command(&self, user: &str, command: &str, text: &str) -> CommandMessage {
        CommandMessage {
            command: command.into(),
            text: text.into(),
            user_id: user.into(),
            user_name: Some(user.to_lowercase()),
            channel_id: "C0BUILDS".into(),
            channel_name: None,
            team_id: "T0ACME".into(),
            team_domain: None,
            enterprise_id: None,
            response_url: format!("{}/response/{user}/{}", self.slack.url(), uuid()),
            trigger_id: uuid(),
            api_app_id: None,
            received_at: baton_lock::clock::now_epoch_millis(),
        }
    }

    async fn run(&self, records: Vec<SqsMessage>) -> SqsBatchResponse {
        let mut event = SqsEvent::default();
        event.records = records;
        self.worker.handle(event).await
    }

    /// Delivers one command from `user` as the first delivery of message `id`.
    async fn send(&self, id: &str, user: &str, command: &str, text: &str) -> SqsBatchResponse {
        let message = self.command(user, command, text);
        self.run(vec![command_record(id, &message, 1)]).await
    }

    /// Delivers a pipeline's completion record as message `id`.
    async fn report(&self, id: &str, completion: CompletionMessage) -> SqsBatchResponse {
        self.run(vec![record(
            id,
            QueueMessage::Completion(completion).to_json(),
            1,
        )])
        .await
    }

    fn dispatches(&self) -> Vec<RecordedRequest> {
        self.github.requests_to(DISPATCH_BUILD)
    }

    fn replies(&self) -> Vec<Value> {
        self.slack
            .requests_to("/response/")
            .iter()
            .map(RecordedRequest::json)
            .collect()
    }
}

/// The worker's settings for these tests, before a test adjusts them.
fn settings(slack: &HttpRecorder, github: &HttpRecorder) -> WorkerSettings {
    WorkerSettings {
        default_budget: Duration::from_secs(4),
        http_timeout: Duration::from_millis(700),
        ..WorkerSettings::local(
            Config::from_toml_str(CONFIG).unwrap(),
            &slack.url(),
            &github.url(),
        )
    }
}

fn uuid() -> String {
    baton_testkit::unique_name("id")
}

fn record(id: &str, body: String, receive_count: u32) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.into());
    m.body = Some(body);
    m.attributes
        .insert("ApproximateReceiveCount".into(), receive_count.to_string());
    m
}

fn command_record(id: &str, message: &CommandMessage, receive_count: u32) -> SqsMessage {
    record(
        id,
        QueueMessage::Command(message.clone()).to_json(),
        receive_count,
    )
}

fn failures(response: &SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

fn text(reply: &Value) -> String {
    reply["text"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_free_build_takes_the_lock_dispatches_and_announces_in_channel() {
    let h = Harness::new().await;
    let cmd = h.command("U1", "/build", "router plt");

    let response = h.run(vec![command_record("m-1", &cmd, 1)]).await;

    assert!(failures(&response).is_empty());
    let lock = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(lock.status, LockStatus::InProgress);
    assert_eq!(
        lock.request_id,
        Some(format!("slack:{}", cmd.trigger_id)),
        "Slack's trigger id is the request id, whatever message carries it"
    );
    assert_eq!(lock.locked_by, "U1");
    assert_eq!(lock.purpose.as_deref(), Some("/build router plt"));
    assert_eq!(
        lock.run_url.as_deref(),
        Some("https://github.example/acme/platform/actions/runs/99")
    );

    let dispatches = h.dispatches();
    assert_eq!(dispatches.len(), 1);
    let body = dispatches[0].json();
    assert_eq!(body["ref"], "main");
    assert_eq!(body["inputs"]["component"], "router");
    assert_eq!(body["inputs"]["environment"], "plt");
    assert_eq!(body["inputs"]["lock_key"], "build-router-plt");
    assert_eq!(body["inputs"]["lock_id"], lock.lock_id.as_str());
    assert_eq!(body["inputs"]["fence"], lock.fence.to_string());
    assert_eq!(body["inputs"]["requested_by"], "U1");
    assert_eq!(
        body["inputs"]["channel"], "builds",
        "configured extra inputs are sent too"
    );
    assert_eq!(
        dispatches[0].header("authorization"),
        Some("Bearer ghp-local")
    );
    assert_eq!(
        dispatches[0].header("x-github-api-version"),
        Some("2022-11-28")
    );

    let replies = h.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["response_type"], "in_channel");
    let t = text(&replies[0]);
    assert!(
        t.contains("<@U1>") && t.contains("/build router plt"),
        "{t}"
    );
    assert!(
        t.contains("https://github.example/acme/platform/actions/runs/99"),
        "{t}"
    );
    assert!(replies[0]["blocks"].is_array());
}

#[tokio::test]
async fn a_held_lock_is_reported_ephemerally_to_the_requester_without_dispatch() {
    let h = Harness::new().await;
    h.send("m-1", "U1", "/build", "router plt").await;
    let second = h.command("U2", "/build", "router plt");

    let response = h.run(vec![command_record("m-2", &second, 1)]).await;

    assert!(
        failures(&response).is_empty(),
        "a conflict is an answer, not a retry"
    );
    assert_eq!(h.dispatches().len(), 1);
    let to_u2 = h
        .slack
        .requests_to(&second.response_url.replace(&h.slack.url(), ""));
    assert_eq!(to_u2.len(), 1);
    let reply = to_u2[0].json();
    assert_eq!(reply["response_type"], "ephemeral");
    let t = text(&reply);
    assert!(t.contains("<@U1>"), "names the holder: {t}");
    assert!(t.contains("/build router plt"), "says what they run: {t}");
    assert!(t.contains("UTC"), "says since/until when: {t}");
}

#[tokio::test]
async fn a_redelivered_command_never_dispatches_twice_nor_says_already_running() {
    let h = Harness::new().await;
    let cmd = h.command("U1", "/build", "router plt");
    h.run(vec![command_record("m-1", &cmd, 1)]).await;

    let response = h.run(vec![command_record("m-1", &cmd, 2)]).await;

    assert!(failures(&response).is_empty());
    assert_eq!(h.dispatches().len(), 1, "no second dispatch");
    for reply in h.replies() {
        assert_eq!(
            reply["response_type"], "in_channel",
            "never the ephemeral 'held' answer: {reply}"
        );
        assert!(!text(&reply).contains("already running"), "{reply}");
    }
}

#[tokio::test]
async fn a_refused_dispatch_fails_the_lock_and_tells_the_requester() {
    let h = Harness::new().await;
    h.github.script(
        DISPATCH_BUILD,
        [Reply::json(
            422,
            json!({"message": "Workflow does not have 'workflow_dispatch' trigger"}),
        )],
    );
    let cmd = h.command("U1", "/build", "api dev");

    let response = h.run(vec![command_record("m-1", &cmd, 1)]).await;

    assert!(failures(&response).is_empty());
    let lock = h.locks.status("build-api-dev").await.unwrap().unwrap();
    assert_eq!(lock.status, LockStatus::Failed);
    assert!(lock.release_reason.unwrap().contains("workflow_dispatch"));
    let replies = h.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["response_type"], "ephemeral");
    assert!(
        text(&replies[0]).contains("workflow_dispatch"),
        "tells why: {}",
        text(&replies[0])
    );
}

#[tokio::test]
async fn a_transient_dispatch_failure_is_retried_through_the_queue_without_double_dispatch() {
    let h = Harness::new().await;
    h.github
        .script(DISPATCH_BUILD, [Reply::new(502, "bad gateway")]);
    let cmd = h.command("U1", "/build", "router plt");

    let first = h.run(vec![command_record("m-1", &cmd, 1)]).await;
    assert_eq!(failures(&first), vec!["m-1"]);
    let lock = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(
        lock.status,
        LockStatus::InProgress,
        "the lock is kept for the retry"
    );
    assert!(
        h.replies().is_empty(),
        "nothing told yet: the message is still in flight"
    );

    let second = h.run(vec![command_record("m-1", &cmd, 2)]).await;
    assert!(failures(&second).is_empty());
    assert_eq!(
        h.github.requests_to(RUNS_BUILD).len(),
        1,
        "asked GitHub whether the first try started a run"
    );
    assert_eq!(
        h.dispatches().len(),
        2,
        "the first dispatch failed, so one more"
    );
    let after = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(
        after.lock_id, lock.lock_id,
        "the same grant carried the retry"
    );
    assert_eq!(h.replies().len(), 1);
}

#[tokio::test]
async fn a_dispatch_whose_answer_was_lost_is_found_instead_of_repeated() {
    let h = Harness::new().await;
    h.github
        .script(DISPATCH_BUILD, [Reply::new(504, "gateway timeout")]);
    let cmd = h.command("U1", "/build", "router plt");
    assert_eq!(
        failures(&h.run(vec![command_record("m-1", &cmd, 1)]).await),
        vec!["m-1"]
    );
    let lock = h.locks.status("build-router-plt").await.unwrap().unwrap();
    // GitHub did start the run: it shows up with baton's lock id in its title.
    h.github.default_reply(
        RUNS_BUILD,
        Reply::json(200, json!({"workflow_runs": [
            {"id": 7, "display_title": "baton lock_key=other lock_id=nope fence=1", "html_url": "https://github.example/runs/7"},
            {"id": 8, "display_title": format!("baton lock_key=build-router-plt lock_id={} fence={}", lock.lock_id, lock.fence), "html_url": "https://github.example/runs/8"}
        ]})),
    );

    let response = h.run(vec![command_record("m-1", &cmd, 2)]).await;

    assert!(failures(&response).is_empty());
    assert_eq!(h.dispatches().len(), 1, "no second dispatch");
    let lock = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(
        lock.run_url.as_deref(),
        Some("https://github.example/runs/8")
    );
    assert!(text(&h.replies()[0]).contains("https://github.example/runs/8"));
}

#[tokio::test]
async fn on_the_last_delivery_a_failing_dispatch_releases_the_lock_and_tells_the_user() {
    let h = Harness::new().await;
    h.github
        .default_reply(DISPATCH_BUILD, Reply::new(503, "unavailable"));
    let cmd = h.command("U1", "/build", "router plt");

    let response = h.run(vec![command_record("m-1", &cmd, 5)]).await;

    assert!(
        failures(&response).is_empty(),
        "not sent to the DLQ in silence"
    );
    let lock = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(lock.status, LockStatus::Failed);
    let replies = h.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["response_type"], "ephemeral");
}

#[tokio::test]
async fn slack_429_with_retry_after_is_honoured() {
    let h = Harness::new().await;
    h.slack.script(
        "/response/",
        [Reply::new(429, "slow down").header("retry-after", "1")],
    );
    let cmd = h.command("U1", "/build", "router plt");

    let response = h.run(vec![command_record("m-1", &cmd, 1)]).await;

    assert!(failures(&response).is_empty());
    let attempts = h.slack.requests_to("/response/");
    assert_eq!(attempts.len(), 2, "one 429, then delivered");
    assert_eq!(attempts[0].body, attempts[1].body);
    assert_eq!(h.dispatches().len(), 1);
}

#[tokio::test]
async fn slack_down_keeps_the_lock_and_the_dispatch_and_retries_the_message() {
    let h = Harness::with(|s| s.default_budget = Duration::from_millis(1500)).await;
    h.slack.default_reply("/response/", Reply::new(500, "down"));
    let cmd = h.command("U1", "/build", "router plt");

    let first = h.run(vec![command_record("m-1", &cmd, 1)]).await;

    assert_eq!(
        failures(&first),
        vec!["m-1"],
        "the user was not told, so the message goes back"
    );
    assert!(
        h.slack.requests_to("/response/").len() >= 2,
        "retried within the budget"
    );
    let lock = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(
        lock.status,
        LockStatus::InProgress,
        "an undelivered reply never releases the lock"
    );
    assert_eq!(h.dispatches().len(), 1);

    h.slack.default_reply("/response/", Reply::new(200, "ok"));
    let second = h.run(vec![command_record("m-1", &cmd, 2)]).await;
    assert!(failures(&second).is_empty());
    assert_eq!(
        h.dispatches().len(),
        1,
        "redelivery does not dispatch again"
    );
    let last = h.slack.requests_to("/response/").last().unwrap().json();
    assert_eq!(last["response_type"], "in_channel");
}

#[tokio::test]
async fn slack_timeouts_are_retried_like_5xx() {
    let h = Harness::new().await;
    h.slack.script(
        "/response/",
        [Reply::new(200, "ok").delayed(Duration::from_millis(1500))],
    );
    let cmd = h.command("U1", "/build", "router plt");

    let response = h.run(vec![command_record("m-1", &cmd, 1)]).await;

    assert!(failures(&response).is_empty());
    assert_eq!(
        h.slack.requests_to("/response/").len(),
        2,
        "timed out once, then delivered"
    );
}

fn completion(
    lock_key: &str,
    lock_id: &str,
    fence: u64,
    conclusion: Conclusion,
) -> CompletionMessage {
    CompletionMessage {
        lock_key: lock_key.into(),
        lock_id: lock_id.into(),
        fence,
        conclusion,
        run_url: Some("https://github.example/runs/99".into()),
        run_id: Some(99),
        repository: Some("acme/platform".into()),
        workflow: Some("build.yml".into()),
        channel_id: None,
        reported_by: Some("github".into()),
        reason: None,
    }
}

#[tokio::test]
async fn completion_ends_the_lock_and_posts_the_outcome_to_the_channel() {
    let h = Harness::new().await;
    h.send("m-1", "U1", "/build", "router plt").await;
    let lock = h.locks.status("build-router-plt").await.unwrap().unwrap();
    let done = completion(
        "build-router-plt",
        &lock.lock_id,
        lock.fence,
        Conclusion::Success,
    );

    let response = h.report("c-1", done).await;

    assert!(failures(&response).is_empty());
    let ended = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(ended.status, LockStatus::Completed);
    assert_eq!(ended.released_by.as_deref(), Some("github"));
    let posts = h.slack.requests_to("/api/chat.postMessage");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].header("authorization"), Some("Bearer xoxb-local"));
    let body = posts[0].json();
    assert_eq!(
        body["channel"], "C0BUILDS",
        "found through the lock's correlation id"
    );
    assert!(text(&body).contains("succeeded"), "{body}");
    assert!(text(&body).contains("<@U1>"), "{body}");

    // The key is free again: the next build starts.
    h.send("m-2", "U2", "/build", "router plt").await;
    assert_eq!(h.dispatches().len(), 2);
}

#[tokio::test]
async fn a_failed_run_ends_the_lock_as_failed() {
    let h = Harness::new().await;
    h.send("m-1", "U1", "/build", "router plt").await;
    let lock = h.locks.status("build-router-plt").await.unwrap().unwrap();
    let failed = completion(
        "build-router-plt",
        &lock.lock_id,
        lock.fence,
        Conclusion::Failure,
    );

    h.report("c-1", failed).await;

    assert_eq!(
        h.locks
            .status("build-router-plt")
            .await
            .unwrap()
            .unwrap()
            .status,
        LockStatus::Failed
    );
    assert!(text(&h.slack.requests_to("/api/chat.postMessage")[0].json()).contains("failed"));
}

#[tokio::test]
async fn a_late_completion_from_an_old_run_cannot_end_a_newer_lock() {
    let h = Harness::new().await;
    h.send("m-1", "U1", "/build", "router plt").await;
    let old = h.locks.status("build-router-plt").await.unwrap().unwrap();
    h.locks
        .force_unlock("build-router-plt", "UADMIN", "stuck", None)
        .await
        .unwrap();
    h.send("m-2", "U2", "/build", "router plt").await;
    let current = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_ne!(current.lock_id, old.lock_id);

    let late = completion(
        "build-router-plt",
        &old.lock_id,
        old.fence,
        Conclusion::Success,
    );
    let response = h.report("c-1", late).await;

    assert!(failures(&response).is_empty());
    let still = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(still.status, LockStatus::InProgress);
    assert_eq!(still.lock_id, current.lock_id);
    assert!(h.slack.requests_to("/api/chat.postMessage").is_empty());
}

#[tokio::test]
async fn status_lists_active_locks_ephemerally() {
    let h = Harness::new().await;
    h.run(vec![
        command_record("m-1", &h.command("U1", "/build", "router plt"), 1),
        command_record("m-2", &h.command("U2", "/build", "api dev"), 1),
    ])
    .await;
    let ask = h.command("U3", "/build", "status");

    h.run(vec![command_record("m-3", &ask, 1)]).await;

    let reply = h
        .slack
        .requests_to(&ask.response_url.replace(&h.slack.url(), ""))[0]
        .json();
    assert_eq!(reply["response_type"], "ephemeral");
    let t = text(&reply);
    assert!(
        t.contains("build-router-plt") && t.contains("build-api-dev"),
        "{t}"
    );
    assert!(t.contains("<@U1>") && t.contains("<@U2>"), "{t}");
}

/// `/build` and `/build-x`: every key of `/build-x` starts with `build-`.
const PREFIXED: &str = r#"
[commands."/build"]
lock_ttl = "10m"
components = ["router"]
environments = ["plt"]
[commands."/build".pipeline]
repo = "acme/platform"
workflow = "build.yml"

[commands."/build-x"]
lock_ttl = "10m"
components = ["router"]
environments = ["plt"]
[commands."/build-x".pipeline]
repo = "acme/platform"
workflow = "build.yml"
"#;

/// What `/command status` answers.
async fn status_text(h: &Harness, command: &str) -> String {
    let ask = h.command("U3", command, "status");
    h.run(vec![command_record(&uuid(), &ask, 1)]).await;
    let path = ask.response_url.replace(&h.slack.url(), "");
    text(&h.slack.requests_to(&path)[0].json())
}

#[tokio::test]
async fn status_lists_only_the_asking_commands_keys_when_another_command_shares_its_prefix() {
    let h = Harness::with(|s| s.config = Config::from_toml_str(PREFIXED).unwrap()).await;
    h.run(vec![
        command_record("m-1", &h.command("U1", "/build", "router plt"), 1),
        command_record("m-2", &h.command("U2", "/build-x", "router plt"), 1),
    ])
    .await;
    for key in ["build-router-plt", "build-x-router-plt"] {
        let lock = h.locks.status(key).await.unwrap().unwrap();
        assert_eq!(lock.status, LockStatus::InProgress, "{key}");
    }

    let build = status_text(&h, "/build").await;
    assert!(
        build.contains("build-router-plt") && build.contains("<@U1>"),
        "{build}"
    );
    assert!(
        !build.contains("build-x-router-plt") && !build.contains("<@U2>"),
        "/build status shows a lock of /build-x: {build}"
    );
    let build_x = status_text(&h, "/build-x").await;
    assert!(
        build_x.contains("build-x-router-plt") && build_x.contains("<@U2>"),
        "{build_x}"
    );
    assert!(!build_x.contains("<@U1>"), "{build_x}");
}

#[tokio::test]
async fn unlock_is_for_authorised_users_and_is_announced() {
    let h = Harness::new().await;
    h.send("m-1", "U1", "/build", "router plt").await;

    let intruder = h.command("U2", "/build", "unlock router plt because");
    h.run(vec![command_record("m-2", &intruder, 1)]).await;
    let refusal = h
        .slack
        .requests_to(&intruder.response_url.replace(&h.slack.url(), ""))[0]
        .json();
    assert_eq!(refusal["response_type"], "ephemeral");
    assert_eq!(
        h.locks
            .status("build-router-plt")
            .await
            .unwrap()
            .unwrap()
            .status,
        LockStatus::InProgress
    );

    let admin = h.command("UADMIN", "/build", "unlock router plt runner died");
    h.run(vec![command_record("m-3", &admin, 1)]).await;
    let lock = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(lock.status, LockStatus::Failed);
    assert!(lock.forced);
    assert_eq!(lock.released_by.as_deref(), Some("UADMIN"));
    assert_eq!(lock.release_reason.as_deref(), Some("runner died"));
    let notice = h
        .slack
        .requests_to(&admin.response_url.replace(&h.slack.url(), ""))[0]
        .json();
    assert_eq!(notice["response_type"], "in_channel");
    assert!(text(&notice).contains("runner died"), "{notice}");
}

#[tokio::test]
async fn dry_run_says_what_would_happen_without_locking_or_dispatching() {
    let h = Harness::new().await;
    let cmd = h.command("U1", "/build", "router plt --dry-run");

    h.run(vec![command_record("m-1", &cmd, 1)]).await;

    assert!(h.locks.status("build-router-plt").await.unwrap().is_none());
    assert!(h.dispatches().is_empty());
    let reply = &h.replies()[0];
    assert_eq!(reply["response_type"], "ephemeral");
    assert!(text(reply).to_lowercase().contains("dry run"), "{reply}");
}

#[tokio::test]
async fn the_kill_switch_dispatches_without_a_lock_and_says_so() {
    let h = Harness::with(|s| s.locking_enabled = false).await;
    let cmd = h.command("U1", "/build", "router plt");

    h.run(vec![command_record("m-1", &cmd, 1)]).await;
    h.send("m-2", "U2", "/build", "router plt").await;

    assert!(
        h.locks.status("build-router-plt").await.unwrap().is_none(),
        "no lock taken"
    );
    assert_eq!(h.dispatches().len(), 2, "both dispatched: locking is off");
    assert!(
        text(&h.replies()[0]).contains("Locking is switched off"),
        "{}",
        text(&h.replies()[0])
    );
}

#[tokio::test]
async fn bad_commands_get_an_ephemeral_answer_that_says_what_is_allowed() {
    let h = Harness::new().await;
    let unknown_component = h.command("U1", "/build", "routr plt");
    let not_allowed = h.command("U1", "/deploy", "api prod");
    let unknown_command = h.command("U1", "/destroy", "everything");

    let response = h
        .run(vec![
            command_record("m-1", &unknown_component, 1),
            command_record("m-2", &not_allowed, 1),
            command_record("m-3", &unknown_command, 1),
        ])
        .await;

    assert!(failures(&response).is_empty());
    assert!(h.dispatches().is_empty());
    let answer = |m: &CommandMessage| {
        h.slack
            .requests_to(&m.response_url.replace(&h.slack.url(), ""))[0]
            .json()
    };
    let a = answer(&unknown_component);
    assert_eq!(a["response_type"], "ephemeral");
    assert!(
        text(&a).contains("router"),
        "lists the allowed components: {a}"
    );
    assert!(text(&answer(&not_allowed)).contains("prod"));
    assert!(
        text(&answer(&unknown_command)).contains("/build"),
        "lists the known commands"
    );
}

#[tokio::test]
async fn malformed_bodies_go_back_to_the_queue_for_the_dead_letter_queue_without_reply() {
    let h = Harness::new().await;
    let response = h
        .run(vec![
            record("bad-1", "this is not json".into(), 1),
            record(
                "bad-2",
                json!({"kind": "command", "text": "router plt"}).to_string(),
                1,
            ),
            record("bad-3", json!({"kind": "mystery"}).to_string(), 1),
        ])
        .await;
    assert_eq!(
        failures(&response),
        vec!["bad-1", "bad-2", "bad-3"],
        "unreadable bodies are reported failed, so SQS moves them to the DLQ"
    );
    assert!(h.slack.requests().is_empty());
    assert!(h.dispatches().is_empty());
}

#[tokio::test]
async fn a_batch_runs_keys_concurrently_and_keeps_order_within_a_key() {
    let h = Harness::new().await;
    // Each dispatch is answered only once three are in flight at the same time.
    h.github.default_reply(
        DISPATCH_BUILD,
        Reply::json(
            200,
            json!({"workflow_run_id": 1, "html_url": "https://github.example/runs/1"}),
        )
        .gated(3),
    );
    let first = h.command("U1", "/build", "router plt");
    let same_key_later = h.command("U2", "/build", "router plt");
    let response = h
        .run(vec![
            command_record("m-1", &first, 1),
            command_record("m-2", &h.command("U1", "/build", "api plt"), 1),
            command_record("m-3", &same_key_later, 1),
            command_record("m-4", &h.command("U1", "/build", "web plt"), 1),
        ])
        .await;

    assert!(failures(&response).is_empty(), "{:?}", failures(&response));
    assert_eq!(h.dispatches().len(), 3);
    // Within one key the queue order holds: the first took it, the later was told.
    assert_eq!(
        h.locks
            .status("build-router-plt")
            .await
            .unwrap()
            .unwrap()
            .locked_by,
        "U1"
    );
    let later = h
        .slack
        .requests_to(&same_key_later.response_url.replace(&h.slack.url(), ""))[0]
        .json();
    assert_eq!(later["response_type"], "ephemeral");
}

#[tokio::test]
async fn only_failed_records_and_their_successors_on_the_same_key_are_returned() {
    let h = Harness::new().await;
    h.github.script(DISPATCH_BUILD, [Reply::new(500, "boom")]);
    let response = h
        .run(vec![
            command_record("a-1", &h.command("U1", "/build", "router plt"), 1),
            command_record("a-2", &h.command("U2", "/build", "router plt"), 1),
        ])
        .await;
    assert_eq!(failures(&response), vec!["a-1", "a-2"]);

    let h = Harness::new().await;
    h.github.script(DISPATCH_BUILD, [Reply::new(500, "boom")]);
    let other = h
        .run(vec![command_record(
            "b-1",
            &h.command("U1", "/build", "api dev"),
            1,
        )])
        .await;
    assert_eq!(failures(&other), vec!["b-1"]);
    let fine = h
        .run(vec![command_record(
            "b-2",
            &h.command("U1", "/build", "web dev"),
            1,
        )])
        .await;
    assert!(failures(&fine).is_empty());
}

#[tokio::test]
async fn an_expired_response_url_falls_back_to_the_web_api() {
    let h = Harness::new().await;
    h.send("m-1", "U1", "/build", "router plt").await;
    // Slack answers 404 once a response_url is older than 30 minutes.
    h.slack
        .default_reply("/response/", Reply::new(404, "expired_url"));
    let late = h.command("U2", "/build", "router plt");

    let response = h.run(vec![command_record("m-2", &late, 1)]).await;

    assert!(failures(&response).is_empty());
    let ephemeral = h.slack.requests_to("/api/chat.postEphemeral");
    assert_eq!(
        ephemeral.len(),
        1,
        "the 'held' answer still reaches the requester"
    );
    let body = ephemeral[0].json();
    assert_eq!(body["channel"], "C0BUILDS");
    assert_eq!(body["user"], "U2");
    assert!(text(&body).contains("<@U1>"), "{body}");
    assert_eq!(
        ephemeral[0].header("authorization"),
        Some("Bearer xoxb-local")
    );
}

#[tokio::test]
async fn a_response_url_that_only_looks_like_slack_is_never_posted_to() {
    // A prefix configured without its trailing path: as a string prefix it
    // would accept `http://SLACK_HOST:PORT@OTHER_HOST:PORT/…`, whose host is
    // the part after the `@`.
    let h = Harness::with(|s| {
        s.slack_response_url_prefix = s
            .slack_response_url_prefix
            .trim_end_matches("/response/")
            .to_owned();
    })
    .await;
    let elsewhere = HttpRecorder::start().await.unwrap();
    let slack_authority = h.slack.url().trim_start_matches("http://").to_owned();
    let other_authority = elsewhere.url().trim_start_matches("http://").to_owned();
    let mut crafted = h.command("U1", "/build", "status");
    crafted.response_url = format!("http://{slack_authority}@{other_authority}/response/x");

    let response = h.run(vec![command_record("m-1", &crafted, 1)]).await;

    // The message itself is refused (a response_url with userinfo is not
    // one Slack sends): back to the queue, towards the dead-letter queue.
    assert_eq!(failures(&response), ["m-1"], "{response:?}");
    assert!(
        elsewhere.requests().is_empty(),
        "the worker posted to a host that is not Slack's"
    );
    assert!(
        h.slack.requests().is_empty(),
        "a message no router would have queued gets no answer at all"
    );
}

// ---------------------------------------------------------------------------
// One run per lock, end to end.

const RUN_99: &str = "/repos/acme/platform/actions/runs/99";

fn run_state(status: &str, conclusion: Option<&str>, lock: &baton_lock::LockRecord) -> Reply {
    Reply::json(
        200,
        json!({
            "id": 99, "status": status, "conclusion": conclusion,
            "event": "workflow_dispatch", "path": ".github/workflows/build.yml",
            "display_title": format!("baton lock_key={} lock_id={} fence={}", lock.lock_key, lock.lock_id, lock.fence),
            "html_url": "https://github.example/acme/platform/actions/runs/99",
        }),
    )
}

#[tokio::test]
async fn a_completion_from_another_run_or_for_a_cli_lock_ends_nothing() {
    let h = Harness::new().await;
    h.send("m-1", "U1", "/build", "router plt").await;
    let lock = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(
        lock.pipeline.as_ref().and_then(|p| p.run_id),
        Some(99),
        "the dispatched run is recorded"
    );

    // A run of the same workflow, not the one dispatched (lock id and fence
    // copied from the title of the real one).
    let mut forged = completion(
        "build-router-plt",
        &lock.lock_id,
        lock.fence,
        Conclusion::Success,
    );
    forged.run_id = Some(100);
    h.github.default_reply(
        "/repos/acme/platform/actions/runs/100",
        Reply::json(200, json!({"id": 100, "status": "completed", "conclusion": "success", "event": "push", "path": ".github/workflows/build.yml", "display_title": format!("lock_key=build-router-plt lock_id={} fence={}", lock.lock_id, lock.fence)})),
    );
    h.report("c-1", forged).await;
    let mut foreign = completion(
        "build-router-plt",
        &lock.lock_id,
        lock.fence,
        Conclusion::Success,
    );
    foreign.repository = Some("fork/platform".into());
    h.report("c-2", foreign).await;
    let after = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(
        after.status,
        LockStatus::InProgress,
        "neither ended the lock"
    );

    // A CLI holder's lock, whatever a completion claims.
    let mut cli =
        baton_lock::AcquireRequest::new("build-api-dev", "ci@runner", Duration::from_secs(600));
    cli.request_id = Some("ci-1".into());
    let held = h.locks.acquire(&cli).await.unwrap();
    h.report(
        "c-3",
        completion(
            "build-api-dev",
            held.lock_id(),
            held.fence(),
            Conclusion::Success,
        ),
    )
    .await;
    assert_eq!(
        h.locks
            .status("build-api-dev")
            .await
            .unwrap()
            .unwrap()
            .status,
        LockStatus::InProgress
    );
    assert!(
        h.slack.requests_to("/api/chat.postMessage").is_empty(),
        "no completion was announced"
    );
}

#[tokio::test]
async fn the_reconciler_renews_a_working_run_and_ends_a_finished_one_whose_report_was_lost() {
    let h = Harness::with(|s| s.reconcile_lease = Duration::from_secs(600)).await;
    h.send("m-1", "U1", "/build", "router plt").await;
    let lock = h.locks.status("build-router-plt").await.unwrap().unwrap();
    // Shorten the lease as if it were about to lapse under a long pipeline.
    h.locks
        .renew("build-router-plt", &lock.lock_id, Duration::from_secs(2))
        .await
        .unwrap();

    h.github
        .script(RUN_99, [run_state("in_progress", None, &lock)]);
    let pass = h
        .worker
        .reconcile(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
    assert_eq!(
        (pass.checked, pass.renewed, pass.ended),
        (1, 1, 0),
        "{pass:?}"
    );
    let renewed = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert!(
        renewed.expires_at >= baton_lock::clock::now_epoch_secs() + 590,
        "{renewed:?}"
    );

    // The run ends; its webhook never arrives.
    h.github
        .script(RUN_99, [run_state("completed", Some("failure"), &lock)]);
    let pass = h
        .worker
        .reconcile(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
    assert_eq!(pass.ended, 1, "{pass:?}");
    let ended = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(ended.status, LockStatus::Failed);
    let posts = h.slack.requests_to("/api/chat.postMessage");
    assert_eq!(posts.len(), 1);
    assert!(
        text(&posts[0].json()).contains("never arrived"),
        "{}",
        posts[0].json()
    );
}

#[tokio::test]
async fn a_contender_never_takes_over_a_lapsed_lock_whose_run_is_still_working() {
    let h = Harness::new().await;
    h.send("m-1", "U1", "/build", "router plt").await;
    let lock = h.locks.status("build-router-plt").await.unwrap().unwrap();
    h.locks
        .renew("build-router-plt", &lock.lock_id, Duration::from_secs(1))
        .await
        .unwrap();
    let lapse = lock.expires_at.min(baton_lock::clock::now_epoch_secs() + 1);
    while baton_lock::clock::now_epoch_secs() <= lapse {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.github
        .default_reply(RUN_99, run_state("in_progress", None, &lock));

    let second = h.command("U2", "/build", "router plt");
    h.run(vec![command_record("m-2", &second, 1)]).await;

    assert_eq!(
        h.dispatches().len(),
        1,
        "no second run beside the working one"
    );
    let now = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(now.lock_id, lock.lock_id, "the working run keeps its lock");
    assert!(
        now.expires_at > baton_lock::clock::now_epoch_secs(),
        "and its lease was renewed"
    );
    let reply = h
        .slack
        .requests_to(&second.response_url.replace(&h.slack.url(), ""))[0]
        .json();
    assert_eq!(reply["response_type"], "ephemeral", "{reply}");
}

#[tokio::test]
async fn a_redelivery_after_the_lease_lapsed_never_dispatches_under_the_dead_grant() {
    let h = Harness::new().await;
    h.github
        .script(DISPATCH_BUILD, [Reply::new(502, "bad gateway")]);
    let cmd = h.command("U1", "/build", "router plt");
    h.run(vec![command_record("m-1", &cmd, 1)]).await;
    let lock = h.locks.status("build-router-plt").await.unwrap().unwrap();
    h.locks
        .renew("build-router-plt", &lock.lock_id, Duration::from_secs(1))
        .await
        .unwrap();
    let lapse = baton_lock::clock::now_epoch_secs() + 1;
    while baton_lock::clock::now_epoch_secs() <= lapse {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    h.run(vec![command_record("m-1", &cmd, 2)]).await;

    assert_eq!(h.dispatches().len(), 1, "only the first, failed dispatch");
    let after = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(
        after.status,
        LockStatus::Failed,
        "the lapsed grant is ended"
    );
    assert!(
        text(&h.replies()[0]).contains("lapsed"),
        "{}",
        h.replies()[0]
    );
}

#[tokio::test]
async fn an_unlocked_command_redelivered_dispatches_once_and_claims_no_lock() {
    let h = Harness::with(|s| s.locking_enabled = false).await;
    let cmd = h.command("U1", "/build", "router plt");
    h.run(vec![command_record("m-1", &cmd, 1)]).await;
    h.run(vec![command_record("m-2", &cmd, 2)]).await;

    assert_eq!(
        h.dispatches().len(),
        1,
        "one dispatch for one Slack invocation"
    );
    let t = text(&h.replies()[0]);
    assert!(
        t.contains("without a lock") && !t.contains("held until"),
        "{t}"
    );
    assert!(h.locks.status("build-router-plt").await.unwrap().is_none());
}

#[tokio::test]
async fn a_command_that_waited_too_long_in_the_queue_is_not_run() {
    let h = Harness::new().await;
    let mut cmd = h.command("U1", "/build", "router plt");
    cmd.received_at -= 16 * 60 * 1000;
    h.run(vec![command_record("m-1", &cmd, 1)]).await;

    assert!(h.dispatches().is_empty());
    assert!(h.locks.status("build-router-plt").await.unwrap().is_none());
    assert!(
        text(&h.replies()[0]).contains("Run it again"),
        "{}",
        h.replies()[0]
    );
}

#[tokio::test]
async fn unlock_ends_only_the_grant_the_admin_saw_and_cancels_its_run() {
    let h = Harness::new().await;
    let cancel = "/repos/acme/platform/actions/runs/99/cancel";
    h.github.default_reply(cancel, Reply::new(202, ""));
    // Typed before the current grant was made: refused, nothing changes.
    let mut late = h.command("UADMIN", "/build", "unlock router plt stuck");
    late.received_at -= 5_000;
    h.send("m-1", "U1", "/build", "router plt").await;
    h.run(vec![command_record("m-2", &late, 1)]).await;
    let lock = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(lock.status, LockStatus::InProgress);
    let refusal = h
        .slack
        .requests_to(&late.response_url.replace(&h.slack.url(), ""))[0]
        .json();
    assert!(
        text(&refusal).contains("changed since you asked"),
        "{refusal}"
    );
    assert!(h.github.requests_to(cancel).is_empty());

    let admin = h.command("UADMIN", "/build", "unlock router plt runner died");
    h.run(vec![command_record("m-3", &admin, 1)]).await;
    assert_eq!(
        h.locks
            .status("build-router-plt")
            .await
            .unwrap()
            .unwrap()
            .status,
        LockStatus::Failed
    );
    assert_eq!(
        h.github.requests_to(cancel).len(),
        1,
        "the unlocked run was cancelled"
    );
}

#[tokio::test]
async fn the_holder_cancels_their_own_run_and_nobody_else_can() {
    let h = Harness::new().await;
    let cancel = "/repos/acme/platform/actions/runs/99/cancel";
    h.github.default_reply(cancel, Reply::new(202, ""));
    h.send("m-1", "U1", "/build", "router plt").await;

    h.send("m-2", "U2", "/build", "cancel router plt").await;
    assert_eq!(
        h.locks
            .status("build-router-plt")
            .await
            .unwrap()
            .unwrap()
            .status,
        LockStatus::InProgress
    );
    assert!(h.github.requests_to(cancel).is_empty());

    h.send("m-3", "U1", "/build", "cancel router plt").await;
    let lock = h.locks.status("build-router-plt").await.unwrap().unwrap();
    assert_eq!(lock.status, LockStatus::Failed);
    assert_eq!(lock.released_by.as_deref(), Some("U1"));
    assert_eq!(h.github.requests_to(cancel).len(), 1);
}

/// `/build` limited to one workspace and channel, with `prod` protected and
/// listed for `UREL` only.
const CLOSED: &str = r#"
allowed_teams = ["T0ACME"]
[commands."/build"]
lock_ttl = "10m"
components = ["router"]
environments = ["plt", "prod"]
protected_environments = ["prod"]
allowed_channels = ["C0BUILDS"]
unlock_users = ["UADMIN"]
[commands."/build".allowed_users]
prod = ["UREL"]
[commands."/build".pipeline]
repo = "acme/platform"
workflow = "build.yml"
"#;

#[tokio::test]
async fn the_worker_refuses_again_what_the_router_would_have_refused() {
    // Messages sent straight onto the queue, past the router: the worker
    // decides again with the same policy and acts on none of these.
    let h = Harness::with(|s| s.config = Config::from_toml_str(CLOSED).unwrap()).await;
    let mut foreign = h.command("UREL", "/build", "router prod");
    foreign.team_id = "T0EVIL".into();
    let mut elsewhere = h.command("UREL", "/build", "router prod");
    elsewhere.channel_id = "C0RANDOM".into();
    let unlisted = h.command("UADMIN", "/build", "router prod");

    let response = h
        .run(vec![
            command_record("m-1", &foreign, 1),
            command_record("m-2", &elsewhere, 1),
            command_record("m-3", &unlisted, 1),
        ])
        .await;

    assert!(failures(&response).is_empty(), "a refusal is final");
    assert!(h.dispatches().is_empty());
    assert!(h.locks.status("build-router-prod").await.unwrap().is_none());
    let answer = |m: &CommandMessage| {
        let a = h
            .slack
            .requests_to(&m.response_url.replace(&h.slack.url(), ""))[0]
            .json();
        assert_eq!(a["response_type"], "ephemeral", "{a}");
        text(&a)
    };
    assert!(answer(&foreign).contains("allowed_teams"));
    assert!(answer(&elsewhere).contains("allowed_channels"));
    let t = answer(&unlisted);
    assert!(
        t.contains("not on the list") && t.contains("<@UREL>"),
        "{t}"
    );

    // The listed user in the listed channel of the listed workspace runs.
    let allowed = h.command("UREL", "/build", "router prod");
    let response = h.run(vec![command_record("m-4", &allowed, 1)]).await;
    assert!(failures(&response).is_empty());
    assert_eq!(h.dispatches().len(), 1);
    let lock = h.locks.status("build-router-prod").await.unwrap().unwrap();
    assert_eq!(lock.locked_by, "UREL");
}

/// `/build` whose protected `prod` lists a Slack user group, not users.
const GROUPS: &str = r#"
[commands."/build"]
lock_ttl = "10m"
components = ["router", "api"]
environments = ["plt", "prod"]
protected_environments = ["prod"]
[commands."/build".allowed_users]
prod = ["S0OPS"]
[commands."/build".pipeline]
repo = "acme/platform"
workflow = "build.yml"
"#;

const USERGROUP_MEMBERS: &str = "/api/usergroups.users.list";

#[tokio::test]
async fn a_listed_user_group_admits_its_members_looked_up_once_with_the_bot_token() {
    let h = Harness::with(|s| s.config = Config::from_toml_str(GROUPS).unwrap()).await;
    h.slack.default_reply(
        USERGROUP_MEMBERS,
        Reply::json(200, json!({"ok": true, "users": ["U0MEMBER", "U0ALSO"]})),
    );

    let member = h.command("U0MEMBER", "/build", "router prod");
    let outsider = h.command("U0OTHER", "/build", "api prod");
    // One batch after the other: the second finds the members kept.
    let first = h.run(vec![command_record("m-1", &member, 1)]).await;
    let second = h.run(vec![command_record("m-2", &outsider, 1)]).await;

    assert!(failures(&first).is_empty() && failures(&second).is_empty());
    assert_eq!(h.dispatches().len(), 1, "only the member's run starts");
    let lock = h.locks.status("build-router-prod").await.unwrap().unwrap();
    assert_eq!(lock.locked_by, "U0MEMBER");
    assert!(h.locks.status("build-api-prod").await.unwrap().is_none());
    let refusal = h
        .slack
        .requests_to(&outsider.response_url.replace(&h.slack.url(), ""))[0]
        .json();
    assert!(text(&refusal).contains("not on the list"), "{refusal}");

    let lookups = h.slack.requests_to(USERGROUP_MEMBERS);
    assert_eq!(
        lookups.len(),
        1,
        "members are kept for a while, not asked per command"
    );
    assert_eq!(
        lookups[0].header("authorization"),
        Some("Bearer xoxb-local")
    );

    // An unprotected environment stays open to the outsider.
    let plt = h.command("U0OTHER", "/build", "api plt");
    let response = h.run(vec![command_record("m-3", &plt, 1)]).await;
    assert!(failures(&response).is_empty());
    assert_eq!(h.dispatches().len(), 2);
    assert_eq!(
        h.slack.requests_to(USERGROUP_MEMBERS).len(),
        1,
        "still kept"
    );
}

#[tokio::test]
async fn when_slack_cannot_say_who_is_in_a_group_nothing_runs_and_the_record_is_retried() {
    let h = Harness::with(|s| s.config = Config::from_toml_str(GROUPS).unwrap()).await;
    h.slack.default_reply(
        USERGROUP_MEMBERS,
        Reply::json(200, json!({"ok": false, "error": "missing_scope"})),
    );
    let member = h.command("U0MEMBER", "/build", "router prod");
    let response = h.run(vec![command_record("m-1", &member, 1)]).await;
    assert_eq!(failures(&response), vec!["m-1".to_string()]);
    assert!(h.dispatches().is_empty());
    assert!(h.locks.status("build-router-prod").await.unwrap().is_none());
}

#[tokio::test]
async fn history_shows_a_targets_last_runs_privately_newest_first() {
    let h = Harness::new().await;
    // Without a history table, `history` says so instead of failing.
    h.send("m-0", "U1", "/build", "history router plt").await;
    let replies = h.replies();
    assert!(text(&replies[0]).contains("history table"), "{replies:?}");

    let history = h.table.create_history().await;
    let worker = Worker::new(h.locks.clone(), settings(&h.slack, &h.github))
        .unwrap()
        .with_history(history);
    for (id, user, conclusion) in [
        ("m-1", "U1", Conclusion::Success),
        ("m-2", "U2", Conclusion::Failure),
    ] {
        h.send(id, user, "/build", "router plt").await;
        let lock = h.locks.status("build-router-plt").await.unwrap().unwrap();
        let done = completion("build-router-plt", &lock.lock_id, lock.fence, conclusion);
        assert!(failures(&h.report(&format!("c-{id}"), done).await).is_empty());
    }
    h.send("m-3", "U3", "/build", "api dev").await;
    h.table.record_history().await;

    let asking = h.command("U9", "/build", "history router plt");
    let mut event = SqsEvent::default();
    event.records = vec![command_record("m-4", &asking, 1)];
    assert!(failures(&worker.handle(event).await).is_empty());

    let reply = h
        .slack
        .requests_to("/response/U9/")
        .last()
        .map(RecordedRequest::json)
        .expect("the asker got an answer");
    assert_eq!(reply["response_type"], "ephemeral", "{reply}");
    let text = text(&reply);
    let (failed, completed) = (
        text.find("<@U2>: failed").expect("U2's failed run"),
        text.find("<@U1>: completed").expect("U1's completed run"),
    );
    assert!(failed < completed, "newest first: {text}");
    assert!(
        !text.contains("U3"),
        "another target's run is not listed: {text}"
    );
    assert!(
        text.contains("|run>"),
        "each run links to its pipeline run: {text}"
    );
}

/// Found by the worker fault suite: a run started, its announcement never
/// reached Slack, and the run finished before the command came back; the
/// redelivery found the grant ended and said nothing, so the requester,
/// who may have been told only "held" by an earlier copy, never heard
/// that their run had happened.
#[tokio::test]
async fn finding_f5_a_redelivery_after_the_run_ended_tells_the_requester_it_ran() {
    let h = Harness::with(|s| s.default_budget = Duration::from_millis(1500)).await;
    h.slack.default_reply("/response/", Reply::new(500, "down"));
    let cmd = h.command("U1", "/build", "router plt");
    let first = h.run(vec![command_record("m-1", &cmd, 1)]).await;
    assert_eq!(
        failures(&first),
        vec!["m-1"],
        "the start was never announced"
    );
    assert_eq!(h.dispatches().len(), 1);

    let lock = h.locks.status("build-router-plt").await.unwrap().unwrap();
    let done = completion(
        "build-router-plt",
        &lock.lock_id,
        lock.fence,
        Conclusion::Success,
    );
    assert!(failures(&h.report("c-1", done).await).is_empty());

    h.slack.default_reply("/response/", Reply::new(200, "ok"));
    let before = h.slack.requests_to("/response/").len();
    let second = h.run(vec![command_record("m-1", &cmd, 2)]).await;
    assert!(failures(&second).is_empty());
    assert_eq!(h.dispatches().len(), 1, "never a second run");
    let told: Vec<Value> = h.slack.requests_to("/response/")[before..]
        .iter()
        .map(RecordedRequest::json)
        .collect();
    assert_eq!(told.len(), 1, "the requester hears it once: {told:?}");
    let said = text(&told[0]);
    assert!(said.contains("already ran"), "{said}");
    assert!(said.contains("runs/99"), "the run's link: {said}");
    assert!(said.contains("succeeded"), "and how it ended: {said}");
    assert_eq!(told[0]["response_type"], "ephemeral");
}
