//! `baton-worker --reconcile`, the binary, configured only through its
//! environment: DynamoDB Local for the lock table and loopback recorders
//! standing in for Slack and GitHub. Each test checks what the pass did
//! through the store and the recorders as well as through the report it
//! prints on stdout.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use baton_lock::clock::now_epoch_secs;
use baton_lock::{AcquireRequest, LockClient, LockRecord, LockStatus, PipelineRun};
use baton_testkit::{HttpRecorder, Reply, TestTable, fast_options, unique_name};
use serde_json::{Value, json};

const CONFIG: &str = r#"
[commands."/build"]
lock_ttl = "10m"
components = ["router", "api", "web"]
environments = ["dev", "plt", "prod"]
[commands."/build".pipeline]
repo = "acme/platform"
workflow = "build.yml"
ref = "main"
"#;

/// The lease the binary is told to give a working run (`BATON_RECONCILE_LEASE`).
const RECONCILE_LEASE: u64 = 600;
/// A lease with less than half of [`RECONCILE_LEASE`] left: due for renewal.
const SHORT_LEASE: Duration = Duration::from_secs(60);
const POST_MESSAGE: &str = "/api/chat.postMessage";

/// A lock table, the stand-ins and a command config file for one test.
struct Stage {
    table: TestTable,
    locks: LockClient,
    slack: HttpRecorder,
    github: HttpRecorder,
    config: PathBuf,
}

impl Stage {
    async fn new() -> Stage {
        let table = TestTable::create().await;
        let locks = table.client(fast_options());
        let config = std::env::temp_dir().join(format!("{}.toml", unique_name("baton-config")));
        std::fs::write(&config, CONFIG).expect("write the command config");
        Stage {
            table,
            locks,
            slack: HttpRecorder::start().await.expect("Slack stand-in"),
            github: HttpRecorder::start().await.expect("GitHub stand-in"),
            config,
        }
    }

    /// A grant on `key` as the worker makes one for `/build`: bound to the
    /// `acme/platform` `build.yml` pipeline, told to channel `C0BUILDS`, and
    /// with run `run_id` recorded when given.
    async fn pipeline_grant(&self, key: &str, run_id: Option<u64>, ttl: Duration) -> LockRecord {
        let mut request = AcquireRequest::new(key, "U1", ttl);
        request.purpose = Some(format!("/build {key}"));
        request.correlation_id = Some("slack:T0ACME:C0BUILDS".into());
        request.pipeline = Some(PipelineRun {
            repository: "acme/platform".into(),
            workflow: "build.yml".into(),
            run_id: None,
        });
        let grant = self.locks.acquire(&request).await.expect("acquire");
        match run_id {
            Some(id) => self
                .locks
                .set_run(key, grant.lock_id(), Some(id), &run_url(id))
                .await
                .expect("record the run"),
            None => grant.record,
        }
    }

    /// GitHub's answer about run `run_id` of the grant `lock`: dispatched
    /// for it (workflow file, event, lock id in the title), in `status`.
    fn github_says(&self, run_id: u64, lock: &LockRecord, status: &str, conclusion: Option<&str>) {
        self.github.default_reply(
            &runs_path(run_id),
            Reply::json(
                200,
                json!({
                    "id": run_id, "status": status, "conclusion": conclusion,
                    "event": "workflow_dispatch", "path": ".github/workflows/build.yml",
                    "display_title": format!("baton lock_key={} lock_id={} fence={}", lock.lock_key, lock.lock_id, lock.fence),
                    "html_url": run_url(run_id),
                }),
            ),
        );
    }

    async fn record(&self, key: &str) -> LockRecord {
        self.locks
            .status(key)
            .await
            .expect("read the lock")
            .expect("the lock exists")
    }

    /// One `baton-worker --reconcile` on this stage's table.
    async fn reconcile(&self) -> Pass {
        self.reconcile_on(&self.table.name).await
    }

    async fn reconcile_on(&self, table: &str) -> Pass {
        let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_baton-worker"))
            .arg("--reconcile")
            .env_clear()
            .env("BATON_TABLE", table)
            .env("BATON_CONFIG", &self.config)
            .env("BATON_RECONCILE_LEASE", format!("{RECONCILE_LEASE}s"))
            .env("AWS_ENDPOINT_URL_DYNAMODB", &self.table.endpoint)
            .env("AWS_ACCESS_KEY_ID", "baton")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("SLACK_BOT_TOKEN", "xoxb-binary")
            .env("GITHUB_TOKEN", "ghp-binary")
            .env("SLACK_API_URL", format!("{}/api", self.slack.url()))
            .env("GITHUB_API_URL", self.github.url())
            .env("GITHUB_SERVER_URL", "https://github.example")
            .env("RUST_LOG", "info")
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(90), run)
            .await
            .expect("the pass ended within 90 s")
            .expect("run baton-worker");
        Pass::from(output)
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

/// What the binary did: its exit status, the report it printed, its logs.
struct Pass {
    code: Option<i32>,
    report: Value,
    stderr: String,
}

impl From<Output> for Pass {
    fn from(output: Output) -> Pass {
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let last = stdout.lines().rev().find(|l| !l.trim().is_empty());
        let report = last
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("no report on stdout:\n{stdout}\nstderr:\n{stderr}"));
        Pass {
            code: output.status.code(),
            report,
            stderr,
        }
    }
}

impl Pass {
    /// The report's counters: `(active, checked, renewed, ended, unknown)`.
    fn counts(&self) -> (u64, u64, u64, u64, u64) {
        let n = |field: &str| {
            self.report[field]
                .as_u64()
                .unwrap_or_else(|| panic!("report without {field}: {}", self.report))
        };
        (
            n("active"),
            n("checked"),
            n("renewed"),
            n("ended"),
            n("unknown"),
        )
    }

    fn assert_exit(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "exit status; report {}\nstderr:\n{}",
            self.report,
            self.stderr
        );
    }
}

fn runs_path(run_id: u64) -> String {
    format!("/repos/acme/platform/actions/runs/{run_id}")
}

fn run_url(run_id: u64) -> String {
    format!("https://github.example/acme/platform/actions/runs/{run_id}")
}

#[tokio::test]
async fn a_run_that_ended_without_its_webhook_is_released_and_the_channel_told() {
    let s = Stage::new().await;
    let lock = s
        .pipeline_grant("build-router-plt", Some(501), Duration::from_secs(600))
        .await;
    s.github_says(501, &lock, "completed", Some("success"));

    let pass = s.reconcile().await;

    pass.assert_exit(0);
    assert_eq!(pass.counts(), (1, 1, 0, 1, 0), "{}", pass.report);
    assert_eq!(pass.report["incomplete"], false);
    let ended = s.record("build-router-plt").await;
    assert_eq!(ended.status, LockStatus::Completed);
    assert_eq!(
        ended.lock_id, lock.lock_id,
        "the grant that ran is the one ended"
    );
    assert_eq!(ended.released_by.as_deref(), Some("baton:reconciler"));
    let asked = s.github.requests_to(&runs_path(501));
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].method, "GET");
    assert_eq!(asked[0].header("authorization"), Some("Bearer ghp-binary"));
    let posts = s.slack.requests_to(POST_MESSAGE);
    assert_eq!(posts.len(), 1, "the channel is told once");
    let post = posts[0].json();
    assert_eq!(post["channel"], "C0BUILDS");
    let text = post["text"].as_str().unwrap_or_default();
    assert!(text.contains("build-router-plt"), "{post}");
    assert!(text.contains("never arrived"), "{post}");
    assert_eq!(posts[0].header("authorization"), Some("Bearer xoxb-binary"));
}

#[tokio::test]
async fn a_working_run_whose_lease_is_running_out_keeps_its_grant_with_a_longer_lease() {
    let s = Stage::new().await;
    let lock = s
        .pipeline_grant("build-api-dev", Some(502), SHORT_LEASE)
        .await;
    s.github_says(502, &lock, "in_progress", None);

    let pass = s.reconcile().await;

    pass.assert_exit(0);
    assert_eq!(pass.counts(), (1, 1, 1, 0, 0), "{}", pass.report);
    let renewed = s.record("build-api-dev").await;
    assert_eq!(renewed.status, LockStatus::InProgress);
    assert_eq!(renewed.lock_id, lock.lock_id, "still the same grant");
    assert_eq!(renewed.fence, lock.fence);
    assert!(
        renewed.expires_at > lock.expires_at,
        "the lease end moved forward: {} -> {}",
        lock.expires_at,
        renewed.expires_at
    );
    assert!(
        renewed.expires_at + 5 >= now_epoch_secs() + RECONCILE_LEASE,
        "renewed for BATON_RECONCILE_LEASE: ends {}, now {}",
        renewed.expires_at,
        now_epoch_secs()
    );
    assert_eq!(s.github.requests_to(&runs_path(502)).len(), 1);
    assert!(
        s.slack.requests().is_empty(),
        "a lease renewed before it lapsed is not announced"
    );
}

#[tokio::test]
async fn a_cli_grant_is_left_alone_and_a_young_unnamed_run_is_only_looked_up() {
    let s = Stage::new().await;
    // A CLI holder: no pipeline binding at all.
    let mut cli = AcquireRequest::new("build-web-prod", "ci@runner", SHORT_LEASE);
    cli.request_id = Some("ci-1".into());
    let cli = s.locks.acquire(&cli).await.expect("acquire").record;
    // A chatops grant whose dispatch has not named its run yet.
    let pending = s.pipeline_grant("build-web-dev", None, SHORT_LEASE).await;

    let pass = s.reconcile().await;

    pass.assert_exit(0);
    assert_eq!(pass.counts(), (2, 0, 0, 0, 0), "{}", pass.report);
    assert_eq!(
        s.record("build-web-prod").await,
        cli,
        "the CLI grant is untouched"
    );
    assert_eq!(s.record("build-web-dev").await, pending);
    // Only the pipeline grant is looked up, in its workflow's runs list,
    // which shows no run for it yet; its lease has time left, so it stays.
    let asked: Vec<String> = s.github.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].contains("/actions/workflows/build.yml/runs"),
        "{asked:?}"
    );
    assert!(s.slack.requests().is_empty());
}

#[tokio::test]
async fn github_failing_leaves_the_lock_as_it_was_and_the_pass_still_succeeds() {
    let s = Stage::new().await;
    let lock = s
        .pipeline_grant("build-router-dev", Some(503), SHORT_LEASE)
        .await;
    // A Retry-After past the pass's 60 s budget: the pass gives up on this
    // run at the first answer instead of retrying until the budget is spent.
    s.github.default_reply(
        &runs_path(503),
        Reply::new(500, "internal error").header("retry-after", "3600"),
    );

    let pass = s.reconcile().await;

    // `--reconcile` fails only when the active grants could not all be
    // read; a run it could not ask about is counted as unknown and left to
    // the next pass.
    pass.assert_exit(0);
    assert_eq!(pass.counts(), (1, 1, 0, 0, 1), "{}", pass.report);
    assert_eq!(pass.report["incomplete"], false);
    assert_eq!(
        s.record("build-router-dev").await,
        lock,
        "neither renewed nor ended"
    );
    assert_eq!(s.github.requests_to(&runs_path(503)).len(), 1);
    assert!(s.slack.requests().is_empty());
}

#[tokio::test]
async fn an_unreadable_lock_table_makes_the_pass_fail() {
    let s = Stage::new().await;

    let pass = s.reconcile_on(&unique_name("baton-missing")).await;

    pass.assert_exit(1);
    assert_eq!(pass.report["incomplete"], true, "{}", pass.report);
    assert_eq!(pass.counts(), (0, 0, 0, 0, 0));
    assert!(s.github.requests().is_empty());
    assert!(s.slack.requests().is_empty());
}
