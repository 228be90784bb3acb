//! Figure 6: the router's answer time. `baton-router --listen 127.0.0.1:0`
//! (the release binary, the same request path as Lambda events) runs
//! against a FIFO queue on the local SQS server (moto). Each request is a
//! freshly signed Slack `/build` (new timestamp and `trigger_id`, so each is
//! verified, parsed, checked against the config and queued); the time runs
//! from sending it on a kept-alive loopback connection to the whole 200
//! response, which Slack must see within 3000 ms.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{QueueAttributeName, QueueAttributeName as Attr};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::Env;
use crate::net::Connection;
use crate::report::{Row, Verdict, ms};
use crate::stats::Samples;

const SECTION: &str = "6 router";
const SECRET: &str = "bench-slack-signing-secret";
const WARMUP: usize = 10;
const REQUESTS: usize = 200;
const SLACK_LIMIT: Duration = Duration::from_millis(3000);

pub async fn run(env: &Env) -> anyhow::Result<Vec<Row>> {
    let Some(binary) = env.router_bin.clone().filter(|p| p.is_file()) else {
        return Ok(vec![Row::failed(
            SECTION,
            "Router: signed Slack request → 200",
            Verdict::Gap,
            format!(
                "GAP: no release baton-router binary{}; bench.sh builds it with the worker and reports why it could not",
                env.router_bin
                    .as_ref()
                    .map(|p| format!(" at {}", p.display()))
                    .unwrap_or_default()
            ),
        )]);
    };
    let sqs = sqs_client(&env.sqs);
    let name = format!("baton-bench-{}.fifo", uuid::Uuid::new_v4().simple());
    let queue = sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "false")
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "creating a FIFO queue on the local SQS at {}: {}",
                env.sqs,
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        })?
        .queue_url
        .context("CreateQueue returned no URL")?;
    let result = measure(env, &binary, &sqs, &queue).await;
    let _ = sqs.delete_queue().queue_url(&queue).send().await;
    result
}

fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "baton",
            "local",
            None,
            None,
            "baton-bench",
        ))
        .endpoint_url(endpoint)
        .http_client(baton_runtime::sdk::http_client())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

async fn measure(
    env: &Env,
    binary: &Path,
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
) -> anyhow::Result<Vec<Row>> {
    let log = std::fs::File::create(env.out_dir.join("router.log"))
        .context("creating target/bench/router.log")?;
    let mut child = Command::new(binary)
        .args(["--listen", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("BATON_QUEUE_URL", queue)
        .env("SLACK_SIGNING_SECRET", SECRET)
        .env("GITHUB_WEBHOOK_SECRET", "bench-github-secret")
        .env("AWS_ENDPOINT_URL_SQS", &env.sqs)
        .env("AWS_ACCESS_KEY_ID", "baton")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", env.out_dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            env.out_dir.join("no-aws-credentials"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawning {}", binary.display()))?;
    let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
    let mut line = String::new();
    match tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line)).await {
        Ok(Ok(n)) if n > 0 => {}
        _ => {
            let _ = child.start_kill();
            let status = child.wait().await;
            bail!(
                "baton-router --listen did not print its address ({status:?}); see target/bench/router.log"
            );
        }
    }
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("unexpected first line from baton-router: {line:?}"))?
        .to_owned();
    let mut client = Connection::open(&url).await?;

    let requests = env.scale(REQUESTS);
    let mut times = Vec::new();
    for i in 0..WARMUP + requests {
        let body = slack_form(&format!("bench.{i}.{}", uuid::Uuid::new_v4().simple()));
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
            .to_string();
        let headers = [
            (
                "content-type",
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("x-slack-request-timestamp", ts.clone()),
            ("x-slack-signature", sign(&ts, body.as_bytes())),
        ];
        let sent = Instant::now();
        let (status, answer) = client
            .post("/slack/commands", &headers, Bytes::from(body))
            .await?;
        let took = sent.elapsed();
        let text = String::from_utf8_lossy(&answer);
        if status.as_u16() != 200 || text.contains("could not queue") {
            bail!("the router answered {status} {text}");
        }
        if i >= WARMUP {
            times.push(took);
        }
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    drop(stdout);

    let queued = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(Attr::ApproximateNumberOfMessages)
        .send()
        .await
        .ok()
        .and_then(|o| {
            o.attributes()
                .and_then(|a| a.get(&Attr::ApproximateNumberOfMessages))
                .and_then(|n| n.parse::<usize>().ok())
        });
    let times = Samples::new(times);
    let sent = WARMUP + requests;
    let mut row = Row::new(
        SECTION,
        "Router: signed Slack /build → 200 (p50 / p99)",
        format!("{} / {}", ms(times.p50()), ms(times.p99())),
    )
    .target(
        "< 3000 ms (Slack)",
        Verdict::meets(times.p99() < SLACK_LIMIT),
    )
    .data(json!({ "latency": times.json(), "sent": sent, "queued": queued }));
    row = row.note(format!(
        "{requests} requests after {WARMUP} warm-up through `baton-router --listen` to moto SQS (FIFO); {} of {sent} found on the queue",
        queued.map_or_else(|| "?".to_owned(), |q| q.to_string())
    ));
    if queued.is_some_and(|q| q != sent) {
        row.verdict = Verdict::Error;
    }
    Ok(vec![row])
}

fn sign(ts: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()) else {
        return String::new();
    };
    mac.update(b"v0:");
    mac.update(ts.as_bytes());
    mac.update(b":");
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// A slash-command form as Slack posts it.
fn slack_form(trigger_id: &str) -> String {
    let fields = [
        ("token", "bench-verification-token"),
        ("team_id", "T0ACME"),
        ("team_domain", "acme"),
        ("channel_id", "C0BUILDS"),
        ("channel_name", "builds"),
        ("user_id", "U0ALICE"),
        ("user_name", "alice"),
        ("command", "/build"),
        ("text", "router plt"),
        (
            "response_url",
            "https://hooks.slack.com/commands/T0ACME/1001/bench",
        ),
        ("trigger_id", trigger_id),
        ("api_app_id", "A0BATON"),
    ];
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
