//! Queue message shapes: the SQS bodies the router writes and the worker reads.
//!
//! Two kinds of work travel through the queue: a Slack slash command that the
//! router has verified and acknowledged ([`CommandMessage`]), and a pipeline
//! reporting that its run ended ([`CompletionMessage`]). Both are JSON objects
//! tagged with `"kind"`, so the worker never has to guess a body's meaning
//! from which fields happen to be present. A body without `kind` that carries
//! a `command` field is read as a command, so a raw Slack-field JSON object
//! (handy when testing by hand) works too.
//!
//! The shapes are read by their `Deserialize` derives; the few wire rules
//! serde has no attribute for (non-empty strings, numbers that may arrive
//! quoted, `null` for an empty `text`) live in the `wire` readers below.
//! Reading goes through `serde_path_to_error`, so every error names the
//! field that is missing or malformed: a message the worker cannot read ends
//! up in the dead-letter queue, and whoever looks at it there deserves a
//! precise reason.

use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::{Deserialize, Serialize};
use serde_json::error::Category;
use serde_json::{Map, Value};

/// Why a queue body (or a Slack form body) could not be turned into a message.
///
/// Each variant names what is wrong precisely enough to fix the producer
/// without reading this crate's source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The body is not JSON at all.
    #[error("message body is not JSON: {detail}")]
    NotJson {
        /// The JSON parser's description of the problem.
        detail: String,
    },
    /// The body is JSON but not an object (e.g. an array or a string).
    #[error("message body must be a JSON object: {detail}")]
    NotAnObject {
        /// What was found instead, as the JSON reader words it.
        detail: String,
    },
    /// The body has no `kind` and no `command` field, so its meaning is unknown.
    #[error(
        "message has no `kind` field (expected \"command\" or \"completion\") and no `command` field"
    )]
    MissingKind,
    /// The `kind` field holds a value this version does not understand.
    #[error("unknown message kind `{kind}` (expected \"command\" or \"completion\")")]
    UnknownKind {
        /// The `kind` value that was found (JSON-rendered when not a string).
        kind: String,
    },
    /// A required field is absent (or, for a form body, empty where it may not be).
    #[error("{kind} message is missing required field `{field}`")]
    MissingField {
        /// Which message shape was being read: `command` or `completion`.
        kind: &'static str,
        /// The missing field's name.
        field: String,
    },
    /// A field is present but holds the wrong type or an unacceptable value.
    #[error("{kind} message field `{field}` is invalid: {problem}")]
    InvalidField {
        /// Which message shape was being read: `command` or `completion`.
        kind: &'static str,
        /// The offending field's name.
        field: String,
        /// What was found and what was expected instead.
        problem: String,
    },
}

/// A Slack slash command, as the router received it, waiting for the worker.
///
/// Field names are Slack's own, so the router can copy the form fields
/// across one to one and anyone reading a queued body recognises them.
/// `received_at` is added by the router: the worker uses it to tell how long
/// the command waited in the queue (Slack's `response_url` only works for 30
/// minutes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandMessage {
    /// The slash command itself, e.g. `/build`.
    #[serde(deserialize_with = "wire::non_empty")]
    pub command: String,
    /// Everything the user typed after the command; may be empty.
    #[serde(default, deserialize_with = "wire::text")]
    pub text: String,
    /// The Slack user id of the person who ran the command, e.g. `U2CERLKJA`.
    #[serde(deserialize_with = "wire::user_id")]
    pub user_id: String,
    /// The (deprecated, but still sent) Slack user name, shown in lock records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// The channel the command was run in; replies and completions go there.
    #[serde(deserialize_with = "wire::channel_id")]
    pub channel_id: String,
    /// The channel's name, for logs only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_name: Option<String>,
    /// The Slack workspace id.
    #[serde(deserialize_with = "wire::team_id")]
    pub team_id: String,
    /// The Slack workspace's domain, for logs only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_domain: Option<String>,
    /// The Enterprise Grid id, when the workspace belongs to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise_id: Option<String>,
    /// Where replies to this command are posted (up to 5 times in 30 minutes).
    #[serde(deserialize_with = "wire::web_url")]
    pub response_url: String,
    /// Slack's unique id for this invocation; a natural deduplication key.
    #[serde(deserialize_with = "wire::token")]
    pub trigger_id: String,
    /// The Slack app the command was sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_app_id: Option<String>,
    /// When the router received the command, in epoch milliseconds.
    #[serde(deserialize_with = "wire::integer")]
    pub received_at: u64,
}

/// How a pipeline run ended, in GitHub Actions' vocabulary.
///
/// Only `success` counts as success; every other conclusion releases the
/// lock as failed. The wire names come from the serde renames alone, for
/// reading, writing and [`Conclusion::as_str`] alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    /// The run finished and all its jobs passed.
    Success,
    /// The run finished and at least one job failed.
    Failure,
    /// Someone cancelled the run.
    Cancelled,
    /// The run exceeded its time limit.
    TimedOut,
}

impl Conclusion {
    /// Whether the run should be reported (and its lock released) as successful.
    pub fn succeeded(self) -> bool {
        matches!(self, Conclusion::Success)
    }

    /// A pipeline's own conclusion in baton's vocabulary. Only `success`
    /// succeeds; `neutral`, `skipped`, `action_required`, `stale`, a missing
    /// conclusion and anything newer count as failures, with a reason naming
    /// what the pipeline said.
    pub fn of_run(conclusion: Option<&str>) -> (Conclusion, Option<String>) {
        match conclusion {
            Some("success") => (Conclusion::Success, None),
            Some("failure") => (Conclusion::Failure, None),
            Some("cancelled") => (Conclusion::Cancelled, None),
            Some("timed_out") => (Conclusion::TimedOut, None),
            Some(other) => (
                Conclusion::Failure,
                Some(format!("the pipeline reported conclusion `{other}`")),
            ),
            None => (
                Conclusion::Failure,
                Some("the pipeline reported the run completed without a conclusion".to_string()),
            ),
        }
    }

    /// An Azure DevOps run's `result` in baton's vocabulary. Only
    /// `succeeded` succeeds; `failed` fails, `canceled` is cancelled;
    /// `partiallySucceeded` (some jobs failed), a missing result and anything
    /// newer count as failures, with a reason naming what Azure DevOps said.
    pub fn of_azure_result(result: Option<&str>) -> (Conclusion, Option<String>) {
        match result {
            Some("succeeded") => (Conclusion::Success, None),
            Some("failed") => (Conclusion::Failure, None),
            Some("canceled") => (Conclusion::Cancelled, None),
            Some(other) => (
                Conclusion::Failure,
                Some(format!("Azure DevOps reported result `{other}`")),
            ),
            None => (
                Conclusion::Failure,
                Some("Azure DevOps reported the run completed without a result".to_string()),
            ),
        }
    }

    /// The wire name (`success`, `failure`, `cancelled`, `timed_out`), for
    /// logs and replies that show the conclusion as the queue body spells it.
    pub fn as_str(self) -> &'static str {
        serde_variant::to_variant_name(&self).expect("a unit variant always has a serde name")
    }
}

/// A pipeline reporting that the run baton dispatched has ended.
///
/// It carries back the lock identity baton handed to the run as workflow
/// inputs (`lock_key`, `lock_id`, `fence`), so the worker can release exactly
/// the lock that run held and ignore a late report from a run whose lock was
/// already taken over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionMessage {
    /// The lock the run held, e.g. `build-router-plt`.
    #[serde(deserialize_with = "wire::non_empty")]
    pub lock_key: String,
    /// The unique id of that lock acquisition.
    #[serde(deserialize_with = "wire::token")]
    pub lock_id: String,
    /// The fencing token of that acquisition.
    #[serde(deserialize_with = "wire::integer")]
    pub fence: u64,
    /// How the run ended.
    #[serde(deserialize_with = "wire::name")]
    pub conclusion: Conclusion,
    /// Link to the run, shown in the channel.
    #[serde(
        default,
        deserialize_with = "wire::optional_web_url",
        skip_serializing_if = "Option::is_none"
    )]
    pub run_url: Option<String>,
    /// The GitHub Actions run id. A completion ends a chatops grant only
    /// when it names the run recorded on that grant.
    #[serde(
        default,
        deserialize_with = "wire::optional_integer",
        skip_serializing_if = "Option::is_none"
    )]
    pub run_id: Option<u64>,
    /// The repository the run belongs to, `owner/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The workflow file the run executed, e.g. `deploy.yml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// Where to post the outcome; without it the outcome is only logged.
    #[serde(
        default,
        deserialize_with = "wire::optional_channel_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub channel_id: Option<String>,
    /// Who or what sent the report (a workflow step, a webhook relay…), for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_by: Option<String>,
    /// Free-text explanation, e.g. which step failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl CompletionMessage {
    /// Whether the run succeeded; anything but `success` is a failure.
    pub fn succeeded(&self) -> bool {
        self.conclusion.succeeded()
    }
}

/// One queue body: either a slash command or a completion report.
///
/// Serialises with an explicit `"kind"` tag; read bodies with
/// [`QueueMessage::parse`], which also accepts untagged Slack-field JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QueueMessage {
    /// A slash command to carry out.
    Command(CommandMessage),
    /// A pipeline run that has ended.
    Completion(CompletionMessage),
}

/// The values of the `kind` tag, named by the same rule as [`QueueMessage`]'s.
///
/// `parse` reads the tag on its own, then the chosen shape straight from the
/// object: serde's internally tagged enums buffer the body first, which would
/// lose the field paths its errors need.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Command,
    Completion,
}

impl QueueMessage {
    /// Reads a queue body, naming precisely what is wrong when it can't.
    pub fn parse(body: &str) -> Result<QueueMessage, MessageError> {
        let obj: Map<String, Value> = serde_json::from_str(body).map_err(|e| {
            let detail = e.to_string();
            match e.classify() {
                Category::Data => MessageError::NotAnObject { detail },
                _ => MessageError::NotJson { detail },
            }
        })?;
        let kind = match obj.get("kind") {
            None | Some(Value::Null) if obj.contains_key("command") => Kind::Command,
            None | Some(Value::Null) => return Err(MessageError::MissingKind),
            Some(Value::String(tag)) => Kind::deserialize(tag.as_str().into_deserializer())
                .map_err(|_: serde::de::value::Error| MessageError::UnknownKind {
                    kind: tag.clone(),
                })?,
            Some(other) => {
                return Err(MessageError::UnknownKind {
                    kind: other.to_string(),
                });
            }
        };
        match kind {
            Kind::Command => read("command", obj).map(QueueMessage::Command),
            Kind::Completion => read("completion", obj).map(QueueMessage::Completion),
        }
    }

    /// The body to put on the queue, with its `kind` tag.
    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail (no maps with non-string
        // keys, no custom serialisers); fall back to an empty object anyway
        // rather than panic.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

impl From<CommandMessage> for QueueMessage {
    fn from(msg: CommandMessage) -> Self {
        QueueMessage::Command(msg)
    }
}

impl From<CompletionMessage> for QueueMessage {
    fn from(msg: CompletionMessage) -> Self {
        QueueMessage::Completion(msg)
    }
}

impl CommandMessage {
    /// The queue body for this command, tagged `"kind": "command"`.
    pub fn to_json(&self) -> String {
        QueueMessage::Command(self.clone()).to_json()
    }

    /// Builds a command from Slack's `application/x-www-form-urlencoded` POST
    /// body, stamping it with the time the router received it.
    ///
    /// Percent-escapes and `+` are decoded. Empty optional fields (Slack sends
    /// `enterprise_id=` outside Enterprise Grid) become `None`; an empty
    /// required field counts as missing, except `text`, which may be empty.
    /// Of a repeated field, the first non-empty occurrence wins.
    pub fn from_form_urlencoded(
        body: &[u8],
        received_at_ms: u64,
    ) -> Result<CommandMessage, MessageError> {
        let mut fields = Map::new();
        for (key, value) in form_urlencoded::parse(body) {
            if !value.is_empty() && !fields.contains_key(key.as_ref()) {
                fields.insert(key.into_owned(), Value::String(value.into_owned()));
            }
        }
        fields.insert("received_at".into(), Value::from(received_at_ms));
        read("command", fields)
    }
}

impl CompletionMessage {
    /// The queue body for this report, tagged `"kind": "completion"`.
    pub fn to_json(&self) -> String {
        QueueMessage::Completion(self.clone()).to_json()
    }
}

/// Reads one message shape from a JSON object, turning serde's error into a
/// [`MessageError`] that names the `kind` being read and the field at fault.
fn read<T: DeserializeOwned>(
    kind: &'static str,
    obj: Map<String, Value>,
) -> Result<T, MessageError> {
    serde_path_to_error::deserialize(Value::Object(obj)).map_err(|e| {
        let field = e.path().to_string();
        let problem = e.into_inner().to_string();
        // A missing field is reported on the object that lacks it (path `.`),
        // in serde's own words: "missing field `name`".
        let missing = problem
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'));
        match missing {
            Some(name) if field == "." => MessageError::MissingField {
                kind,
                field: name.to_string(),
            },
            _ => MessageError::InvalidField {
                kind,
                field,
                problem,
            },
        }
    })
}

/// Field readers for the wire rules that serde has no attribute for.
mod wire {
    use std::fmt;

    use serde::Deserialize;
    use serde::de::{self, Deserializer, IntoDeserializer, Unexpected, Visitor};

    /// A required string that must also not be empty: an empty id or URL is
    /// as useless to the worker as an absent one.
    pub fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Err(de::Error::invalid_value(
                Unexpected::Str(""),
                &"a non-empty string",
            ));
        }
        Ok(s)
    }

    /// A Slack id: `prefixes` then upper-case letters and digits (`U2CERLKJA`,
    /// `C0BUILDS`, `T0ACME`). The queue is not trusted: a field that becomes
    /// a mention, a channel to post to or a workflow input must look like
    /// what Slack sends, or the message is refused.
    fn slack_id<'de, D: Deserializer<'de>>(
        d: D,
        prefixes: &str,
        what: &'static str,
    ) -> Result<String, D::Error> {
        let s = String::deserialize(d)?;
        let mut chars = s.chars();
        let ok = chars.next().is_some_and(|c| prefixes.contains(c))
            && s.len() >= 2
            && s.len() <= 32
            && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !ok {
            return Err(de::Error::invalid_value(Unexpected::Str(&s), &what));
        }
        Ok(s)
    }

    /// A Slack user id (`U…`, or `W…` for Enterprise Grid).
    pub fn user_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        slack_id(d, "UW", "a Slack user id (U… or W…)")
    }

    /// A Slack conversation id (`C…`, `G…` or `D…`).
    pub fn channel_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        slack_id(d, "CGD", "a Slack channel id (C…, G… or D…)")
    }

    /// [`channel_id`] for an optional field.
    pub fn optional_channel_id<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<String>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => channel_id(s.into_deserializer()).map(Some),
        }
    }

    /// A Slack workspace or Enterprise Grid id (`T…` or `E…`).
    pub fn team_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        slack_id(d, "TE", "a Slack team id (T… or E…)")
    }

    /// An opaque token (a trigger id, a lock id): 1 to 128 printable ASCII
    /// characters without spaces, as SQS ids and lock ids are.
    pub fn token<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.len() > 128 || !s.chars().all(|c| c.is_ascii_graphic()) {
            return Err(de::Error::invalid_value(
                Unexpected::Str(&s),
                &"1 to 128 printable characters without spaces",
            ));
        }
        Ok(s)
    }

    /// An `http(s)://` URL with a host, no spaces or control characters:
    /// what becomes a link in Slack or a place to post a reply.
    pub fn web_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let s = String::deserialize(d)?;
        let rest = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"));
        let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
        let ok = host.is_some_and(|h| !h.is_empty() && !h.contains('@'))
            && s.len() <= 2048
            && s.chars().all(|c| c.is_ascii_graphic());
        if !ok {
            return Err(de::Error::invalid_value(
                Unexpected::Str(&s),
                &"an http(s) URL with a host",
            ));
        }
        Ok(s)
    }

    /// [`web_url`] for an optional field.
    pub fn optional_web_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => web_url(s.into_deserializer()).map(Some),
        }
    }

    /// Slack's `text`: absent and `null` both mean the user typed nothing.
    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Option::<String>::deserialize(d).map(Option::unwrap_or_default)
    }

    /// A unit-variant enum written as its name alone: serde's own enum
    /// reading would also take `{"success": null}`, which no producer sends.
    pub fn name<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
        let name = String::deserialize(d)?;
        T::deserialize(name.as_str().into_deserializer())
    }

    /// A non-negative integer written as a JSON number or as a string of
    /// digits: workflow inputs are always strings, so a pipeline echoing
    /// `fence` or `run_id` back may quote it.
    pub fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Integer::deserialize(d).map(|n| n.0)
    }

    /// [`integer`] for an optional field, where `null` means absent.
    pub fn optional_integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Option::<Integer>::deserialize(d).map(|n| n.map(|n| n.0))
    }

    /// What [`integer`] reads.
    struct Integer(u64);

    impl<'de> Deserialize<'de> for Integer {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(IntegerVisitor).map(Integer)
        }
    }

    struct IntegerVisitor;

    impl Visitor<'_> for IntegerVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer (a number or a string of digits)")
        }

        fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
            Ok(n)
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<u64, E> {
            s.trim()
                .parse()
                .map_err(|_| E::invalid_value(Unexpected::Str(s), &self))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Slack's published signing test body.
    const SLACK_TEST_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

    fn command() -> CommandMessage {
        CommandMessage {
            command: "/build".into(),
            text: "router plt".into(),
            user_id: "U1".into(),
            user_name: Some("ann".into()),
            channel_id: "C1".into(),
            channel_name: None,
            team_id: "T1".into(),
            team_domain: None,
            enterprise_id: None,
            response_url: "https://hooks.slack.com/commands/T1/1/x".into(),
            trigger_id: "1.2.3".into(),
            api_app_id: None,
            received_at: 1_700_000_000_123,
        }
    }

    fn completion() -> CompletionMessage {
        CompletionMessage {
            lock_key: "build-router-plt".into(),
            lock_id: "abc".into(),
            fence: 7,
            conclusion: Conclusion::TimedOut,
            run_url: Some("https://github.com/acme/platform/actions/runs/9".into()),
            run_id: Some(9),
            repository: None,
            workflow: None,
            channel_id: Some("C1".into()),
            reported_by: None,
            reason: None,
        }
    }

    #[test]
    fn command_round_trips_with_kind_tag() {
        let body = command().to_json();
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["kind"], "command");
        assert_eq!(v["received_at"], 1_700_000_000_123u64);
        assert!(v.get("channel_name").is_none(), "None fields are omitted");
        assert_eq!(
            QueueMessage::parse(&body).unwrap(),
            QueueMessage::Command(command())
        );
    }

    #[test]
    fn completion_round_trips_with_kind_tag() {
        let body = QueueMessage::from(completion()).to_json();
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["kind"], "completion");
        assert_eq!(v["conclusion"], "timed_out");
        assert_eq!(
            QueueMessage::parse(&body).unwrap(),
            QueueMessage::Completion(completion())
        );
        assert_eq!(completion().to_json(), body);
    }

    #[test]
    fn only_success_succeeds() {
        assert!(Conclusion::Success.succeeded());
        for c in [
            Conclusion::Failure,
            Conclusion::Cancelled,
            Conclusion::TimedOut,
        ] {
            assert!(!c.succeeded(), "{c:?}");
        }
        let mut m = completion();
        assert!(!m.succeeded());
        m.conclusion = Conclusion::Success;
        assert!(m.succeeded());
        assert_eq!(Conclusion::Cancelled.as_str(), "cancelled");
    }

    #[test]
    fn conclusion_names_are_the_wire_names() {
        for c in [
            Conclusion::Success,
            Conclusion::Failure,
            Conclusion::Cancelled,
            Conclusion::TimedOut,
        ] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
            assert_eq!(
                serde_json::from_value::<Conclusion>(json!(c.as_str())).unwrap(),
                c
            );
        }
        assert_eq!(Conclusion::TimedOut.as_str(), "timed_out");
    }

    #[test]
    fn azure_results_map_and_unknown_ones_fail_with_a_reason() {
        let cases = [
            (Some("succeeded"), Conclusion::Success, false),
            (Some("failed"), Conclusion::Failure, false),
            (Some("canceled"), Conclusion::Cancelled, false),
            (Some("partiallySucceeded"), Conclusion::Failure, true),
            (Some("unknown"), Conclusion::Failure, true),
            (None, Conclusion::Failure, true),
        ];
        for (result, want, has_reason) in cases {
            let (got, reason) = Conclusion::of_azure_result(result);
            assert_eq!(got, want, "{result:?}");
            assert_eq!(reason.is_some(), has_reason, "{result:?}");
        }
        let (_, reason) = Conclusion::of_azure_result(Some("partiallySucceeded"));
        assert!(reason.unwrap().contains("`partiallySucceeded`"));
    }

    #[test]
    fn not_json_is_named() {
        let err = QueueMessage::parse("kind=command").unwrap_err();
        assert!(matches!(err, MessageError::NotJson { .. }), "{err:?}");
        assert!(err.to_string().starts_with("message body is not JSON"));
    }

    #[test]
    fn non_object_is_named() {
        let err = QueueMessage::parse("[1,2]").unwrap_err();
        assert!(matches!(err, MessageError::NotAnObject { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("message body must be a JSON object: invalid type: sequence"),
            "{text}"
        );
        let err = QueueMessage::parse(r#""kind""#).unwrap_err();
        assert!(err.to_string().contains("string \"kind\""), "{err}");
    }

    #[test]
    fn missing_field_is_named() {
        let mut v = serde_json::to_value(QueueMessage::from(command())).unwrap();
        v.as_object_mut().unwrap().remove("user_id");
        let err = QueueMessage::parse(&v.to_string()).unwrap_err();
        assert_eq!(
            err,
            MessageError::MissingField {
                kind: "command",
                field: "user_id".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "command message is missing required field `user_id`"
        );

        let err = QueueMessage::parse(
            r#"{"kind":"completion","lock_key":"k","lock_id":"i","conclusion":"success"}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            MessageError::MissingField {
                kind: "completion",
                field: "fence".into()
            }
        );
    }

    #[test]
    fn wrong_type_is_named() {
        let err = QueueMessage::parse(
            r#"{"kind":"completion","lock_key":"k","lock_id":"i","fence":-3,"conclusion":"success"}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&err, MessageError::InvalidField { kind: "completion", field, .. } if field == "fence"),
            "{err:?}"
        );
        assert!(err.to_string().contains("integer `-3`"), "{err}");
        let err = QueueMessage::parse(
            r#"{"kind":"completion","lock_key":5,"lock_id":"i","fence":3,"conclusion":"success"}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "completion message field `lock_key` is invalid: invalid type: integer `5`, expected a string"
        );
        let err = QueueMessage::parse(
            r#"{"kind":"completion","lock_key":"k","lock_id":"i","fence":"3x","conclusion":"success"}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&err, MessageError::InvalidField { field, .. } if field == "fence"),
            "{err:?}"
        );
        assert!(err.to_string().contains(r#"string "3x""#), "{err}");
    }

    #[test]
    fn empty_required_string_is_invalid() {
        let mut v = serde_json::to_value(QueueMessage::from(completion())).unwrap();
        v["lock_id"] = json!("");
        let err = QueueMessage::parse(&v.to_string()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "completion message field `lock_id` is invalid: invalid value: string \"\", expected 1 to 128 printable characters without spaces"
        );
    }

    #[test]
    fn null_means_absent_for_optional_fields() {
        let mut v = serde_json::to_value(QueueMessage::from(completion())).unwrap();
        v["run_id"] = Value::Null;
        v["run_url"] = Value::Null;
        let QueueMessage::Completion(c) = QueueMessage::parse(&v.to_string()).unwrap() else {
            panic!("expected a completion");
        };
        assert_eq!((c.run_id, c.run_url), (None, None));

        let mut v = serde_json::to_value(QueueMessage::from(command())).unwrap();
        v["text"] = Value::Null;
        v["user_name"] = Value::Null;
        let QueueMessage::Command(c) = QueueMessage::parse(&v.to_string()).unwrap() else {
            panic!("expected a command");
        };
        assert_eq!((c.text.as_str(), c.user_name), ("", None));
    }

    #[test]
    fn unknown_conclusion_lists_known_ones() {
        let err = QueueMessage::parse(
            r#"{"kind":"completion","lock_key":"k","lock_id":"i","fence":3,"conclusion":"neutral"}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&err, MessageError::InvalidField { field, .. } if field == "conclusion"),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("`conclusion`"), "{text}");
        assert!(
            text.contains("neutral")
                && ["success", "failure", "cancelled", "timed_out"]
                    .iter()
                    .all(|known| text.contains(known)),
            "{text}"
        );
        // Only the plain name, not serde's `{"variant": null}` form.
        let err = QueueMessage::parse(
            r#"{"kind":"completion","lock_key":"k","lock_id":"i","fence":3,"conclusion":{"success":null}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "completion message field `conclusion` is invalid: invalid type: map, expected a string"
        );
    }

    #[test]
    fn fence_may_be_a_quoted_number() {
        let msg = QueueMessage::parse(
            r#"{"kind":"completion","lock_key":"k","lock_id":"i","fence":"42","conclusion":"failure","run_id":"77"}"#,
        )
        .unwrap();
        let QueueMessage::Completion(c) = msg else {
            panic!("expected completion, got {msg:?}");
        };
        assert_eq!((c.fence, c.run_id), (42, Some(77)));
        assert!(!c.succeeded());
    }

    #[test]
    fn unknown_kind_is_named() {
        assert_eq!(
            QueueMessage::parse(r#"{"kind":"cancel","command":"/build"}"#).unwrap_err(),
            MessageError::UnknownKind {
                kind: "cancel".into()
            }
        );
        assert_eq!(
            QueueMessage::parse(r#"{"kind":3}"#).unwrap_err(),
            MessageError::UnknownKind { kind: "3".into() }
        );
        // Only a plain string names a kind, not serde's `{"variant": null}` form.
        assert_eq!(
            QueueMessage::parse(r#"{"kind":{"command":null},"command":"/build"}"#).unwrap_err(),
            MessageError::UnknownKind {
                kind: r#"{"command":null}"#.into()
            }
        );
    }

    #[test]
    fn missing_kind_without_command_is_rejected() {
        assert_eq!(
            QueueMessage::parse(r#"{"lock_key":"k"}"#).unwrap_err(),
            MessageError::MissingKind
        );
    }

    #[test]
    fn raw_slack_json_without_kind_is_a_command() {
        let body = json!({
            "command": "/deploy",
            "user_id": "U9",
            "channel_id": "C9",
            "team_id": "T9",
            "response_url": "https://hooks.slack.com/x",
            "trigger_id": "t",
            "received_at": 5,
            "token": "ignored-unknown-field"
        });
        let QueueMessage::Command(c) = QueueMessage::parse(&body.to_string()).unwrap() else {
            panic!("expected a command");
        };
        assert_eq!(c.command, "/deploy");
        assert_eq!(c.text, "", "text defaults to empty");
        assert_eq!(c.received_at, 5);
    }

    #[test]
    fn slack_test_form_body_decodes() {
        let c = CommandMessage::from_form_urlencoded(SLACK_TEST_BODY.as_bytes(), 99).unwrap();
        assert_eq!(c.user_id, "U2CERLKJA");
        assert_eq!(c.user_name.as_deref(), Some("roadrunner"));
        assert_eq!(c.command, "/webhook-collect");
        assert_eq!(c.text, "");
        assert_eq!(
            c.response_url,
            "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN"
        );
        assert_eq!(c.channel_id, "G8PSS9T3V");
        assert_eq!(c.channel_name.as_deref(), Some("foobar"));
        assert_eq!(c.team_id, "T1DC2JH3J");
        assert_eq!(c.enterprise_id, None);
        assert_eq!(
            c.trigger_id,
            "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
        );
        assert_eq!(c.received_at, 99);
        // And it survives the queue.
        assert_eq!(
            QueueMessage::parse(&c.to_json()).unwrap(),
            QueueMessage::Command(c)
        );
    }

    #[test]
    fn form_plus_and_percent_decode_in_text() {
        let body = SLACK_TEST_BODY.replace("text=", "text=router+plt+%2D%2Ddry-run+caf%C3%A9");
        let c = CommandMessage::from_form_urlencoded(body.as_bytes(), 0).unwrap();
        assert_eq!(c.text, "router plt --dry-run café");
    }

    #[test]
    fn form_missing_required_field_is_named() {
        let body = SLACK_TEST_BODY.replace("&trigger_id=", "&not_trigger=");
        assert_eq!(
            CommandMessage::from_form_urlencoded(body.as_bytes(), 0).unwrap_err(),
            MessageError::MissingField {
                kind: "command",
                field: "trigger_id".into()
            }
        );
        let body = SLACK_TEST_BODY.replace("user_id=U2CERLKJA", "user_id=");
        assert_eq!(
            CommandMessage::from_form_urlencoded(body.as_bytes(), 0).unwrap_err(),
            MessageError::MissingField {
                kind: "command",
                field: "user_id".into()
            }
        );
    }

    #[test]
    fn form_first_occurrence_wins_and_empty_optionals_are_none() {
        let body = format!("{SLACK_TEST_BODY}&user_id=U-LATER&enterprise_id=&api_app_id=A1");
        let c = CommandMessage::from_form_urlencoded(body.as_bytes(), 0).unwrap();
        assert_eq!(c.user_id, "U2CERLKJA");
        assert_eq!(c.enterprise_id, None);
        assert_eq!(c.api_app_id.as_deref(), Some("A1"));
        // An empty first occurrence counts as absent, so a later one is read.
        let body = SLACK_TEST_BODY.replace("user_id=U2CERLKJA", "user_id=&user_id=U2");
        let c = CommandMessage::from_form_urlencoded(body.as_bytes(), 0).unwrap();
        assert_eq!(c.user_id, "U2");
    }

    #[test]
    fn garbage_form_does_not_panic() {
        let err = CommandMessage::from_form_urlencoded(b"%zz&&==&\xff\xfe=%", 0).unwrap_err();
        assert!(
            matches!(&err, MessageError::MissingField { kind: "command", field } if field == "command"),
            "{err:?}"
        );
    }
}
