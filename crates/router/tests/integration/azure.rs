//! `POST /azure-devops/hook` through the Lambda handler with the sample
//! `ms.vss-pipelines.run-state-changed-event` delivery and a real (local)
//! SQS FIFO queue: the credential, the event type and the completion.

use base64::Engine;
use baton_chatops::{Conclusion, Config, QueueMessage};
use baton_router::{Router, Secret, Secrets, SqsQueue};
use serde_json::Value;

use crate::common::*;

const HOOK: &str = "router-azure-run-state-changed.json";

/// A config whose `/deploy` queues Azure pipeline 42 of acme/Platform.
const CONFIG: &str = r#"
[commands."/deploy"]
lock_ttl = "30m"
components = ["api"]
environments = ["prod"]
[commands."/deploy".pipeline]
kind = "azure-pipelines"
organization = "acme"
project = "Platform"
pipeline_id = 42
"#;

fn router(queue: &TestQueue, azure_hook: Option<&str>) -> Router<SqsQueue> {
    Router::new(
        Config::from_toml_str(CONFIG).expect("test config"),
        Secrets {
            slack_signing: Secret::new(SLACK_SECRET),
            slack_signing_previous: None,
            github_webhook: None,
            azure_hook: azure_hook.map(Secret::new),
        },
        SqsQueue::new(sqs_client(&queue.endpoint), &queue.url),
    )
}

/// The sample delivery with its payload edited.
fn hook_event(edit: impl FnOnce(&mut Value)) -> Value {
    let mut ev = event(HOOK);
    let mut payload: Value = serde_json::from_slice(&event_body(&ev)).expect("payload is JSON");
    edit(&mut payload);
    set_event_body(&mut ev, payload.to_string().as_bytes());
    ev
}

fn with_basic(mut ev: Value, user: &str, password: &str) -> Value {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    set_header(&mut ev, "authorization", &format!("Basic {encoded}"));
    ev
}

fn without_auth(mut ev: Value) -> Value {
    if let Some(headers) = ev["headers"].as_object_mut() {
        headers.remove("authorization");
    }
    ev
}

#[tokio::test]
async fn completed_run_is_queued_as_a_completion_bound_to_its_pipeline() {
    let queue = TestQueue::fifo().await;
    let answer = invoke(&router(&queue, Some(AZURE_SECRET)), &event(HOOK)).await;
    assert_eq!((answer.status, answer.body.as_str()), (202, ""));

    let got = queue.receive().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].group_id.as_deref(), Some("deploy-api-prod"));
    let QueueMessage::Completion(c) =
        QueueMessage::parse(&got[0].body).expect("worker can read it")
    else {
        panic!("expected a completion: {}", got[0].body);
    };
    assert_eq!(c.lock_key, "deploy-api-prod");
    assert_eq!(c.lock_id, "5b8e1f0c2d3a4b6c9e7f0a1b2c3d4e5f");
    assert_eq!(c.fence, 1_763_899_200_004);
    assert_eq!(c.conclusion, Conclusion::Success);
    assert_eq!(c.run_id, Some(981));
    assert_eq!(c.repository.as_deref(), Some("azure-devops:acme/Platform"));
    assert_eq!(c.workflow.as_deref(), Some("42"));
    assert_eq!(
        c.reported_by.as_deref(),
        Some("azure-devops:run-state-changed")
    );
}

#[tokio::test]
async fn a_failed_run_is_queued_as_a_failure() {
    let queue = TestQueue::fifo().await;
    let ev = hook_event(|p| p["resource"]["run"]["result"] = "failed".into());
    assert_eq!(
        invoke(&router(&queue, Some(AZURE_SECRET)), &ev)
            .await
            .status,
        202
    );
    let got = queue.receive().await;
    let QueueMessage::Completion(c) = QueueMessage::parse(&got[0].body).unwrap() else {
        panic!("expected a completion");
    };
    assert_eq!(c.conclusion, Conclusion::Failure);
}

#[tokio::test]
async fn a_wrong_or_missing_credential_is_401_and_nothing_is_queued() {
    let queue = TestQueue::fifo().await;
    let router = router(&queue, Some(AZURE_SECRET));
    let cases = [
        (
            "wrong password",
            with_basic(event(HOOK), "baton", "not-the-secret"),
        ),
        (
            "secret as user name",
            with_basic(event(HOOK), AZURE_SECRET, ""),
        ),
        (
            "longer password",
            with_basic(event(HOOK), "baton", &format!("{AZURE_SECRET}x")),
        ),
        ("no credential", without_auth(event(HOOK))),
        ("bearer scheme", {
            let mut ev = event(HOOK);
            set_header(&mut ev, "authorization", &format!("Bearer {AZURE_SECRET}"));
            ev
        }),
        ("wrong header secret", {
            let mut ev = without_auth(event(HOOK));
            set_header(&mut ev, "x-baton-hook-secret", "guess");
            ev
        }),
    ];
    for (what, ev) in cases {
        let answer = invoke(&router, &ev).await;
        assert_eq!((answer.status, answer.body.as_str()), (401, ""), "{what}");
    }
    assert_eq!(queue.count().await, 0);

    // The same secret as a header is accepted.
    let mut ev = without_auth(event(HOOK));
    set_header(&mut ev, "X-Baton-Hook-Secret", AZURE_SECRET);
    assert_eq!(invoke(&router, &ev).await.status, 202);
}

#[tokio::test]
async fn an_unknown_event_type_is_refused_naming_it() {
    let queue = TestQueue::fifo().await;
    let ev = hook_event(|p| p["eventType"] = "build.complete".into());
    let answer = invoke(&router(&queue, Some(AZURE_SECRET)), &ev).await;
    assert_eq!(answer.status, 400);
    let error = answer.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("\"build.complete\"")
            && error.contains("ms.vss-pipelines.run-state-changed-event"),
        "{error}"
    );
    assert_eq!(queue.count().await, 0);
}

#[tokio::test]
async fn runs_that_are_not_completions_are_answered_204() {
    let queue = TestQueue::fifo().await;
    let router = router(&queue, Some(AZURE_SECRET));
    for edit in [
        (|p: &mut Value| p["resource"]["run"]["state"] = "inProgress".into()) as fn(&mut Value),
        |p| p["resource"]["pipeline"]["id"] = 7.into(),
        |p| p["resource"]["run"]["name"] = "20251123.4".into(),
    ] {
        assert_eq!(invoke(&router, &hook_event(edit)).await.status, 204);
    }
    let not_json = {
        let mut ev = event(HOOK);
        set_event_body(&mut ev, b"eventType=x");
        ev
    };
    assert_eq!(invoke(&router, &not_json).await.status, 400);
    assert_eq!(queue.count().await, 0);
}

#[tokio::test]
async fn the_route_is_404_without_a_secret() {
    let queue = TestQueue::fifo().await;
    assert_eq!(
        invoke(&router(&queue, None), &event(HOOK)).await.status,
        404
    );
    assert_eq!(queue.count().await, 0);
}

/// The whole Azure DevOps path over real HTTP and a real queue: a signed
/// `/build` → `baton-router --listen` → SQS → the worker, which queues the
/// Azure run (a loopback stand-in) under the lock; then the service hook
/// with its credential → router → SQS → worker → the lock ends and the
/// channel hears it.
#[tokio::test]
async fn slash_command_to_azure_run_and_its_service_hook_end_the_lock() {
    const RUNS: &str = "/acme/Platform/_apis/pipelines/42/runs";
    const RUN_URL: &str = "https://dev.azure.example/acme/Platform/_build/results?buildId=981";
    let build = CONFIG
        .replace("/deploy", "/build")
        .replace("[\"api\"]", "[\"router\"]")
        .replace("[\"prod\"]", "[\"plt\"]");
    let config_file = std::env::temp_dir().join(format!(
        "baton-e2e-azure-{}.toml",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&config_file, &build).expect("config file");
    let config_path = config_file.to_string_lossy().into_owned();

    let queue = TestQueue::fifo().await;
    let table = baton_testkit::TestTable::create().await;
    let slack = baton_testkit::HttpRecorder::start().await.expect("slack");
    let azure = baton_testkit::HttpRecorder::start().await.expect("azure");
    azure.default_reply(
        RUNS,
        baton_testkit::Reply::json(
            200,
            serde_json::json!({"id": 981, "name": "queued", "state": "inProgress",
                "_links": {"web": {"href": RUN_URL}}}),
        ),
    );
    let locks = table.client(baton_testkit::fast_options());
    let mut settings = baton_worker::WorkerSettings::local(
        Config::from_toml_str(&build).unwrap(),
        &slack.url(),
        "http://127.0.0.1:9",
    );
    settings.azure_api_url = azure.url();
    let worker = baton_worker::Worker::new(locks.clone(), settings).expect("worker");
    let router = crate::listen::ListeningRouter::start_with(
        &queue.url,
        &[
            ("BATON_CONFIG", config_path.as_str()),
            ("AZURE_DEVOPS_HOOK_SECRET", AZURE_SECRET),
        ],
    )
    .await;

    // 1. The slash command is queued and the worker queues the Azure run.
    let mut ev = event("router-slack-command-function-url.json");
    let response_url = format!("{}/response/T0ACME/1001/e2e", slack.url());
    let body = with_form_field(&event_body(&ev), "response_url", &response_url);
    set_event_body(&mut ev, &body);
    sign_slack(&mut ev, now_secs());
    let headers = crate::e2e::headers_of(
        &ev,
        &[
            "content-type",
            "x-slack-request-timestamp",
            "x-slack-signature",
        ],
    );
    let (status, _, ack) = router.send("POST", "/slack/commands", &headers, body).await;
    assert_eq!(status, 200, "{ack}");
    let response = worker
        .handle(crate::e2e::sqs_event(queue.receive().await))
        .await;
    assert!(crate::e2e::failures(&response).is_empty(), "{response:?}");
    let lock = locks
        .status("build-router-plt")
        .await
        .unwrap()
        .expect("lock");
    assert_eq!(lock.status, baton_lock::LockStatus::InProgress);
    assert_eq!(lock.pipeline.as_ref().and_then(|p| p.run_id), Some(981));
    let queued = azure.requests_to(RUNS);
    assert_eq!(queued.len(), 1);
    let params = queued[0].json()["templateParameters"].clone();
    assert_eq!(params["lock_id"], lock.lock_id.as_str());
    let reply = slack.requests_to("/response/T0ACME/1001/e2e")[0].json();
    assert!(
        reply["text"].as_str().unwrap_or_default().contains(RUN_URL),
        "{reply}"
    );

    // 2. The run completes; the service hook names it as the example
    //    pipeline's `name:` does, with the subscription's credential.
    let hook = hook_event(|p| {
        p["resource"]["run"]["name"] = format!(
            "baton lock_key={} lock_id={} fence={}",
            lock.lock_key, lock.lock_id, lock.fence
        )
        .into();
    });
    let headers = crate::e2e::headers_of(&hook, &["content-type", "authorization"]);
    let (status, _, _) = router
        .send("POST", "/azure-devops/hook", &headers, event_body(&hook))
        .await;
    assert_eq!(status, 202);
    let response = worker
        .handle(crate::e2e::sqs_event(queue.receive().await))
        .await;
    assert!(crate::e2e::failures(&response).is_empty(), "{response:?}");

    // 3. The lock is completed and the channel hears it.
    let ended = locks
        .status("build-router-plt")
        .await
        .unwrap()
        .expect("lock");
    assert_eq!(ended.status, baton_lock::LockStatus::Completed);
    let posts = slack.requests_to("/api/chat.postMessage");
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0].json()["text"]
            .as_str()
            .unwrap_or_default()
            .contains("succeeded"),
        "{}",
        posts[0].json()
    );
    let _ = std::fs::remove_file(config_file);
}
