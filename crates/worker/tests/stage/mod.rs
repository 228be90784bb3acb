//! The harness the binary flow suites share (`queue_flows.rs`,
//! `freeze_flows.rs`): a lock table on DynamoDB Local, loopback recorders
//! standing in for Slack and GitHub, a command config file, and the
//! `baton-worker` binary run against them, one `--event FILE` or
//! `--reconcile` at a time. Each suite adds its own steps in its own
//! `impl Stage`.

#![allow(dead_code, reason = "each suite uses the part of the harness it needs")]

use std::path::PathBuf;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use baton_chatops::{CommandMessage, QueueMessage};
use baton_lock::{LockClient, LockRecord};
use baton_testkit::{HttpRecorder, Reply, TestTable, fast_options, unique_name};
use serde_json::{Value, json};

/// A lock table, the stand-ins and a config file for one test.
pub struct Stage {
    pub table: TestTable,
    pub locks: LockClient,
    pub slack: HttpRecorder,
    pub github: HttpRecorder,
    pub config: PathBuf,
    /// Settings the binary gets beside the stage's own.
    extra_env: Vec<(&'static str, &'static str)>,
}

impl Stage {
    /// A stage whose worker reads `config`, with `extra_env` set on every
    /// run of the binary; Slack's Web API answers ok.
    pub async fn new(config: &str, extra_env: &[(&'static str, &'static str)]) -> Stage {
        let table = TestTable::create().await;
        let locks = table.client(fast_options());
        let path = std::env::temp_dir().join(format!("{}.toml", unique_name("baton-config")));
        std::fs::write(&path, config).expect("write the command config");
        let stage = Stage {
            table,
            locks,
            slack: HttpRecorder::start().await.expect("Slack stand-in"),
            github: HttpRecorder::start().await.expect("GitHub stand-in"),
            config: path,
            extra_env: extra_env.to_vec(),
        };
        stage
            .slack
            .default_reply("/api/", Reply::json(200, json!({"ok": true})));
        stage
    }

    /// `/command text` from `user`, answered through the Slack stand-in.
    pub fn command(&self, user: &str, command: &str, text: &str) -> CommandMessage {
        CommandMessage {
            command: command.into(),
            text: text.into(),
            user_id: user.into(),
            user_name: Some(user.to_lowercase()),
            channel_id: "C0DEPLOYS".into(),
            channel_name: None,
            team_id: "T0ACME".into(),
            team_domain: None,
            enterprise_id: None,
            response_url: format!("{}/response/{user}/{}", self.slack.url(), unique_name("r")),
            trigger_id: unique_name("trigger"),
            api_app_id: None,
            received_at: baton_lock::clock::now_epoch_millis(),
        }
    }

    /// One `baton-worker --event` with `messages`, each a first delivery;
    /// the batch response it printed.
    pub async fn deliver(&self, messages: &[QueueMessage]) -> Value {
        let mut event = SqsEvent::default();
        event.records = messages
            .iter()
            .map(|m| {
                let mut record = SqsMessage::default();
                record.message_id = Some(unique_name("m"));
                record.body = Some(m.to_json());
                record
                    .attributes
                    .insert("ApproximateReceiveCount".into(), "1".into());
                record
            })
            .collect();
        let file = std::env::temp_dir().join(format!("{}.json", unique_name("sqs-event")));
        std::fs::write(&file, serde_json::to_string(&event).expect("event JSON"))
            .expect("write the event");
        let out = self
            .binary(&["--event", file.to_str().expect("utf-8 path")])
            .await;
        let _ = std::fs::remove_file(&file);
        out
    }

    /// Every reply to `message` so far.
    pub fn replies_to(&self, message: &CommandMessage) -> Vec<Value> {
        let path = message
            .response_url
            .strip_prefix(&self.slack.url())
            .expect("recorder URL");
        self.slack
            .requests_to(path)
            .iter()
            .map(|r| r.json())
            .collect()
    }

    /// `baton-worker ARGS` against this stage; the last JSON line it printed.
    pub async fn binary(&self, args: &[&str]) -> Value {
        let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_baton-worker"))
            .args(args)
            .env_clear()
            .env("BATON_TABLE", &self.table.name)
            .env("BATON_CONFIG", &self.config)
            .env("AWS_ENDPOINT_URL_DYNAMODB", &self.table.endpoint)
            .env("AWS_ACCESS_KEY_ID", "baton")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("SLACK_BOT_TOKEN", "xoxb-binary")
            .env("GITHUB_TOKEN", "ghp-binary")
            .env("SLACK_API_URL", format!("{}/api", self.slack.url()))
            .env(
                "SLACK_RESPONSE_URL_PREFIX",
                format!("{}/response/", self.slack.url()),
            )
            .env("GITHUB_API_URL", self.github.url())
            .env("GITHUB_SERVER_URL", "https://github.example")
            .env("RUST_LOG", "info")
            .envs(self.extra_env.iter().copied())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(90), run)
            .await
            .expect("baton-worker ended within 90 s")
            .expect("run baton-worker");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(0),
            "stdout:\n{stdout}\nstderr:\n{stderr}"
        );
        stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("no JSON on stdout:\n{stdout}\nstderr:\n{stderr}"))
    }

    /// The lock record of `key`, which must exist.
    pub async fn record(&self, key: &str) -> LockRecord {
        self.locks
            .status(key)
            .await
            .expect("read the lock")
            .expect("the lock exists")
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}
