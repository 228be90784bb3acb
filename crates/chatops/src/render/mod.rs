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
use crate::message::Conclusion;

mod wording;

use crate::config::CommandConfig;
use crate::target::Target;
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

/// Posted to the channel when a run has its lock and its pipeline started.
pub fn started(
    target: &Target,
    requester_id: &str,
    lock: &LockView,
    run_url: Option<&str>,
) -> Reply {
    Reply::in_channel(format!(
        "{} {} started `{}` (fence {}).{} Lock `{}` held until {}.",
        emoji_for(&target.command),
        mention(requester_id),
        invocation(target),
        lock.fence,
        run_link(run_url),
        escape(&lock.lock_key),
        clock(lock.expires_at),
    ))
}

/// Told only to the requester when someone else holds the lock.
pub fn held(target: &Target, holder: &LockView, now: u64) -> Reply {
    Reply::ephemeral(format!(
        "⏳ `{}` is already running: {} holds `{}`{} since {} ({} ago), until {} (in {}). Try again once it's done or expired, or check `{} status`.",
        invocation(target),
        holder.holder(),
        escape(&holder.lock_key),
        holder.purpose_suffix(),
        clock(holder.locked_at),
        short_duration(now.saturating_sub(holder.locked_at)),
        clock(holder.expires_at),
        short_duration(holder.expires_at.saturating_sub(now)),
        escape(&target.command),
    ))
}

/// Told to the requester when the pipeline could not be dispatched.
pub fn dispatch_failed(target: &Target, reason: &str) -> Reply {
    Reply::ephemeral(format!(
        "⚠️ I couldn't start the pipeline for `{}`: {}\nThe lock was released (marked FAILED), so you can try again.",
        invocation(target),
        escape(reason.trim()),
    ))
}

/// Told to the requester when GitHub never answered the dispatch and its
/// runs list could not say whether the run started: the lock is kept until
/// `expires_at` so no second pipeline can start beside one that may run.
pub fn dispatch_unconfirmed(target: &Target, reason: &str, expires_at: u64) -> Reply {
    Reply::ephemeral(format!(
        "⚠️ GitHub didn't confirm the pipeline for `{}`: {}\nIt may have started, so the lock stays until {} to keep a second run out. Check the workflow's runs in GitHub Actions.",
        invocation(target),
        escape(reason.trim()),
        clock(expires_at),
    ))
}

/// Posted to the channel when a run reports its end. Use
/// [`Reply::with_channel`] to send it with `chat.postMessage`.
pub fn completed(
    lock_key: &str,
    conclusion: Conclusion,
    holder_id: &str,
    duration_secs: u64,
    run_url: Option<&str>,
) -> Reply {
    let (icon, outcome) = if conclusion.succeeded() {
        ("✅", "succeeded")
    } else {
        ("❌", "failed")
    };
    Reply::in_channel(format!(
        "{icon} `{}` {outcome} after {} (started by {}).{} The lock is released.",
        escape(lock_key),
        short_duration(duration_secs),
        mention(holder_id),
        run_link(run_url),
    ))
}

/// The lock list for `cmd status`, told only to the requester.
pub fn status(cmd: &str, locks: &[LockView], now: u64) -> Reply {
    if locks.is_empty() {
        return Reply::ephemeral(format!(
            "🔓 No locks are held right now. Every `{}` target is free.",
            escape(cmd)
        ));
    }
    let line = |l: &LockView| {
        if l.is_expired(now) {
            format!(
                "• `{}`: was held by {}{}, expired at {}; free to take.",
                escape(&l.lock_key),
                l.holder(),
                l.purpose_suffix(),
                clock(l.expires_at),
            )
        } else {
            format!(
                "• `{}`: {}{}, for {}, until {} (in {}).",
                escape(&l.lock_key),
                l.holder(),
                l.purpose_suffix(),
                short_duration(now.saturating_sub(l.locked_at)),
                clock(l.expires_at),
                short_duration(l.expires_at.saturating_sub(now)),
            )
        }
    };
    let header = format!("🔒 `{}` locks ({}):", escape(cmd), locks.len());
    let lines: Vec<String> = locks.iter().map(line).collect();
    let mut reply = Reply {
        response_type: ResponseType::Ephemeral,
        text: format!("{header}\n{}", lines.join("\n")),
        blocks: vec![Block::section(header)],
    };
    reply.blocks.extend(
        lines
            .iter()
            .take(MAX_LOCK_BLOCKS)
            .cloned()
            .map(Block::section),
    );
    if lines.len() > MAX_LOCK_BLOCKS {
        reply.blocks.push(Block::context(format!(
            "…and {} more.",
            lines.len() - MAX_LOCK_BLOCKS
        )));
    }
    reply
}

/// Posted to the channel when an admin force-unlocks.
pub fn unlocked(
    lock_key: &str,
    actor_id: &str,
    reason: &str,
    previous: Option<&LockView>,
) -> Reply {
    let was = previous
        .map(|p| {
            format!(
                " It was held by {}{} (fence {}).",
                p.holder(),
                p.purpose_suffix(),
                p.fence
            )
        })
        .unwrap_or_default();
    Reply::in_channel(format!(
        "🔓 {} force-unlocked `{}`.{was}\nReason: {}",
        mention(actor_id),
        escape(lock_key),
        escape(reason.trim()),
    ))
}

/// Posted to the channel when a command dispatched its pipeline with no
/// lock (the command needs none, or locking is switched off): nothing about a
/// lock is claimed, because there is none.
pub fn started_unlocked(target: &Target, requester_id: &str, run_url: Option<&str>) -> Reply {
    Reply::in_channel(format!(
        "{} {} started `{}` without a lock.{}",
        emoji_for(&target.command),
        mention(requester_id),
        invocation(target),
        run_link(run_url),
    ))
}

/// Told to the requester when a command waited in the queue longer than
/// the configured maximum: it is not run, because the situation it was
/// typed for may have changed.
pub fn request_expired(cmd: &str, text: &str, waited_secs: u64) -> Reply {
    Reply::ephemeral(format!(
        "⌛ `{}` waited {} before I could act on it, so I didn't run it: things may have changed since you typed it. Run it again if you still want it.",
        escape(format!("{cmd} {text}").trim()),
        short_duration(waited_secs),
    ))
}

/// Told to the requester when the lock of an earlier attempt of this very
/// request lapsed before its pipeline started: nothing runs under it.
pub fn lapsed_before_start(target: &Target) -> Reply {
    Reply::ephemeral(format!(
        "⚠️ The lock taken for `{}` lapsed before its pipeline started, so nothing was started. Run the command again to take a fresh lock.",
        invocation(target),
    ))
}

/// Told to an admin whose unlock found a newer grant than the one they saw:
/// nothing was unlocked.
pub fn unlock_changed(lock_key: &str, current: &LockView) -> Reply {
    Reply::ephemeral(format!(
        "✋ `{}` changed since you asked: it is now held by {}{} (fence {}) since {}. Nothing was unlocked; run the unlock again if you mean this grant.",
        escape(lock_key),
        current.holder(),
        current.purpose_suffix(),
        current.fence,
        clock(current.locked_at),
    ))
}

/// Posted to the channel when a holder cancels their own run.
pub fn cancelled(lock_key: &str, holder_id: &str, previous: &LockView) -> Reply {
    Reply::in_channel(format!(
        "🛑 {} cancelled{} and released `{}` (fence {}).",
        mention(holder_id),
        previous.purpose_suffix(),
        escape(lock_key),
        previous.fence,
    ))
}

/// Told to someone who tried to cancel a run that is not theirs.
pub fn cancel_not_yours(lock_key: &str, holder: &LockView) -> Reply {
    Reply::ephemeral(format!(
        "✋ `{}` is held by {}, not you: only the holder can cancel a run (admins can `unlock`).",
        escape(lock_key),
        holder.holder(),
    ))
}

/// Told to someone who tried to cancel when nothing holds the lock.
pub fn nothing_to_cancel(lock_key: &str) -> Reply {
    Reply::ephemeral(format!(
        "👍 `{}` isn't held right now, so there's nothing to cancel.",
        escape(lock_key)
    ))
}

/// What became of the pipeline run of a grant that was ended by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStop {
    /// The pipeline accepted the cancellation.
    Cancelled,
    /// `--keep-run`: the run was left going on purpose.
    Kept,
    /// The grant had no run recorded, so there was nothing to cancel.
    NoRun,
    /// The pipeline refused or could not be reached.
    Failed(String),
}

impl Reply {
    /// Adds what became of the ended grant's pipeline run.
    pub fn with_run_stop(self, stop: &RunStop) -> Reply {
        match stop {
            RunStop::Cancelled => self.with_context("Its pipeline run was cancelled."),
            RunStop::Kept => self.with_context("Its pipeline run was left running (`--keep-run`)."),
            RunStop::NoRun => self,
            RunStop::Failed(why) => self.with_context(format!(
                "⚠️ Its pipeline run could not be cancelled: {}. Stop it by hand.",
                escape(why)
            )),
        }
    }
}

/// Posted to the channel when baton found by itself that a run ended
/// (its completion report never arrived) and released its lock.
pub fn completed_unreported(
    lock_key: &str,
    conclusion: Conclusion,
    holder_id: &str,
    duration_secs: u64,
    run_url: Option<&str>,
) -> Reply {
    completed(lock_key, conclusion, holder_id, duration_secs, run_url)
        .with_context("The run's completion report never arrived; baton asked the pipeline and released the lock.")
}

/// Posted to the channel when a lock's lease lapsed while its run was
/// still working: anyone could have taken the lock over in that window.
pub fn lease_lapsed_under_run(lock_key: &str, holder_id: &str, run_url: Option<&str>) -> Reply {
    Reply::in_channel(format!(
        "⚠️ The lock `{}` of {}'s run lapsed while the run was still working; baton renewed it.{} If someone else ran under it meanwhile, check both runs.",
        escape(lock_key),
        mention(holder_id),
        run_link(run_url),
    ))
}

/// Told to someone who may not force-unlock `cmd`'s locks.
pub fn unlock_refused(cmd: &str, unlock_users: &[String]) -> Reply {
    error(&CommandError::NotAllowedToUnlock {
        command: cmd.to_string(),
        user: String::new(),
        unlock_users: unlock_users.to_vec(),
    })
}

/// Told to an admin who tried to unlock a lock nobody holds.
pub fn nothing_to_unlock(lock_key: &str) -> Reply {
    Reply::ephemeral(format!(
        "👍 `{}` isn't held right now, so there's nothing to unlock.",
        escape(lock_key)
    ))
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

/// Acknowledges a command while the worker picks it up (the router must
/// answer Slack within 3 seconds).
pub fn accepted(cmd: &str, text: &str) -> Reply {
    let typed = format!("{cmd} {}", text.trim());
    Reply::ephemeral(format!("👌 Got `{}`, working on it…", escape(typed.trim())))
}

/// What `cmd component env --dry-run` would do, told only to the requester.
/// `current` is the lock's present holder, if any.
pub fn dry_run(
    target: &Target,
    lock_key: &str,
    config: &CommandConfig,
    current: Option<&LockView>,
    now: u64,
) -> Reply {
    let p = &config.pipeline;
    let dispatch = format!(
        "dispatch `{}` `{}@{}`",
        escape(&p.repository()),
        escape(&p.workflow),
        escape(&p.git_ref)
    );
    let ttl = ttl_display(config.lock_ttl);
    let inv = invocation(target);
    let text = match current {
        _ if !config.requires_lock => {
            format!("🧪 Dry run of `{inv}`: takes no lock; would {dispatch}.")
        }
        Some(holder) if !holder.is_expired(now) => format!(
            "🧪 Dry run of `{inv}`: would be refused: `{}` is held by {}{} until {} (in {}).",
            escape(lock_key),
            holder.holder(),
            holder.purpose_suffix(),
            clock(holder.expires_at),
            short_duration(holder.expires_at.saturating_sub(now)),
        ),
        _ => format!(
            "🧪 Dry run of `{inv}`: would take lock `{}` for {ttl} and {dispatch}. Nothing was changed.",
            escape(lock_key)
        ),
    };
    Reply::ephemeral(text)
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
