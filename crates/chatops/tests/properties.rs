//! Bad input, by property: the parsers that face the outside world — the
//! command grammar, SQS bodies (commands and completion records), Slack's
//! form bodies and the command config — never panic, reject with a message
//! that says something, and give back what they were given where a value
//! can be written out and read again.
//!
//! Case counts are moderate so the suite stays quick; `PROPTEST_CASES`
//! raises them for a longer hunt. A failing case is shrunk and saved under
//! `tests/properties.proptest-regressions` to be replayed on the next run.

use baton_chatops::{
    CommandError, CommandMessage, CompletionMessage, Conclusion, Config, ConfigError, Membership,
    MessageError, QueueMessage, Request, Target, decide, parse_request,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// A config with every knob the grammar looks at: permissions per
/// environment, unlock users, and each lock scope.
const CONFIG: &str = r#"
[commands."/build"]
lock_ttl = "10m"
components = ["router", "api", "web"]
environments = ["dev", "plt", "prod"]
unlock_users = ["UADMIN"]
[commands."/build".allowed_users]
prod = ["UADMIN", "UREL"]
[commands."/build".pipeline]
repo = "acme/platform"
workflow = "build.yml"

[commands."/deploy"]
lock_ttl = "30m"
lock_scope = "environment"
components = ["router", "api"]
environments = ["plt", "prod"]
[commands."/deploy".pipeline]
repo = "acme/platform"
workflow = "deploy.yml"

[commands."/migrate"]
lock_ttl = "1h"
lock_scope = "command"
components = ["db"]
environments = ["prod"]
[commands."/migrate".pipeline]
repo = "acme/platform"
workflow = "migrate.yml"
"#;

fn config() -> Config {
    Config::from_toml_str(CONFIG).expect("the test config is valid")
}

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn says_something(what: &str, message: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        !message.trim().is_empty(),
        "{what} rejected with an empty message"
    );
    Ok(())
}

fn check_command_error(e: &CommandError) -> Result<(), TestCaseError> {
    says_something("parse_request (Display)", &e.to_string())?;
    says_something("parse_request (user_message)", &e.user_message())
}

fn check_message_error(what: &str, e: &MessageError) -> Result<(), TestCaseError> {
    says_something(what, &e.to_string())
}

fn check_config_error(e: &ConfigError) -> Result<(), TestCaseError> {
    says_something("Config::from_toml_str", &e.to_string())?;
    if let ConfigError::Syntax { line, column, .. } = e {
        prop_assert!(*line >= 1 && *column >= 1, "positions are 1-based: {e:?}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The command grammar.

/// Words users type, words the grammar knows, and noise.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "router", "API", "web", "db", "dev", "plt", "PROD", "status", "unlock", "help", "-h", "--help", "queue", "leave", "history", "cancel",
            "--dry-run", "\u{2014}dry-run", "\u{2013}DRY-RUN", "--dryrun", "-x", "--force", "because", "it", "died",
            "freeze", "unfreeze", "2h", "90m", "--override-freeze",
        ])
        .prop_map(str::to_owned),
        1 => "\\PC{1,12}",
        1 => "[a-z]{1,8}",
    ]
}

/// Words joined by assorted whitespace (spaces, tabs, newlines, NBSP, ideographic space).
fn command_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec((word(), prop::sample::select(vec![" ", "  ", "\t", "\n", "\u{a0}", "\u{3000}"])), 0..7)
            .prop_map(|parts| parts.into_iter().map(|(w, s)| format!("{w}{s}")).collect::<String>()),
        1 => "\\PC{0,80}",
        1 => any::<String>(),
    ]
}

fn command_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["/build", "/deploy", "/migrate", "/BUILD", " /deploy ", "/destroy", "build", ""])
            .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn user() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["U1", "UADMIN", "UREL"]).prop_map(str::to_owned),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(cases(1000))]

    #[test]
    fn the_grammar_answers_every_text(command in command_name(), text in command_text(), user in user()) {
        let config = config();
        match parse_request(&config, &command, &text, &user) {
            Err(e) => check_command_error(&e)?,
            Ok(request) => {
                let cmd = config.command(request.command()).expect("requests are for configured commands");
                match &request {
                    Request::Run { target, lock_key, .. }
                    | Request::Unlock { target, lock_key, .. }
                    | Request::Cancel { target, lock_key, .. }
                    | Request::Leave { target, lock_key }
                    | Request::History { target, lock_key }
                    | Request::Queue { target: Some((target, lock_key)), .. } => {
                        prop_assert!(cmd.components.contains(&target.component), "{request:?}");
                        prop_assert!(cmd.environments.contains(&target.environment), "{request:?}");
                        prop_assert_eq!(&target.command, &cmd.name);
                        prop_assert_eq!(lock_key, &cmd.lock_key(target));
                    }
                    Request::Freeze { environment, reason, .. } => {
                        prop_assert!(cmd.environments.contains(environment), "{request:?}");
                        prop_assert!(!reason.trim().is_empty(), "a freeze always carries its reason");
                        prop_assert!(cmd.user_may_unlock(&user), "only admins freeze");
                    }
                    Request::Unfreeze { environment, .. } => {
                        prop_assert!(cmd.environments.contains(environment), "{request:?}");
                        prop_assert!(cmd.user_may_unlock(&user), "only admins unfreeze");
                    }
                    Request::Status { .. } | Request::Help { .. } | Request::Queue { target: None, .. } => {}
                }
                if let Request::Run { override_freeze: true, .. } = &request {
                    prop_assert!(cmd.user_may_unlock(&user), "only admins override a freeze");
                }
                if let Request::Unlock { reason, .. } = &request {
                    prop_assert!(!reason.trim().is_empty(), "an unlock always carries its reason");
                    prop_assert!(cmd.user_may_unlock(&user));
                }
                if let Request::Run { target, .. } = &request {
                    prop_assert!(cmd.user_may_run(&user, &target.environment));
                }
                // Written out the way a user would type it, it reads the same.
                let again = parse_request(&config, request.command(), &request.text(), &user);
                prop_assert_eq!(again, Ok(request));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// SQS bodies: commands and completion records.

/// Non-empty strings, sometimes with quotes, escapes, unicode and controls.
fn required_text() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[A-Za-z0-9/_.:-]{1,24}", 1 => "\\PC{1,24}", 1 => any::<String>().prop_filter("non-empty", |s| !s.is_empty())]
}

/// Slack ids of the kinds a message carries: a prefix from `prefixes`, then
/// upper-case letters and digits.
fn slack_id(prefixes: &'static str) -> impl Strategy<Value = String> {
    (
        prop::sample::select(prefixes.chars().collect::<Vec<_>>()),
        "[A-Z0-9]{1,12}",
    )
        .prop_map(|(p, rest)| format!("{p}{rest}"))
}

/// Printable ASCII tokens without spaces (trigger ids, lock ids).
fn token() -> impl Strategy<Value = String> {
    "[!-~]{1,40}"
}

/// `http(s)://host/path` URLs.
fn web_url() -> impl Strategy<Value = String> {
    (
        "https?",
        "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
        "(/[A-Za-z0-9_.~%-]{0,12}){0,4}",
    )
        .prop_map(|(scheme, host, path)| format!("{scheme}://{host}{path}"))
}

fn optional_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![3 => "[A-Za-z0-9 _.-]{0,16}", 1 => any::<String>()])
}

prop_compose! {
    fn command_message()(
        command in required_text(), text in any::<String>(), user_id in slack_id("UW"), user_name in optional_text(),
        channel_id in slack_id("CGD"), channel_name in optional_text(), team_id in slack_id("TE"),
        team_domain in optional_text(), enterprise_id in optional_text(), response_url in web_url(),
        trigger_id in token(), api_app_id in optional_text(), received_at in any::<u64>(),
    ) -> CommandMessage {
        CommandMessage {
            command, text, user_id, user_name, channel_id, channel_name, team_id, team_domain, enterprise_id,
            response_url, trigger_id, api_app_id, received_at,
        }
    }
}

fn conclusion() -> impl Strategy<Value = Conclusion> {
    prop::sample::select(vec![
        Conclusion::Success,
        Conclusion::Failure,
        Conclusion::Cancelled,
        Conclusion::TimedOut,
    ])
}

prop_compose! {
    fn completion_message()(
        lock_key in required_text(), lock_id in token(), fence in any::<u64>(), conclusion in conclusion(),
        run_url in prop::option::of(web_url()), run_id in prop::option::of(any::<u64>()), channel_id in prop::option::of(slack_id("CGD")),
        reported_by in optional_text(), reason in optional_text(),
    ) -> CompletionMessage {
        CompletionMessage { lock_key, lock_id, fence, conclusion, run_url, run_id, repository: None, workflow: None, channel_id, reported_by, reason }
    }
}

fn queue_message() -> impl Strategy<Value = QueueMessage> {
    prop_oneof![
        command_message().prop_map(QueueMessage::Command),
        completion_message().prop_map(QueueMessage::Completion),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::from),
        "[0-9]{1,25}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// One way to damage a valid body.
#[derive(Debug, Clone)]
enum Mutation {
    Remove(prop::sample::Index),
    Replace(prop::sample::Index, Value),
    Add(String, Value),
    Kind(Value),
    Truncate(prop::sample::Index),
    Insert(prop::sample::Index, char),
    Wrap,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => any::<prop::sample::Index>().prop_map(Mutation::Remove),
        3 => (any::<prop::sample::Index>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        1 => ("[a-z_]{1,12}", json_value()).prop_map(|(k, v)| Mutation::Add(k, v)),
        1 => prop_oneof![
            Just(Value::Null),
            Just(json!("Command")),
            Just(json!("completion")),
            Just(json!("command")),
            json_value(),
        ]
        .prop_map(Mutation::Kind),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        1 => (any::<prop::sample::Index>(), any::<char>()).prop_map(|(i, c)| Mutation::Insert(i, c)),
        1 => Just(Mutation::Wrap),
    ]
}

/// Applies `mutations` to the JSON of `message`, structurally or as text.
fn mutate(message: &QueueMessage, mutations: &[Mutation]) -> String {
    let mut value: Value = serde_json::from_str(&message.to_json()).expect("to_json writes JSON");
    let mut text = None;
    for m in mutations {
        let obj = value.as_object_mut();
        match (m, obj) {
            (Mutation::Remove(i), Some(obj)) if !obj.is_empty() => {
                let key = obj
                    .keys()
                    .nth(i.index(obj.len()))
                    .cloned()
                    .unwrap_or_default();
                obj.remove(&key);
            }
            (Mutation::Replace(i, v), Some(obj)) if !obj.is_empty() => {
                let key = obj
                    .keys()
                    .nth(i.index(obj.len()))
                    .cloned()
                    .unwrap_or_default();
                obj.insert(key, v.clone());
            }
            (Mutation::Add(k, v), Some(obj)) => {
                obj.insert(k.clone(), v.clone());
            }
            (Mutation::Kind(v), Some(obj)) => {
                obj.insert("kind".into(), v.clone());
            }
            (Mutation::Wrap, _) => value = json!([value]),
            (Mutation::Truncate(i), _) => {
                let s = text.take().unwrap_or_else(|| value.to_string());
                let cut = i.index(s.len() + 1);
                let cut = (0..=cut)
                    .rev()
                    .find(|&c| s.is_char_boundary(c))
                    .unwrap_or(0);
                text = Some(s[..cut].to_owned());
            }
            (Mutation::Insert(i, c), _) => {
                let mut s = text.take().unwrap_or_else(|| value.to_string());
                let at = i.index(s.len() + 1);
                let at = (0..=at).rev().find(|&a| s.is_char_boundary(a)).unwrap_or(0);
                s.insert(at, *c);
                text = Some(s);
            }
            _ => {}
        }
    }
    text.unwrap_or_else(|| value.to_string())
}

proptest! {
    #![proptest_config(cases(384))]

    #[test]
    fn any_string_is_read_or_rejected_with_a_reason(body in prop_oneof![any::<String>(), "\\{.{0,60}\\}", "[\\[\\]{}\":,0-9a-z ]{0,40}"]) {
        match QueueMessage::parse(&body) {
            Ok(message) => prop_assert_eq!(QueueMessage::parse(&message.to_json()), Ok(message)),
            Err(e) => check_message_error("QueueMessage::parse", &e)?,
        }
    }

    #[test]
    fn every_queue_message_reads_back_as_itself(message in queue_message()) {
        let body = message.to_json();
        prop_assert_eq!(QueueMessage::parse(&body), Ok(message.clone()));
        // The per-kind writers agree with the tagged one.
        match &message {
            QueueMessage::Command(c) => prop_assert_eq!(c.to_json(), body),
            QueueMessage::Completion(c) => prop_assert_eq!(c.to_json(), body),
        }
    }

    #[test]
    fn damaged_queue_bodies_are_read_or_rejected_with_a_reason(
        message in queue_message(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let body = mutate(&message, &mutations);
        match QueueMessage::parse(&body) {
            Ok(read) => {
                prop_assert_eq!(QueueMessage::parse(&read.to_json()), Ok(read.clone()));
                if let QueueMessage::Completion(c) = &read {
                    prop_assert!(!c.lock_key.is_empty() && !c.lock_id.is_empty(), "{c:?}");
                }
                if let QueueMessage::Command(c) = &read {
                    prop_assert!(!c.command.is_empty() && !c.response_url.is_empty() && !c.user_id.is_empty(), "{c:?}");
                }
            }
            Err(e) => check_message_error("QueueMessage::parse", &e)?,
        }
    }

    #[test]
    fn completion_fences_are_read_exactly_as_numbers_or_digit_strings(
        message in completion_message(),
        quoted in any::<bool>(),
        padding in "[ ]{0,2}",
    ) {
        let mut value: Value = serde_json::from_str(&message.to_json()).unwrap();
        if quoted {
            value["fence"] = json!(format!("{padding}{}{padding}", message.fence));
        }
        prop_assert_eq!(QueueMessage::parse(&value.to_string()), Ok(QueueMessage::Completion(message)));
    }
}

// ---------------------------------------------------------------------------
// Slack's form-encoded POST bodies.

const FORM_FIELDS: [&str; 12] = [
    "command",
    "text",
    "user_id",
    "user_name",
    "channel_id",
    "channel_name",
    "team_id",
    "team_domain",
    "enterprise_id",
    "response_url",
    "trigger_id",
    "api_app_id",
];

fn form_soup() -> impl Strategy<Value = Vec<u8>> {
    let pair = (
        prop_oneof![
            prop::sample::select(FORM_FIELDS.to_vec()).prop_map(str::to_owned),
            "[a-z_%+]{0,8}"
        ],
        prop_oneof!["[A-Za-z0-9%+=&./:-]{0,16}", "\\PC{0,8}"],
    );
    prop::collection::vec(pair, 0..14).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes()
    })
}

/// Optional fields as Slack sends them: absent or non-empty (it sends `x=`
/// for empty ones, which reads as absent).
fn form_optional() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof!["[A-Za-z0-9 _.-]{1,16}", "\\PC{1,8}"])
}

prop_compose! {
    fn slack_command()(
        command in required_text(), text in any::<String>(), user_id in slack_id("UW"), user_name in form_optional(),
        channel_id in slack_id("CGD"), channel_name in form_optional(), team_id in slack_id("TE"),
        team_domain in form_optional(), enterprise_id in form_optional(), response_url in web_url(),
        trigger_id in token(), api_app_id in form_optional(), received_at in any::<u64>(),
    ) -> CommandMessage {
        CommandMessage {
            command, text, user_id, user_name, channel_id, channel_name, team_id, team_domain, enterprise_id,
            response_url, trigger_id, api_app_id, received_at,
        }
    }
}

fn to_form(m: &CommandMessage, shuffle: &[prop::sample::Index]) -> Vec<u8> {
    let mut fields: Vec<(&str, Option<&str>)> = vec![
        ("command", Some(&m.command)),
        ("text", Some(&m.text)),
        ("user_id", Some(&m.user_id)),
        ("user_name", m.user_name.as_deref()),
        ("channel_id", Some(&m.channel_id)),
        ("channel_name", m.channel_name.as_deref()),
        ("team_id", Some(&m.team_id)),
        ("team_domain", m.team_domain.as_deref()),
        ("enterprise_id", m.enterprise_id.as_deref()),
        ("response_url", Some(&m.response_url)),
        ("trigger_id", Some(&m.trigger_id)),
        ("api_app_id", m.api_app_id.as_deref()),
        ("token", Some("ignored")),
    ];
    let n = fields.len();
    for (i, index) in shuffle.iter().enumerate() {
        fields.swap(i % n, index.index(n));
    }
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        // Slack sends empty optional fields as `name=`.
        form.append_pair(name, value.unwrap_or(""));
    }
    form.finish().into_bytes()
}

proptest! {
    #![proptest_config(cases(384))]

    #[test]
    fn any_form_body_is_read_or_rejected_with_a_reason(
        body in prop_oneof![any::<Vec<u8>>(), form_soup()],
        received_at in any::<u64>(),
    ) {
        match CommandMessage::from_form_urlencoded(&body, received_at) {
            Ok(m) => {
                prop_assert_eq!(m.received_at, received_at);
                prop_assert!(!m.command.is_empty() && !m.user_id.is_empty() && !m.response_url.is_empty(), "{m:?}");
                prop_assert_eq!(QueueMessage::parse(&m.to_json()), Ok(QueueMessage::Command(m)));
            }
            Err(e) => check_message_error("CommandMessage::from_form_urlencoded", &e)?,
        }
    }

    #[test]
    fn every_slack_form_reads_back_as_the_command_it_encodes(
        message in slack_command(),
        shuffle in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let body = to_form(&message, &shuffle);
        prop_assert_eq!(CommandMessage::from_form_urlencoded(&body, message.received_at), Ok(message));
    }
}

// ---------------------------------------------------------------------------
// The command config.

/// One way to damage a valid TOML file, line by line or character by character.
#[derive(Debug, Clone)]
enum Edit {
    DropLine(prop::sample::Index),
    DuplicateLine(prop::sample::Index),
    ReplaceValue(prop::sample::Index, String),
    InsertText(prop::sample::Index, String),
    Truncate(prop::sample::Index),
}

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "\"\"",
            "\"0s\"",
            "\"59s\"",
            "\"1m\"",
            "\"12h\"",
            "\"13h\"",
            "\"forever\"",
            "[]",
            "[\"status\"]",
            "[\"Router\"]",
            "[\"a\", \"a\"]",
            "\"queue\"",
            "\"component\"",
            "\"nope\"",
            "true",
            "42",
            "-1",
            "{}",
            "\"acme\"",
            "\"a/b/c\"",
            "\"build yml\"",
            "\"main\"",
            "[\"U1\", \"\"]",
            "\"\\u00e9\"",
        ])
        .prop_map(str::to_owned),
        "\"\\PC{0,10}\"",
        "\\PC{0,10}",
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        2 => any::<prop::sample::Index>().prop_map(Edit::DropLine),
        1 => any::<prop::sample::Index>().prop_map(Edit::DuplicateLine),
        4 => (any::<prop::sample::Index>(), toml_value()).prop_map(|(i, v)| Edit::ReplaceValue(i, v)),
        1 => (any::<prop::sample::Index>(), prop_oneof!["\\PC{1,6}", Just("[".to_owned()), Just("\"".to_owned()), Just("\n[commands.\"/x\"]\n".to_owned())])
            .prop_map(|(i, t)| Edit::InsertText(i, t)),
        1 => any::<prop::sample::Index>().prop_map(Edit::Truncate),
    ]
}

fn edit_toml(source: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = source.lines().map(str::to_owned).collect();
    let mut text: Option<String> = None;
    for e in edits {
        if lines.is_empty() {
            break;
        }
        match e {
            Edit::DropLine(i) => {
                lines.remove(i.index(lines.len()));
            }
            Edit::DuplicateLine(i) => {
                let at = i.index(lines.len());
                lines.insert(at, lines[at].clone());
            }
            Edit::ReplaceValue(i, v) => {
                let at = i.index(lines.len());
                if let Some((key, _)) = lines[at].split_once('=') {
                    lines[at] = format!("{key}= {v}");
                }
            }
            Edit::InsertText(i, t) => {
                let mut s = text.take().unwrap_or_else(|| lines.join("\n"));
                let at = i.index(s.len() + 1);
                let at = (0..=at).rev().find(|&a| s.is_char_boundary(a)).unwrap_or(0);
                s.insert_str(at, t);
                text = Some(s);
            }
            Edit::Truncate(i) => {
                let s = text.take().unwrap_or_else(|| lines.join("\n"));
                let at = i.index(s.len() + 1);
                let at = (0..=at).rev().find(|&a| s.is_char_boundary(a)).unwrap_or(0);
                text = Some(s[..at].to_owned());
            }
        }
        if let Some(t) = &text {
            lines = t.lines().map(str::to_owned).collect();
            text = None;
        }
    }
    text.unwrap_or_else(|| lines.join("\n"))
}

/// What every accepted config promises the rest of baton.
fn check_accepted(config: &Config) -> Result<(), TestCaseError> {
    prop_assert!(
        config.commands().next().is_some(),
        "an accepted config has commands"
    );
    for c in config.commands() {
        prop_assert!(c.name.starts_with('/') && c.name.len() > 1, "{:?}", c.name);
        prop_assert!(
            !c.components.is_empty() && !c.environments.is_empty(),
            "{c:?}"
        );
        prop_assert!(
            (std::time::Duration::from_secs(60)..=std::time::Duration::from_secs(12 * 3600))
                .contains(&c.lock_ttl),
            "{c:?}"
        );
        let pipeline = c.pipeline.github();
        prop_assert!(pipeline.is_some(), "{:?}", c.pipeline);
        prop_assert!(
            pipeline.is_some_and(|p| !p.owner.is_empty()
                && !p.repo.is_empty()
                && !p.workflow.is_empty())
        );
        for word in ["status", "unlock", "help"] {
            prop_assert!(
                !c.components.iter().any(|x| x == word)
                    && !c.environments.iter().any(|x| x == word)
            );
        }
        // Every configured target can be asked for and gets its own key.
        let (component, environment) = (&c.components[0], &c.environments[0]);
        let text = format!("{component} {environment}");
        if c.user_may_run("U-anyone", environment) {
            match parse_request(config, &c.name, &text, "U-anyone") {
                Ok(Request::Run { lock_key, .. }) => {
                    prop_assert_eq!(
                        lock_key,
                        c.lock_key(&Target::new(&c.name, component, environment))
                    )
                }
                other => prop_assert!(false, "`{} {text}` was not a run: {other:?}", c.name),
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(384))]

    #[test]
    fn any_text_is_a_config_or_an_error_that_says_where(source in prop_oneof![any::<String>(), "[\\[\\]\"=a-z./ \n]{0,80}"]) {
        match Config::from_toml_str(&source) {
            Ok(config) => check_accepted(&config)?,
            Err(e) => check_config_error(&e)?,
        }
    }

    #[test]
    fn damaged_configs_are_accepted_only_when_valid(
        base in prop::sample::select(vec![Config::BUILTIN_TOML, CONFIG]),
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let source = edit_toml(base, &edits);
        match Config::from_toml_str(&source) {
            Ok(config) => check_accepted(&config)?,
            Err(e) => check_config_error(&e)?,
        }
    }
}

#[test]
fn the_builtin_toml_is_the_builtin_config() {
    assert_eq!(
        Config::from_toml_str(Config::BUILTIN_TOML),
        Ok(Config::builtin())
    );
}

proptest! {
    #![proptest_config(cases(500))]

    /// The queue is not trusted: a command whose ids or URL do not look like
    /// Slack's is refused with the field named, never read.
    #[test]
    fn commands_with_forged_ids_or_urls_are_refused(
        message in command_message(),
        field in prop::sample::select(vec!["user_id", "channel_id", "team_id", "response_url", "trigger_id"]),
        bad in prop_oneof![
            Just(String::new()),
            "[a-z]{1,8}",
            "U[A-Z0-9]{0,4}[ <>@|&*][A-Z0-9]{0,4}",
            "javascript:[a-z]{1,8}",
            "https://[a-z]{1,5}@[a-z]{1,5}/x",
        ],
    ) {
        let mut body = serde_json::to_value(QueueMessage::Command(message)).expect("serialises");
        body[field] = Value::from(bad.clone());
        // A few generated values happen to be valid for some fields.
        let valid = match field {
            "user_id" => bad.len() >= 2 && (bad.starts_with('U') || bad.starts_with('W')) && bad.chars().skip(1).all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()),
            "trigger_id" => !bad.is_empty() && bad.chars().all(|c| c.is_ascii_graphic()),
            _ => false,
        };
        prop_assume!(!valid);
        match QueueMessage::parse(&body.to_string()) {
            Err(e) => prop_assert!(e.to_string().contains(field), "{e}"),
            Ok(m) => prop_assert!(false, "{field} = {bad:?} was read: {m:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// The policy: random configs and requests, decided the way both doors do.

/// One random policy: which workspaces, channels and environments are
/// closed, and who is listed where.
#[derive(Debug, Clone)]
struct Policy {
    teams: Vec<&'static str>,
    channels: Vec<&'static str>,
    protected: Vec<&'static str>,
    allowed: Vec<(&'static str, Vec<&'static str>)>,
    admins: Vec<&'static str>,
    /// A daily scheduled freeze, if any: from `start_hour` UTC for
    /// `hours`, on these environments.
    freeze: Option<(u32, u32, Vec<&'static str>)>,
}

const ENVIRONMENTS: [&str; 3] = ["dev", "plt", "prod"];
/// Users, and (in lists) two Slack user groups.
const USERS: [&str; 4] = ["UADMIN", "UREL", "U1", "U2"];
const LISTED: [&str; 6] = ["UADMIN", "UREL", "U1", "U2", "S0OPS", "S0REL"];

fn subset(of: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    prop::sample::subsequence(of.to_vec(), 0..=of.len())
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        subset(&["T0ACME", "E0GRID"]),
        subset(&["C0OPS", "G0PRIV"]),
        subset(&ENVIRONMENTS),
        prop::collection::vec(prop::option::of(subset(&LISTED)), 3),
        subset(&LISTED),
        prop::option::of((
            0u32..24,
            1u32..6,
            prop::sample::subsequence(ENVIRONMENTS.to_vec(), 1..=3),
        )),
    )
        .prop_map(
            |(teams, channels, protected, lists, admins, freeze)| Policy {
                teams,
                channels,
                protected,
                allowed: ENVIRONMENTS
                    .iter()
                    .zip(lists)
                    .filter_map(|(env, list)| list.map(|l| (*env, l)))
                    .collect(),
                admins,
                freeze,
            },
        )
}

fn toml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

impl Policy {
    fn toml(&self) -> String {
        let mut out = format!("allowed_teams = {}\n", toml_list(&self.teams));
        out.push_str(&format!(
            r#"[commands."/deploy"]
lock_ttl = "30m"
components = ["api", "web"]
environments = ["dev", "plt", "prod"]
test_mode = true
protected_environments = {}
allowed_channels = {}
unlock_users = {}
[commands."/deploy".allowed_users]
"#,
            toml_list(&self.protected),
            toml_list(&self.channels),
            toml_list(&self.admins),
        ));
        for (env, users) in &self.allowed {
            out.push_str(&format!("{env} = {}\n", toml_list(users)));
        }
        out.push_str(
            "[commands.\"/deploy\".pipeline]\nrepo = \"acme/platform\"\nworkflow = \"deploy.yml\"\n",
        );
        if let Some((start, hours, envs)) = &self.freeze {
            out.push_str(&format!(
                "[[commands.\"/deploy\".freezes]]\ncron = \"0 {start} * * *\"\nduration = \"{hours}h\"\nenvironments = {}\nreason = \"release week\"\n",
                toml_list(envs)
            ));
        }
        out
    }

    /// Whether the policy's freeze holds `env` at `hour:30` UTC: an oracle
    /// written without cron, for daily windows of whole hours.
    fn frozen(&self, env: &str, hour: u32) -> bool {
        self.freeze.as_ref().is_some_and(|(start, hours, envs)| {
            envs.contains(&env) && (hour + 24 - start) % 24 < *hours
        })
    }

    fn listed(&self, env: &str) -> Option<&Vec<&'static str>> {
        self.allowed.iter().find(|(e, _)| *e == env).map(|(_, l)| l)
    }
}

prop_compose! {
    fn policy_request()(
        team in prop::sample::select(vec!["T0ACME", "T0EVIL", "T0GRIDWS"]),
        enterprise in prop::sample::select(vec![None, Some("E0GRID"), Some("E0ELSE")]),
        channel in prop::sample::select(vec!["C0OPS", "G0PRIV", "C0RANDOM"]),
        user in prop::sample::select(USERS.to_vec()),
        command in prop::sample::select(vec!["/deploy", "/DEPLOY", "/other"]),
        text in prop::sample::select(vec![
            "api prod", "web dev", "api plt --dry-run", "api prod --test", "web prod --force rollback",
            "unlock api prod stuck", "cancel api prod", "queue api prod", "leave web prod", "history api prod", "status", "help", "",
            "api prod --override-freeze", "web dev --override-freeze --dry-run", "freeze prod 2h release week", "unfreeze dev",
        ]),
    ) -> CommandMessage {
        CommandMessage {
            command: command.into(), text: text.into(), user_id: user.into(), user_name: None,
            channel_id: channel.into(), channel_name: None, team_id: team.into(), team_domain: None,
            enterprise_id: enterprise.map(Into::into), response_url: "https://hooks.slack.com/commands/T0ACME/1/x".into(),
            trigger_id: "1.2.3".into(), api_app_id: None, received_at: 1,
        }
    }
}

proptest! {
    #![proptest_config(cases(2000))]

    /// Nothing from an unlisted workspace or channel is ever served, and no
    /// unlisted user ever runs in a protected environment; and the worker,
    /// deciding on the message as it comes out of the queue body the router
    /// wrote, reaches the router's decision.
    #[test]
    fn no_unlisted_team_channel_or_user_runs_and_both_doors_agree(
        policy in policy(), msg in policy_request(), member_of in subset(&["S0OPS", "S0REL"]),
        hour in 0u32..24,
    ) {
        let config = Config::from_toml_str(&policy.toml())
            .unwrap_or_else(|e| panic!("{e}\n{}", policy.toml()));
        // 2026-12-03T00:30:00Z plus `hour` hours: both doors decide at the
        // same instant (the worker's own clock is its to read).
        let now_ms = 1_796_257_800_000 + u64::from(hour) * 3_600_000;
        let at_router = decide(&config, &msg, &Membership::Unresolved, now_ms);

        let body = QueueMessage::Command(msg.clone()).to_json();
        let Ok(QueueMessage::Command(queued)) = QueueMessage::parse(&body) else {
            panic!("the worker cannot read {body}");
        };
        let groups = Membership::Known(member_of.iter().map(|g| g.to_string()).collect());
        let at_worker = decide(&config, &queued, &groups, now_ms);
        // The router cannot look groups up, so it may let through what the
        // worker then refuses, never the reverse; and when the config names
        // no group, or the user is in every group, they decide alike.
        if at_worker.is_ok() || member_of.len() == 2 || config.command("/deploy").is_some_and(|c| c.groups().is_empty()) {
            prop_assert_eq!(&at_router, &at_worker);
        }
        if at_router.is_err() {
            prop_assert!(at_worker.is_err(), "the worker allowed what the router refused: {at_worker:?}");
        }
        let in_list = |list: &Vec<&str>| {
            list.contains(&msg.user_id.as_str()) || list.iter().any(|g| member_of.contains(g))
        };

        let team_listed = policy.teams.is_empty()
            || policy.teams.contains(&msg.team_id.as_str())
            || msg.enterprise_id.as_deref().is_some_and(|e| policy.teams.contains(&e));
        let channel_listed = policy.channels.is_empty() || policy.channels.contains(&msg.channel_id.as_str());
        if let Ok(Request::Run { target, override_freeze, .. }) = &at_worker {
            let env = target.environment.as_str();
            // No run in a frozen environment, unless an admin overrides it.
            prop_assert!(!policy.frozen(env, hour) || *override_freeze, "ran in frozen {env} at {hour}:30");
            if *override_freeze {
                let admin = policy.admins.contains(&msg.user_id.as_str())
                    || policy.admins.iter().any(|g| member_of.contains(g));
                prop_assert!(admin, "{} overrode a freeze without being an admin", msg.user_id);
            }
            if policy.protected.contains(&env) {
                let list = policy.listed(env);
                prop_assert!(list.is_some_and(in_list), "{} ran in protected {env} unlisted ({list:?})", msg.user_id);
            }
        }
        match &at_worker {
            Ok(request) => {
                prop_assert!(team_listed, "served another workspace: {request:?}");
                prop_assert!(
                    channel_listed || msg.command.to_lowercase() != "/deploy",
                    "served another channel: {request:?}"
                );
                if let Request::Run { target, .. } = request {
                    let env = target.environment.as_str();
                    if policy.protected.contains(&env) {
                        let list = policy.listed(env);
                        prop_assert!(
                            list.is_some_and(in_list),
                            "{} ran in protected {env} without being listed ({list:?})", msg.user_id
                        );
                    }
                }
            }
            Err(CommandError::TeamNotAllowed { .. }) => prop_assert!(!team_listed),
            Err(CommandError::ChannelNotAllowed { .. }) => prop_assert!(team_listed && !channel_listed),
            Err(CommandError::Frozen { frozen, .. }) => {
                prop_assert!(policy.frozen(&frozen.environment, hour), "refused as frozen at {hour}:30: {frozen:?}");
                prop_assert!(frozen.until_ms > now_ms);
            }
            Err(CommandError::Protected { environment, .. }) => {
                prop_assert!(policy.protected.contains(&environment.as_str()));
                prop_assert!(policy.listed(environment).is_none_or(|l| l.is_empty()));
            }
            Err(e) => check_command_error(e)?,
        }
    }
}
