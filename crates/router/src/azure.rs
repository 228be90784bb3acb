//! Reading Azure DevOps' `ms.vss-pipelines.run-state-changed-event` service
//! hook into a [`CompletionMessage`], and checking the hook's credential.
//!
//! Service hooks carry no signature: the subscription is given a shared
//! secret to send, as the password of HTTP basic auth or as the
//! [`SECRET_HEADER`] header, and [`verify_credential`] compares it with the
//! configured one in constant time.
//!
//! Like GitHub's `workflow_run`, the event does not carry the parameters a
//! run was queued with, so baton's pipelines put the lock identity in the
//! run's name (the pipeline's `name:`), which the event reports as
//! `resource.run.name`:
//!
//! ```yaml
//! name: "baton lock_key=${{ parameters.lock_key }} lock_id=${{ parameters.lock_id }} fence=${{ parameters.fence }}"
//! ```
//!
//! A run becomes a completion only when its state is `completed`, its
//! pipeline id is a configured `azure-pipelines` pipeline's (config
//! validation makes that id name one pipeline), and its name carries the
//! identity. The completion names that pipeline's binding and the run id,
//! so the worker holds it against the run recorded on the grant, exactly as
//! it does GitHub's.

use base64::Engine;
use baton_chatops::{AzurePipelines, CompletionMessage, Conclusion, Config, PipelineConfig};
use serde::Deserialize;

use crate::github::LockIdentity;
use crate::signature::{self, SignatureError};

/// The one event type the hook route reads.
pub const RUN_STATE_CHANGED: &str = "ms.vss-pipelines.run-state-changed-event";

/// What `reported_by` says on completions from this route.
pub const REPORTED_BY: &str = "azure-devops:run-state-changed";

/// The header a subscription may send the shared secret in, instead of
/// basic auth.
pub const SECRET_HEADER: &str = "x-baton-hook-secret";

/// Reason: the run has not ended yet.
pub const NOT_COMPLETED: &str = "run state is not `completed`";
/// Reason: the payload names no run.
pub const NO_RUN: &str = "no resource.run object";
/// Reason: the run's pipeline is not a configured Azure pipeline.
pub const FOREIGN_PIPELINE: &str = "foreign pipeline";
/// Reason: the run's name carries no lock identity.
pub const NO_IDENTITY: &str = "run name carries no baton lock identity";

/// Checks a service hook's credential against `secret`, in constant time:
/// the [`SECRET_HEADER`] value when the hook sends that header, else the
/// `Authorization: Basic` password (any user name: the subscription form
/// asks for one). A header that is sent but wrong is refused even if the
/// basic-auth password is right: one credential, one answer.
pub fn verify_credential(
    secret: &[u8],
    authorization: Option<&str>,
    header: Option<&str>,
) -> Result<(), SignatureError> {
    if let Some(given) = header {
        return signature::verify_shared_secret(secret, given.trim().as_bytes());
    }
    let value = authorization.ok_or(SignatureError::Missing)?.trim();
    let (scheme, encoded) = value.split_once(' ').ok_or(SignatureError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(SignatureError::Malformed);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| SignatureError::Malformed)?;
    let password = match decoded.iter().position(|b| *b == b':') {
        Some(colon) => &decoded[colon + 1..],
        None => return Err(SignatureError::Malformed),
    };
    signature::verify_shared_secret(secret, password)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    event_type: Option<String>,
    resource: Option<Resource>,
}

#[derive(Debug, Deserialize)]
struct Resource {
    run: Option<Run>,
    pipeline: Option<PipelineRef>,
}

#[derive(Debug, Deserialize)]
struct Run {
    id: Option<u64>,
    name: Option<String>,
    state: Option<String>,
    result: Option<String>,
    pipeline: Option<PipelineRef>,
    #[serde(rename = "_links")]
    links: Option<Links>,
}

#[derive(Debug, Deserialize)]
struct PipelineRef {
    id: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Links {
    web: Option<Link>,
}

#[derive(Debug, Deserialize)]
struct Link {
    href: Option<String>,
}

/// What a service-hook delivery means for baton.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStateChanged {
    /// A completed run of a configured pipeline carrying baton's identity.
    Completed(CompletionMessage),
    /// Answered but not queued, and why.
    Ignored(Ignored),
    /// An event type this route does not read: the subscription is set up
    /// for the wrong event.
    UnknownEvent(Option<String>),
}

/// A delivery that is answered but not queued, with what the log needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// Why, in a few words.
    pub reason: &'static str,
    /// `resource.pipeline.id` (or `resource.run.pipeline.id`).
    pub pipeline_id: Option<u64>,
    /// `resource.run.id`.
    pub run_id: Option<u64>,
    /// Whether the run's name named a lock: a refused look-alike is worth a
    /// warning, an unrelated run is not.
    pub names_a_lock: bool,
}

/// Why a body could not be read as a service-hook payload.
#[derive(Debug, thiserror::Error)]
#[error("service hook payload is not valid JSON of the expected shape: {0}")]
pub struct PayloadError(#[from] serde_json::Error);

/// Reads a service-hook body against the pipelines of `config`. The guards
/// stay in one function so their order reads top to bottom.
pub fn run_state_changed(body: &[u8], config: &Config) -> Result<RunStateChanged, PayloadError> {
    let payload: Payload = serde_json::from_slice(body)?;
    if payload.event_type.as_deref() != Some(RUN_STATE_CHANGED) {
        return Ok(RunStateChanged::UnknownEvent(payload.event_type));
    }
    let resource = payload.resource;
    let resource_pipeline = resource
        .as_ref()
        .and_then(|r| r.pipeline.as_ref())
        .and_then(|p| p.id);
    let Some(run) = resource.and_then(|r| r.run) else {
        return Ok(RunStateChanged::Ignored(Ignored {
            reason: NO_RUN,
            pipeline_id: resource_pipeline,
            run_id: None,
            names_a_lock: false,
        }));
    };
    let pipeline_id = resource_pipeline.or(run.pipeline.as_ref().and_then(|p| p.id));
    let identity = run.name.as_deref().and_then(LockIdentity::from_title);
    let ignored = |reason| {
        RunStateChanged::Ignored(Ignored {
            reason,
            pipeline_id,
            run_id: run.id,
            names_a_lock: identity.is_some(),
        })
    };
    if run.state.as_deref() != Some("completed") {
        return Ok(ignored(NOT_COMPLETED));
    }
    let Some(pipeline) = pipeline_id.and_then(|id| configured(config, id)) else {
        return Ok(ignored(FOREIGN_PIPELINE));
    };
    let Some(identity) = identity.clone() else {
        return Ok(ignored(NO_IDENTITY));
    };
    let (conclusion, reason) = Conclusion::of_azure_result(run.result.as_deref());
    let binding = PipelineConfig::AzurePipelines(pipeline.clone());
    Ok(RunStateChanged::Completed(CompletionMessage {
        lock_key: identity.lock_key,
        lock_id: identity.lock_id,
        fence: identity.fence,
        conclusion,
        run_url: run.links.and_then(|l| l.web).and_then(|w| w.href),
        run_id: run.id,
        repository: Some(binding.repository()),
        workflow: Some(binding.workflow()),
        channel_id: None,
        reported_by: Some(REPORTED_BY.to_string()),
        reason,
    }))
}

/// The configured Azure pipeline with id `id` (at most one project has it).
fn configured(config: &Config, id: u64) -> Option<&AzurePipelines> {
    config
        .commands()
        .filter_map(|c| c.pipeline.azure())
        .find(|p| p.pipeline_id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const CONFIG: &str = r#"
[commands."/deploy"]
lock_ttl = "30m"
components = ["api"]
environments = ["prod"]
[commands."/deploy".pipeline]
kind = "azure-pipelines"
organization = "acme"
project = "Platform"
pipeline_id = 42
"#;

    fn config() -> Config {
        Config::from_toml_str(CONFIG).unwrap()
    }

    fn payload(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut v = json!({
            "subscriptionId": "00000000-0000-0000-0000-000000000001",
            "eventType": RUN_STATE_CHANGED,
            "publisherId": "pipelines",
            "resource": {
                "run": {
                    "id": 981,
                    "name": "baton lock_key=deploy-api-prod lock_id=0f3c9a fence=17",
                    "state": "completed",
                    "result": "succeeded",
                    "pipeline": {"id": 42, "name": "deploy"},
                    "_links": {"web": {"href": "https://dev.azure.com/acme/Platform/_build/results?buildId=981"}}
                },
                "pipeline": {"id": 42, "name": "deploy"}
            }
        });
        edit(&mut v);
        v.to_string().into_bytes()
    }

    fn read(body: &[u8]) -> RunStateChanged {
        run_state_changed(body, &config()).unwrap()
    }

    fn reason(body: &[u8]) -> &'static str {
        match read(body) {
            RunStateChanged::Ignored(i) => i.reason,
            other => panic!("expected it ignored, got {other:?}"),
        }
    }

    #[test]
    fn completed_baton_run_becomes_a_completion_bound_to_its_pipeline() {
        let RunStateChanged::Completed(c) = read(&payload(|_| {})) else {
            panic!("expected a completion");
        };
        assert_eq!(
            (c.lock_key.as_str(), c.lock_id.as_str(), c.fence),
            ("deploy-api-prod", "0f3c9a", 17)
        );
        assert_eq!(c.conclusion, Conclusion::Success);
        assert_eq!(c.run_id, Some(981));
        assert_eq!(c.repository.as_deref(), Some("azure-devops:acme/Platform"));
        assert_eq!(c.workflow.as_deref(), Some("42"));
        assert_eq!(c.reported_by.as_deref(), Some(REPORTED_BY));
        assert_eq!(
            c.run_url.as_deref(),
            Some("https://dev.azure.com/acme/Platform/_build/results?buildId=981")
        );
    }

    #[test]
    fn results_map_to_conclusions() {
        for (result, want) in [
            (json!("failed"), Conclusion::Failure),
            (json!("canceled"), Conclusion::Cancelled),
            (json!("partiallySucceeded"), Conclusion::Failure),
            (json!(null), Conclusion::Failure),
        ] {
            let body = payload(|v| v["resource"]["run"]["result"] = result.clone());
            let RunStateChanged::Completed(c) = read(&body) else {
                panic!("expected a completion for {result}");
            };
            assert_eq!(c.conclusion, want, "{result}");
        }
    }

    #[test]
    fn other_runs_are_ignored_with_a_reason() {
        assert_eq!(
            reason(&payload(
                |v| v["resource"]["run"]["state"] = "inProgress".into()
            )),
            NOT_COMPLETED
        );
        assert_eq!(
            reason(&payload(|v| {
                v["resource"]["pipeline"]["id"] = 7.into();
            })),
            FOREIGN_PIPELINE
        );
        assert_eq!(
            reason(&payload(
                |v| v["resource"]["run"]["name"] = "20260101.1".into()
            )),
            NO_IDENTITY
        );
        assert_eq!(
            reason(&payload(|v| v["resource"] = json!({"pipeline": {"id": 42}}))),
            NO_RUN
        );
        let RunStateChanged::Ignored(foreign) =
            read(&payload(|v| v["resource"]["pipeline"]["id"] = 7.into()))
        else {
            panic!("expected it ignored");
        };
        assert!(foreign.names_a_lock);
        assert_eq!((foreign.pipeline_id, foreign.run_id), (Some(7), Some(981)));
    }

    #[test]
    fn other_event_types_are_named() {
        let body = payload(|v| v["eventType"] = "build.complete".into());
        assert_eq!(
            read(&body),
            RunStateChanged::UnknownEvent(Some("build.complete".into()))
        );
        assert_eq!(
            read(br#"{"resource":{}}"#),
            RunStateChanged::UnknownEvent(None)
        );
        assert!(run_state_changed(b"eventType=x", &config()).is_err());
    }

    fn basic(user: &str, password: &str) -> String {
        let raw = format!("{user}:{password}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    #[test]
    fn credential_is_the_basic_password_or_the_header() {
        let secret = b"hook-s3cret";
        assert_eq!(
            verify_credential(secret, Some(&basic("baton", "hook-s3cret")), None),
            Ok(())
        );
        assert_eq!(
            verify_credential(secret, Some(&basic("", "hook-s3cret")), None),
            Ok(())
        );
        assert_eq!(verify_credential(secret, None, Some("hook-s3cret")), Ok(()));
        assert_eq!(
            verify_credential(secret, Some(&basic("baton", "hook-s3cre")), None),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_credential(secret, Some(&basic("hook-s3cret", "")), None),
            Err(SignatureError::Missing),
            "the secret as the user name is no password"
        );
        assert_eq!(
            verify_credential(secret, Some(&basic("baton", "hook-s3cret-and-more")), None),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_credential(secret, None, Some("wrong")),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_credential(secret, None, None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_credential(secret, Some("Bearer hook-s3cret"), None),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_credential(secret, Some("Basic %%%"), None),
            Err(SignatureError::Malformed)
        );
    }
}
