//! `POST /github/webhook` through the Lambda handler with the sample
//! `workflow_run` and `ping` deliveries and a real (local) SQS FIFO queue.

use baton_chatops::{Conclusion, QueueMessage};
use baton_router::{Router, Secret, Secrets, SqsQueue};
use serde_json::Value;

use crate::common::*;

const RUN: &str = "router-github-workflow-run.json";
const PING: &str = "router-github-ping.json";

/// The sample `workflow_run` delivery with its payload edited and re-signed.
fn run_event(edit: impl FnOnce(&mut Value)) -> Value {
    let mut ev = event(RUN);
    let mut payload: Value = serde_json::from_slice(&event_body(&ev)).expect("payload is JSON");
    edit(&mut payload);
    set_event_body(&mut ev, payload.to_string().as_bytes());
    sign_github(&mut ev);
    ev
}

#[tokio::test]
async fn completed_baton_run_is_queued_as_a_completion_in_the_lock_group() {
    let queue = TestQueue::fifo().await;
    // The sample is used byte for byte: its signature was made with the
    // test secret over exactly this body.
    let answer = invoke(&queue.router(), &event(RUN)).await;
    assert_eq!((answer.status, answer.body.as_str()), (202, ""));

    assert_eq!(queue.count().await, 1);
    let got = queue.receive().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].group_id.as_deref(), Some("build-router-plt"));
    assert_eq!(
        got[0].dedup_id.as_deref(),
        Some("7d2f0c1a9b3e4d5f8a6b1c2d3e4f5a6b-19440000001")
    );
    let QueueMessage::Completion(c) =
        QueueMessage::parse(&got[0].body).expect("worker can read it")
    else {
        panic!("expected a completion: {}", got[0].body);
    };
    assert_eq!(c.lock_key, "build-router-plt");
    assert_eq!(c.lock_id, "7d2f0c1a9b3e4d5f8a6b1c2d3e4f5a6b");
    assert_eq!(c.fence, 1_763_899_200_001);
    assert_eq!(c.conclusion, Conclusion::Success);
    assert_eq!(c.run_id, Some(19_440_000_001));
    assert_eq!(
        c.run_url.as_deref(),
        Some("https://github.com/acme/platform/actions/runs/19440000001")
    );
    assert_eq!(c.reported_by.as_deref(), Some("github:workflow_run"));
}

#[tokio::test]
async fn failed_and_odd_conclusions_are_queued_as_failures() {
    let queue = TestQueue::fifo().await;
    let router = queue.router();
    for (raw, id, want) in [
        (Value::from("failure"), 1u64, Conclusion::Failure),
        (Value::from("timed_out"), 2, Conclusion::TimedOut),
        (Value::from("cancelled"), 3, Conclusion::Cancelled),
        (Value::from("skipped"), 4, Conclusion::Failure),
        (Value::Null, 5, Conclusion::Failure),
    ] {
        let ev = run_event(|p| {
            p["workflow_run"]["conclusion"] = raw.clone();
            p["workflow_run"]["id"] = id.into();
        });
        assert_eq!(invoke(&router, &ev).await.status, 202, "{raw}");
        let got = queue.receive().await;
        assert_eq!(got.len(), 1, "{raw}");
        let QueueMessage::Completion(c) = QueueMessage::parse(&got[0].body).unwrap() else {
            panic!("expected a completion");
        };
        assert_eq!((c.conclusion, c.run_id), (want, Some(id)), "{raw}");
    }
}

#[tokio::test]
async fn bad_webhook_signature_is_401_and_not_queued() {
    let queue = TestQueue::fifo().await;
    let router = queue.router();
    // Body changed after signing.
    let mut ev = event(RUN);
    let body = String::from_utf8(event_body(&ev))
        .unwrap()
        .replace("success", "failure");
    set_event_body(&mut ev, body.as_bytes());
    let answer = invoke(&router, &ev).await;
    assert_eq!((answer.status, answer.body.as_str()), (401, ""));
    // Signed with another secret.
    let mut ev = event(RUN);
    let sig = baton_router::signature::github_signature(b"wrong", &event_body(&ev));
    set_header(&mut ev, "x-hub-signature-256", &sig);
    assert_eq!(invoke(&router, &ev).await.status, 401);
    // Unsigned.
    let mut ev = event(RUN);
    ev["headers"]
        .as_object_mut()
        .unwrap()
        .remove("x-hub-signature-256");
    assert_eq!(invoke(&router, &ev).await.status, 401);
    assert_eq!(queue.count().await, 0);
}

#[tokio::test]
async fn ping_other_events_other_actions_and_foreign_runs_are_204() {
    let queue = TestQueue::fifo().await;
    let router = queue.router();
    assert_eq!(invoke(&router, &event(PING)).await.status, 204);

    let mut push = event(RUN);
    set_header(&mut push, "x-github-event", "push");
    assert_eq!(invoke(&router, &push).await.status, 204);

    let requested = run_event(|p| p["action"] = "requested".into());
    assert_eq!(invoke(&router, &requested).await.status, 204);

    let foreign =
        run_event(|p| p["workflow_run"]["display_title"] = "Bump serde to 1.0.228".into());
    assert_eq!(invoke(&router, &foreign).await.status, 204);

    let half = run_event(|p| {
        p["workflow_run"]["display_title"] = "baton lock_key=build-router-plt lock_id=x".into();
    });
    assert_eq!(invoke(&router, &half).await.status, 204);
    assert_eq!(queue.count().await, 0);
}

#[tokio::test]
async fn webhook_body_that_is_not_json_is_400() {
    let queue = TestQueue::fifo().await;
    let mut ev = event(RUN);
    set_event_body(&mut ev, b"payload=%7B%22action%22%3A%22completed%22%7D");
    sign_github(&mut ev);
    assert_eq!(invoke(&queue.router(), &ev).await.status, 400);
    assert_eq!(queue.count().await, 0);
}

#[tokio::test]
async fn webhook_route_is_404_without_a_secret_and_503_when_sqs_is_down() {
    let queue = TestQueue::fifo().await;
    let secrets = Secrets {
        slack_signing: Secret::new(SLACK_SECRET),
        slack_signing_previous: None,
        github_webhook: None,
        azure_hook: None,
    };
    let router = Router::new(
        baton_chatops::Config::builtin(),
        secrets,
        SqsQueue::new(sqs_client(&queue.endpoint), &queue.url),
    );
    assert_eq!(invoke(&router, &event(RUN)).await.status, 404);
    assert_eq!(queue.count().await, 0);

    let endpoint = closed_loopback_url();
    let down = router_for(
        sqs_client(&endpoint),
        &format!("{endpoint}/000000000000/gone.fifo"),
    );
    assert_eq!(invoke(&down, &event(RUN)).await.status, 503);
}

// --- only the configured pipeline's own dispatched run is a completion ------

/// Answers `ev` with a 2xx that GitHub does not redeliver, and queues nothing.
async fn assert_refused(queue: &TestQueue, router: &Router<SqsQueue>, ev: &Value, what: &str) {
    let answer = invoke(router, ev).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (204, ""),
        "{what}: answered, not queued"
    );
    assert_eq!(queue.count().await, 0, "{what}: nothing queued");
}

#[tokio::test]
async fn run_of_another_event_with_a_forged_title_is_not_a_completion() {
    // Anyone who can push to the repository (or open a pull request from a
    // fork) chooses the run's title: a commit message or a PR title becomes
    // `display_title` for those runs.
    let queue = TestQueue::fifo().await;
    let router = queue.router();
    for event in [
        "push",
        "pull_request",
        "pull_request_target",
        "schedule",
        "workflow_run",
        "repository_dispatch",
    ] {
        let ev = run_event(|p| {
            p["workflow_run"]["event"] = event.into();
            p["workflow_run"]["head_repository"] =
                serde_json::json!({"full_name": "mallory/platform"});
        });
        assert_refused(&queue, &router, &ev, event).await;
    }
    let no_event = run_event(|p| {
        p["workflow_run"].as_object_mut().unwrap().remove("event");
    });
    assert_refused(&queue, &router, &no_event, "no event").await;
}

#[tokio::test]
async fn run_of_another_repository_is_not_a_completion() {
    let queue = TestQueue::fifo().await;
    let router = queue.router();
    for full_name in [
        "mallory/platform",
        "acme/platform-fork",
        "acme/platform/x",
        "platform",
        "",
    ] {
        let ev = run_event(|p| p["repository"]["full_name"] = full_name.into());
        assert_refused(&queue, &router, &ev, full_name).await;
    }
    let no_repository = run_event(|p| {
        p.as_object_mut().unwrap().remove("repository");
    });
    assert_refused(&queue, &router, &no_repository, "no repository").await;
}

#[tokio::test]
async fn other_workflow_of_the_configured_repository_is_not_a_completion() {
    let queue = TestQueue::fifo().await;
    let router = queue.router();
    for path in [
        ".github/workflows/release.yml",
        ".github/workflows/build.yml.bak",
        ".github/workflows/sub/build.yml",
        "evil/.github/workflows/build.yml",
        "build.yml",
        ".github/workflows/BUILD.yml",
        "",
    ] {
        let ev = run_event(|p| p["workflow_run"]["path"] = path.into());
        assert_refused(&queue, &router, &ev, path).await;
    }
    let no_path = run_event(|p| {
        p["workflow_run"].as_object_mut().unwrap().remove("path");
    });
    assert_refused(&queue, &router, &no_path, "no path").await;
}

#[tokio::test]
async fn completion_names_the_repository_and_workflow_of_the_run() {
    let queue = TestQueue::fifo().await;
    let router = queue.router();
    // GitHub's names are case-insensitive; the completion carries the
    // configured spelling, the one a grant records.
    let ev = run_event(|p| p["repository"]["full_name"] = "ACME/Platform".into());
    assert_eq!(invoke(&router, &ev).await.status, 202);
    // The configured repository's other pipeline (`/deploy`) is baton's too.
    let deploy = run_event(|p| {
        p["workflow_run"]["path"] = ".github/workflows/deploy.yml".into();
        p["workflow_run"]["id"] = 19_440_000_002u64.into();
    });
    assert_eq!(invoke(&router, &deploy).await.status, 202);

    let got = queue.receive().await;
    assert_eq!(got.len(), 2);
    let completions: Vec<_> = got
        .iter()
        .map(|m| match QueueMessage::parse(&m.body) {
            Ok(QueueMessage::Completion(c)) => c,
            other => panic!("expected a completion, got {other:?}"),
        })
        .collect();
    let by_run = |id: u64| completions.iter().find(|c| c.run_id == Some(id)).unwrap();
    let build = by_run(19_440_000_001);
    assert_eq!(build.repository.as_deref(), Some("acme/platform"));
    assert_eq!(build.workflow.as_deref(), Some("build.yml"));
    let deploy = by_run(19_440_000_002);
    assert_eq!(deploy.repository.as_deref(), Some("acme/platform"));
    assert_eq!(deploy.workflow.as_deref(), Some("deploy.yml"));
}

#[tokio::test]
async fn rerun_of_a_baton_run_is_still_forwarded_for_the_worker_to_judge() {
    let queue = TestQueue::fifo().await;
    let ev = run_event(|p| p["workflow_run"]["run_attempt"] = 2.into());
    assert_eq!(invoke(&queue.router(), &ev).await.status, 202);
    let got = queue.receive().await;
    assert_eq!(got.len(), 1);
    let Ok(QueueMessage::Completion(c)) = QueueMessage::parse(&got[0].body) else {
        panic!("expected a completion: {}", got[0].body);
    };
    assert_eq!(
        (c.run_id, c.repository.as_deref(), c.workflow.as_deref()),
        (
            Some(19_440_000_001),
            Some("acme/platform"),
            Some("build.yml")
        )
    );
}

#[tokio::test]
async fn pipelines_come_from_the_command_config() {
    let queue = TestQueue::fifo().await;
    let toml = baton_chatops::Config::BUILTIN_TOML
        .replace(
            "repo = \"acme/platform\"\nworkflow = \"build.yml\"",
            "repo = \"acme/ci\"\nworkflow = \"pipeline.yaml\"",
        )
        .replace(
            "repo = \"acme/platform\"\nworkflow = \"deploy.yml\"",
            "repo = \"acme/ci\"\nworkflow = \"161335\"",
        );
    assert!(!toml.contains("acme/platform"), "both pipelines moved");
    let config = baton_chatops::Config::from_toml_str(&toml).expect("valid config");
    let router = Router::new(
        config,
        test_secrets(),
        SqsQueue::new(sqs_client(&queue.endpoint), &queue.url),
    );
    // The sample names acme/platform, which this config does not know.
    assert_refused(&queue, &router, &event(RUN), "acme/platform").await;
    let wrong_file = run_event(|p| {
        p["repository"]["full_name"] = "acme/ci".into();
        p["workflow_run"]["workflow_id"] = 1.into();
    });
    assert_refused(&queue, &router, &wrong_file, "acme/ci build.yml").await;

    // A workflow configured by file name is matched on the run's path...
    let by_file = run_event(|p| {
        p["repository"]["full_name"] = "acme/ci".into();
        p["workflow_run"]["path"] = ".github/workflows/pipeline.yaml".into();
        p["workflow_run"]["workflow_id"] = 1.into();
    });
    assert_eq!(invoke(&router, &by_file).await.status, 202);
    // ...one configured by id on the run's workflow id.
    let by_id = run_event(|p| {
        p["repository"]["full_name"] = "acme/ci".into();
        p["workflow_run"]["id"] = 7u64.into();
    });
    assert_eq!(invoke(&router, &by_id).await.status, 202);
    let got = queue.receive().await;
    let workflows: std::collections::BTreeSet<_> = got
        .iter()
        .map(|m| match QueueMessage::parse(&m.body) {
            Ok(QueueMessage::Completion(c)) => (c.repository.unwrap(), c.workflow.unwrap()),
            other => panic!("expected a completion, got {other:?}"),
        })
        .collect();
    assert_eq!(
        workflows,
        [
            ("acme/ci".to_string(), "161335".to_string()),
            ("acme/ci".to_string(), "pipeline.yaml".to_string()),
        ]
        .into()
    );
}
