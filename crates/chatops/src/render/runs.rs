//! What a run's requester and channel are told: started, held, refused,
//! finished, and the dry run.

use super::{
    LockView, Reply, clock, emoji_for, escape, invocation, mention, run_link, short_duration,
    ttl_display,
};
use crate::config::{CommandConfig, PipelineConfig, PipelineKind};
use crate::message::Conclusion;
use crate::target::Target;

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

/// Told to the requester when the pipeline's service (`kind`) never
/// answered the dispatch and its runs list could not say whether the run
/// started: the lock is kept until `expires_at` so no second pipeline can
/// start beside one that may run.
pub fn dispatch_unconfirmed(
    target: &Target,
    kind: PipelineKind,
    reason: &str,
    expires_at: u64,
) -> Reply {
    let runs = match kind {
        PipelineKind::GitHubActions => "the workflow's runs in GitHub Actions",
        PipelineKind::AzurePipelines => "the pipeline's runs in Azure DevOps",
    };
    Reply::ephemeral(format!(
        "⚠️ {} didn't confirm the pipeline for `{}`: {}\nIt may have started, so the lock stays until {} to keep a second run out. Check {runs}.",
        kind.service(),
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
/// How a run the requester may never have heard of ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnded {
    Succeeded,
    Failed,
    /// Ended by an admin's unlock or takeover.
    Unlocked,
}

/// Told to the requester when their command comes again after its run has
/// already started and ended: the start may never have been announced
/// (Slack was down), so they hear now that it ran, how it ended and where.
pub fn already_ran(target: &Target, ended: RunEnded, run_url: Option<&str>) -> Reply {
    let how = match ended {
        RunEnded::Succeeded => "succeeded",
        RunEnded::Failed => "failed",
        RunEnded::Unlocked => "was ended by an unlock",
    };
    let link = run_url
        .map(|url| format!(" (<{}|the run>)", escape(url)))
        .unwrap_or_default();
    Reply::ephemeral(format!(
        "Your `{}` already ran{link} and {how}. Run the command again for a new run.",
        invocation(target),
    ))
}

pub fn lapsed_before_start(target: &Target) -> Reply {
    Reply::ephemeral(format!(
        "⚠️ The lock taken for `{}` lapsed before its pipeline started, so nothing was started. Run the command again to take a fresh lock.",
        invocation(target),
    ))
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
    let dispatch = match &config.pipeline {
        PipelineConfig::GitHubActions(p) => format!(
            "dispatch `{}` `{}@{}`",
            escape(&p.repository()),
            escape(&p.workflow),
            escape(&p.git_ref)
        ),
        PipelineConfig::AzurePipelines(p) => format!(
            "queue Azure pipeline `{}` in `{}` on `{}`",
            p.pipeline_id,
            escape(&p.project_path()),
            escape(&p.branch)
        ),
    };
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
