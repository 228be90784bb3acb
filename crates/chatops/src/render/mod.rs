//! Slack replies, rendered as Block Kit.
//!
//! Every reply is a [`Reply`]: an explicit `response_type` (Slack defaults
//! to `ephemeral` when it is missing, which has surprised people before),
//! a plain `text` fallback for notifications and old clients, and `section`
//! blocks with `mrkdwn` text. Serialise a [`Reply`] to post it to a
//! `response_url`; turn it into a [`PostMessage`] with
//! [`Reply::with_channel`] when it must go through `chat.postMessage`
//! instead (after the 30 minutes a `response_url` lives, e.g. for a
//! pipeline's completion).
//!
//! The renderers take this crate's own [`LockView`] rather than the lock
//! library's types, so Slack wording does not depend on storage details.
//! Anything a user typed is escaped before it reaches mrkdwn.

use std::time::Duration;

use serde::Serialize;

use crate::command::CommandError;

mod freeze;
mod history;
mod line;
mod locks;
mod runs;
mod wording;

use crate::config::CommandConfig;
use crate::target::Target;
pub use freeze::*;
pub use history::*;
pub use line::*;
pub use locks::*;
pub use runs::*;
pub use wording::{help_text, usage_lines};

/// Slack's limit on a section block's text.
const MAX_SECTION_CHARS: usize = 3000;
/// Slack's limit on blocks per message, less room for a notice or two.
const MAX_LOCK_BLOCKS: usize = 45;

/// Who sees a reply posted to a `response_url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseType {
    /// Everyone in the channel: for things the team should know about.
    InChannel,
    /// Only the person who ran the command: for refusals, errors, help.
    Ephemeral,
}

/// A Block Kit `mrkdwn` text object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename = "mrkdwn")]
pub struct Mrkdwn {
    /// The formatted text.
    pub text: String,
}

/// The Block Kit blocks baton uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// A paragraph of formatted text.
    Section {
        /// The paragraph.
        text: Mrkdwn,
    },
    /// Small grey print under the main text: notices, hints.
    Context {
        /// The lines of small print.
        elements: Vec<Mrkdwn>,
    },
}

impl Block {
    /// A section with `text` (truncated to Slack's limit).
    pub fn section(text: impl Into<String>) -> Block {
        Block::Section {
            text: Mrkdwn {
                text: truncate(text.into(), MAX_SECTION_CHARS),
            },
        }
    }

    /// A context block with one line of small print.
    pub fn context(text: impl Into<String>) -> Block {
        Block::Context {
            elements: vec![Mrkdwn {
                text: truncate(text.into(), MAX_SECTION_CHARS),
            }],
        }
    }
}

/// A reply to a slash command, ready to POST to its `response_url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    /// Who sees it; always sent explicitly.
    pub response_type: ResponseType,
    /// Plain fallback text for notifications and clients without blocks.
    pub text: String,
    /// The formatted message.
    pub blocks: Vec<Block>,
}

/// A `chat.postMessage` payload: a [`Reply`] bound to a channel, for
/// messages sent without (or after the expiry of) a `response_url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostMessage {
    /// The channel id to post in.
    pub channel: String,
    /// Plain fallback text.
    pub text: String,
    /// The formatted message.
    pub blocks: Vec<Block>,
}

impl Reply {
    fn new(response_type: ResponseType, text: String) -> Reply {
        Reply {
            response_type,
            blocks: vec![Block::section(text.clone())],
            text,
        }
    }

    fn in_channel(text: String) -> Reply {
        Reply::new(ResponseType::InChannel, text)
    }

    fn ephemeral(text: String) -> Reply {
        Reply::new(ResponseType::Ephemeral, text)
    }

    /// Adds a line of small print (also appended to the fallback text).
    pub fn with_context(mut self, line: impl Into<String>) -> Reply {
        let line = line.into();
        self.text.push('\n');
        self.text.push_str(&line);
        self.blocks.push(Block::context(line));
        self
    }

    /// Appends [`locking_disabled_notice`], for replies sent while the
    /// global lock switch is off.
    pub fn with_locking_disabled_notice(self) -> Reply {
        self.with_context(locking_disabled_notice())
    }

    /// The same message as a `chat.postMessage` payload for `channel`.
    pub fn with_channel(self, channel: impl Into<String>) -> PostMessage {
        PostMessage {
            channel: channel.into(),
            text: self.text,
            blocks: self.blocks,
        }
    }

    /// The JSON body to POST to a `response_url`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

impl PostMessage {
    /// The JSON body for `chat.postMessage`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// What renderers need to know about a lock, independent of how the lock
/// library stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockView {
    /// The lock key, e.g. `build-router-plt`.
    pub lock_key: String,
    /// The holder's Slack user id.
    pub holder_id: String,
    /// The holder's display name, if known.
    pub holder_name: Option<String>,
    /// What the holder is doing, e.g. `/build router plt`.
    pub purpose: Option<String>,
    /// When the lock was taken, epoch seconds.
    pub locked_at: u64,
    /// When the lock expires unless released first, epoch seconds.
    pub expires_at: u64,
    /// The lock's fencing token.
    pub fence: u64,
    /// The unique id of this acquisition.
    pub lock_id: String,
    /// The last run that went around this lock: who, and why.
    pub bypass: Option<BypassView>,
}

/// A run that went around a lock, as the renderers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BypassView {
    /// Who ran without the lock.
    pub by: String,
    /// When, as recorded (RFC 3339).
    pub at: String,
    /// Why, as they said.
    pub reason: String,
}

impl LockView {
    /// Whether the lock has expired at `now` (and is free to take).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at <= now
    }

    fn holder(&self) -> String {
        mention(&self.holder_id)
    }

    fn purpose_suffix(&self) -> String {
        self.purpose
            .as_deref()
            .filter(|p| !p.trim().is_empty())
            .map(|p| format!(" for `{}`", escape(p)))
            .unwrap_or_default()
    }
}

/// `<@U123>`: a Slack user mention.
pub fn mention(user_id: &str) -> String {
    format!("<@{}>", escape(user_id))
}

/// `HH:MM UTC` for an epoch-seconds time.
pub fn clock(epoch_secs: u64) -> String {
    let day = epoch_secs % 86_400;
    format!("{:02}:{:02} UTC", day / 3600, (day % 3600) / 60)
}

/// A short duration: `45s`, `4m`, `1h 5m`, `2d 3h`.
pub fn short_duration(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

fn run_link(run_url: Option<&str>) -> String {
    run_url
        .filter(|u| !u.trim().is_empty())
        .map(|u| format!(" <{}|View the run>.", link_target(u)))
        .unwrap_or_default()
}

/// A URL made safe inside `<url|label>`: `|` and `>` would end it early.
fn link_target(url: &str) -> String {
    url.replace('>', "%3E")
        .replace('|', "%7C")
        .replace('<', "%3C")
}

fn emoji_for(cmd: &str) -> &'static str {
    if cmd.trim_start_matches('/').starts_with("deploy") {
        "🚀"
    } else {
        "🔨"
    }
}

/// The run as a user would type it, escaped: `/build router plt`.
fn invocation(target: &Target) -> String {
    escape(&target.invocation())
}

/// A command the user got wrong: what was wrong and what would work.
pub fn error(err: &CommandError) -> Reply {
    Reply::ephemeral(err.user_message())
}

/// The usage lines for `cmd`.
pub fn usage(cmd: &str) -> Reply {
    Reply::ephemeral(usage_lines(cmd))
}

/// Full help for a command: usage, components and environments.
pub fn help(config: &CommandConfig) -> Reply {
    Reply::ephemeral(help_text(config))
}

/// The warning shown while the global lock switch is off.
pub fn locking_disabled_notice() -> &'static str {
    "⚠️ Locking is switched off right now: runs are not checked against each other."
}

/// An apology for a failure on baton's side, with the id support needs.
pub fn internal_error(request_id: &str) -> Reply {
    Reply::ephemeral(format!(
        "😓 Sorry, something went wrong on baton's side. If it happens again, share this id with whoever runs baton: `{}`.",
        escape(request_id)
    ))
}

fn ttl_display(ttl: Duration) -> String {
    short_duration(ttl.as_secs())
}

fn truncate(mut s: String, max_chars: usize) -> String {
    if let Some((idx, _)) = s.char_indices().nth(max_chars) {
        let cut = s[..idx]
            .char_indices()
            .nth(max_chars.saturating_sub(1))
            .map_or(idx, |(i, _)| i);
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Escapes the three characters Slack mrkdwn treats as control characters.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::message::Conclusion;
    use serde_json::{Value, json};

    // 2023-11-14T22:13:20Z
    const T0: u64 = 1_700_000_000;

    fn lock() -> LockView {
        LockView {
            lock_key: "build-router-plt".into(),
            holder_id: "U2".into(),
            holder_name: Some("bob".into()),
            purpose: Some("/build router plt".into()),
            locked_at: T0,
            expires_at: T0 + 600,
            fence: 7,
            lock_id: "abc".into(),
            bypass: None,
        }
    }

    fn section_text(v: &Value, i: usize) -> &str {
        v["blocks"][i]["text"]["text"].as_str().unwrap_or_default()
    }

    #[test]
    fn clock_and_durations() {
        assert_eq!(clock(T0), "22:13 UTC");
        assert_eq!(clock(T0 + 600), "22:23 UTC");
        assert_eq!(clock(0), "00:00 UTC");
        assert_eq!(short_duration(45), "45s");
        assert_eq!(short_duration(240), "4m");
        assert_eq!(short_duration(3900), "1h 5m");
        assert_eq!(short_duration(7200), "2h");
        assert_eq!(short_duration(86_400 + 3 * 3600 + 59), "1d 3h");
    }

    #[test]
    fn started_is_in_channel_with_link_and_expiry() {
        let v = started(
            &Target::new("/build", "router", "plt"),
            "U1",
            &lock(),
            Some("https://github.com/acme/platform/actions/runs/9"),
        )
        .to_json();
        assert_eq!(v["response_type"], "in_channel");
        let text = v["text"].as_str().unwrap();
        assert_eq!(
            text,
            "🔨 <@U1> started `/build router plt` (fence 7). <https://github.com/acme/platform/actions/runs/9|View the run>. Lock `build-router-plt` held until 22:23 UTC."
        );
        assert_eq!(v["blocks"][0]["type"], "section");
        assert_eq!(v["blocks"][0]["text"]["type"], "mrkdwn");
        assert_eq!(section_text(&v, 0), text);
        let no_link = started(&Target::new("/deploy", "api", "prod"), "U1", &lock(), None).text;
        assert!(
            no_link.starts_with("🚀 <@U1> started `/deploy api prod` (fence 7). Lock"),
            "{no_link}"
        );
    }

    #[test]
    fn held_is_ephemeral_and_says_who_and_when() {
        let r = held(&Target::new("/build", "router", "plt"), &lock(), T0 + 240);
        assert_eq!(r.response_type, ResponseType::Ephemeral);
        assert_eq!(r.to_json()["response_type"], "ephemeral");
        assert!(
            r.text
                .contains("<@U2> holds `build-router-plt` for `/build router plt`"),
            "{}",
            r.text
        );
        assert!(
            r.text
                .contains("since 22:13 UTC (4m ago), until 22:23 UTC (in 6m)"),
            "{}",
            r.text
        );
        assert!(r.text.contains("`/build status`"), "{}", r.text);
    }

    #[test]
    fn dispatch_failed_explains() {
        let r = dispatch_failed(
            &Target::new("/build", "router", "plt"),
            "GitHub said 422: workflow not found on main",
        );
        assert_eq!(r.response_type, ResponseType::Ephemeral);
        assert!(r.text.contains("422: workflow not found"));
        assert!(r.text.contains("released (marked FAILED)"));
    }

    #[test]
    fn completed_can_be_posted_to_a_channel() {
        let r = completed(
            "build-router-plt",
            Conclusion::Failure,
            "U1",
            3900,
            Some("https://x/run/1"),
        );
        assert_eq!(r.response_type, ResponseType::InChannel);
        assert!(r.text.starts_with("❌ `build-router-plt` failed after 1h 5m (started by <@U1>). <https://x/run/1|View the run>."), "{}", r.text);
        let ok = completed("build-router-plt", Conclusion::Success, "U1", 240, None);
        assert!(
            ok.text
                .starts_with("✅ `build-router-plt` succeeded after 4m"),
            "{}",
            ok.text
        );
        let v = ok.with_channel("C123").to_json();
        assert_eq!(v["channel"], "C123");
        assert!(v.get("response_type").is_none());
        assert!(v["text"].as_str().unwrap().contains("succeeded"));
        assert_eq!(v["blocks"][0]["type"], "section");
    }

    #[test]
    fn status_lists_locks_or_says_none() {
        let empty = status("/build", &[], T0);
        assert_eq!(empty.response_type, ResponseType::Ephemeral);
        assert!(empty.text.contains("No locks are held right now."));

        let mut other = lock();
        other.lock_key = "build-api-dev".into();
        other.holder_id = "U3".into();
        other.purpose = None;
        other.expires_at = T0 + 60;
        let r = status("/build", &[lock(), other], T0 + 300);
        let v = r.to_json();
        assert_eq!(section_text(&v, 0), "🔒 `/build` locks (2):");
        assert_eq!(
            section_text(&v, 1),
            "• `build-router-plt`: <@U2> for `/build router plt`, for 5m, until 22:23 UTC (in 5m)."
        );
        assert!(
            section_text(&v, 2).contains("expired at 22:14 UTC; free to take"),
            "{}",
            section_text(&v, 2)
        );
        assert!(r.text.contains("build-api-dev"));
    }

    #[test]
    fn status_respects_block_limit() {
        let locks = vec![lock(); 60];
        let r = status("/build", &locks, T0);
        assert!(r.blocks.len() <= 50, "{}", r.blocks.len());
        assert_eq!(r.blocks.last(), Some(&Block::context("…and 15 more.")));
    }

    #[test]
    fn unlocked_and_refusals() {
        let r = unlocked(
            "build-router-plt",
            "UADMIN",
            "run died <!here>",
            Some(&lock()),
        );
        assert_eq!(r.response_type, ResponseType::InChannel);
        assert!(
            r.text.starts_with(
                "🔓 <@UADMIN> force-unlocked `build-router-plt`. It was held by <@U2>"
            ),
            "{}",
            r.text
        );
        assert!(
            r.text.contains("Reason: run died &lt;!here&gt;"),
            "{}",
            r.text
        );
        assert!(!unlocked("k", "UADMIN", "x", None).text.contains("held by"));

        let r = unlock_refused("/build", &["UADMIN".into()]);
        assert_eq!(r.response_type, ResponseType::Ephemeral);
        assert!(r.text.contains("Only <@UADMIN>"));
        let r = nothing_to_unlock("build-router-plt");
        assert_eq!(r.response_type, ResponseType::Ephemeral);
        assert!(r.text.contains("`build-router-plt` isn't held"));
    }

    #[test]
    fn errors_usage_and_help() {
        let err = CommandError::UnknownComponent {
            command: "/build".into(),
            component: "routr".into(),
            allowed: vec!["router".into(), "api".into(), "web".into()],
        };
        let r = error(&err);
        assert_eq!(r.response_type, ResponseType::Ephemeral);
        assert!(r.text.starts_with(
            "`/build` doesn't know component `routr`. Try one of: `router`, `api`, `web`."
        ));
        assert!(usage("/build").text.contains("`/build status`"));
        let cfg = Config::builtin();
        let h = help(cfg.command("/deploy").unwrap());
        assert!(
            h.text
                .contains("`/deploy <component> <environment> --dry-run`"),
            "{}",
            h.text
        );
    }

    #[test]
    fn dry_run_names_an_azure_pipeline() {
        let cfg = Config::from_toml_str(
            r#"[commands."/deploy"]
lock_ttl = "30m"
components = ["api"]
environments = ["prod"]
[commands."/deploy".pipeline]
kind = "azure-pipelines"
organization = "acme"
project = "Platform"
pipeline_id = 42
branch = "release"
"#,
        )
        .unwrap();
        let r = dry_run(
            &Target::new("/deploy", "api", "prod"),
            "deploy-api-prod",
            cfg.command("/deploy").unwrap(),
            None,
            T0,
        );
        assert!(
            r.text.contains(
                "would take lock `deploy-api-prod` for 30m and queue Azure pipeline `42` in `acme/Platform` on `release`"
            ),
            "{}",
            r.text
        );
    }

    #[test]
    fn dry_run_free_and_held() {
        let cfg = Config::builtin();
        let build = cfg.command("/build").unwrap();
        let r = dry_run(
            &Target::new("/build", "router", "plt"),
            "build-router-plt",
            build,
            None,
            T0,
        );
        assert_eq!(r.response_type, ResponseType::Ephemeral);
        assert!(
            r.text.contains("would take lock `build-router-plt` for 10m and dispatch `acme/platform` `build.yml@main`"),
            "{}",
            r.text
        );
        let r = dry_run(
            &Target::new("/build", "router", "plt"),
            "build-router-plt",
            build,
            Some(&lock()),
            T0 + 60,
        );
        assert!(
            r.text
                .contains("would be refused: `build-router-plt` is held by <@U2>"),
            "{}",
            r.text
        );
        let r = dry_run(
            &Target::new("/build", "router", "plt"),
            "build-router-plt",
            build,
            Some(&lock()),
            T0 + 600,
        );
        assert!(
            r.text.contains("would take lock"),
            "expired lock is free: {}",
            r.text
        );
    }

    #[test]
    fn notices_and_internal_error() {
        let r = started(&Target::new("/build", "router", "plt"), "U1", &lock(), None)
            .with_locking_disabled_notice();
        assert_eq!(r.blocks.len(), 2);
        assert_eq!(r.blocks[1], Block::context(locking_disabled_notice()));
        assert!(r.text.ends_with(locking_disabled_notice()));
        let v = r.to_json();
        assert_eq!(
            v["blocks"][1],
            json!({"type": "context", "elements": [{"type": "mrkdwn", "text": locking_disabled_notice()}]})
        );

        let r = internal_error("req-42");
        assert_eq!(r.response_type, ResponseType::Ephemeral);
        assert!(r.text.contains("`req-42`"));
        assert!(
            accepted("/build", " router plt ")
                .text
                .contains("`/build router plt`")
        );
    }

    #[test]
    fn long_text_is_truncated_to_slack_limit() {
        let mut l = lock();
        l.purpose = Some("é".repeat(5000));
        let r = held(&Target::new("/build", "router", "plt"), &l, T0);
        let Block::Section { text } = &r.blocks[0] else {
            panic!("expected a section");
        };
        assert_eq!(text.text.chars().count(), MAX_SECTION_CHARS);
        assert!(text.text.ends_with('…'));
    }

    #[test]
    fn run_link_cannot_break_out() {
        let r = completed("k", Conclusion::Success, "U1", 1, Some("https://x/a|b>c"));
        assert!(
            r.text.contains("<https://x/a%7Cb%3Ec|View the run>"),
            "{}",
            r.text
        );
    }
}
