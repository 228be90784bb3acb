//! What is said about change freezes: the refusal a frozen environment
//! gives (with when it ends, why, who froze it and how an admin gets
//! through), the channel's notice of a freeze set or lifted, and the
//! note on a run that overrode one.

use chrono::DateTime;

use super::{Reply, escape, mention};
use crate::freeze::{Frozen, FrozenBy};

/// `Fri 2026-12-04 14:00 UTC` for epoch milliseconds.
pub fn until_text(epoch_ms: u64) -> String {
    i64::try_from(epoch_ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .map(|t| t.format("%a %Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| format!("epoch ms {epoch_ms}"))
}

/// Who or what froze, in words: `by <@U1>`, `by the schedule `0 17 * * 5`
/// (Europe/Berlin)`.
fn by_text(by: &FrozenBy) -> String {
    match by {
        FrozenBy::Admin { user } => format!("by {}", mention(user)),
        FrozenBy::Schedule { cron, timezone } => {
            format!("by the schedule `{}` ({})", escape(cron), escape(timezone))
        }
    }
}

/// The refusal of a run in a frozen environment.
pub fn frozen_message(command: &str, component: &str, frozen: &Frozen, admins: &str) -> String {
    format!(
        "🧊 `{}` is frozen for `{command}` until {} {}: {}. Admins ({admins}) can override with `{command} {} {} --override-freeze`.",
        escape(&frozen.environment),
        until_text(frozen.until_ms),
        by_text(&frozen.by),
        escape(&frozen.reason),
        escape(component),
        escape(&frozen.environment),
    )
}

/// Posted to the channel when an admin freezes an environment.
pub fn freeze_set(
    command: &str,
    environment: &str,
    by_user: &str,
    until_ms: u64,
    reason: &str,
) -> Reply {
    Reply::in_channel(format!(
        "🧊 {} froze `{}` for `{command}` until {}: {}. Runs there are refused until then; `{command} unfreeze {}` lifts it.",
        mention(by_user),
        escape(environment),
        until_text(until_ms),
        escape(reason),
        escape(environment),
    ))
}

/// Posted to the channel when an admin lifts a freeze.
pub fn freeze_lifted(command: &str, environment: &str, by_user: &str, lifted: &Frozen) -> Reply {
    Reply::in_channel(format!(
        "🌤️ {} lifted the freeze on `{}` for `{command}` (set {} until {}: {}). Runs there are open again.",
        mention(by_user),
        escape(environment),
        by_text(&lifted.by),
        until_text(lifted.until_ms),
        escape(&lifted.reason),
    ))
}

/// Told to the admin when there was no admin freeze to lift.
pub fn nothing_frozen(command: &str, environment: &str, scheduled: Option<&Frozen>) -> Reply {
    let schedule = match scheduled {
        Some(f) => format!(
            " A scheduled freeze is in force until {} ({}): it is in baton's config, and `--override-freeze` gets a run through it.",
            until_text(f.until_ms),
            escape(&f.reason)
        ),
        None => String::new(),
    };
    Reply::ephemeral(format!(
        "Nobody froze `{}` for `{command}`: nothing to lift.{schedule}",
        escape(environment)
    ))
}

impl Reply {
    /// Adds the note that `admin` ran through `frozen` (the freeze in
    /// force when the run started; `None` when nothing was frozen).
    pub fn with_freeze_override(self, admin: &str, frozen: Option<&Frozen>) -> Reply {
        match frozen {
            Some(f) => self.with_context(format!(
                "⚠️ {} overrode the freeze on `{}` (until {} {}: {}).",
                mention(admin),
                escape(&f.environment),
                until_text(f.until_ms),
                by_text(&f.by),
                escape(&f.reason)
            )),
            None => self.with_context(format!(
                "{} asked to override a freeze, but none was in force.",
                mention(admin)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_says_until_when_why_by_whom_and_how_to_override() {
        let frozen = Frozen {
            environment: "prod".into(),
            until_ms: 1_796_392_800_000, // 2026-12-04 14:00 UTC
            reason: "release week".into(),
            by: FrozenBy::Admin {
                user: "U0ALICE".into(),
            },
        };
        let text = frozen_message("/deploy", "api", &frozen, "<@U0ADMIN>");
        assert_eq!(
            text,
            "🧊 `prod` is frozen for `/deploy` until Fri 2026-12-04 14:00 UTC by <@U0ALICE>: release week. Admins (<@U0ADMIN>) can override with `/deploy api prod --override-freeze`."
        );
    }
}
