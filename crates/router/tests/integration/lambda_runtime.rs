//! The binary in Lambda mode, against a stand-in Lambda Runtime API: proves
//! `main`'s `lambda_http::run` wiring, that a base64 Function URL event is
//! decoded before verification, and the response shape Lambda gets back.

use std::time::Duration;

use baton_testkit::{HttpRecorder, Reply};
use serde_json::Value;
use tokio::process::Command;

use crate::common::*;

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

#[tokio::test]
async fn lambda_mode_answers_a_function_url_event_through_the_runtime_api() {
    let queue = TestQueue::fifo().await;
    let runtime = HttpRecorder::start().await.expect("runtime api stand-in");
    let ev = slack_event("router-slack-command-function-url.json", None);
    let deadline_ms = (now_ms() + 30_000).to_string();
    runtime.script(
        NEXT,
        [Reply::json(200, ev)
            .header("lambda-runtime-aws-request-id", "req-1")
            .header("lambda-runtime-deadline-ms", &deadline_ms)
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:baton-router",
            )],
    );
    // Later polls for work wait (as the real API does) until the test ends.
    runtime.default_reply(
        NEXT,
        Reply::new(200, "{}").delayed(Duration::from_secs(120)),
    );

    let addr = runtime.url().trim_start_matches("http://").to_string();
    let _child = Command::new(env!("CARGO_BIN_EXE_baton-router"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "baton-router")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/baton-router")
        .env("BATON_QUEUE_URL", &queue.url)
        .env("SLACK_SIGNING_SECRET", SLACK_SECRET)
        .env("AWS_ENDPOINT_URL", sqs_endpoint())
        .env("AWS_ACCESS_KEY_ID", "baton")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("spawn baton-router");

    let path = "/2018-06-01/runtime/invocation/req-1/response";
    let posted = runtime.wait_for(path, 1, Duration::from_secs(30)).await;
    assert_eq!(
        posted.len(),
        1,
        "the function answered invocation req-1: {:?}",
        runtime.requests()
    );
    let resp = posted[0].json();
    assert_eq!(resp["statusCode"], 200, "{resp}");
    assert_eq!(resp["isBase64Encoded"], false, "{resp}");
    assert_eq!(
        resp["headers"]["content-type"], "application/json",
        "{resp}"
    );
    let body: Value =
        serde_json::from_str(resp["body"].as_str().expect("text body")).expect("JSON body");
    assert_eq!(body["response_type"], "ephemeral");
    assert!(
        body["text"].as_str().unwrap().contains("/build router plt"),
        "{body}"
    );

    let got = queue.receive().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].group_id.as_deref(), Some("build-router-plt"));
    assert!(
        runtime
            .requests_to("/2018-06-01/runtime/init/error")
            .is_empty()
    );
}
