//! Shared helpers: a fresh FIFO queue on the local SQS server, a router
//! wired to it, and the sample Lambda events from `events/`, re-signed with
//! a current timestamp.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use base64::Engine as _;
use baton_chatops::Config;
use baton_router::signature::{github_signature, slack_signature};
use baton_router::{Router, Secret, Secrets, SqsQueue, queue};
use serde_json::Value;

/// Slack's published test signing secret; the sample events are signed with it.
pub const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
/// GitHub's documented example webhook secret; the sample events use it.
pub const GITHUB_SECRET: &str = "It's a Secret to Everybody";
/// The credential the sample Azure DevOps service hook sends (basic auth).
pub const AZURE_SECRET: &str = "azure-hook-test-secret";

/// The local SQS(-compatible) server: `BATON_TEST_SQS_ENDPOINT`, default
/// `http://127.0.0.1:4566` (started by `tests/tooling/sqs-local.sh start`).
pub fn sqs_endpoint() -> String {
    let endpoint = std::env::var("BATON_TEST_SQS_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:4566".to_string());
    assert!(
        endpoint.starts_with("http://127.")
            || endpoint.starts_with("http://localhost")
            || endpoint.starts_with("http://[::1]"),
        "tests only talk to loopback; got SQS endpoint {endpoint}"
    );
    endpoint
}

fn credentials() -> Credentials {
    Credentials::new("baton", "local", None, None, "baton-router-tests")
}

/// An SQS client for `endpoint` with dummy credentials and the router's own
/// timeouts and retries.
pub fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    let conf = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials())
        .endpoint_url(endpoint)
        .http_client(baton_runtime::sdk::http_client())
        .timeout_config(queue::timeout_config())
        .retry_config(queue::retry_config())
        .build();
    aws_sdk_sqs::Client::from_conf(conf)
}

/// An SQS client for the test's own set-up and checks (creating queues,
/// reading what the router sent): generous timeouts, because a busy local
/// server must not fail a test for reasons the router is not responsible for.
fn observer_sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    let conf = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials())
        .endpoint_url(endpoint)
        .http_client(baton_runtime::sdk::http_client())
        .timeout_config(
            aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
                .operation_timeout(std::time::Duration::from_secs(30))
                .build(),
        )
        .build();
    aws_sdk_sqs::Client::from_conf(conf)
}

/// An SSM client for the same local server (moto serves every service).
pub fn ssm_client(endpoint: &str) -> aws_sdk_ssm::Client {
    let conf = aws_sdk_ssm::Config::builder()
        .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
        .region(aws_sdk_ssm::config::Region::new("us-east-1"))
        .credentials_provider(credentials())
        .endpoint_url(endpoint)
        .http_client(baton_runtime::sdk::http_client())
        .build();
    aws_sdk_ssm::Client::from_conf(conf)
}

/// A message as the worker would receive it.
#[derive(Debug)]
pub struct Received {
    pub message_id: String,
    /// System attributes by name (`MessageGroupId`, `ApproximateReceiveCount`…).
    pub attributes: std::collections::HashMap<String, String>,
    pub body: String,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

/// A uniquely named FIFO queue on the local SQS server.
pub struct TestQueue {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
    pub endpoint: String,
}

impl TestQueue {
    pub async fn fifo() -> TestQueue {
        let endpoint = sqs_endpoint();
        let client = observer_sqs_client(&endpoint);
        let name = format!("baton-router-test-{}.fifo", uuid::Uuid::new_v4().simple());
        let out = client
            .create_queue()
            .queue_name(&name)
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(QueueAttributeName::ContentBasedDeduplication, "false")
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "could not create a FIFO queue on the local SQS server at {endpoint}: {}\n\
                     (start it with `tests/tooling/sqs-local.sh start`)",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
            });
        TestQueue {
            client,
            url: out.queue_url.expect("CreateQueue returns a URL"),
            endpoint,
        }
    }

    /// Messages waiting plus messages in flight.
    pub async fn count(&self) -> u64 {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("GetQueueAttributes");
        let attrs = out.attributes.unwrap_or_default();
        let n = |k: QueueAttributeName| -> u64 {
            attrs.get(&k).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        n(QueueAttributeName::ApproximateNumberOfMessages)
            + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
    }

    /// Receives everything visible (up to 10), with FIFO ids, and deletes it
    /// (a FIFO group delivers nothing more while a message is in flight).
    /// The router has already been answered by SQS when its handler returns,
    /// so no waiting is involved.
    pub async fn receive(&self) -> Vec<Received> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("ReceiveMessage");
        let mut received = Vec::new();
        for m in out.messages.unwrap_or_default() {
            if let Some(handle) = &m.receipt_handle {
                self.client
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("DeleteMessage");
            }
            let attrs = m.attributes.unwrap_or_default();
            received.push(Received {
                message_id: m.message_id.unwrap_or_default(),
                attributes: attrs
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                    .collect(),
                body: m.body.unwrap_or_default(),
                group_id: attrs
                    .get(&MessageSystemAttributeName::MessageGroupId)
                    .cloned(),
                dedup_id: attrs
                    .get(&MessageSystemAttributeName::MessageDeduplicationId)
                    .cloned(),
            });
        }
        received
    }

    /// A router sending to this queue, with the built-in command config and
    /// both test secrets.
    pub fn router(&self) -> Router<SqsQueue> {
        router_for(sqs_client(&self.endpoint), &self.url)
    }
}

pub fn test_secrets() -> Secrets {
    Secrets {
        slack_signing: Secret::new(SLACK_SECRET),
        slack_signing_previous: None,
        github_webhook: Some(Secret::new(GITHUB_SECRET)),
        azure_hook: Some(Secret::new(AZURE_SECRET)),
    }
}

pub fn router_for(client: aws_sdk_sqs::Client, url: &str) -> Router<SqsQueue> {
    Router::new(
        Config::builtin(),
        test_secrets(),
        SqsQueue::new(client, url),
    )
}

/// A URL on loopback where nothing listens (a port just released).
pub fn closed_loopback_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

pub fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// A sample event from the repository's `events/` folder.
pub fn event(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Sets header `name` (matched case-insensitively, keeping the event's own
/// spelling) in `headers` and, for REST API events, `multiValueHeaders`.
pub fn set_header(event: &mut Value, name: &str, value: &str) {
    for field in ["headers", "multiValueHeaders"] {
        let Some(map) = event.get_mut(field).and_then(Value::as_object_mut) else {
            continue;
        };
        let key = map
            .keys()
            .find(|k| k.eq_ignore_ascii_case(name))
            .cloned()
            .unwrap_or_else(|| name.to_string());
        let v = if field == "multiValueHeaders" {
            Value::from(vec![value])
        } else {
            Value::from(value)
        };
        map.insert(key, v);
    }
}

/// The event's body bytes as the caller sent them (base64 undone).
pub fn event_body(event: &Value) -> Vec<u8> {
    let body = event["body"].as_str().unwrap_or_default();
    if event["isBase64Encoded"].as_bool() == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("sample event body is base64")
    } else {
        body.as_bytes().to_vec()
    }
}

/// Replaces the event's body, keeping its encoding.
pub fn set_event_body(event: &mut Value, body: &[u8]) {
    let encoded = if event["isBase64Encoded"].as_bool() == Some(true) {
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        String::from_utf8(body.to_vec()).expect("plain bodies are UTF-8")
    };
    event["body"] = Value::from(encoded);
}

/// Replaces (or adds) form field `name` in a form-encoded body.
pub fn with_form_field(body: &[u8], name: &str, value: &str) -> Vec<u8> {
    let mut found = false;
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(body) {
        if k == name {
            found = true;
            out.append_pair(&k, value);
        } else {
            out.append_pair(&k, &v);
        }
    }
    if !found {
        out.append_pair(name, value);
    }
    out.finish().into_bytes()
}

/// Signs the event's (decoded) body the way Slack does, at `timestamp`.
pub fn sign_slack(event: &mut Value, timestamp: u64) {
    let ts = timestamp.to_string();
    let sig = slack_signature(SLACK_SECRET.as_bytes(), &ts, &event_body(event));
    set_header(event, "X-Slack-Request-Timestamp", &ts);
    set_header(event, "X-Slack-Signature", &sig);
}

/// Signs the event's body the way GitHub does.
pub fn sign_github(event: &mut Value) {
    let sig = github_signature(GITHUB_SECRET.as_bytes(), &event_body(event));
    set_header(event, "X-Hub-Signature-256", &sig);
}

/// A sample Slack event with `text` as the command text, freshly signed.
pub fn slack_event(name: &str, text: Option<&str>) -> Value {
    let mut ev = event(name);
    if let Some(text) = text {
        let body = with_form_field(&event_body(&ev), "text", text);
        set_event_body(&mut ev, &body);
    }
    sign_slack(&mut ev, now_secs());
    ev
}

/// Turns a Lambda event into the request `lambda_http` hands the handler.
pub fn lambda_request(event: &Value) -> lambda_http::Request {
    lambda_http::request::from_str(&event.to_string()).expect("lambda_http accepts the event")
}

/// What a handler answered, in a test-friendly shape.
#[derive(Debug)]
pub struct Answered {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

impl Answered {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Drives `router` with a Lambda event, as `lambda_http::run` would.
pub async fn invoke(router: &Router<SqsQueue>, event: &Value) -> Answered {
    let resp = router.handle_lambda(lambda_request(event)).await;
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let status = resp.status().as_u16();
    let body = match resp.into_body() {
        lambda_http::Body::Text(s) => s,
        lambda_http::Body::Binary(b) => String::from_utf8(b).expect("UTF-8 body"),
        _ => String::new(),
    };
    Answered {
        status,
        content_type,
        body,
    }
}
