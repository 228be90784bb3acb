//! `make demo`: replays the sample events in `events/` through the worker
//! against DynamoDB Local, with a loopback recorder standing in for Slack
//! and GitHub, and prints the conversation as the people in the channel saw it.

use aws_lambda_events::event::sqs::SqsEvent;
use baton_chatops::Config;
use baton_lock::LockClient;
use baton_testkit::{HttpRecorder, RecordedRequest, Reply, TestTable, fast_options};
use baton_worker::{Worker, WorkerSettings};
use serde_json::{Value, json};

const EVENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events");

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let table = TestTable::create().await;
    let recorder = HttpRecorder::start().await?;
    recorder.default_reply(
        "/github/repos/",
        Reply::json(200, json!({"workflow_run_id": 99, "html_url": "https://github.com/acme/platform/actions/runs/99"})),
    );
    let locks = table.client(fast_options());
    let worker = Worker::new(
        locks.clone(),
        WorkerSettings {
            github_web_url: "https://github.com".into(),
            ..WorkerSettings::local(
                Config::builtin(),
                &format!("{}/slack", recorder.url()),
                &format!("{}/github", recorder.url()),
            )
        },
    )?;
    println!(
        "DynamoDB Local table {}; Slack and GitHub are a recorder at {}\n",
        table.name,
        recorder.url()
    );

    let mut seen = 0;
    let step = |title: &str| println!("\x1b[1m── {title}\x1b[0m");

    step("alice types  /build router plt");
    replay(&worker, &recorder, "sqs-build-router-plt.json", |_| {}).await?;
    seen = show(&recorder, seen);

    step("bob types  /build router plt  (a moment later)");
    replay(
        &worker,
        &recorder,
        "sqs-build-router-plt-second-user.json",
        |_| {},
    )
    .await?;
    seen = show(&recorder, seen);

    step("SQS delivers alice's message a second time (at-least-once)");
    replay(&worker, &recorder, "sqs-build-router-plt.json", |_| {}).await?;
    seen = show(&recorder, seen);

    let lock = current(&locks).await?;
    step("GitHub reports: alice's run succeeded");
    replay(&worker, &recorder, "sqs-completion-success.json", |body| {
        body["lock_id"] = json!(lock.lock_id);
        body["fence"] = json!(lock.fence);
        body["run_id"] = json!(lock.pipeline.as_ref().and_then(|p| p.run_id));
    })
    .await?;
    seen = show(&recorder, seen);

    step("bob types  /build router plt  again");
    replay(
        &worker,
        &recorder,
        "sqs-build-router-plt-second-user.json",
        |body| {
            body["trigger_id"] = json!("1009.2010.bob");
        },
    )
    .await?;
    seen = show(&recorder, seen);

    step("carol asks for the status, tries a dry run, and a broken message arrives");
    replay(&worker, &recorder, "sqs-batch-mixed.json", |_| {}).await?;
    show(&recorder, seen);

    let lock = current(&locks).await?;
    let previous = lock
        .previous
        .as_ref()
        .map(|p| format!("; it replaced {}'s {} grant", p.locked_by, p.status));
    println!(
        "Lock `build-router-plt` now: {} by {}, fence {}{}.",
        lock.status,
        lock.holder_label(),
        lock.fence,
        previous.unwrap_or_default(),
    );
    Ok(())
}

async fn current(locks: &LockClient) -> anyhow::Result<baton_lock::LockRecord> {
    let record = locks.status("build-router-plt").await?;
    record.ok_or_else(|| anyhow::anyhow!("no lock record for build-router-plt"))
}

/// Feeds one event file to the worker, pointing its Slack `response_url`s at
/// the recorder and applying `edit` to each record body.
async fn replay(
    worker: &Worker,
    recorder: &HttpRecorder,
    file: &str,
    edit: impl Fn(&mut Value),
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(format!("{EVENTS}/{file}"))?;
    let mut event: SqsEvent = serde_json::from_str(&text)?;
    for record in &mut event.records {
        let Some(body) = record.body.as_deref() else {
            continue;
        };
        let Ok(mut body) = serde_json::from_str::<Value>(body) else {
            continue;
        };
        if let Some(url) = body.get("response_url").and_then(Value::as_str) {
            let path = url.trim_start_matches("https://hooks.slack.com/");
            body["response_url"] = json!(format!("{}/slack/response/{path}", recorder.url()));
        }
        if body.get("received_at").is_some() {
            // Stamped by the router as it enqueues; a replay is received now.
            body["received_at"] = json!(baton_lock::clock::now_epoch_millis());
        }
        edit(&mut body);
        // A fresh message id when the body changed, as SQS would assign.
        if body.get("trigger_id").and_then(Value::as_str) == Some("1009.2010.bob") {
            record.message_id = Some("6c1e0a4e-0000-4000-8000-000000000009".into());
        }
        record.body = Some(body.to_string());
    }
    let response = worker.handle(event).await;
    if !response.batch_item_failures.is_empty() {
        println!(
            "   (back to the queue: {:?})",
            response
                .batch_item_failures
                .iter()
                .map(|f| &f.item_identifier)
                .collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// Prints what Slack and GitHub received since `from`; returns the new mark.
fn show(recorder: &HttpRecorder, from: usize) -> usize {
    let requests = recorder.requests();
    for r in &requests[from..] {
        println!("   {}", describe(r));
    }
    if requests.len() == from {
        println!("   (nothing: no message, no dispatch)");
    }
    println!();
    requests.len()
}

fn describe(r: &RecordedRequest) -> String {
    let body = r.json();
    let text = body["text"]
        .as_str()
        .unwrap_or_default()
        .replace("<@U0ALICE>", "@alice")
        .replace("<@U0BOB>", "@bob")
        .replace("<@U0CAROL>", "@carol");
    if r.path.starts_with("/github/") {
        let inputs = &body["inputs"];
        return format!(
            "GitHub      workflow_dispatch {} ref={} lock_key={} fence={}",
            r.path
                .trim_start_matches("/github/repos/")
                .trim_end_matches("/dispatches"),
            body["ref"].as_str().unwrap_or_default(),
            inputs["lock_key"].as_str().unwrap_or_default(),
            inputs["fence"].as_str().unwrap_or_default(),
        );
    }
    if r.path.ends_with("chat.postMessage") {
        return format!("#builds     {text}");
    }
    match body["response_type"].as_str() {
        Some("in_channel") => format!("#builds     {text}"),
        _ => format!("only you    {text}"),
    }
}
