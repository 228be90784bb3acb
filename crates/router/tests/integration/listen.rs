//! The `baton-router --listen` binary over real HTTP on loopback.

use std::process::Stdio;
use std::time::Duration;

use baton_chatops::QueueMessage;
use baton_router::routes::SLACK_MAX_BODY;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::common::*;

/// A running `baton-router --listen 127.0.0.1:0`; killed on drop.
pub struct ListeningRouter {
    pub addr: String,
    _child: Child,
}

impl ListeningRouter {
    /// Starts the binary against `queue_url` on the local SQS server and
    /// reads the bound address from its first stdout line.
    pub async fn start(queue_url: &str) -> ListeningRouter {
        Self::start_with(queue_url, &[]).await
    }

    /// [`ListeningRouter::start`] with more environment variables (a
    /// command config, another secret).
    pub async fn start_with(queue_url: &str, extra: &[(&str, &str)]) -> ListeningRouter {
        let mut child = Command::new(env!("CARGO_BIN_EXE_baton-router"))
            .args(["--listen", "127.0.0.1:0"])
            .env_clear()
            .env("BATON_QUEUE_URL", queue_url)
            .env("SLACK_SIGNING_SECRET", SLACK_SECRET)
            .env("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
            .env("AWS_ENDPOINT_URL", sqs_endpoint())
            .env("AWS_ACCESS_KEY_ID", "baton")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "warn")
            .envs(extra.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn baton-router");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .expect("baton-router printed its address within 30 s")
        .expect("read stdout");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        ListeningRouter {
            addr,
            _child: child,
        }
    }

    /// POSTs (or sends `method`) over a fresh HTTP/1.1 connection.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (u16, String, String) {
        let stream = TcpStream::connect(&self.addr).await.expect("connect");
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("handshake");
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.addr);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = sender
            .send_request(req.body(Full::new(Bytes::from(body))).expect("request"))
            .await
            .expect("response");
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, ctype, String::from_utf8_lossy(&body).into_owned())
    }
}

/// Headers and body of a freshly signed Slack command for `text`.
pub fn signed_command(text: &str, trigger_id: &str) -> (Vec<(&'static str, String)>, Vec<u8>) {
    signed_command_with(SLACK_SECRET, text, trigger_id)
}

/// [`signed_command`], signed with `secret`.
pub fn signed_command_with(
    secret: &str,
    text: &str,
    trigger_id: &str,
) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let base = event_body(&event("router-slack-command-apigw-http.json"));
    let body = with_form_field(
        &with_form_field(&base, "text", text),
        "trigger_id",
        trigger_id,
    );
    let ts = now_secs().to_string();
    let sig = baton_router::signature::slack_signature(secret.as_bytes(), &ts, &body);
    let headers = vec![
        (
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        ),
        ("x-slack-request-timestamp", ts),
        ("x-slack-signature", sig),
    ];
    (headers, body)
}

#[tokio::test]
async fn listen_mode_serves_slack_and_github_over_http() {
    let queue = TestQueue::fifo().await;
    let router = ListeningRouter::start(&queue.url).await;
    assert!(router.addr.starts_with("127.0.0.1:"), "{}", router.addr);

    let (headers, body) = signed_command("router plt", "2001.3002.http");
    let (status, ctype, reply) = router.send("POST", "/slack/commands", &headers, body).await;
    assert_eq!(
        (status, ctype.as_str()),
        (200, "application/json"),
        "{reply}"
    );
    let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(v["response_type"], "ephemeral");
    let got = queue.receive().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].group_id.as_deref(), Some("build-router-plt"));
    assert_eq!(got[0].dedup_id.as_deref(), Some("2001.3002.http"));
    assert!(matches!(
        QueueMessage::parse(&got[0].body),
        Ok(QueueMessage::Command(_))
    ));

    // Forged over HTTP.
    let (headers, mut body) = signed_command("router plt", "2001.3003.http");
    body.extend_from_slice(b"&x=1");
    assert_eq!(
        router
            .send("POST", "/slack/commands", &headers, body)
            .await
            .0,
        401
    );

    // Oversize: over the Slack limit, and over what the server reads at all.
    let (headers, _) = signed_command("router plt", "2001.3004.http");
    let big = vec![b'a'; SLACK_MAX_BODY + 1];
    assert_eq!(
        router
            .send("POST", "/slack/commands", &headers, big)
            .await
            .0,
        413
    );
    let huge = vec![b'a'; baton_router::routes::MAX_BODY + 1];
    assert_eq!(
        router
            .send("POST", "/slack/commands", &headers, huge)
            .await
            .0,
        413
    );

    // GitHub's sample delivery, with its own headers.
    let ev = event("router-github-workflow-run.json");
    let gh_headers: Vec<(&str, String)> = [
        "content-type",
        "x-github-event",
        "x-github-delivery",
        "x-hub-signature-256",
    ]
    .into_iter()
    .map(|h| (h, ev["headers"][h].as_str().unwrap().to_string()))
    .collect();
    let (status, _, _) = router
        .send("POST", "/github/webhook", &gh_headers, event_body(&ev))
        .await;
    assert_eq!(status, 202);
    let got = queue.receive().await;
    assert_eq!(got.len(), 1);
    assert!(matches!(
        QueueMessage::parse(&got[0].body),
        Ok(QueueMessage::Completion(_))
    ));

    assert_eq!(router.send("GET", "/", &[], Vec::new()).await.0, 404);
    assert_eq!(
        router
            .send("GET", "/slack/commands", &[], Vec::new())
            .await
            .0,
        405
    );
}

#[tokio::test]
async fn listen_refuses_non_loopback_addresses() {
    let out = Command::new(env!("CARGO_BIN_EXE_baton-router"))
        .args(["--listen", "0.0.0.0:0"])
        .env_clear()
        .env("BATON_QUEUE_URL", "http://127.0.0.1:1/q.fifo")
        .env("SLACK_SIGNING_SECRET", "s")
        .output()
        .await
        .expect("run baton-router");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing was bound");
}

#[tokio::test]
async fn listen_mode_answers_but_does_not_queue_a_forged_push_completion() {
    let queue = TestQueue::fifo().await;
    let router = ListeningRouter::start(&queue.url).await;
    // A push to the configured repository whose commit message copies
    // baton's run name: signed by the repository's own webhook, so only the
    // run's event gives it away.
    let ev = event("router-github-workflow-run.json");
    let mut payload: serde_json::Value = serde_json::from_slice(&event_body(&ev)).unwrap();
    payload["workflow_run"]["event"] = "push".into();
    let body = payload.to_string().into_bytes();
    let signature = baton_router::signature::github_signature(GITHUB_SECRET.as_bytes(), &body);
    let headers = vec![
        ("content-type", "application/json".to_string()),
        ("x-github-event", "workflow_run".to_string()),
        ("x-github-delivery", "forged-push-1".to_string()),
        ("x-hub-signature-256", signature),
    ];
    let (status, _, reply) = router.send("POST", "/github/webhook", &headers, body).await;
    assert_eq!((status, reply.as_str()), (204, ""));
    assert_eq!(queue.count().await, 0);
}

#[tokio::test]
async fn a_deployment_serves_only_the_workspaces_it_names() {
    let queue = TestQueue::fifo().await;
    let elsewhere =
        ListeningRouter::start_with(&queue.url, &[("BATON_ALLOWED_TEAMS", "T0OTHER,E0GRID")]).await;
    let (headers, body) = signed_command("router plt", "2001.3101.http");
    let (status, _, reply) = elsewhere
        .send("POST", "/slack/commands", &headers, body)
        .await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply.contains("doesn't serve this Slack workspace"),
        "{reply}"
    );
    assert!(
        queue.receive().await.is_empty(),
        "a refused command is never queued"
    );

    let here = ListeningRouter::start_with(&queue.url, &[("BATON_ALLOWED_TEAMS", "T0ACME")]).await;
    let (headers, body) = signed_command("router plt", "2001.3102.http");
    assert_eq!(
        here.send("POST", "/slack/commands", &headers, body).await.0,
        200
    );
    assert_eq!(
        queue.receive().await.len(),
        1,
        "the named workspace is served"
    );
}

#[tokio::test]
async fn a_malformed_workspace_list_stops_the_start_naming_the_setting() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_baton-router"))
        .args(["--listen", "127.0.0.1:0"])
        .env_clear()
        .env("BATON_QUEUE_URL", "http://127.0.0.1:1/queue")
        .env("SLACK_SIGNING_SECRET", SLACK_SECRET)
        .env("BATON_ALLOWED_TEAMS", "acme-corp")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("run baton-router");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("BATON_ALLOWED_TEAMS"), "{stderr}");
}
