//! The worker's flows for a command whose pipeline is an Azure DevOps
//! pipeline, through its public handler, with DynamoDB Local for locks and
//! loopback HTTP recorders standing in for Slack and Azure DevOps. The Azure
//! stand-in speaks the REST shapes of api-version 7.1: it queues runs
//! (naming them from their template parameters as the example pipeline's
//! `name:` does), lists and reads them, and cancels builds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use base64::Engine;
use baton_chatops::{CommandMessage, CompletionMessage, Conclusion, Config, QueueMessage};
use baton_lock::{LockClient, LockStatus};
use baton_testkit::{HttpRecorder, RecordedRequest, Reply, ReplyFuture, TestTable, fast_options};
use baton_worker::{Worker, WorkerSettings};
use serde_json::{Value, json};

const CONFIG: &str = r#"
[commands."/deploy"]
lock_ttl = "30m"
components = ["router", "api"]
environments = ["plt", "prod"]
unlock_users = ["UADMIN"]
[commands."/deploy".pipeline]
kind = "azure-pipelines"
organization = "acme"
project = "Platform Team"
pipeline_id = 42
branch = "release"
[commands."/deploy".pipeline.parameters]
notify = "deploys"
"#;

/// The pipeline's runs (queue with POST, list with GET).
const RUNS: &str = "/acme/Platform%20Team/_apis/pipelines/42/runs";
/// The builds API, where runs are cancelled.
const BUILDS: &str = "/acme/Platform%20Team/_apis/build/builds/";
/// The binding a grant records for this pipeline.
const REPOSITORY: &str = "azure-devops:acme/Platform Team";
const PAT: &str = "azure-pat-for-tests";

/// One run the stand-in queued.
#[derive(Debug, Clone)]
struct Run {
    id: u64,
    name: String,
    state: String,
    result: Option<String>,
}

impl Run {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "result": self.result,
            "pipeline": {"id": 42, "name": "deploy"},
            "_links": {"web": {"href": web(self.id)}}
        })
    }
}

fn web(id: u64) -> String {
    format!("https://dev.azure.example/acme/Platform%20Team/_build/results?buildId={id}")
}

/// What the stand-in does on the next queue request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnQueue {
    /// Queue the run and answer 200 with it.
    Answer,
    /// Queue the run but answer 504, as a lost answer looks.
    LoseAnswer,
}

/// Azure DevOps on loopback: the runs it queued, by id from 981.
#[derive(Default)]
struct Azure {
    runs: Mutex<Vec<Run>>,
    on_queue: Mutex<Vec<OnQueue>>,
    /// Answer as if pipeline 42 did not exist.
    no_pipeline: AtomicBool,
}

impl Azure {
    fn runs(&self) -> Vec<Run> {
        self.runs.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn set_run(&self, id: u64, state: &str, result: Option<&str>) {
        if let Ok(mut runs) = self.runs.lock() {
            for run in runs.iter_mut().filter(|r| r.id == id) {
                run.state = state.into();
                run.result = result.map(str::to_owned);
            }
        }
    }

    fn answer(&self, request: &RecordedRequest) -> Reply {
        if request.query != "api-version=7.1" {
            return Reply::json(400, json!({"message": "api-version missing"}));
        }
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(":{PAT}"))
        );
        if request.header("authorization") != Some(expected.as_str()) {
            return Reply::new(401, "");
        }
        if self.no_pipeline.load(Ordering::SeqCst) {
            return Reply::json(
                404,
                json!({"$id": "1", "message": "Pipeline with id 42 not found.", "typeKey": "PipelineNotFoundException"}),
            );
        }
        let Ok(mut runs) = self.runs.lock() else {
            return Reply::new(500, "poisoned");
        };
        match (request.method.as_str(), request.path.as_str()) {
            ("POST", RUNS) => {
                let body = request.json();
                let p = &body["templateParameters"];
                let name = format!(
                    "baton lock_key={} lock_id={} fence={}",
                    p["lock_key"].as_str().unwrap_or_default(),
                    p["lock_id"].as_str().unwrap_or_default(),
                    p["fence"].as_str().unwrap_or_default()
                );
                let run = Run {
                    id: 981 + runs.len() as u64,
                    name,
                    state: "inProgress".into(),
                    result: None,
                };
                runs.push(run.clone());
                let next = self
                    .on_queue
                    .lock()
                    .ok()
                    .and_then(|mut q| (!q.is_empty()).then(|| q.remove(0)))
                    .unwrap_or(OnQueue::Answer);
                match next {
                    OnQueue::Answer => Reply::json(200, run.json()),
                    OnQueue::LoseAnswer => Reply::new(504, "gateway timeout"),
                }
            }
            ("GET", RUNS) => {
                let listed: Vec<Value> = runs.iter().rev().map(Run::json).collect();
                Reply::json(200, json!({"count": listed.len(), "value": listed}))
            }
            ("GET", path) => {
                let id = path.rsplit('/').next().and_then(|i| i.parse::<u64>().ok());
                match runs.iter().find(|r| Some(r.id) == id) {
                    Some(run) => Reply::json(200, run.json()),
                    None => Reply::json(404, json!({"message": "run not found"})),
                }
            }
            ("PATCH", path) if path.starts_with(BUILDS) => {
                let id = path.rsplit('/').next().and_then(|i| i.parse::<u64>().ok());
                if request.json() != json!({"status": "cancelling"}) {
                    return Reply::json(400, json!({"message": "unexpected body"}));
                }
                match runs.iter_mut().find(|r| Some(r.id) == id) {
                    Some(run) => {
                        run.state = "completed".into();
                        run.result = Some("canceled".into());
                        Reply::json(200, json!({"id": run.id, "status": "cancelling"}))
                    }
                    None => Reply::json(404, json!({"message": "build not found"})),
                }
            }
            _ => Reply::json(404, json!({"message": "no such API"})),
        }
    }
}

struct Harness {
    _table: TestTable,
    locks: LockClient,
    slack: HttpRecorder,
    azure_http: HttpRecorder,
    azure: Arc<Azure>,
    worker: Worker,
}

impl Harness {
    async fn new() -> Harness {
        Self::with(|_| {}).await
    }

    async fn with(adjust: impl FnOnce(&mut WorkerSettings)) -> Harness {
        let table = TestTable::create().await;
        let slack = HttpRecorder::start().await.unwrap();
        let azure_http = HttpRecorder::start().await.unwrap();
        let azure = Arc::new(Azure::default());
        let stand_in = Arc::clone(&azure);
        azure_http.handler("/", move |request| -> ReplyFuture {
            let reply = stand_in.answer(&request);
            Box::pin(async move { reply })
        });
        // GitHub's stand-in is a closed port: an Azure command never calls it.
        let mut settings = WorkerSettings {
            default_budget: Duration::from_secs(4),
            http_timeout: Duration::from_millis(700),
            ..WorkerSettings::local(
                Config::from_toml_str(CONFIG).unwrap(),
                &slack.url(),
                "http://127.0.0.1:9",
            )
        };
        settings.azure_api_url = azure_http.url();
        settings.azure_pat = Some(baton_runtime::Secret::new(PAT));
        adjust(&mut settings);
        let locks = table.client(fast_options());
        let worker = Worker::new(locks.clone(), settings).unwrap();
        Harness {
            _table: table,
            locks,
            slack,
            azure_http,
            azure,
            worker,
        }
    }

    fn command(&self, user: &str, text: &str) -> CommandMessage {
        CommandMessage {
            command: "/deploy".into(),
            text: text.into(),
            user_id: user.into(),
            user_name: Some(user.to_lowercase()),
            channel_id: "C0DEPLOYS".into(),
            channel_name: None,
            team_id: "T0ACME".into(),
            team_domain: None,
            enterprise_id: None,
            response_url: format!(
                "{}/response/{user}/{}",
                self.slack.url(),
                baton_testkit::unique_name("r")
            ),
            trigger_id: baton_testkit::unique_name("t"),
            api_app_id: None,
            received_at: baton_lock::clock::now_epoch_millis(),
        }
    }

    async fn run(&self, records: Vec<SqsMessage>) -> SqsBatchResponse {
        let mut event = SqsEvent::default();
        event.records = records;
        self.worker.handle(event).await
    }

    async fn send(&self, id: &str, user: &str, text: &str) -> SqsBatchResponse {
        let message = self.command(user, text);
        self.run(vec![command_record(id, &message, 1)]).await
    }

    async fn report(&self, id: &str, completion: CompletionMessage) -> SqsBatchResponse {
        self.run(vec![record(
            id,
            QueueMessage::Completion(completion).to_json(),
            1,
        )])
        .await
    }

    fn queued(&self) -> Vec<RecordedRequest> {
        self.azure_http
            .requests_to(RUNS)
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }

    fn replies(&self) -> Vec<Value> {
        self.slack
            .requests_to("/response/")
            .iter()
            .map(RecordedRequest::json)
            .collect()
    }

    async fn lock(&self, key: &str) -> baton_lock::LockRecord {
        self.locks.status(key).await.unwrap().unwrap()
    }
}

fn record(id: &str, body: String, receive_count: u32) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.into());
    m.body = Some(body);
    m.attributes
        .insert("ApproximateReceiveCount".into(), receive_count.to_string());
    m
}

fn command_record(id: &str, message: &CommandMessage, receive_count: u32) -> SqsMessage {
    record(
        id,
        QueueMessage::Command(message.clone()).to_json(),
        receive_count,
    )
}

fn failures(response: &SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

fn text(reply: &Value) -> String {
    reply["text"].as_str().unwrap_or_default().to_owned()
}

/// The completion the router makes of the service hook for run `run_id`.
fn completion(
    lock: &baton_lock::LockRecord,
    run_id: u64,
    conclusion: Conclusion,
) -> CompletionMessage {
    CompletionMessage {
        lock_key: lock.lock_key.clone(),
        lock_id: lock.lock_id.clone(),
        fence: lock.fence,
        conclusion,
        run_url: Some(web(run_id)),
        run_id: Some(run_id),
        repository: Some(REPOSITORY.into()),
        workflow: Some("42".into()),
        channel_id: None,
        reported_by: Some("azure-devops:run-state-changed".into()),
        reason: None,
    }
}

#[tokio::test]
async fn a_free_deploy_queues_an_azure_run_records_it_and_announces_in_channel() {
    let h = Harness::new().await;
    let response = h.send("m-1", "U1", "api prod").await;

    assert!(failures(&response).is_empty());
    let lock = h.lock("deploy-api-prod").await;
    assert_eq!(lock.status, LockStatus::InProgress);
    assert_eq!(lock.run_url.as_deref(), Some(web(981).as_str()));
    let binding = lock.pipeline.clone().expect("bound to its pipeline");
    assert_eq!(
        (
            binding.repository.as_str(),
            binding.workflow.as_str(),
            binding.run_id
        ),
        (REPOSITORY, "42", Some(981))
    );

    let queued = h.queued();
    assert_eq!(queued.len(), 1);
    let body = queued[0].json();
    assert_eq!(
        body["resources"]["repositories"]["self"]["refName"],
        "refs/heads/release"
    );
    let params = &body["templateParameters"];
    assert_eq!(params["component"], "api");
    assert_eq!(params["environment"], "prod");
    assert_eq!(params["lock_key"], "deploy-api-prod");
    assert_eq!(params["lock_id"], lock.lock_id.as_str());
    assert_eq!(params["fence"], lock.fence.to_string());
    assert_eq!(params["requested_by"], "U1");
    assert_eq!(
        params["notify"], "deploys",
        "configured parameters are sent too"
    );

    let replies = h.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["response_type"], "in_channel");
    let t = text(&replies[0]);
    assert!(t.contains("<@U1>") && t.contains("/deploy api prod"), "{t}");
    assert!(t.contains(&web(981)), "links the run: {t}");
}

#[tokio::test]
async fn a_held_lock_is_reported_to_the_requester_and_queues_nothing() {
    let h = Harness::new().await;
    h.send("m-1", "U1", "api prod").await;
    let second = h.command("U2", "api prod");

    let response = h.run(vec![command_record("m-2", &second, 1)]).await;

    assert!(failures(&response).is_empty());
    assert_eq!(h.queued().len(), 1, "one run only");
    let to_u2 = h
        .slack
        .requests_to(&second.response_url.replace(&h.slack.url(), ""));
    assert_eq!(to_u2.len(), 1);
    let reply = to_u2[0].json();
    assert_eq!(reply["response_type"], "ephemeral");
    assert!(text(&reply).contains("<@U1>"), "names the holder: {reply}");
}

#[tokio::test]
async fn a_successful_run_ends_the_lock_and_tells_the_channel() {
    let h = Harness::new().await;
    h.send("m-1", "U1", "api prod").await;
    let lock = h.lock("deploy-api-prod").await;

    let response = h
        .report("c-1", completion(&lock, 981, Conclusion::Success))
        .await;

    assert!(failures(&response).is_empty());
    let ended = h.lock("deploy-api-prod").await;
    assert_eq!(ended.status, LockStatus::Completed);
    assert_eq!(
        ended.released_by.as_deref(),
        Some("azure-devops:run-state-changed")
    );
    let posts = h.slack.requests_to("/api/chat.postMessage");
    assert_eq!(posts.len(), 1);
    let body = posts[0].json();
    assert_eq!(body["channel"], "C0DEPLOYS");
    assert!(text(&body).contains("succeeded"), "{body}");

    // The key is free again.
    h.send("m-2", "U2", "api prod").await;
    assert_eq!(h.queued().len(), 2);
}

#[tokio::test]
async fn a_failed_run_ends_the_lock_as_failed() {
    let h = Harness::new().await;
    h.send("m-1", "U1", "api prod").await;
    let lock = h.lock("deploy-api-prod").await;

    h.report("c-1", completion(&lock, 981, Conclusion::Failure))
        .await;

    assert_eq!(h.lock("deploy-api-prod").await.status, LockStatus::Failed);
    let posts = h.slack.requests_to("/api/chat.postMessage");
    assert!(text(&posts[0].json()).contains("failed"));
}

#[tokio::test]
async fn a_completion_for_another_run_or_pipeline_ends_nothing() {
    let h = Harness::new().await;
    h.send("m-1", "U1", "api prod").await;
    let lock = h.lock("deploy-api-prod").await;

    // Another run of the same pipeline naming this grant.
    h.report("c-1", completion(&lock, 982, Conclusion::Success))
        .await;
    // The right run id, but as if from a GitHub repository.
    let mut github = completion(&lock, 981, Conclusion::Success);
    github.repository = Some("acme/Platform Team".into());
    h.report("c-2", github).await;

    assert_eq!(
        h.lock("deploy-api-prod").await.status,
        LockStatus::InProgress
    );
    assert!(h.slack.requests_to("/api/chat.postMessage").is_empty());
}

#[tokio::test]
async fn a_queued_run_whose_answer_was_lost_is_found_by_its_name_instead_of_queued_again() {
    let h = Harness::new().await;
    if let Ok(mut q) = h.azure.on_queue.lock() {
        q.push(OnQueue::LoseAnswer);
    }
    let cmd = h.command("U1", "router plt");
    assert_eq!(
        failures(&h.run(vec![command_record("m-1", &cmd, 1)]).await),
        vec!["m-1"],
        "retried through the queue"
    );
    let lock = h.lock("deploy-router-plt").await;
    assert_eq!(lock.status, LockStatus::InProgress, "the lock is kept");
    assert_eq!(h.azure.runs().len(), 1, "Azure DevOps did queue the run");

    let response = h.run(vec![command_record("m-1", &cmd, 2)]).await;

    assert!(failures(&response).is_empty());
    assert_eq!(h.queued().len(), 1, "no second run");
    let lock = h.lock("deploy-router-plt").await;
    assert_eq!(lock.pipeline.and_then(|p| p.run_id), Some(981));
    assert_eq!(lock.run_url.as_deref(), Some(web(981).as_str()));
    assert!(text(&h.replies()[0]).contains(&web(981)));
}

#[tokio::test]
async fn on_the_last_delivery_a_lost_answer_is_still_looked_up_before_giving_up() {
    let h = Harness::new().await;
    if let Ok(mut q) = h.azure.on_queue.lock() {
        q.push(OnQueue::LoseAnswer);
    }
    let cmd = h.command("U1", "router plt");

    let response = h.run(vec![command_record("m-1", &cmd, 5)]).await;

    assert!(failures(&response).is_empty());
    let lock = h.lock("deploy-router-plt").await;
    assert_eq!(
        lock.status,
        LockStatus::InProgress,
        "its run works under it"
    );
    assert_eq!(lock.pipeline.and_then(|p| p.run_id), Some(981));
    assert_eq!(h.queued().len(), 1);
}

#[tokio::test]
async fn the_holder_cancels_the_azure_run_and_nobody_else_can() {
    let h = Harness::new().await;
    h.send("m-1", "U1", "api prod").await;

    h.send("m-2", "U2", "cancel api prod").await;
    assert_eq!(
        h.lock("deploy-api-prod").await.status,
        LockStatus::InProgress
    );
    assert!(h.azure_http.requests_to(BUILDS).is_empty());

    h.send("m-3", "U1", "cancel api prod").await;
    let lock = h.lock("deploy-api-prod").await;
    assert_eq!(lock.status, LockStatus::Failed);
    assert_eq!(lock.released_by.as_deref(), Some("U1"));
    let cancels = h.azure_http.requests_to(BUILDS);
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].method, "PATCH");
    assert_eq!(cancels[0].path, format!("{BUILDS}981"));
    assert_eq!(h.azure.runs()[0].result.as_deref(), Some("canceled"));
    let last = h.replies().pop().unwrap_or_default();
    assert!(text(&last).contains("cancelled"), "{last}");
}

#[tokio::test]
async fn the_reconciler_asks_azure_devops_and_ends_a_run_whose_hook_was_lost() {
    let h = Harness::with(|s| s.reconcile_lease = Duration::from_secs(600)).await;
    h.send("m-1", "U1", "api prod").await;
    let lock = h.lock("deploy-api-prod").await;
    h.locks
        .renew("deploy-api-prod", &lock.lock_id, Duration::from_secs(2))
        .await
        .unwrap();

    let deadline = || tokio::time::Instant::now() + Duration::from_secs(5);
    let pass = h.worker.reconcile(deadline()).await;
    assert_eq!(
        (pass.checked, pass.renewed, pass.ended),
        (1, 1, 0),
        "{pass:?}"
    );
    assert!(
        h.lock("deploy-api-prod").await.expires_at >= baton_lock::clock::now_epoch_secs() + 590
    );

    h.azure
        .set_run(981, "completed", Some("partiallySucceeded"));
    let pass = h.worker.reconcile(deadline()).await;
    assert_eq!(pass.ended, 1, "{pass:?}");
    let ended = h.lock("deploy-api-prod").await;
    assert_eq!(
        ended.status,
        LockStatus::Failed,
        "only `succeeded` succeeds"
    );
    assert!(
        ended
            .release_reason
            .unwrap_or_default()
            .contains("partiallySucceeded"),
        "the reason says what Azure DevOps said"
    );
    let posts = h.slack.requests_to("/api/chat.postMessage");
    assert_eq!(posts.len(), 1);
    assert!(text(&posts[0].json()).contains("never arrived"));
}

#[tokio::test]
async fn a_refused_token_fails_the_lock_and_says_so() {
    let h = Harness::with(|s| s.azure_pat = Some(baton_runtime::Secret::new("expired-pat"))).await;

    let response = h.send("m-1", "U1", "api prod").await;

    assert!(failures(&response).is_empty(), "a refusal is an answer");
    let lock = h.lock("deploy-api-prod").await;
    assert_eq!(
        lock.status,
        LockStatus::Failed,
        "no lock held without a run"
    );
    assert!(h.azure.runs().is_empty());
    let replies = h.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["response_type"], "ephemeral");
    let t = text(&replies[0]);
    assert!(
        t.contains("Azure DevOps refused the dispatch (HTTP 401)")
            && t.contains("personal access token was not accepted"),
        "{t}"
    );
}

#[tokio::test]
async fn a_pipeline_that_does_not_exist_fails_the_lock_and_says_which() {
    let h = Harness::new().await;
    h.azure.no_pipeline.store(true, Ordering::SeqCst);

    h.send("m-1", "U1", "api prod").await;

    let lock = h.lock("deploy-api-prod").await;
    assert_eq!(
        lock.status,
        LockStatus::Failed,
        "no lock held without a run"
    );
    let t = text(&h.replies()[0]);
    assert!(
        t.contains("HTTP 404")
            && t.contains("there is no pipeline 42 (or run) in acme/Platform Team")
            && t.contains("Pipeline with id 42 not found."),
        "{t}"
    );
}

#[tokio::test]
async fn without_a_token_an_azure_command_is_refused_naming_the_setting() {
    let h = Harness::with(|s| s.azure_pat = None).await;

    h.send("m-1", "U1", "api prod").await;

    assert_eq!(h.lock("deploy-api-prod").await.status, LockStatus::Failed);
    assert!(h.azure_http.requests().is_empty(), "nothing was sent");
    let t = text(&h.replies()[0]);
    assert!(t.contains("AZURE_DEVOPS_PAT_PARAM"), "{t}");
}

/// The stand-in names runs the way the example pipeline's `name:` does, so
/// these flows test what a real run reports.
#[test]
fn the_stand_in_names_runs_as_the_example_pipeline_does() {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/azure-pipelines-example.yml"
    ))
    .expect("the example pipeline");
    let name_line = yaml
        .lines()
        .find(|l| l.starts_with("name:"))
        .expect("the example sets the run name");
    let mut params = BTreeMap::new();
    for (key, value) in [("lock_key", "k"), ("lock_id", "L"), ("fence", "7")] {
        params.insert(format!("${{{{ parameters.{key} }}}}"), value);
    }
    let mut rendered = name_line
        .trim_start_matches("name:")
        .trim()
        .trim_matches('"')
        .to_owned();
    for (placeholder, value) in &params {
        rendered = rendered.replace(placeholder, value);
    }
    assert_eq!(rendered, "baton lock_key=k lock_id=L fence=7");
}
