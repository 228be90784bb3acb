//! `/command history component environment`: a target's last runs, newest
//! first, told privately to whoever asked.

use std::fmt::Write as _;

use super::{Reply, clock, escape, mention, short_duration};
use crate::target::Target;

/// One ended run as the renderer sees it, independent of how the history
/// is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunView {
    /// Who held the lock (a Slack user id for chat runs, a CI owner else).
    pub holder_id: String,
    /// When the run's grant was made and when it ended, epoch seconds.
    pub started_at: u64,
    pub ended_at: u64,
    /// How it ended: `COMPLETED`, `FAILED`, `FORCED` or `EXPIRED`.
    pub outcome: String,
    /// Who ended it, when that was someone else (an unlock, a takeover).
    pub ended_by: Option<String>,
    /// Why, when said.
    pub reason: Option<String>,
    /// The pipeline run, when one was linked.
    pub run_url: Option<String>,
}

/// How many runs `history` shows.
pub const HISTORY_RUNS: usize = 10;

/// The runs of `target`, newest first.
pub fn history(target: &Target, runs: &[RunView], now: u64) -> Reply {
    let what = format!(
        "`{} {} {}`",
        escape(&target.command),
        escape(&target.component),
        escape(&target.environment)
    );
    if runs.is_empty() {
        return Reply::ephemeral(format!("No runs of {what} are on record yet."));
    }
    let mut out = format!("*Last runs of {what}*");
    for run in runs {
        let outcome = match run.outcome.as_str() {
            "COMPLETED" => "completed",
            "FAILED" => "failed",
            "FORCED" => "unlocked",
            "EXPIRED" => "lease lapsed",
            other => other,
        };
        let _ = write!(
            out,
            "\n• {} ago, {}: {} after {}",
            short_duration(now.saturating_sub(run.ended_at)),
            holder(&run.holder_id),
            outcome,
            short_duration(run.ended_at.saturating_sub(run.started_at)),
        );
        if let Some(by) = run.ended_by.as_deref().filter(|by| *by != run.holder_id) {
            let _ = write!(out, " by {}", holder(by));
        }
        if let Some(reason) = run.reason.as_deref().filter(|r| !r.trim().is_empty()) {
            let _ = write!(out, " ({})", escape(reason));
        }
        if let Some(url) = run.run_url.as_deref() {
            let _ = write!(out, " <{}|run>", escape(url));
        }
        let _ = write!(out, ", ended {}", clock(run.ended_at));
    }
    Reply::ephemeral(out)
}

/// `history` where this deployment keeps none.
pub fn history_not_kept(command: &str) -> Reply {
    Reply::ephemeral(format!(
        "`{} history` needs baton's history table, which this deployment does not have.",
        escape(command)
    ))
}

/// A Slack user as a mention; anyone else (a CI owner) by name.
fn holder(id: &str) -> String {
    let slack_user = id.len() > 1
        && id.starts_with(['U', 'W'])
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if slack_user {
        mention(id)
    } else {
        format!("`{}`", escape(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            command: "/deploy".into(),
            component: "api".into(),
            environment: "prod".into(),
        }
    }

    fn run(holder: &str, outcome: &str) -> RunView {
        RunView {
            holder_id: holder.into(),
            started_at: 1_000,
            ended_at: 1_000 + 7 * 60,
            outcome: outcome.into(),
            ended_by: None,
            reason: None,
            run_url: None,
        }
    }

    #[test]
    fn each_run_says_who_how_long_and_how_it_ended() {
        let mut forced = run("U1", "FORCED");
        forced.ended_by = Some("U2".into());
        forced.reason = Some("stuck <!channel>".into());
        let mut ci = run("github:acme/api#7", "COMPLETED");
        ci.run_url = Some("https://github.com/acme/api/actions/runs/7".into());
        let reply = history(&target(), &[forced, ci], 1_000 + 67 * 60);
        let text = &reply.text;
        assert!(text.contains("`/deploy api prod`"), "{text}");
        assert!(
            text.contains("1h ago, <@U1>: unlocked after 7m by <@U2> (stuck &lt;!channel&gt;)"),
            "{text}"
        );
        assert!(
            text.contains("`github:acme/api#7`: completed after 7m <https://github.com/acme/api/actions/runs/7|run>"),
            "{text}"
        );
        assert_eq!(reply.to_json()["response_type"], "ephemeral");
    }

    #[test]
    fn no_runs_says_so() {
        let reply = history(&target(), &[], 0);
        assert!(
            reply.text.contains("No runs of `/deploy api prod`"),
            "{}",
            reply.text
        );
    }
}
