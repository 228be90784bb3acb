//! `POST /slack/commands` through the Lambda handler, with real
//! `lambda_http` request shapes and a real (local) SQS FIFO queue.

use std::time::Instant;

use baton_chatops::QueueMessage;
use baton_router::routes::{COULD_NOT_QUEUE, SLACK_MAX_BODY};

use crate::common::*;

const FUNCTION_URL: &str = "router-slack-command-function-url.json";
const HTTP_API: &str = "router-slack-command-apigw-http.json";
const REST_API: &str = "router-slack-command-apigw-rest.json";

fn ack_text(answer: &Answered) -> String {
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    let v = answer.json();
    assert_eq!(v["response_type"], "ephemeral", "{v}");
    v["text"].as_str().expect("text fallback").to_string()
}

#[tokio::test]
async fn base64_function_url_command_is_queued_once_with_fifo_ids() {
    let queue = TestQueue::fifo().await;
    let router = queue.router();
    let ev = slack_event(FUNCTION_URL, None);
    assert_eq!(
        ev["isBase64Encoded"], true,
        "this sample must exercise a base64 body"
    );

    let before = now_ms();
    let answer = invoke(&router, &ev).await;
    let after = now_ms();

    let text = ack_text(&answer);
    assert!(text.contains("/build router plt"), "{text}");
    assert_eq!(queue.count().await, 1, "exactly one message");
    let got = queue.receive().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].group_id.as_deref(), Some("build-router-plt"));
    assert_eq!(got[0].dedup_id.as_deref(), Some("1001.2002.alice"));
    let QueueMessage::Command(c) = QueueMessage::parse(&got[0].body).expect("worker can read it")
    else {
        panic!("expected a command: {}", got[0].body);
    };
    assert_eq!(c.command, "/build");
    assert_eq!(c.text, "router plt");
    assert_eq!(c.user_id, "U0ALICE");
    assert_eq!(c.user_name.as_deref(), Some("alice"));
    assert_eq!(c.channel_id, "C0BUILDS");
    assert_eq!(c.team_id, "T0ACME");
    assert_eq!(
        c.enterprise_id, None,
        "Slack's empty enterprise_id is dropped"
    );
    assert_eq!(
        c.response_url,
        "https://hooks.slack.com/commands/T0ACME/1001/sample"
    );
    assert_eq!(c.trigger_id, "1001.2002.alice");
    assert!(
        (before..=after).contains(&c.received_at),
        "{} not in {before}..={after}",
        c.received_at
    );
}

#[tokio::test]
async fn plain_body_http_api_command_is_queued() {
    let queue = TestQueue::fifo().await;
    let ev = slack_event(HTTP_API, None);
    assert_eq!(ev["isBase64Encoded"], false);
    let answer = invoke(&queue.router(), &ev).await;
    assert!(ack_text(&answer).contains("--dry-run"));
    let got = queue.receive().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].group_id.as_deref(), Some("build-router-plt"));
    assert_eq!(got[0].dedup_id.as_deref(), Some("1001.2003.alice"));
}

#[tokio::test]
async fn rest_api_stage_path_status_is_grouped_by_command_name() {
    let queue = TestQueue::fifo().await;
    let ev = slack_event(REST_API, None);
    // lambda_http puts the REST API stage in front of the path.
    assert_eq!(lambda_request(&ev).uri().path(), "/prod/slack/commands");
    let answer = invoke(&queue.router(), &ev).await;
    assert!(ack_text(&answer).contains("/build status"));
    let got = queue.receive().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].group_id.as_deref(), Some("build"));
}

#[tokio::test]
async fn forged_signature_is_401_without_detail_and_not_queued() {
    let queue = TestQueue::fifo().await;
    let mut ev = slack_event(HTTP_API, None);
    // Signed for one text, delivered with another.
    let tampered = with_form_field(&event_body(&ev), "text", "router prod");
    set_event_body(&mut ev, &tampered);
    let answer = invoke(&queue.router(), &ev).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body, "", "no detail");
    assert_eq!(queue.count().await, 0);

    // A signature made with another secret.
    let mut ev = slack_event(FUNCTION_URL, None);
    let ts = now_secs().to_string();
    let sig = baton_router::signature::slack_signature(b"not the secret", &ts, &event_body(&ev));
    set_header(&mut ev, "x-slack-request-timestamp", &ts);
    set_header(&mut ev, "x-slack-signature", &sig);
    assert_eq!(invoke(&queue.router(), &ev).await.status, 401);

    // No signature at all.
    let mut ev = event(FUNCTION_URL);
    ev["headers"]
        .as_object_mut()
        .unwrap()
        .remove("x-slack-signature");
    assert_eq!(invoke(&queue.router(), &ev).await.status, 401);
    assert_eq!(queue.count().await, 0);
}

#[tokio::test]
async fn stale_timestamp_is_401_even_when_correctly_signed() {
    let queue = TestQueue::fifo().await;
    let router = queue.router();
    let mut ev = event(FUNCTION_URL);
    sign_slack(&mut ev, now_secs() - 301);
    let answer = invoke(&router, &ev).await;
    assert_eq!((answer.status, answer.body.as_str()), (401, ""));
    // The shipped sample itself is long stale.
    assert_eq!(invoke(&router, &event(FUNCTION_URL)).await.status, 401);
    // From the future counts too.
    sign_slack(&mut ev, now_secs() + 400);
    assert_eq!(invoke(&router, &ev).await.status, 401);
    assert_eq!(queue.count().await, 0);
    // Control: the same event signed now is accepted.
    sign_slack(&mut ev, now_secs() - 5);
    assert_eq!(invoke(&router, &ev).await.status, 200);
    assert_eq!(queue.count().await, 1);
}

#[tokio::test]
async fn wrong_content_type_is_400() {
    let queue = TestQueue::fifo().await;
    let mut ev = slack_event(HTTP_API, None);
    set_header(&mut ev, "content-type", "application/json");
    let answer = invoke(&queue.router(), &ev).await;
    assert_eq!(answer.status, 400);
    let mut ev = slack_event(HTTP_API, None);
    ev["headers"]
        .as_object_mut()
        .unwrap()
        .remove("content-type");
    assert_eq!(invoke(&queue.router(), &ev).await.status, 400);
    // Parameters and case do not matter.
    let mut ev = slack_event(HTTP_API, None);
    set_header(
        &mut ev,
        "content-type",
        "Application/x-www-form-urlencoded; charset=utf-8",
    );
    assert_eq!(invoke(&queue.router(), &ev).await.status, 200);
    assert_eq!(queue.count().await, 1);
}

#[tokio::test]
async fn oversize_body_is_413_and_the_limit_itself_is_fine() {
    let queue = TestQueue::fifo().await;
    let router = queue.router();
    let base = event_body(&event(FUNCTION_URL));
    let padded = |total: usize| {
        let unpadded = with_form_field(&base, "padding", "").len();
        with_form_field(&base, "padding", &"x".repeat(total - unpadded))
    };

    let mut ev = event(FUNCTION_URL);
    set_event_body(&mut ev, &padded(SLACK_MAX_BODY + 1));
    assert_eq!(event_body(&ev).len(), SLACK_MAX_BODY + 1);
    sign_slack(&mut ev, now_secs());
    assert_eq!(invoke(&router, &ev).await.status, 413);
    assert_eq!(queue.count().await, 0);

    set_event_body(&mut ev, &padded(SLACK_MAX_BODY));
    sign_slack(&mut ev, now_secs());
    assert_eq!(invoke(&router, &ev).await.status, 200);
    assert_eq!(queue.count().await, 1);
}

#[tokio::test]
async fn ssl_check_is_200_empty_and_not_queued() {
    let queue = TestQueue::fifo().await;
    let mut ev = event(HTTP_API);
    set_event_body(&mut ev, b"ssl_check=1&token=gIkuvaNzQIHg97ATvDxqgjtO");
    sign_slack(&mut ev, now_secs());
    let answer = invoke(&queue.router(), &ev).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, ""));
    assert_eq!(queue.count().await, 0);
}

#[tokio::test]
async fn unknown_component_gets_the_usage_error_at_once_and_is_not_queued() {
    let queue = TestQueue::fifo().await;
    let ev = slack_event(FUNCTION_URL, Some("toaster plt"));
    let answer = invoke(&queue.router(), &ev).await;
    let text = ack_text(&answer);
    assert!(text.contains("doesn't know component `toaster`"), "{text}");
    assert!(text.contains("Usage:"), "{text}");
    assert_eq!(queue.count().await, 0);

    let ev = slack_event(FUNCTION_URL, Some("router moon"));
    let text = ack_text(&invoke(&queue.router(), &ev).await);
    assert!(text.contains("doesn't know environment `moon`"), "{text}");
    assert_eq!(queue.count().await, 0);
}

#[tokio::test]
async fn signed_body_that_is_not_a_command_is_400() {
    let queue = TestQueue::fifo().await;
    let mut ev = event(HTTP_API);
    set_event_body(&mut ev, b"team_id=T0ACME&user_id=U0ALICE");
    sign_slack(&mut ev, now_secs());
    assert_eq!(invoke(&queue.router(), &ev).await.status, 400);
    assert_eq!(queue.count().await, 0);
}

#[tokio::test]
async fn sqs_unavailable_still_answers_200_quickly_with_could_not_queue() {
    let endpoint = closed_loopback_url();
    let url = format!("{endpoint}/000000000000/gone.fifo");
    let router = router_for(sqs_client(&endpoint), &url);
    let ev = slack_event(FUNCTION_URL, None);
    let started = Instant::now();
    let answer = invoke(&router, &ev).await;
    let elapsed = started.elapsed();
    let text = ack_text(&answer);
    assert_eq!(text, COULD_NOT_QUEUE);
    assert!(text.contains("could not queue your command, try again"));
    assert!(
        elapsed.as_millis() < 2500,
        "Slack gives 3 s; took {elapsed:?}"
    );
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let queue = TestQueue::fifo().await;
    let router = queue.router();
    let mut ev = slack_event(FUNCTION_URL, None);
    ev["rawPath"] = "/slack/command".into();
    ev["requestContext"]["http"]["path"] = "/slack/command".into();
    assert_eq!(invoke(&router, &ev).await.status, 404);
    ev["rawPath"] = "/".into();
    assert_eq!(invoke(&router, &ev).await.status, 404);

    let mut ev = slack_event(FUNCTION_URL, None);
    ev["requestContext"]["http"]["method"] = "GET".into();
    let answer = invoke(&router, &ev).await;
    assert_eq!(answer.status, 405);
    assert_eq!(queue.count().await, 0);
}

#[tokio::test]
async fn a_repeated_trigger_id_is_deduplicated_by_the_fifo_queue() {
    let queue = TestQueue::fifo().await;
    let router = queue.router();
    let first = slack_event(FUNCTION_URL, None);
    assert_eq!(invoke(&router, &first).await.status, 200);
    // The same invocation delivered again (same trigger_id), re-signed.
    let again = slack_event(FUNCTION_URL, None);
    assert_eq!(invoke(&router, &again).await.status, 200);
    assert_eq!(queue.count().await, 1, "SQS dropped the duplicate");
    // A different trigger_id is a different invocation.
    let mut other = event(FUNCTION_URL);
    let body = with_form_field(&event_body(&other), "trigger_id", "1001.2999.alice");
    set_event_body(&mut other, &body);
    sign_slack(&mut other, now_secs());
    assert_eq!(invoke(&router, &other).await.status, 200);
    assert_eq!(queue.count().await, 2);
}
