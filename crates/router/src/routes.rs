//! The router's HTTP logic: one request in, one response out, no IO other
//! than the queue port.
//!
//! | route                  | outcome                                           | status |
//! |------------------------|---------------------------------------------------|--------|
//! | `POST /slack/commands` | body over [`SLACK_MAX_BODY`]                      | 413    |
//! |                        | content type not `application/x-www-form-urlencoded` | 400 |
//! |                        | `ssl_check=1`                                     | 200, empty |
//! |                        | signature missing, forged or stale                | 401, empty |
//! |                        | signed but not a slash command form               | 400    |
//! |                        | command the config rejects (unknown component, workspace not in `allowed_teams`, channel not allowed, user not allowed, protected environment…) | 200, ephemeral error, not queued |
//! |                        | queued                                            | 200, ephemeral ack |
//! |                        | queue unavailable                                 | 200, ephemeral "could not queue" |
//! | `POST /github/webhook` | no webhook secret configured                      | 404    |
//! |                        | body over [`GITHUB_MAX_BODY`]                     | 413    |
//! |                        | signature missing or wrong                        | 401, empty |
//! |                        | `workflow_run` completed: a configured pipeline's dispatched run with baton's identity | 202, queued |
//! |                        | `ping`, other events/actions, runs of another repository, workflow or event, runs without baton's identity | 204 |
//! |                        | not JSON                                          | 400    |
//! |                        | queue unavailable                                 | 503 (GitHub shows a failed delivery to redeliver) |
//! | `POST /azure-devops/hook` | no service-hook secret configured             | 404    |
//! |                        | body over [`AZURE_MAX_BODY`]                      | 413    |
//! |                        | credential (basic-auth password or `X-Baton-Hook-Secret`) missing or wrong | 401, empty |
//! |                        | an event type other than `ms.vss-pipelines.run-state-changed-event` | 400, JSON naming the event type |
//! |                        | a completed run of a configured Azure pipeline with baton's identity | 202, queued |
//! |                        | runs not completed, of another pipeline, or without baton's identity | 204 |
//! |                        | not JSON                                          | 400    |
//! |                        | queue unavailable                                 | 503 (Azure DevOps retries the delivery) |
//! | known path, other method |                                                 | 405    |
//! | anything else          |                                                   | 404    |
//!
//! A path matches when it ends with the route, so a stage or base-path prefix
//! (`/prod/slack/commands`) works too.
//!
//! Slack shows users nothing useful for a non-200, so every answer that a
//! user should read is a 200 with an ephemeral message.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use baton_chatops::{
    Block, CommandMessage, Config, Membership, Reply, ResponseType, decide, render,
};
use bytes::Bytes;
use lambda_http::http::{self, HeaderMap, Method, StatusCode, header};
use tracing::{error, info, warn};

use crate::azure::{self, RunStateChanged};
use crate::github::{self, WorkflowRun};
use crate::queue::{Enqueue, Outgoing};
use crate::secrets::Secrets;
use crate::signature;

/// Largest Slack command body accepted. Slack's form carries a dozen short
/// fields plus the user's text (a few KiB at most); 64 KiB leaves a wide
/// margin while bounding the HMAC work an unauthenticated caller can ask for.
pub const SLACK_MAX_BODY: usize = 64 * 1024;
/// Largest GitHub webhook body accepted. A `workflow_run` delivery is
/// typically 20–40 KiB (it embeds the repository twice); 1 MiB is ample.
pub const GITHUB_MAX_BODY: usize = 1024 * 1024;
/// Largest Azure DevOps service-hook body accepted. A run-state event is a
/// few KiB (messages, links and the resource); 1 MiB is ample.
pub const AZURE_MAX_BODY: usize = 1024 * 1024;
/// The most any route reads; the `--listen` server stops reading beyond it.
pub const MAX_BODY: usize = GITHUB_MAX_BODY;

/// Path of the Slack slash-command route.
pub const SLACK_COMMANDS_PATH: &str = "/slack/commands";
/// Path of the GitHub webhook route.
pub const GITHUB_WEBHOOK_PATH: &str = "/github/webhook";
/// Path of the Azure DevOps service-hook route.
pub const AZURE_HOOK_PATH: &str = "/azure-devops/hook";

/// The ephemeral text sent when SQS could not take a command.
pub const COULD_NOT_QUEUE: &str = "⚠️ baton could not queue your command, try again in a moment.";

/// A response before it is turned into a transport's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body (sent as `application/json`), or none.
    pub json: Option<serde_json::Value>,
    /// What happened, for the log line (`enqueued`, `forged_signature`…).
    pub outcome: &'static str,
}

impl Answer {
    fn empty(status: StatusCode, outcome: &'static str) -> Answer {
        Answer {
            status,
            json: None,
            outcome,
        }
    }

    fn reply(reply: &Reply, outcome: &'static str) -> Answer {
        Answer {
            status: StatusCode::OK,
            json: Some(reply.to_json()),
            outcome,
        }
    }

    /// The HTTP response: JSON with its content type, else an empty body.
    pub fn into_response(self) -> http::Response<String> {
        let mut builder = http::Response::builder().status(self.status);
        let body = match self.json {
            Some(v) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                v.to_string()
            }
            None => String::new(),
        };
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            builder = builder.header(header::ALLOW, "POST");
        }
        builder.body(body).unwrap_or_else(|_| {
            let mut r = http::Response::new(String::new());
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    SlackCommands,
    GithubWebhook,
    AzureHook,
}

impl Route {
    fn of(path: &str) -> Option<Route> {
        let path = path.trim_end_matches('/');
        if path.ends_with(SLACK_COMMANDS_PATH) {
            Some(Route::SlackCommands)
        } else if path.ends_with(GITHUB_WEBHOOK_PATH) {
            Some(Route::GithubWebhook)
        } else if path.ends_with(AZURE_HOOK_PATH) {
            Some(Route::AzureHook)
        } else {
            None
        }
    }

    fn name(route: Option<Route>) -> &'static str {
        match route {
            Some(Route::SlackCommands) => "slack_commands",
            Some(Route::GithubWebhook) => "github_webhook",
            Some(Route::AzureHook) => "azure_hook",
            None => "none",
        }
    }
}

/// The router: configuration, secrets and the queue, shared by all requests.
pub struct Router<Q> {
    config: Arc<Config>,
    secrets: Secrets,
    queue: Q,
}

impl<Q: Enqueue> Router<Q> {
    /// A router over a validated command config, the loaded secrets and a queue.
    pub fn new(config: Config, secrets: Secrets, queue: Q) -> Router<Q> {
        Router {
            config: Arc::new(config),
            secrets,
            queue,
        }
    }

    /// The queue this router sends to.
    pub fn queue(&self) -> &Q {
        &self.queue
    }

    /// Handles one request whose body has been read whole (and, for Lambda
    /// events, base64-decoded). Logs one line per request.
    pub async fn handle(&self, req: http::Request<Bytes>) -> http::Response<String> {
        let started = Instant::now();
        let route = Route::of(req.uri().path());
        let answer = self.answer(route, &req).await;
        let (status, outcome) = (answer.status.as_u16(), answer.outcome);
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let route_name = Route::name(route);
        if answer.status.is_client_error() {
            warn!(route = route_name, method = %req.method(), status, outcome, latency_us, "request refused");
        } else {
            info!(
                route = route_name,
                status, outcome, latency_us, "request handled"
            );
        }
        answer.into_response()
    }

    /// Handles a `lambda_http` request (API Gateway REST/HTTP API, Function
    /// URL, ALB). `lambda_http` has already undone `isBase64Encoded`, so the
    /// body bytes are exactly what the caller signed.
    pub async fn handle_lambda(
        &self,
        req: lambda_http::Request,
    ) -> http::Response<lambda_http::Body> {
        let (parts, body) = req.into_parts();
        let bytes = match body {
            lambda_http::Body::Text(s) => Bytes::from(s),
            lambda_http::Body::Binary(b) => Bytes::from(b),
            _ => Bytes::new(),
        };
        self.handle(http::Request::from_parts(parts, bytes))
            .await
            .map(|s| {
                if s.is_empty() {
                    lambda_http::Body::Empty
                } else {
                    lambda_http::Body::Text(s)
                }
            })
    }

    async fn answer(&self, route: Option<Route>, req: &http::Request<Bytes>) -> Answer {
        let Some(route) = route else {
            return Answer::empty(StatusCode::NOT_FOUND, "no_route");
        };
        if route == Route::GithubWebhook && self.secrets.github_webhook.is_none() {
            return Answer::empty(StatusCode::NOT_FOUND, "github_webhook_not_configured");
        }
        if route == Route::AzureHook && self.secrets.azure_hook.is_none() {
            return Answer::empty(StatusCode::NOT_FOUND, "azure_hook_not_configured");
        }
        if req.method() != Method::POST {
            return Answer::empty(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        }
        match route {
            Route::SlackCommands => self.slack_command(req.headers(), req.body()).await,
            Route::GithubWebhook => self.github_webhook(req.headers(), req.body()).await,
            Route::AzureHook => self.azure_hook(req.headers(), req.body()).await,
        }
    }

    async fn slack_command(&self, headers: &HeaderMap, body: &Bytes) -> Answer {
        if body.len() > SLACK_MAX_BODY {
            return Answer::empty(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
        }
        if !media_type_is(headers, "application/x-www-form-urlencoded") {
            return Answer::empty(StatusCode::BAD_REQUEST, "wrong_content_type");
        }
        // Slack's certificate check for distributed apps. Answered before
        // signature verification, as Slack's Bolt frameworks do: it queues
        // nothing and reveals nothing, so a forged one gains nothing.
        if form_field(body, "ssl_check").as_deref() == Some("1") {
            return Answer::empty(StatusCode::OK, "ssl_check");
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        match signature::verify_slack_any(
            &self.secrets.slack_signing_keys(),
            header_str(headers, "x-slack-request-timestamp"),
            header_str(headers, "x-slack-signature"),
            body,
            now.as_secs(),
        ) {
            Ok(0) => {}
            // While a rotation is under way: once this no longer appears,
            // the other secret can be removed.
            Ok(_) => info!("slack request signed with the previous signing secret"),
            Err(e) => {
                warn!(reason = %e, "slack signature refused");
                return Answer::empty(StatusCode::UNAUTHORIZED, signature_outcome(e));
            }
        }
        let received_at = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        let msg = match CommandMessage::from_form_urlencoded(body, received_at) {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "signed body is not a slash command");
                return Answer::empty(StatusCode::BAD_REQUEST, "not_a_command");
            }
        };
        // The router has no bot token: a listed user group admits for now and
        // the worker, which can look members up, decides it.
        // Scheduled freezes are decided at the moment the command arrived.
        let request = match decide(&self.config, &msg, &Membership::Unresolved, received_at) {
            Ok(r) => r,
            Err(e) => {
                info!(command = %msg.command, user_id = %msg.user_id, error = %e, "command refused");
                return Answer::reply(&render::error(&e), "command_refused");
            }
        };
        let outgoing = Outgoing::command(&msg, &request);
        let group_id = outgoing.group_id.clone();
        match self.queue.enqueue(outgoing).await {
            Ok(message_id) => {
                info!(command = %msg.command, user_id = %msg.user_id, group_id, message_id, "command queued");
                Answer::reply(&render::accepted(&msg.command, &msg.text), "enqueued")
            }
            Err(e) => {
                error!(command = %msg.command, user_id = %msg.user_id, group_id, error = %e, "could not queue command");
                Answer::reply(&could_not_queue(), "queue_failed")
            }
        }
    }

    async fn github_webhook(&self, headers: &HeaderMap, body: &Bytes) -> Answer {
        let Some(secret) = &self.secrets.github_webhook else {
            return Answer::empty(StatusCode::NOT_FOUND, "github_webhook_not_configured");
        };
        if body.len() > GITHUB_MAX_BODY {
            return Answer::empty(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
        }
        if let Err(e) = signature::verify_github(
            secret.expose().as_bytes(),
            header_str(headers, "x-hub-signature-256"),
            body,
        ) {
            warn!(reason = %e, "github signature refused");
            return Answer::empty(StatusCode::UNAUTHORIZED, signature_outcome(e));
        }
        let delivery = header_str(headers, "x-github-delivery").unwrap_or("-");
        match header_str(headers, "x-github-event") {
            Some("workflow_run") => {}
            Some("ping") => return Answer::empty(StatusCode::NO_CONTENT, "ping"),
            _ => return Answer::empty(StatusCode::NO_CONTENT, "event_ignored"),
        }
        let (completion, run_attempt) = match github::workflow_run(body, &self.config) {
            Ok(WorkflowRun::Completed(c)) => (c.message, c.run_attempt),
            Ok(WorkflowRun::Ignored(why)) => {
                log_ignored(delivery, &why);
                return Answer::empty(StatusCode::NO_CONTENT, "run_ignored");
            }
            Err(e) => {
                warn!(delivery, error = %e, "workflow_run payload unreadable (is the webhook's content type application/json?)");
                return Answer::empty(StatusCode::BAD_REQUEST, "bad_payload");
            }
        };
        let outgoing = Outgoing::completion(&completion);
        let repository = completion.repository.as_deref().unwrap_or("-");
        let workflow = completion.workflow.as_deref().unwrap_or("-");
        let run_id = completion.run_id.unwrap_or(0);
        match self.queue.enqueue(outgoing).await {
            Ok(message_id) => {
                info!(delivery, lock_key = %completion.lock_key, fence = completion.fence,
                    repository, workflow, run_id, run_attempt, rerun = run_attempt > 1,
                    conclusion = completion.conclusion.as_str(), message_id, "completion queued");
                Answer::empty(StatusCode::ACCEPTED, "enqueued")
            }
            Err(e) => {
                error!(delivery, lock_key = %completion.lock_key, repository, workflow, run_id,
                    run_attempt, error = %e, "could not queue completion");
                Answer::empty(StatusCode::SERVICE_UNAVAILABLE, "queue_failed")
            }
        }
    }
}

impl<Q: Enqueue> Router<Q> {
    /// An Azure DevOps service-hook delivery: credential first, then the
    /// event type, then the run; a completion is queued like GitHub's.
    async fn azure_hook(&self, headers: &HeaderMap, body: &Bytes) -> Answer {
        let Some(secret) = &self.secrets.azure_hook else {
            return Answer::empty(StatusCode::NOT_FOUND, "azure_hook_not_configured");
        };
        if body.len() > AZURE_MAX_BODY {
            return Answer::empty(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
        }
        if let Err(e) = azure::verify_credential(
            secret.expose().as_bytes(),
            header_str(headers, header::AUTHORIZATION.as_str()),
            header_str(headers, azure::SECRET_HEADER),
        ) {
            warn!(reason = %e, "azure devops service hook credential refused");
            return Answer::empty(StatusCode::UNAUTHORIZED, signature_outcome(e));
        }
        let completion = match azure::run_state_changed(body, &self.config) {
            Ok(RunStateChanged::Completed(c)) => c,
            Ok(RunStateChanged::Ignored(why)) => {
                log_ignored_run(&why);
                return Answer::empty(StatusCode::NO_CONTENT, "run_ignored");
            }
            Ok(RunStateChanged::UnknownEvent(event_type)) => {
                let event_type = event_type.unwrap_or_default();
                warn!(event_type = %event_type, expected = azure::RUN_STATE_CHANGED,
                    "service hook for an event type baton does not read: subscribe to run state changes");
                return Answer {
                    status: StatusCode::BAD_REQUEST,
                    json: Some(serde_json::json!({
                        "error": format!(
                            "event type {event_type:?} is not read here; subscribe to {}",
                            azure::RUN_STATE_CHANGED
                        )
                    })),
                    outcome: "unknown_event_type",
                };
            }
            Err(e) => {
                warn!(error = %e, "service hook payload unreadable");
                return Answer::empty(StatusCode::BAD_REQUEST, "bad_payload");
            }
        };
        let outgoing = Outgoing::completion(&completion);
        let workflow = completion.workflow.as_deref().unwrap_or("-");
        let run_id = completion.run_id.unwrap_or(0);
        match self.queue.enqueue(outgoing).await {
            Ok(message_id) => {
                info!(lock_key = %completion.lock_key, fence = completion.fence, pipeline_id = workflow,
                    run_id, conclusion = completion.conclusion.as_str(), message_id, "completion queued");
                Answer::empty(StatusCode::ACCEPTED, "enqueued")
            }
            Err(e) => {
                error!(lock_key = %completion.lock_key, pipeline_id = workflow, run_id, error = %e,
                    "could not queue completion");
                Answer::empty(StatusCode::SERVICE_UNAVAILABLE, "queue_failed")
            }
        }
    }
}

/// Logs a service-hook run that is answered but not queued; a look-alike
/// (a run naming a lock that is not a configured pipeline's completed run)
/// is a warning.
fn log_ignored_run(why: &azure::Ignored) {
    let (reason, pipeline_id, run_id) = (
        why.reason,
        why.pipeline_id.unwrap_or(0),
        why.run_id.unwrap_or(0),
    );
    if why.names_a_lock && why.reason != azure::NOT_COMPLETED {
        warn!(
            reason,
            pipeline_id,
            run_id,
            "service hook run names a lock but is not a configured pipeline's run: not a completion"
        );
    } else {
        info!(reason, pipeline_id, run_id, "service hook run ignored");
    }
}

/// Logs a `workflow_run` delivery that is answered but not queued. A run
/// whose title names a lock but that is not a configured pipeline's own
/// dispatched run is a look-alike (a forged or foreign completion) and is
/// logged as a warning; anything else a shared webhook sends is routine.
fn log_ignored(delivery: &str, why: &github::Ignored) {
    let repository = why.repository.as_deref().unwrap_or("-");
    let path = why.path.as_deref().unwrap_or("-");
    let event = why.event.as_deref().unwrap_or("-");
    let run_id = why.run_id.unwrap_or(0);
    let run_attempt = why.run_attempt.unwrap_or(0);
    let reason = why.reason;
    if why.names_a_lock && why.reason != github::NOT_COMPLETED {
        warn!(
            delivery,
            reason,
            repository,
            path,
            event,
            run_id,
            run_attempt,
            "workflow_run names a lock but is not a configured pipeline's dispatched run: not a completion"
        );
    } else {
        info!(
            delivery,
            reason, repository, path, event, run_id, run_attempt, "workflow_run ignored"
        );
    }
}

/// The ephemeral reply for a command SQS did not take.
pub fn could_not_queue() -> Reply {
    Reply {
        response_type: ResponseType::Ephemeral,
        text: COULD_NOT_QUEUE.to_string(),
        blocks: vec![Block::section(COULD_NOT_QUEUE)],
    }
}

fn signature_outcome(e: signature::SignatureError) -> &'static str {
    match e {
        signature::SignatureError::Missing => "signature_missing",
        signature::SignatureError::Malformed => "signature_malformed",
        signature::SignatureError::Stale => "signature_stale",
        signature::SignatureError::Mismatch => "signature_forged",
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether the `Content-Type` media type (parameters such as `charset`
/// ignored, case-insensitive) is `want`.
fn media_type_is(headers: &HeaderMap, want: &str) -> bool {
    header_str(headers, header::CONTENT_TYPE.as_str())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(want))
}

/// The first value of a form field.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_with_or_without_a_stage_prefix() {
        assert_eq!(Route::of("/slack/commands"), Some(Route::SlackCommands));
        assert_eq!(Route::of("/slack/commands/"), Some(Route::SlackCommands));
        assert_eq!(
            Route::of("/prod/slack/commands"),
            Some(Route::SlackCommands)
        );
        assert_eq!(Route::of("/github/webhook"), Some(Route::GithubWebhook));
        assert_eq!(Route::of("/prod/azure-devops/hook"), Some(Route::AzureHook));
        assert_eq!(Route::of("/slack/commandsx"), None);
        assert_eq!(Route::of("/"), None);
    }

    #[test]
    fn media_type_ignores_parameters_and_case() {
        let mut h = HeaderMap::new();
        assert!(!media_type_is(&h, "application/x-www-form-urlencoded"));
        h.insert(
            header::CONTENT_TYPE,
            "Application/X-WWW-Form-Urlencoded; charset=utf-8"
                .parse()
                .unwrap(),
        );
        assert!(media_type_is(&h, "application/x-www-form-urlencoded"));
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(!media_type_is(&h, "application/x-www-form-urlencoded"));
    }

    #[test]
    fn could_not_queue_is_ephemeral() {
        let v = could_not_queue().to_json();
        assert_eq!(v["response_type"], "ephemeral");
        assert!(
            v["text"]
                .as_str()
                .unwrap()
                .contains("could not queue your command, try again")
        );
    }
}
