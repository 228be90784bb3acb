//! The whole path, over real HTTP and a real queue: a recorded, signed Slack
//! slash command → `baton-router --listen` → SQS FIFO (moto) → the worker
//! (DynamoDB Local locks) → the Slack reply and the GitHub dispatch; then
//! GitHub's signed `workflow_run` webhook → router → SQS → worker → the
//! lock ends and the channel hears the outcome.
//!
//! Needs both local servers: `tests/tooling/sqs-local.sh start` and
//! `tests/tooling/dynamodb-local.sh start`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use baton_chatops::Config;
use baton_lock::LockStatus;
use baton_testkit::{HttpRecorder, Reply, TestTable, fast_options};
use baton_worker::{Worker, WorkerSettings};
use serde_json::{Value, json};

use crate::common::*;
use crate::listen::ListeningRouter;

const DISPATCH_BUILD: &str = "/repos/acme/platform/actions/workflows/build.yml/dispatches";
const RUNS_BUILD: &str = "/repos/acme/platform/actions/workflows/build.yml/runs";
const RUN_URL: &str = "https://github.example/acme/platform/actions/runs/4242";

/// What the queue delivered, as the SQS event the worker's Lambda receives.
pub(crate) fn sqs_event(received: Vec<Received>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = received
        .into_iter()
        .map(|r| {
            let mut m = SqsMessage::default();
            m.message_id = Some(r.message_id);
            m.body = Some(r.body);
            m.attributes = r.attributes.into_iter().collect();
            m.event_source = Some("aws:sqs".into());
            m
        })
        .collect();
    event
}

pub(crate) fn failures(r: &SqsBatchResponse) -> Vec<String> {
    r.batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

/// Forwards the headers a sender set in a sample event.
pub(crate) fn headers_of(ev: &Value, names: &[&'static str]) -> Vec<(&'static str, String)> {
    names
        .iter()
        .map(|h| {
            (
                *h,
                ev["headers"][*h].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn signed_slash_command_reaches_slack_and_the_completion_ends_the_lock() {
    let queue = TestQueue::fifo().await;
    let table = TestTable::create().await;
    let slack = HttpRecorder::start().await.expect("slack recorder");
    let github = HttpRecorder::start().await.expect("github recorder");
    github.default_reply(
        DISPATCH_BUILD,
        Reply::json(
            200,
            json!({"workflow_run_id": 4242, "run_url": "x", "html_url": RUN_URL}),
        ),
    );
    github.default_reply(
        RUNS_BUILD,
        Reply::json(200, json!({"total_count": 0, "workflow_runs": []})),
    );
    let locks = table.client(fast_options());
    let worker = Worker::new(
        locks.clone(),
        WorkerSettings::local(Config::builtin(), &slack.url(), &github.url()),
    )
    .expect("worker");
    let router = ListeningRouter::start(&queue.url).await;

    // 1. Slack posts the recorded slash command (Function URL sample), with
    //    its response_url pointed at the Slack stand-in, signed now.
    let mut ev = event("router-slack-command-function-url.json");
    let response_url = format!("{}/response/T0ACME/1001/e2e", slack.url());
    let body = with_form_field(&event_body(&ev), "response_url", &response_url);
    set_event_body(&mut ev, &body);
    sign_slack(&mut ev, now_secs());
    let headers = headers_of(
        &ev,
        &[
            "content-type",
            "x-slack-request-timestamp",
            "x-slack-signature",
        ],
    );
    let (status, _, ack) = router.send("POST", "/slack/commands", &headers, body).await;
    assert_eq!(status, 200, "{ack}");
    assert!(ack.contains("/build router plt"), "{ack}");
    assert!(
        slack.requests().is_empty(),
        "the ack is the HTTP answer; nothing posted yet"
    );

    // 2. The worker gets what the router queued.
    let delivered = queue.receive().await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0]
            .attributes
            .get("MessageGroupId")
            .map(String::as_str),
        Some("build-router-plt")
    );
    let response = worker.handle(sqs_event(delivered)).await;
    assert!(failures(&response).is_empty(), "{response:?}");

    // 3. The lock is held, the workflow dispatched with the lock identity,
    //    and the channel told through the command's response_url.
    let lock = locks
        .status("build-router-plt")
        .await
        .unwrap()
        .expect("lock taken");
    assert_eq!(lock.status, LockStatus::InProgress);
    assert_eq!(lock.locked_by, "U0ALICE");
    let dispatches = github.requests_to(DISPATCH_BUILD);
    assert_eq!(dispatches.len(), 1);
    let inputs = dispatches[0].json()["inputs"].clone();
    assert_eq!(inputs["lock_key"], "build-router-plt");
    assert_eq!(inputs["lock_id"], lock.lock_id.as_str());
    assert_eq!(inputs["fence"], lock.fence.to_string());
    let replies = slack.requests_to("/response/T0ACME/1001/e2e");
    assert_eq!(replies.len(), 1);
    let reply = replies[0].json();
    assert_eq!(reply["response_type"], "in_channel", "{reply}");
    let text = reply["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("<@U0ALICE>") && text.contains(RUN_URL),
        "{text}"
    );

    // 4. The run ends; GitHub's webhook carries the identity in the run name
    //    (`run-name: baton lock_key=… lock_id=… fence=…`).
    let mut hook = event("router-github-workflow-run.json");
    let mut payload: Value = serde_json::from_slice(&event_body(&hook)).unwrap();
    payload["workflow_run"]["display_title"] = format!(
        "baton lock_key={} lock_id={} fence={}",
        inputs["lock_key"].as_str().unwrap(),
        inputs["lock_id"].as_str().unwrap(),
        inputs["fence"].as_str().unwrap()
    )
    .into();
    payload["workflow_run"]["id"] = 4242.into();
    payload["workflow_run"]["html_url"] = RUN_URL.into();
    set_event_body(&mut hook, payload.to_string().as_bytes());
    sign_github(&mut hook);
    let headers = headers_of(
        &hook,
        &[
            "content-type",
            "x-github-event",
            "x-github-delivery",
            "x-hub-signature-256",
        ],
    );
    let (status, _, _) = router
        .send("POST", "/github/webhook", &headers, event_body(&hook))
        .await;
    assert_eq!(status, 202);

    let delivered = queue.receive().await;
    assert_eq!(delivered.len(), 1);
    let response = worker.handle(sqs_event(delivered)).await;
    assert!(failures(&response).is_empty(), "{response:?}");

    // 5. The lock is completed and the channel hears the outcome.
    let ended = locks
        .status("build-router-plt")
        .await
        .unwrap()
        .expect("lock record");
    assert_eq!(ended.status, LockStatus::Completed);
    let posts = slack.requests_to("/api/chat.postMessage");
    assert_eq!(posts.len(), 1);
    let post = posts[0].json();
    assert_eq!(post["channel"], "C0BUILDS");
    let text = post["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("succeeded") && text.contains("<@U0ALICE>"),
        "{text}"
    );
}
