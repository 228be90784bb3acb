//! Change freezes through the binary a user deploys: each step is one
//! `baton-worker --event FILE` on DynamoDB Local, with loopback recorders
//! standing in for Slack and GitHub. An admin freezes an environment (a
//! record in the lock table), runs there are refused with until when, why
//! and by whom, an admin overrides it (recorded on the grant and
//! announced), and lifts it; a scheduled freeze from the config refuses
//! runs too.

use baton_chatops::QueueMessage;
use baton_lock::{FreezeKey, LockStatus};
use baton_testkit::Reply;
use serde_json::{Value, json};
use stage::Stage;

mod stage;

/// `qa` is frozen by schedule all the time: a window starts every minute
/// and lasts an hour.
const CONFIG: &str = r#"
[commands."/deploy"]
lock_ttl = "30m"
components = ["api", "web"]
environments = ["qa", "prod"]
unlock_users = ["UADMIN"]
[commands."/deploy".pipeline]
repo = "acme/platform"
workflow = "deploy.yml"
[[commands."/deploy".freezes]]
cron = "* * * * *"
duration = "1h"
timezone = "Europe/Berlin"
environments = ["qa"]
reason = "qa is being rebuilt"

[commands."/ship"]
lock_ttl = "30m"
components = ["api"]
environments = ["prod"]
on_conflict = "queue"
unlock_users = ["UADMIN"]
[commands."/ship".pipeline]
repo = "acme/platform"
workflow = "ship.yml"
"#;

const DISPATCH_DEPLOY: &str = "/repos/acme/platform/actions/workflows/deploy.yml/dispatches";
const DISPATCH_SHIP: &str = "/repos/acme/platform/actions/workflows/ship.yml/dispatches";

/// A fresh stage for this suite.
async fn stage() -> Stage {
    let stage = Stage::new(CONFIG, &[]).await;
    for path in [DISPATCH_DEPLOY, DISPATCH_SHIP] {
        stage.github.default_reply(
            path,
            Reply::json(
                200,
                json!({"workflow_run_id": 7, "html_url": "https://github.example/acme/platform/actions/runs/7"}),
            ),
        );
    }
    stage
}

impl Stage {
    /// `/deploy text` from `user`, through the binary; the reply it got.
    async fn say(&self, user: &str, text: &str) -> Value {
        let message = self.command(user, "/deploy", text);
        self.deliver_handled(QueueMessage::Command(message.clone()))
            .await;
        let replies = self.replies_to(&message);
        assert_eq!(replies.len(), 1, "one reply to {text}");
        replies[0].clone()
    }

    /// One `baton-worker --event` with `body`, which must be handled.
    async fn deliver_handled(&self, body: QueueMessage) {
        let response = self.deliver(&[body]).await;
        assert_eq!(response["batchItemFailures"], json!([]), "handled");
    }

    fn dispatches(&self) -> usize {
        self.github.requests_to(DISPATCH_DEPLOY).len()
    }
}

fn text(reply: &Value) -> String {
    reply["text"].as_str().unwrap_or_default().to_owned()
}

fn is_in_channel(reply: &Value) -> bool {
    reply["response_type"] == "in_channel"
}

fn prod_freeze() -> FreezeKey {
    FreezeKey::new("deploy/prod").unwrap()
}

#[tokio::test]
async fn an_admin_freezes_runs_are_refused_an_admin_overrides_and_lifts_it() {
    let stage = stage().await;

    // Only an admin may freeze; a refused freeze writes nothing.
    let refused = stage.say("U1", "freeze prod 2h release week").await;
    assert!(!is_in_channel(&refused));
    assert!(
        text(&refused).contains("Only `/deploy` admins may freeze"),
        "{refused}"
    );
    assert_eq!(
        stage.locks.freeze_status(&prod_freeze()).await.unwrap(),
        None
    );

    // The admin's freeze is recorded and announced.
    let before = baton_lock::clock::now_epoch_millis();
    let set = stage.say("UADMIN", "freeze prod 2h \"release week\"").await;
    assert!(is_in_channel(&set), "{set}");
    assert!(
        text(&set).contains("<@UADMIN> froze `prod` for `/deploy` until"),
        "{set}"
    );
    assert!(text(&set).contains("release week"), "{set}");
    let freeze = stage
        .locks
        .freeze_status(&prod_freeze())
        .await
        .unwrap()
        .expect("the freeze is on record");
    assert_eq!(freeze.by, "UADMIN");
    assert_eq!(freeze.reason, "release week");
    assert!(freeze.start_ms >= before);
    assert_eq!(freeze.until_ms - freeze.start_ms, 2 * 3_600_000);
    let until = baton_chatops::render::until_text(freeze.until_ms);
    assert!(text(&set).contains(&until), "{set} should say {until}");

    // A run there is refused with until when, why, by whom and the way
    // through; nothing is locked or dispatched.
    let frozen = stage.say("U1", "api prod").await;
    assert!(!is_in_channel(&frozen));
    let said = text(&frozen);
    for part in [
        "`prod` is frozen for `/deploy`",
        &until,
        "by <@UADMIN>",
        "release week",
        "`/deploy api prod --override-freeze`",
    ] {
        assert!(said.contains(part), "{said} should contain {part}");
    }
    assert_eq!(stage.locks.status("deploy-api-prod").await.unwrap(), None);
    assert_eq!(stage.dispatches(), 0);

    // Only an admin may override.
    let refused = stage.say("U1", "api prod --override-freeze").await;
    assert!(text(&refused).contains("--override-freeze"), "{refused}");
    assert_eq!(stage.dispatches(), 0);

    // The admin's override runs, is recorded on the grant, and announced.
    let overridden = stage.say("UADMIN", "api prod --override-freeze").await;
    assert!(is_in_channel(&overridden), "{overridden}");
    let said = text(&overridden);
    assert!(said.contains("started `/deploy api prod`"), "{said}");
    assert!(
        said.contains("<@UADMIN> overrode the freeze on `prod`"),
        "{said}"
    );
    assert!(said.contains("release week"), "{said}");
    assert_eq!(stage.dispatches(), 1);
    let grant = stage
        .locks
        .status("deploy-api-prod")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.status, LockStatus::InProgress);
    assert_eq!(
        grant.purpose.as_deref(),
        Some("/deploy api prod --override-freeze")
    );
    assert_eq!(grant.locked_by, "UADMIN");

    // Lifting: only admins, then runs are open again.
    let refused = stage.say("U1", "unfreeze prod").await;
    assert!(
        text(&refused).contains("Only `/deploy` admins"),
        "{refused}"
    );
    let lifted = stage.say("UADMIN", "unfreeze prod").await;
    assert!(is_in_channel(&lifted), "{lifted}");
    assert!(
        text(&lifted).contains("<@UADMIN> lifted the freeze on `prod`"),
        "{lifted}"
    );
    let after = stage
        .locks
        .freeze_status(&prod_freeze())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.lifted_by.as_deref(), Some("UADMIN"));
    assert!(!after.active_at(baton_lock::clock::now_epoch_millis()));
    let again = stage.say("UADMIN", "unfreeze prod").await;
    assert!(text(&again).contains("nothing to lift"), "{again}");

    let open = stage.say("U2", "web prod").await;
    assert!(text(&open).contains("started `/deploy web prod`"), "{open}");
    assert_eq!(stage.dispatches(), 2);
}

#[tokio::test]
async fn a_scheduled_freeze_refuses_runs_and_an_admin_gets_through() {
    let stage = stage().await;

    let frozen = stage.say("U1", "api qa").await;

    let said = text(&frozen);
    for part in [
        "`qa` is frozen for `/deploy`",
        "by the schedule `* * * * *` (Europe/Berlin)",
        "qa is being rebuilt",
        "--override-freeze",
    ] {
        assert!(said.contains(part), "{said} should contain {part}");
    }
    assert_eq!(stage.locks.status("deploy-api-qa").await.unwrap(), None);
    assert_eq!(stage.dispatches(), 0);
    // Nobody froze qa by hand: unfreeze says so, and names the schedule.
    let nothing = stage.say("UADMIN", "unfreeze qa").await;
    assert!(text(&nothing).contains("nothing to lift"), "{nothing}");
    assert!(text(&nothing).contains("scheduled freeze"), "{nothing}");

    let overridden = stage.say("UADMIN", "api qa --override-freeze").await;
    let said = text(&overridden);
    assert!(
        said.contains("<@UADMIN> overrode the freeze on `qa`"),
        "{said}"
    );
    assert!(said.contains("by the schedule"), "{said}");
    assert_eq!(stage.dispatches(), 1);
    // Help tells of freezes.
    let help = text(&stage.say("U1", "help").await);
    assert!(
        help.contains("freeze <environment> <duration> <reason>"),
        "{help}"
    );
    assert!(help.contains("frozen by schedule `* * * * *`"), "{help}");
}

#[tokio::test]
async fn a_waiter_whose_turn_comes_under_an_admin_freeze_is_told_and_not_started() {
    let stage = stage().await;
    let first = stage.command("U1", "/ship", "api prod");
    stage
        .deliver_handled(QueueMessage::Command(first.clone()))
        .await;
    let waiter = stage.command("U2", "/ship", "api prod");
    stage
        .deliver_handled(QueueMessage::Command(waiter.clone()))
        .await;
    let queued = text(&stage.replies_to(&waiter)[0]);
    assert!(queued.contains("Queued `/ship api prod`"), "{queued}");
    let held = stage.locks.status("ship-api-prod").await.unwrap().unwrap();
    assert_eq!(held.waiters.len(), 1);
    let freeze = stage.command("UADMIN", "/ship", "freeze prod 1h hotfix window");
    stage.deliver_handled(QueueMessage::Command(freeze)).await;

    // The holder's run completes: the hand-off grants the waiter, whose
    // run is not started under the freeze.
    stage
        .deliver_handled(QueueMessage::Completion(baton_chatops::CompletionMessage {
            lock_key: held.lock_key.clone(),
            lock_id: held.lock_id.clone(),
            fence: held.fence,
            conclusion: baton_chatops::Conclusion::Success,
            run_url: None,
            run_id: Some(7),
            repository: Some("acme/platform".into()),
            workflow: Some("ship.yml".into()),
            channel_id: None,
            reported_by: Some("github".into()),
            reason: None,
        }))
        .await;

    assert_eq!(
        stage.github.requests_to(DISPATCH_SHIP).len(),
        1,
        "only the first run was dispatched"
    );
    let replies = stage.replies_to(&waiter);
    let told = text(replies.last().unwrap());
    assert!(told.contains("`prod` is frozen for `/ship`"), "{told}");
    assert!(told.contains("hotfix window"), "{told}");
    let after = stage.locks.status("ship-api-prod").await.unwrap().unwrap();
    assert_eq!(after.locked_by, "U2", "the waiter had its turn");
    assert_eq!(after.status, LockStatus::Failed, "and its grant ended");
    assert_eq!(after.release_reason.as_deref(), Some("frozen"));
    assert!(after.waiters.is_empty());
}
