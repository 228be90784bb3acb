//! Signing secrets as an operator sets them: a second one accepted while
//! the first is rotated, and values read from SSM with the newline an
//! editor or `$(cat file)` leaves behind. Through the `--listen` binary,
//! over signed HTTP on loopback.

use crate::common::*;
use crate::listen::{ListeningRouter, signed_command_with};

/// The secret being rotated away from (or to).
const OTHER_SECRET: &str = "0ld-signing-secret-being-rotated";

/// Sends `/build router plt` signed with `secret`; the HTTP status.
async fn command_signed_with(router: &ListeningRouter, secret: &str, trigger_id: &str) -> u16 {
    let (headers, body) = signed_command_with(secret, "router plt", trigger_id);
    router
        .send("POST", "/slack/commands", &headers, body)
        .await
        .0
}

/// The trigger ids of the commands that reached the queue.
async fn queued(queue: &TestQueue) -> Vec<String> {
    let mut ids: Vec<String> = queue
        .receive()
        .await
        .into_iter()
        .filter_map(|m| m.dedup_id)
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn during_a_rotation_either_signing_secret_is_accepted_and_no_other() {
    let queue = TestQueue::fifo().await;
    let router = ListeningRouter::start_with(
        &queue.url,
        &[("SLACK_SIGNING_SECRET_PREVIOUS", OTHER_SECRET)],
    )
    .await;

    assert_eq!(
        command_signed_with(&router, SLACK_SECRET, "3001.1.current").await,
        200
    );
    assert_eq!(
        command_signed_with(&router, OTHER_SECRET, "3001.2.previous").await,
        200
    );
    assert_eq!(
        command_signed_with(&router, "a-third-secret-nobody-set", "3001.3.forged").await,
        401
    );
    assert_eq!(queued(&queue).await, ["3001.1.current", "3001.2.previous"]);
}

#[tokio::test]
async fn without_a_second_secret_only_the_signing_secret_is_accepted() {
    let queue = TestQueue::fifo().await;
    let router = ListeningRouter::start(&queue.url).await;

    assert_eq!(
        command_signed_with(&router, OTHER_SECRET, "3002.1.previous").await,
        401
    );
    assert_eq!(
        command_signed_with(&router, SLACK_SECRET, "3002.2.current").await,
        200
    );
    assert_eq!(queued(&queue).await, ["3002.2.current"]);
}

#[tokio::test]
async fn secrets_read_from_ssm_lose_the_whitespace_around_them() {
    let ssm = ssm_client(&sqs_endpoint());
    let prefix = format!("/baton-test/{}", uuid::Uuid::new_v4().simple());
    let current = format!("{prefix}/slack/signing-secret");
    let previous = format!("{prefix}/slack/signing-secret-previous");
    for (name, value) in [
        (&current, format!("{SLACK_SECRET}\n")),
        (&previous, format!("  {OTHER_SECRET} \r\n")),
    ] {
        ssm.put_parameter()
            .name(name)
            .value(&value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("PutParameter on the local server");
        let stored = ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .expect("GetParameter on the local server");
        assert_eq!(
            stored.parameter.and_then(|p| p.value),
            Some(value),
            "the server keeps the whitespace, so the router must drop it"
        );
    }
    let queue = TestQueue::fifo().await;
    let router = ListeningRouter::start_with(
        &queue.url,
        &[
            ("SLACK_SIGNING_SECRET_PARAM", current.as_str()),
            ("SLACK_SIGNING_SECRET_PREVIOUS_PARAM", previous.as_str()),
        ],
    )
    .await;

    assert_eq!(
        command_signed_with(&router, SLACK_SECRET, "3003.1.current").await,
        200
    );
    assert_eq!(
        command_signed_with(&router, OTHER_SECRET, "3003.2.previous").await,
        200
    );
    let with_newline = format!("{SLACK_SECRET}\n");
    assert_eq!(
        command_signed_with(&router, &with_newline, "3003.3.newline").await,
        401
    );
    assert_eq!(queued(&queue).await, ["3003.1.current", "3003.2.previous"]);
}
