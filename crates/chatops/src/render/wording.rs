//! The words that explain commands: usage, help, and why a command was
//! refused. The grammar (`crate::command`) decides; this says it in Slack
//! mrkdwn.

use std::fmt::Write as _;

use super::escape;
use crate::command::{CommandError, Malformation};
use crate::config::CommandConfig;

impl CommandError {
    /// A short Slack mrkdwn message that says what went wrong and what is
    /// allowed instead. One arm per refusal, so as long as the list of them.
    pub fn user_message(&self) -> String {
        match self {
            CommandError::UnknownCommand { command, known } => format!(
                "baton isn't set up for `{}`. It knows: {}.",
                escape(command),
                code_list(known)
            ),
            CommandError::UnknownComponent {
                command,
                component,
                allowed,
            } => format!(
                "`{command}` doesn't know component `{}`. Try one of: {}.\n{}",
                escape(component),
                code_list(allowed),
                usage_lines(command)
            ),
            CommandError::UnknownEnvironment {
                command,
                environment,
                allowed,
            } => format!(
                "`{command}` doesn't know environment `{}`. Try one of: {}.\n{}",
                escape(environment),
                code_list(allowed),
                usage_lines(command)
            ),
            CommandError::Malformed { command, problem } => {
                format!(
                    "{}\n{}",
                    malformation(command, problem),
                    usage_lines(command)
                )
            }
            CommandError::NotAllowed {
                command,
                environment,
                allowed_users,
                ..
            } => format!(
                "You're not on the list of people who can run `{command}` in `{environment}`. Ask {} to run it, or to add you.",
                people(allowed_users)
            ),
            CommandError::Protected {
                command,
                environment,
                unlock_users,
            } => format!(
                "`{environment}` is protected and no one may run `{command}` there yet. Ask {} to list who may (`allowed_users.{environment}` of `{command}` in baton's config), or see `{command} help`.",
                if unlock_users.is_empty() {
                    "the admin who runs baton".to_string()
                } else {
                    format!("an admin ({})", people(unlock_users))
                }
            ),
            CommandError::TeamNotAllowed { team_id, .. } => format!(
                "baton doesn't serve this Slack workspace (`{}`): it is not in baton's `allowed_teams`. Ask the admin who runs baton to add it.",
                escape(team_id)
            ),
            CommandError::ChannelNotAllowed {
                command,
                allowed_channels,
                ..
            } => format!(
                "`{command}` can't be run in this channel (its `allowed_channels`). Run it in {}.",
                allowed_channels
                    .iter()
                    .map(|c| format!("<#{}>", escape(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            CommandError::NotAllowedToUnlock {
                command,
                unlock_users,
                ..
            } => {
                if unlock_users.is_empty() {
                    format!(
                        "Force-unlocking `{command}` locks isn't enabled for anyone. Locks expire on their own; `{command} status` shows when."
                    )
                } else {
                    format!(
                        "Only {} can force-unlock `{command}` locks. Locks also expire on their own; `{command} status` shows when.",
                        people(unlock_users)
                    )
                }
            }
            CommandError::MissingForceReason {
                command,
                component,
                environment,
            } => format!(
                "Please say why you're taking the lock over, e.g. `{command} {component} {environment} --force rollback of a broken release`. The reason is posted to the channel and recorded on the lock."
            ),
            CommandError::NotAllowedToForce {
                command,
                unlock_users,
                ..
            } => format!(
                "Only `{}` admins may take a lock over with `--force`: ask {} (the command's `unlock_users`).",
                escape(command),
                people(unlock_users)
            ),
            CommandError::TestModeNotAllowed { command } => format!(
                "`{}` has no test mode: `--test` needs `test_mode = true` in its config.",
                escape(command)
            ),
            CommandError::Frozen {
                command,
                component,
                frozen,
                unlock_users,
            } => super::frozen_message(command, component, frozen, &people(unlock_users)),
            CommandError::NotAllowedToFreeze {
                command,
                unlock_users,
                ..
            } => format!(
                "Only `{}` admins may freeze or unfreeze its environments: ask {} (the command's `unlock_users`).",
                escape(command),
                people(unlock_users)
            ),
            CommandError::NotAllowedToOverrideFreeze {
                command,
                unlock_users,
                ..
            } => format!(
                "Only `{}` admins may run through a freeze with `--override-freeze`: ask {} (the command's `unlock_users`).",
                escape(command),
                people(unlock_users)
            ),
            CommandError::MissingReason {
                command,
                component,
                environment,
            } => format!(
                "Please say why you're unlocking, e.g. `{command} unlock {component} {environment} run died mid-deploy`. The reason is posted to the channel."
            ),
        }
    }
}

/// The usage lines for a command, as Slack mrkdwn.
pub fn usage_lines(command: &str) -> String {
    format!(
        "Usage: `{command} <component> <environment> [--dry-run]`, `{command} status`, `{command} history <component> <environment>`, `{command} queue [<component> <environment>]`, `{command} leave <component> <environment>`, `{command} unlock <component> <environment> [--keep-run] <reason>`, `{command} cancel <component> <environment>`, `{command} freeze <environment> <duration> <reason>`, `{command} unfreeze <environment>`"
    )
}

/// Help text for a command: usage plus its components and environments.
pub fn help_text(config: &CommandConfig) -> String {
    let c = &config.name;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "*{c}* starts the pipeline for a component in an environment."
    );
    let _ = writeln!(out, "• `{c} <component> <environment>` to run it");
    let _ = writeln!(
        out,
        "• `{c} <component> <environment> --dry-run` to see what would happen"
    );
    let _ = writeln!(out, "• `{c} status` to see who holds which lock");
    let _ = writeln!(
        out,
        "• `{c} history <component> <environment>` to see its last runs: who, when, how long, how each ended"
    );
    let _ = writeln!(
        out,
        "• `{c} unlock <component> <environment> <reason>` to force-release a stuck lock and cancel its run (`--keep-run` leaves the run going)"
    );
    let _ = writeln!(
        out,
        "• `{c} cancel <component> <environment>` to stop your own run and release its lock"
    );
    if !config.unlock_users.is_empty() {
        let _ = writeln!(
            out,
            "• `{c} <component> <environment> --force <reason>` (admins) to take a held lock over: its run is cancelled (`--keep-run` leaves it) and yours starts"
        );
    }
    let _ = writeln!(
        out,
        "• `{c} freeze <environment> <duration> <reason>` (admins) to refuse runs there for a while, e.g. `{c} freeze prod 2h release week`; `{c} unfreeze <environment>` lifts it; `{c} <component> <environment> --override-freeze` (admins) runs through a freeze, announced in the channel"
    );
    for f in &config.freezes {
        let _ = writeln!(
            out,
            "• {} frozen by schedule `{}` ({}) for {} each time: {}",
            code_list(&f.environments),
            escape(&f.cron_text),
            escape(f.timezone.name()),
            humantime::format_duration(f.duration),
            escape(&f.reason)
        );
    }
    if config.test_mode {
        let _ = writeln!(
            out,
            "• `{c} <component> <environment> --test` to run on the target's test lock, which never blocks real runs"
        );
    }
    if config.on_conflict.queues() {
        let _ = writeln!(
            out,
            "• A run that finds its lock held waits in line{} and starts by itself when its turn comes (at most {} waiting, each for up to {})",
            if config.on_conflict == crate::config::OnConflict::QueueLatest {
                " (only the newest request waits)"
            } else {
                ""
            },
            config.max_queue,
            humantime::format_duration(config.max_wait),
        );
        let _ = writeln!(
            out,
            "• `{c} queue` to see who waits for what; `{c} leave <component> <environment>` to stop waiting"
        );
    }
    for env in &config.protected_environments {
        match config
            .allowed_users
            .get(env)
            .filter(|users| !users.is_empty())
        {
            Some(users) => {
                let _ = writeln!(
                    out,
                    "• `{env}` is protected: only {} may run `{c}` there",
                    people(users)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "• `{env}` is protected and no one may run `{c}` there yet: an admin lists who may as `allowed_users.{env}` in baton's config"
                );
            }
        }
    }
    let _ = writeln!(out, "Components: {}", code_list(&config.components));
    let _ = write!(out, "Environments: {}", code_list(&config.environments));
    out
}

/// What is wrong with a command's text, in a sentence.
fn malformation(command: &str, problem: &Malformation) -> String {
    match problem {
        Malformation::StatusTakesNothing => format!("`{command} status` takes nothing after it."),
        Malformation::UnlockNeedsTarget => {
            format!("`{command} unlock` needs a component, an environment and a reason.")
        }
        Malformation::UnlockHasNoDryRun => {
            "`unlock` has no dry run; `status` shows what is locked.".into()
        }
        Malformation::CancelNeedsTarget => format!(
            "`{command} cancel` takes a component and an environment: the run of yours to stop."
        ),
        Malformation::QueueNeedsTarget => format!(
            "`{command} queue` shows every line; `{command} queue <component> <environment>` shows one."
        ),
        Malformation::HistoryNeedsTarget => {
            format!("`{command} history` takes a component and an environment: whose runs to show.")
        }
        Malformation::LeaveNeedsTarget => {
            format!("`{command} leave` takes a component and an environment: the line to leave.")
        }
        Malformation::FreezeNeedsArgs => format!(
            "`{command} freeze` needs an environment, a duration and a reason, e.g. `{command} freeze prod 2h \"release week\"`."
        ),
        Malformation::FreezeDuration(text) => format!(
            "`{}` is not a freeze duration: write one between `1m` and `31d`, e.g. `2h` or `1d 12h`.",
            escape(text)
        ),
        Malformation::UnfreezeNeedsEnvironment => {
            format!("`{command} unfreeze` takes an environment: the one to thaw.")
        }
        Malformation::UnknownOption(option) => format!(
            "I don't know the option `{}`; a run takes `--dry-run`, `--test`, `--force <reason>` (admins, with `--keep-run` to leave the holder's run going) and `--override-freeze` (admins).",
            escape(option)
        ),
        Malformation::KeepRunNeedsForce => {
            "`--keep-run` goes with `--force <reason>`: it leaves the previous holder's run going."
                .into()
        }
        Malformation::ForceIsReal => {
            "`--force` takes the real lock: it has no `--dry-run` or `--test`.".into()
        }
        Malformation::RunNeedsTarget => {
            format!("`{command}` needs a component and an environment.")
        }
        Malformation::TooManyWords(n) => {
            format!("`{command}` takes a component and an environment, but got {n} words.")
        }
    }
}

/// `` `a`, `b`, `c` ``
fn code_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{}`", escape(i)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `<@U1>`, `<@U1> or <@U2>`, `<@U1>, <@U2> or <@U3>`; "an admin" when empty.
fn people(users: &[String]) -> String {
    // Slack mentions a user group as `<!subteam^S…>`, a user as `<@U…>`.
    let mentions: Vec<String> = users
        .iter()
        .map(|u| {
            if crate::config::is_group_id(u) {
                format!("<!subteam^{}>", escape(u))
            } else {
                format!("<@{}>", escape(u))
            }
        })
        .collect();
    match mentions.split_last() {
        None => "an admin".into(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}
