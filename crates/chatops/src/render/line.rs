//! What people waiting for a lock are told: their place, the line, their
//! turn, and every way they can leave it (by choice, dropped, superseded).

use std::fmt::Write as _;

use super::{LockView, Reply, clock, escape, invocation, mention, run_link, short_duration};
use crate::target::Target;

/// One waiter, as the renderers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaiterView {
    /// The waiter's Slack user id (or the CLI owner).
    pub user_id: String,
    /// What it waits to run, e.g. `/deploy api prod`.
    pub purpose: Option<String>,
    /// When it joined, epoch seconds.
    pub joined_at: u64,
}

/// A lock and who waits for it, head first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineView {
    /// The lock, and its holder.
    pub lock: LockView,
    /// The waiters, head first.
    pub waiters: Vec<WaiterView>,
}

/// Told only to the requester whose run joined (or already was in) the line.
pub fn queued(
    target: &Target,
    position: usize,
    holder: &LockView,
    already: bool,
    now: u64,
) -> Reply {
    let place = if already {
        format!("You're already in line for `{}`", invocation(target))
    } else {
        format!("🕒 Queued `{}`", invocation(target))
    };
    let ahead = match position {
        1 => "you're next".to_owned(),
        n => format!("{} ahead of you", n - 1),
    };
    Reply::ephemeral(format!(
        "{place}: position {position} ({ahead}). {} holds `{}`{} until {} (in {}). It starts by itself when its turn comes; `{} leave {} {}` to stop waiting.",
        mention(&holder.holder_id),
        escape(&holder.lock_key),
        holder.purpose_suffix(),
        clock(holder.expires_at),
        short_duration(holder.expires_at.saturating_sub(now)),
        escape(&target.command),
        escape(&target.component),
        escape(&target.environment),
    ))
}

/// Told to the requester when the line is full.
pub fn line_full(target: &Target, max: usize, holder: &LockView) -> Reply {
    Reply::ephemeral(format!(
        "⛔ The line for `{}` is full ({max} waiting; {} holds the lock). Try again later, or see `{} queue`.",
        invocation(target),
        mention(&holder.holder_id),
        escape(&target.command),
    ))
}

/// Told to a waiter a newer request replaced (`queue-latest`).
pub fn superseded(purpose: &str, by_user: &str) -> Reply {
    Reply::ephemeral(format!(
        "⏭️ Your queued `{}` was replaced by {}'s newer request: only the latest waits for this lock.",
        escape(purpose),
        mention(by_user),
    ))
}

/// Told to a waiter whose maximum wait passed before its turn came.
pub fn dropped(purpose: &str, waited_secs: u64) -> Reply {
    Reply::ephemeral(format!(
        "⌛ Your queued `{}` was dropped after waiting {}, longer than its command allows. Ask again if it is still needed.",
        escape(purpose),
        short_duration(waited_secs),
    ))
}

/// Posted to the channel when a queued run's turn comes and it starts.
pub fn started_from_line(
    target: &Target,
    requester_id: &str,
    lock: &LockView,
    waited_secs: u64,
    run_url: Option<&str>,
) -> Reply {
    Reply::in_channel(format!(
        "▶️ Starting {}'s queued `{}`, waited {} (fence {}).{} Lock `{}` held until {}.",
        mention(requester_id),
        invocation(target),
        short_duration(waited_secs),
        lock.fence,
        run_link(run_url),
        escape(&lock.lock_key),
        clock(lock.expires_at),
    ))
}

/// Told to the requester who left a line.
pub fn left_line(target: &Target) -> Reply {
    Reply::ephemeral(format!(
        "👋 You left the line for `{}`; it will not start.",
        invocation(target)
    ))
}

/// Told to someone leaving a line they are not in.
pub fn not_in_line(target: &Target) -> Reply {
    Reply::ephemeral(format!(
        "You're not waiting for `{}` (your turn may have come, or your request was dropped). `{} queue` shows the lines.",
        invocation(target),
        escape(&target.command),
    ))
}

/// Told to someone using `queue` or `leave` on a command that does not queue.
pub fn does_not_queue(command: &str) -> Reply {
    Reply::ephemeral(format!(
        "`{}` does not queue requests: a run that finds its lock held is told so and not started. (An operator can set `on_conflict = \"queue\"` for it.)",
        escape(command)
    ))
}

/// The waiting lines of a command's locks.
pub fn lines(command: &str, lines: &[LineView], now: u64) -> Reply {
    let waiting: Vec<&LineView> = lines.iter().filter(|l| !l.waiters.is_empty()).collect();
    if waiting.is_empty() {
        return Reply::ephemeral(format!(
            "No one is waiting for a `{}` lock.",
            escape(command)
        ));
    }
    let mut out = format!("*Waiting for `{}` locks*", escape(command));
    for line in waiting {
        let _ = write!(
            out,
            "\n`{}`: held by {}{}",
            escape(&line.lock.lock_key),
            mention(&line.lock.holder_id),
            line.lock.purpose_suffix(),
        );
        for (i, w) in line.waiters.iter().enumerate() {
            let _ = write!(
                out,
                "\n  {}. {}{}, waiting {}",
                i + 1,
                mention(&w.user_id),
                w.purpose
                    .as_deref()
                    .map(|p| format!(" `{}`", escape(p)))
                    .unwrap_or_default(),
                short_duration(now.saturating_sub(w.joined_at)),
            );
        }
    }
    Reply::ephemeral(out)
}
