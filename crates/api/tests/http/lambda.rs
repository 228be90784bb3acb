//! The binary in Lambda mode, against a stand-in Lambda Runtime API on
//! loopback: Function URL events (a base64 body, a percent-encoded key in
//! `rawPath`, a request without a token) go through `main`'s
//! `lambda_http::run` wiring to DynamoDB Local, and the answers come back in
//! the shape Lambda expects.

use std::time::Duration;

use base64::Engine as _;
use baton_testkit::{HttpRecorder, Reply};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::common::*;

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

/// A Function URL (payload 2.0) event.
fn function_url_event(
    method: &str,
    raw_path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Value {
    let mut headers = json!({
        "content-type": "application/json",
        "host": "abcdefghijklmnopqrstuvwxyz0.lambda-url.ca-central-1.on.aws",
        "x-forwarded-proto": "https",
    });
    if let Some(token) = token {
        headers["authorization"] = json!(format!("Bearer {token}"));
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdefghijklmnopqrstuvwxyz0",
            "domainName": "abcdefghijklmnopqrstuvwxyz0.lambda-url.ca-central-1.on.aws",
            "domainPrefix": "abcdefghijklmnopqrstuvwxyz0",
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "54.0.0.1", "userAgent": "curl/8"},
            "requestId": "8f5a2c1e-0000-4000-8000-000000000001",
            "routeKey": "$default",
            "stage": "$default",
            "time": "03/Dec/2026:08:00:00 +0000",
            "timeEpoch": 1796284800000u64
        },
        "body": body.map(|b| base64::engine::general_purpose::STANDARD.encode(b.to_string())),
        "isBase64Encoded": body.is_some(),
    })
}

fn invocation(id: &str, event: Value) -> Reply {
    let deadline_ms = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30_000)
        .to_string();
    Reply::json(200, event)
        .header("lambda-runtime-aws-request-id", id)
        .header("lambda-runtime-deadline-ms", &deadline_ms)
        .header(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:baton-api",
        )
}

#[tokio::test]
async fn lambda_mode_answers_function_url_events_through_the_runtime_api() {
    // The lock table (and its history table) on DynamoDB Local; no server.
    let api = Server::start().await;
    let runtime = HttpRecorder::start().await.expect("runtime api stand-in");
    runtime.script(
        NEXT,
        [
            invocation(
                "req-1",
                function_url_event(
                    "POST",
                    "/v1/locks/deploy/lambda/acquire",
                    Some(CI),
                    Some(&json!({"owner": "lambda-run", "ttl": "5m"})),
                ),
            ),
            invocation(
                "req-2",
                function_url_event("GET", "/v1/locks/deploy%2Flambda", Some(READER), None),
            ),
            invocation("req-3", function_url_event("GET", "/v1/locks", None, None)),
        ],
    );
    runtime.default_reply(
        NEXT,
        Reply::new(200, "{}").delayed(Duration::from_secs(120)),
    );

    let addr = runtime.url().trim_start_matches("http://").to_string();
    let _child = Command::new(env!("CARGO_BIN_EXE_baton-api"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "baton-api")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/baton-api")
        .env("BATON_TABLE", &api.table.name)
        .env("BATON_API_TOKENS", tokens_json())
        .env("AWS_ENDPOINT_URL_DYNAMODB", &api.table.endpoint)
        .env("AWS_ACCESS_KEY_ID", "baton")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("spawn baton-api");

    let answer = |id: &'static str| {
        let runtime = &runtime;
        async move {
            let path = format!("/2018-06-01/runtime/invocation/{id}/response");
            let posted = runtime.wait_for(&path, 1, Duration::from_secs(30)).await;
            assert_eq!(
                posted.len(),
                1,
                "invocation {id} answered: {:?}",
                runtime.requests()
            );
            let resp = posted[0].json();
            let body: Value =
                serde_json::from_str(resp["body"].as_str().expect("text body")).expect("JSON body");
            (resp, body)
        }
    };

    let (resp, granted) = answer("req-1").await;
    assert_eq!(resp["statusCode"], 200, "{resp}");
    assert_eq!(resp["headers"]["content-type"], "application/json");
    assert_eq!(granted["lockKey"], "deploy/lambda");
    let stored = api
        .record("deploy/lambda")
        .await
        .expect("granted in DynamoDB");
    assert_eq!(stored.lock_id, granted["lockId"].as_str().unwrap());
    assert_eq!(stored.host.as_deref(), Some("api-token:ci"));

    let (resp, seen) = answer("req-2").await;
    assert_eq!(resp["statusCode"], 200, "{resp}");
    assert_eq!(seen["lockedBy"], "lambda-run");
    assert!(seen.get("lockId").is_none());

    let (resp, refused) = answer("req-3").await;
    assert_eq!(resp["statusCode"], 401, "{resp}");
    assert_eq!(refused["error"], "unauthenticated");
}
