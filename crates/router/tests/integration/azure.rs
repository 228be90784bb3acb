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
