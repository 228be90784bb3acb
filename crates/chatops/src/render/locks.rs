//! What is said about locks themselves: the status list, unlocks, cancels,
//! and leases found lapsed under a working run.

use super::{
    Block, LockView, MAX_LOCK_BLOCKS, Reply, ResponseType, clock, error, escape, mention, run_link,
    short_duration,
};
use crate::command::CommandError;

/// The lock list for `cmd status`, told only to the requester.
pub fn status(cmd: &str, locks: &[LockView], now: u64) -> Reply {
    if locks.is_empty() {
        return Reply::ephemeral(format!(
            "🔓 No locks are held right now. Every `{}` target is free.",
            escape(cmd)
        ));
    }
    let line = |l: &LockView| {
        let bypass = l
            .bypass
            .as_ref()
            .map(|b| {
                format!(
                    " ⚠️ Bypassed by {} at {}: {}",
                    escape(&b.by),
                    escape(&b.at),
                    escape(&b.reason)
                )
            })
            .unwrap_or_default();
        let text = if l.is_expired(now) {
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
        };
        format!("{text}{bypass}")
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

/// Told to an admin whose takeover found the lock in other hands than a
/// moment before: nothing was taken over.
pub fn takeover_changed(lock_key: &str, current: &LockView) -> Reply {
    Reply::ephemeral(format!(
        "✋ `{}` changed hands while you asked: it is now held by {}{} (fence {}). Nothing was taken over; ask again if you mean this grant.",
        escape(lock_key),
        current.holder(),
        current.purpose_suffix(),
        current.fence,
    ))
}

/// Posted to the channel when an admin takes a lock over with `--force`:
/// the holder's grant ended and the admin's began in one write.
pub fn taken_over(lock_key: &str, actor_id: &str, reason: &str, previous: &LockView) -> Reply {
    Reply::in_channel(format!(
        "⚠️ {} took over `{}` from {}{} (fence {}); the admin's run starts under fence {}.\nReason: {}",
        mention(actor_id),
        escape(lock_key),
        previous.holder(),
        previous.purpose_suffix(),
        previous.fence,
        previous.fence + 1,
        escape(reason.trim()),
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
