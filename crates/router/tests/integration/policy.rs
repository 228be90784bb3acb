//! The policy at the router's door: signed Slack commands that the config's
//! workspace, channel and user rules refuse are answered at once, naming the
//! rule, and never queued; the ones it allows are queued.

use baton_chatops::{Config, QueueMessage};
use baton_router::{Router, SqsQueue};

use crate::common::*;

const HTTP_API: &str = "router-slack-command-apigw-http.json";

/// `/deploy` with prod protected and listed for one user, limited to one
/// workspace and one channel.
const CLOSED: &str = r#"
allowed_teams = ["T0ACME", "E0GRID"]

[commands."/deploy"]
lock_ttl = "30m"
components = ["api"]
environments = ["dev", "prod"]
protected_environments = ["prod"]
unlock_users = ["U0ADMIN"]
allowed_channels = ["C0BUILDS"]
[commands."/deploy".allowed_users]
prod = ["U0RELEASE"]
[commands."/deploy".pipeline]
repo = "acme/platform"
workflow = "deploy.yml"
"#;

fn router_with(queue: &TestQueue, toml: &str) -> Router<SqsQueue> {
    Router::new(
        Config::from_toml_str(toml).expect("test config"),
        test_secrets(),
        SqsQueue::new(sqs_client(&queue.endpoint), &queue.url),
    )
}

/// The sample command with its form fields replaced, freshly signed.
fn command(fields: &[(&str, &str)]) -> serde_json::Value {
    let mut ev = event(HTTP_API);
    let mut body = event_body(&ev);
    for (name, value) in fields {
        body = with_form_field(&body, name, value);
    }
    set_event_body(&mut ev, &body);
    sign_slack(&mut ev, now_secs());
    ev
}

async fn refusal(router: &Router<SqsQueue>, ev: &serde_json::Value) -> String {
    let answer = invoke(router, ev).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let v = answer.json();
    assert_eq!(v["response_type"], "ephemeral", "{v}");
    v["text"].as_str().expect("text fallback").to_string()
}

#[tokio::test]
async fn the_builtin_config_refuses_prod_to_everyone_and_says_how_to_open_it() {
    let queue = TestQueue::fifo().await;
    let router = queue.router();
    let ev = command(&[("command", "/deploy"), ("text", "api prod")]);
    let text = refusal(&router, &ev).await;
    assert!(text.contains("`prod` is protected"), "{text}");
    assert!(text.contains("allowed_users.prod"), "{text}");
    assert!(text.contains("`/deploy help`"), "{text}");
    assert_eq!(queue.count().await, 0, "a refused command is not queued");

    // An unprotected environment of the built-in config stays open.
    let ev = command(&[("command", "/deploy"), ("text", "api plt")]);
    let text = refusal(&router, &ev).await;
    assert!(!text.contains("protected"), "{text}");
    assert_eq!(queue.count().await, 1);
}

#[tokio::test]
async fn a_command_from_another_workspace_is_refused_naming_allowed_teams() {
    let queue = TestQueue::fifo().await;
    let router = router_with(&queue, CLOSED);
    let ev = command(&[
        ("team_id", "T0EVIL"),
        ("command", "/deploy"),
        ("text", "api dev"),
    ]);
    let text = refusal(&router, &ev).await;
    assert!(text.contains("allowed_teams"), "{text}");
    assert!(text.contains("T0EVIL"), "{text}");
    // Even help is refused: another workspace learns nothing of the config.
    let ev = command(&[
        ("team_id", "T0EVIL"),
        ("command", "/deploy"),
        ("text", "help"),
    ]);
    assert!(refusal(&router, &ev).await.contains("allowed_teams"));
    assert_eq!(queue.count().await, 0);

    // A workspace of a listed Enterprise Grid is served.
    let ev = command(&[
        ("team_id", "T0GRIDWS"),
        ("enterprise_id", "E0GRID"),
        ("command", "/deploy"),
        ("text", "api dev"),
    ]);
    let text = refusal(&router, &ev).await;
    assert!(!text.contains("allowed_teams"), "{text}");
    assert_eq!(queue.count().await, 1);
}

#[tokio::test]
async fn a_command_from_an_unlisted_channel_is_refused_naming_the_channels() {
    let queue = TestQueue::fifo().await;
    let router = router_with(&queue, CLOSED);
    let ev = command(&[
        ("channel_id", "C0RANDOM"),
        ("command", "/deploy"),
        ("text", "api dev"),
    ]);
    let text = refusal(&router, &ev).await;
    assert!(text.contains("allowed_channels"), "{text}");
    assert!(text.contains("<#C0BUILDS>"), "{text}");
    assert_eq!(queue.count().await, 0);
}

#[tokio::test]
async fn only_the_listed_user_may_run_in_a_protected_environment() {
    let queue = TestQueue::fifo().await;
    let router = router_with(&queue, CLOSED);
    let ev = command(&[("command", "/deploy"), ("text", "api prod")]);
    let text = refusal(&router, &ev).await;
    assert!(text.contains("not on the list"), "{text}");
    assert!(text.contains("<@U0RELEASE>"), "{text}");
    assert_eq!(queue.count().await, 0);

    let ev = command(&[
        ("user_id", "U0RELEASE"),
        ("command", "/deploy"),
        ("text", "api prod"),
    ]);
    refusal(&router, &ev).await;
    let got = queue.receive().await;
    assert_eq!(got.len(), 1, "the listed user's command is queued");
    let QueueMessage::Command(c) = QueueMessage::parse(&got[0].body).expect("readable") else {
        panic!("expected a command: {}", got[0].body);
    };
    assert_eq!(
        (c.user_id.as_str(), c.text.as_str()),
        ("U0RELEASE", "api prod")
    );
}

#[tokio::test]
async fn a_user_group_entry_is_left_to_the_worker_which_can_look_members_up() {
    // The router has no bot token: where a group is listed it queues, and
    // the worker decides with the group's members.
    let queue = TestQueue::fifo().await;
    let router = router_with(
        &queue,
        &CLOSED.replace("[\"U0RELEASE\"]", "[\"S0RELEASE\"]"),
    );
    let ev = command(&[("command", "/deploy"), ("text", "api prod")]);
    let text = refusal(&router, &ev).await;
    assert!(!text.contains("not on the list"), "{text}");
    assert_eq!(queue.count().await, 1);
}

/// `/deploy` with `prod` frozen by schedule all the time (a window starts
/// every minute and lasts an hour) and `dev` open.
const FROZEN: &str = r#"
[commands."/deploy"]
lock_ttl = "30m"
components = ["api"]
environments = ["dev", "prod"]
unlock_users = ["U0ADMIN"]
[commands."/deploy".pipeline]
repo = "acme/platform"
workflow = "deploy.yml"
[[commands."/deploy".freezes]]
cron = "* * * * *"
duration = "1h"
timezone = "America/New_York"
environments = ["prod"]
reason = "release week"
"#;

#[tokio::test]
async fn a_run_under_a_scheduled_freeze_is_refused_at_once_and_never_queued() {
    let queue = TestQueue::fifo().await;
    let router = router_with(&queue, FROZEN);

    let ev = command(&[
        ("command", "/deploy"),
        ("trigger_id", "1.2.freeze"),
        ("text", "api prod"),
        ("user_id", "U0DEV"),
    ]);
    let text = refusal(&router, &ev).await;

    assert!(
        text.contains("`prod` is frozen for `/deploy` until"),
        "{text}"
    );
    assert!(text.contains("release week"), "{text}");
    assert!(
        text.contains("by the schedule `* * * * *` (America/New_York)"),
        "{text}"
    );
    assert!(
        text.contains("`/deploy api prod --override-freeze`"),
        "{text}"
    );
    assert_eq!(queue.count().await, 0, "a frozen run is not queued");

    // Another environment, and an admin's override, go through.
    let ev = command(&[
        ("command", "/deploy"),
        ("trigger_id", "2.2.freeze"),
        ("text", "api dev"),
        ("user_id", "U0DEV"),
    ]);
    refusal(&router, &ev).await;
    assert_eq!(queue.count().await, 1);
    let ev = command(&[
        ("command", "/deploy"),
        ("trigger_id", "3.2.freeze"),
        ("text", "api prod --override-freeze"),
        ("user_id", "U0ADMIN"),
    ]);
    let text = refusal(&router, &ev).await;
    assert!(!text.contains("frozen"), "{text}");
    assert_eq!(queue.count().await, 2);
    // A non-admin's override is refused at once too.
    let ev = command(&[
        ("command", "/deploy"),
        ("trigger_id", "4.2.freeze"),
        ("text", "api prod --override-freeze"),
        ("user_id", "U0DEV"),
    ]);
    let text = refusal(&router, &ev).await;
    assert!(
        text.contains("Only `/deploy` admins may run through a freeze"),
        "{text}"
    );
    assert_eq!(queue.count().await, 2);
}
