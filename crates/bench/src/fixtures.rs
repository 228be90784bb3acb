//! Shared inputs: lock tables on DynamoDB Local, a command config with
//! enough keys for every iteration to take a fresh lock, and SQS events.

use aws_lambda_events::event::sqs::SqsEvent;
use baton_lock::LockClient;
use baton_testkit::{HttpRecorder, Reply, local_dynamodb_client, unique_name};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// Components in [`config_toml`]: `c000` … `c299`.
pub const COMPONENTS: usize = 300;

/// A fresh lock table on DynamoDB Local, created through `baton-lock`
/// (the production schema). Deleted by [`drop_table`].
pub async fn create_table(endpoint: &str) -> anyhow::Result<String> {
    let name = unique_name("baton-bench");
    LockClient::new(local_dynamodb_client(endpoint, 3), &name)
        .create_table()
        .await
        .map_err(|e| anyhow::anyhow!("creating a table on DynamoDB Local at {endpoint}: {e}"))?;
    Ok(name)
}

/// Best-effort cleanup, so a shared DynamoDB Local does not fill up.
pub async fn drop_table(endpoint: &str, name: &str) {
    let _ = local_dynamodb_client(endpoint, 1)
        .delete_table()
        .table_name(name)
        .send()
        .await;
}

/// The command config the worker runs with: `/build` and `/deploy` over
/// [`COMPONENTS`] components and three environments, i.e. plenty of
/// distinct lock keys (`build-c042-plt`).
pub fn config_toml() -> String {
    let components: Vec<String> = (0..COMPONENTS)
        .map(|i| format!("\"{}\"", component(i)))
        .collect();
    let components = components.join(", ");
    let mut out = String::new();
    for (command, ttl, workflow) in [
        ("/build", "10m", "build.yml"),
        ("/deploy", "30m", "deploy.yml"),
    ] {
        out.push_str(&format!(
            "[commands.\"{command}\"]\nlock_ttl = \"{ttl}\"\ncomponents = [{components}]\nenvironments = [\"dev\", \"plt\", \"prod\"]\n\
             [commands.\"{command}\".pipeline]\nrepo = \"acme/platform\"\nworkflow = \"{workflow}\"\nref = \"main\"\n\n"
        ));
    }
    out
}

pub fn component(i: usize) -> String {
    format!("c{:03}", i % COMPONENTS)
}

/// The queue body of a slash command (`QueueMessage::Command` as JSON),
/// replying to `response_url`.
pub fn command_body(command: &str, text: &str, user: &str, response_url: &str) -> String {
    json!({
        "kind": "command",
        "command": command,
        "text": text,
        "user_id": user,
        "user_name": user.to_lowercase(),
        "channel_id": "C0BUILDS",
        "channel_name": "builds",
        "team_id": "T0ACME",
        "team_domain": "acme",
        "response_url": response_url,
        "trigger_id": unique_name("trigger"),
        "api_app_id": "A0BATON",
        "received_at": now_millis(),
    })
    .to_string()
}

/// Now, in epoch milliseconds. Commands are stamped with it: the worker does
/// not run a command that waited in the queue longer than its
/// `max_command_age` (15 minutes), so a fixed past stamp would only ever be
/// answered "expired".
fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An SQS event as Lambda delivers it, one record per `(message id, body)`.
pub fn sqs_event_json(records: &[(String, String)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|(id, body)| {
            let sent = now_millis();
            json!({
                "messageId": id,
                "receiptHandle": format!("bench-{id}"),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": sent.to_string(),
                    "SenderId": "AROAEXAMPLE:baton-router",
                    "ApproximateFirstReceiveTimestamp": (sent + 50).to_string(),
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:baton-commands.fifo",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": records })
}

pub fn sqs_event(records: &[(String, String)]) -> anyhow::Result<SqsEvent> {
    Ok(serde_json::from_value(sqs_event_json(records))?)
}

/// `n` `COMMAND cNNN ENV` commands on distinct keys (`/build` or `/deploy`),
/// starting at component `first`, replying under `response_prefix`.
pub fn commands(
    command: &str,
    first: usize,
    n: usize,
    env: &str,
    response_prefix: &str,
) -> Vec<(String, String)> {
    (first..first + n)
        .map(|i| {
            let id = uuid::Uuid::new_v4().to_string();
            let url = format!("{response_prefix}{env}/{i}");
            (
                id,
                command_body(command, &format!("{} {env}", component(i)), "U0ALICE", &url),
            )
        })
        .collect()
}

/// GitHub's answer to a `workflow_dispatch` with run details.
pub fn github_stub(github: &HttpRecorder) {
    github.default_reply(
        "/repos/",
        Reply::json(
            200,
            json!({
                "workflow_run_id": 99,
                "run_url": "https://api.github.example/repos/acme/platform/actions/runs/99",
                "html_url": "https://github.example/acme/platform/actions/runs/99",
            }),
        ),
    );
}
