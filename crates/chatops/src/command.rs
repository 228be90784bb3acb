//! The slash-command grammar: turns what a user typed into a [`Request`]
//! the worker can act on, or a [`CommandError`] that tells them what would
//! have worked.
//!
//! ```text
//! /build <component> <environment> [--dry-run]
//! /build status
//! /build unlock <component> <environment> <reason>
//! /build freeze <environment> <duration> <reason>
//! /build unfreeze <environment>
//! /build help
//! ```
//!
//! Components, environments and sub-command words are case-insensitive and
//! normalised to lowercase; `--dry-run` may appear anywhere (and survives
//! chat clients that "smart-punctuate" `--` into a dash). Permissions are
//! checked here too, so the worker never starts a pipeline for a request
//! that was not allowed.

use crate::config::{CommandConfig, Config, Membership};
use crate::freeze::Frozen;
use crate::message::CommandMessage;
use crate::target::Target;

/// What a user asked for, checked against the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Take the lock and dispatch the pipeline (or, with `dry_run`, only
    /// say what would happen).
    Run {
        /// What to run.
        target: Target,
        /// The lock this run takes, per the command's lock scope (its test
        /// key with `--test`).
        lock_key: String,
        /// Whether to only report what would happen.
        dry_run: bool,
        /// `--test`: run on the target's test key, which excludes other test
        /// runs but never real ones (for commands that allow it).
        test: bool,
        /// `--force REASON`: an admin takes the lock over from its holder.
        force: Option<Force>,
        /// `--override-freeze`: an admin runs through a change freeze; the
        /// override is recorded on the grant and announced.
        override_freeze: bool,
    },
    /// An admin freezes an environment for the command: runs there are
    /// refused until the freeze ends or is lifted.
    Freeze {
        /// The command, e.g. `/deploy`.
        command: String,
        /// The environment to freeze.
        environment: String,
        /// For how long, from when the worker records it.
        duration: std::time::Duration,
        /// Why; shown to everyone the freeze refuses.
        reason: String,
    },
    /// An admin lifts an environment's freeze before it ends.
    Unfreeze {
        /// The command, e.g. `/deploy`.
        command: String,
        /// The environment to thaw.
        environment: String,
    },
    /// List the command's current locks.
    Status {
        /// The command, e.g. `/build`.
        command: String,
    },
    /// Release a lock by force (for admins, when a run died holding it).
    Unlock {
        /// Whose lock to release.
        target: Target,
        /// The lock to release.
        lock_key: String,
        /// Why, as the user wrote it; recorded and posted to the channel.
        reason: String,
        /// `--keep-run`: end the lock but leave its pipeline run going.
        keep_run: bool,
    },
    /// The holder ends their own run: the lock is released and the run
    /// cancelled.
    Cancel {
        /// Whose run to stop.
        target: Target,
        /// The lock to release.
        lock_key: String,
    },
    /// Show the waiting lines of the command's locks (all, or one target's).
    Queue {
        /// The command, e.g. `/build`.
        command: String,
        /// One target and its lock key, or every line of the command.
        target: Option<(Target, String)>,
    },
    /// The requester leaves a target's waiting line.
    Leave {
        /// Whose line to leave.
        target: Target,
        /// The lock the line waits for.
        lock_key: String,
    },
    /// Show a target's last runs: who, when, how long, how each ended.
    History {
        /// Whose runs.
        target: Target,
        /// The lock those runs held.
        lock_key: String,
    },
    /// Show how to use the command.
    Help {
        /// The command, e.g. `/build`.
        command: String,
    },
}

/// An admin's takeover of a held lock (`--force REASON [--keep-run]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Force {
    /// Why, as the admin wrote it; recorded on the ended grant and posted.
    pub reason: String,
    /// `--keep-run`: leave the previous holder's pipeline run going.
    pub keep_run: bool,
}

impl Request {
    /// The slash command this request is for.
    pub fn command(&self) -> &str {
        match self {
            Request::Run { target, .. }
            | Request::Unlock { target, .. }
            | Request::Cancel { target, .. }
            | Request::Leave { target, .. }
            | Request::History { target, .. } => &target.command,
            Request::Status { command }
            | Request::Help { command }
            | Request::Queue { command, .. }
            | Request::Freeze { command, .. }
            | Request::Unfreeze { command, .. } => command,
        }
    }

    /// The command text in its normal form (what follows the slash command):
    /// parsing it again gives the same request.
    pub fn text(&self) -> String {
        match self {
            Request::Run {
                target,
                dry_run,
                test,
                force,
                override_freeze,
                ..
            } => {
                let mut text = format!("{} {}", target.component, target.environment);
                if *dry_run {
                    text.push_str(" --dry-run");
                }
                if *test {
                    text.push_str(" --test");
                }
                if *override_freeze {
                    text.push_str(" --override-freeze");
                }
                if let Some(force) = force {
                    if force.keep_run {
                        text.push_str(" --keep-run");
                    }
                    text.push_str(&format!(" --force {}", force.reason));
                }
                text
            }
            Request::Unlock {
                target,
                reason,
                keep_run,
                ..
            } => {
                let flag = if *keep_run { " --keep-run" } else { "" };
                format!(
                    "unlock {} {}{flag} {reason}",
                    target.component, target.environment
                )
            }
            Request::Cancel { target, .. } => {
                format!("cancel {} {}", target.component, target.environment)
            }
            Request::Freeze {
                environment,
                duration,
                reason,
                ..
            } => format!(
                "freeze {environment} {} {reason}",
                humantime::format_duration(*duration)
            ),
            Request::Unfreeze { environment, .. } => format!("unfreeze {environment}"),
            Request::Status { .. } => "status".into(),
            Request::Help { .. } => "help".into(),
            Request::Queue { target: None, .. } => "queue".into(),
            Request::Queue {
                target: Some((target, _)),
                ..
            } => format!("queue {} {}", target.component, target.environment),
            Request::Leave { target, .. } => {
                format!("leave {} {}", target.component, target.environment)
            }
            Request::History { target, .. } => {
                format!("history {} {}", target.component, target.environment)
            }
        }
    }
}

/// How a command's text fails the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformation {
    /// `status` followed by anything but `--locks`.
    #[error("status takes no arguments")]
    StatusTakesNothing,
    /// `--keep-run` on a run without `--force`.
    #[error("--keep-run goes with --force")]
    KeepRunNeedsForce,
    /// `--force` together with `--dry-run` or `--test`.
    #[error("--force takes the real lock; it has no dry run or test mode")]
    ForceIsReal,
    /// `unlock` without a component, an environment and a reason.
    #[error("unlock needs a component, an environment and a reason")]
    UnlockNeedsTarget,
    /// `unlock … --dry-run`.
    #[error("unlock has no dry run")]
    UnlockHasNoDryRun,
    /// `cancel` without exactly a component and an environment.
    #[error("cancel takes a component and an environment")]
    CancelNeedsTarget,
    /// `queue` with one word, or more than two.
    #[error("queue takes nothing, or a component and an environment")]
    QueueNeedsTarget,
    /// `leave` without exactly a component and an environment.
    #[error("leave takes a component and an environment")]
    LeaveNeedsTarget,
    /// `history` without exactly a component and an environment.
    #[error("history takes a component and an environment")]
    HistoryNeedsTarget,
    /// `freeze` without an environment, a duration and a reason.
    #[error("freeze needs an environment, a duration and a reason")]
    FreezeNeedsArgs,
    /// `freeze` with a duration that is not one, or out of range.
    #[error("`{0}` is not a freeze duration between 1m and 31d")]
    FreezeDuration(String),
    /// `unfreeze` without exactly an environment.
    #[error("unfreeze takes an environment")]
    UnfreezeNeedsEnvironment,
    /// An option other than `--dry-run`.
    #[error("unknown option {0}")]
    UnknownOption(String),
    /// A run with fewer than two words.
    #[error("a run needs a component and an environment")]
    RunNeedsTarget,
    /// A run with more than two words.
    #[error("a run takes two words, got {0}")]
    TooManyWords(usize),
}

/// Why a command could not be accepted. Every variant carries what the user
/// needs to fix it; `render` words it for Slack ([`CommandError::user_message`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The slash command is not configured (a Slack app set up with more
    /// commands than baton knows).
    #[error("unknown command `{command}`")]
    UnknownCommand {
        /// The command Slack sent.
        command: String,
        /// The commands baton is configured for.
        known: Vec<String>,
    },
    /// The component is not in the command's list.
    #[error("`{command}` doesn't know component `{component}`")]
    UnknownComponent {
        /// The command, e.g. `/build`.
        command: String,
        /// What the user typed (lowercased).
        component: String,
        /// The configured components.
        allowed: Vec<String>,
    },
    /// The environment is not in the command's list.
    #[error("`{command}` doesn't know environment `{environment}`")]
    UnknownEnvironment {
        /// The command, e.g. `/build`.
        command: String,
        /// What the user typed (lowercased).
        environment: String,
        /// The configured environments.
        allowed: Vec<String>,
    },
    /// The text does not fit the grammar.
    #[error("`{command}`: {problem}")]
    Malformed {
        /// The command, e.g. `/build`.
        command: String,
        /// What is wrong.
        problem: Malformation,
    },
    /// The user may not run this command in this environment.
    #[error("user {user} may not run `{command}` in `{environment}`")]
    NotAllowed {
        /// The command, e.g. `/build`.
        command: String,
        /// The requester's Slack user id.
        user: String,
        /// The restricted environment.
        environment: String,
        /// Who may (to tell the user whom to ask).
        allowed_users: Vec<String>,
    },
    /// The environment is protected and nobody is listed for it yet: the
    /// closed default, refused for everyone until an operator lists who may.
    #[error(
        "`{environment}` is protected for `{command}` and no one is allowed yet (set allowed_users.{environment})"
    )]
    Protected {
        /// The command, e.g. `/deploy`.
        command: String,
        /// The protected environment.
        environment: String,
        /// The command's admins, who can change that (may be empty).
        unlock_users: Vec<String>,
    },
    /// The command came from a Slack workspace not in `allowed_teams`.
    #[error("workspace {team_id} is not in allowed_teams")]
    TeamNotAllowed {
        /// The workspace the command came from.
        team_id: String,
        /// Its Enterprise Grid, if any.
        enterprise_id: Option<String>,
    },
    /// The command was run in a channel not in its `allowed_channels`.
    #[error("`{command}` may not be run in channel {channel_id} (allowed_channels)")]
    ChannelNotAllowed {
        /// The command, e.g. `/deploy`.
        command: String,
        /// The channel it was run in.
        channel_id: String,
        /// The channels it may be run in.
        allowed_channels: Vec<String>,
    },
    /// The user may not force-unlock this command's locks.
    #[error("user {user} may not force-unlock `{command}` locks")]
    NotAllowedToUnlock {
        /// The command, e.g. `/build`.
        command: String,
        /// The requester's Slack user id.
        user: String,
        /// Who may (empty when nobody is configured).
        unlock_users: Vec<String>,
    },
    /// `--force` without a reason: a takeover is announced and the reason
    /// is what makes the announcement useful.
    #[error("`{command} … --force` needs a reason")]
    MissingForceReason {
        /// The command, e.g. `/deploy`.
        command: String,
        /// The component named.
        component: String,
        /// The environment named.
        environment: String,
    },
    /// The user may not take over this command's locks.
    #[error("user {user} may not take over `{command}` locks")]
    NotAllowedToForce {
        /// The command, e.g. `/deploy`.
        command: String,
        /// The requester's Slack user id.
        user: String,
        /// Who may (the command's admins; empty when nobody is configured).
        unlock_users: Vec<String>,
    },
    /// `--test` on a command whose config does not allow test runs.
    #[error("`{command}` has no test mode")]
    TestModeNotAllowed {
        /// The command, e.g. `/deploy`.
        command: String,
    },
    /// The environment is frozen for this command: a scheduled freeze or
    /// an admin's. Admins may run through it with `--override-freeze`.
    #[error("`{command}` is frozen in `{}` until epoch ms {}: {}", frozen.environment, frozen.until_ms, frozen.reason)]
    Frozen {
        /// The command, e.g. `/deploy`.
        command: String,
        /// The component the run was for.
        component: String,
        /// The freeze (boxed: it is the largest refusal).
        frozen: Box<Frozen>,
        /// Who may override it (the command's admins).
        unlock_users: Vec<String>,
    },
    /// The user may not freeze or unfreeze this command's environments.
    #[error("user {user} may not freeze `{command}`")]
    NotAllowedToFreeze {
        /// The command, e.g. `/deploy`.
        command: String,
        /// The requester's Slack user id.
        user: String,
        /// Who may (the command's admins; empty when nobody is configured).
        unlock_users: Vec<String>,
    },
    /// The user may not run through a freeze.
    #[error("user {user} may not override a `{command}` freeze")]
    NotAllowedToOverrideFreeze {
        /// The command, e.g. `/deploy`.
        command: String,
        /// The requester's Slack user id.
        user: String,
        /// Who may (the command's admins; empty when nobody is configured).
        unlock_users: Vec<String>,
    },
    /// `unlock` without a reason: force-unlocks are announced and the reason
    /// is what makes the announcement useful.
    #[error("`{command} unlock` needs a reason")]
    MissingReason {
        /// The command, e.g. `/build`.
        command: String,
        /// The component named.
        component: String,
        /// The environment named.
        environment: String,
    },
}

/// The one policy decision for a slash command, made by the router before
/// it queues and again by the worker before it acts (the queue is not
/// trusted): the workspace must be in `allowed_teams`, the channel in the
/// command's `allowed_channels`, then [`parse_request`] checks the
/// command, its target and the user's permission, and last a run in an
/// environment under a scheduled freeze at `now_ms` (epoch milliseconds)
/// is refused unless an admin overrides it. Both doors call this function,
/// so they cannot disagree. (An admin's freeze is a record in the lock
/// table: the worker's acquire checks it.)
pub fn decide(
    config: &Config,
    msg: &CommandMessage,
    groups: &Membership,
    now_ms: u64,
) -> Result<Request, CommandError> {
    let request = decide_policy(config, msg, groups)?;
    refuse_if_frozen(config, request, now_ms)
}

/// A run under a scheduled freeze, without `--override-freeze`, is refused
/// with the freeze; anything else passes.
fn refuse_if_frozen(
    config: &Config,
    request: Request,
    now_ms: u64,
) -> Result<Request, CommandError> {
    let Request::Run {
        target,
        override_freeze: false,
        ..
    } = &request
    else {
        return Ok(request);
    };
    let Some(cmd) = config.command(&target.command) else {
        return Ok(request);
    };
    match cmd.frozen_at(&target.environment, now_ms) {
        Some(frozen) => Err(CommandError::Frozen {
            command: cmd.name.clone(),
            component: target.component.clone(),
            frozen: Box::new(frozen),
            unlock_users: cmd.unlock_users.clone(),
        }),
        None => Ok(request),
    }
}

/// [`decide`] without the freeze check.
fn decide_policy(
    config: &Config,
    msg: &CommandMessage,
    groups: &Membership,
) -> Result<Request, CommandError> {
    if !config.team_allowed(&msg.team_id, msg.enterprise_id.as_deref()) {
        return Err(CommandError::TeamNotAllowed {
            team_id: msg.team_id.clone(),
            enterprise_id: msg.enterprise_id.clone(),
        });
    }
    if let Some(cmd) = config
        .command(&msg.command)
        .or_else(|| config.command(&msg.command.trim().to_lowercase()))
        && !cmd.channel_allowed(&msg.channel_id)
    {
        return Err(CommandError::ChannelNotAllowed {
            command: cmd.name.clone(),
            channel_id: msg.channel_id.clone(),
            allowed_channels: cmd.allowed_channels.clone(),
        });
    }
    parse_request_as(config, &msg.command, &msg.text, &msg.user_id, groups)
}

/// Parses a slash command's `text` for `msg_command`, on behalf of `user_id`.
/// It knows nothing of workspaces or channels, and counts user ids only
/// (listed user groups admit no one): doors call [`decide`].
pub fn parse_request(
    config: &Config,
    msg_command: &str,
    text: &str,
    user_id: &str,
) -> Result<Request, CommandError> {
    parse_request_as(config, msg_command, text, user_id, &Membership::none())
}

/// [`parse_request`] with what is known of the user's Slack user groups.
fn parse_request_as(
    config: &Config,
    msg_command: &str,
    text: &str,
    user_id: &str,
    groups: &Membership,
) -> Result<Request, CommandError> {
    let cmd_config = config
        .command(msg_command)
        .or_else(|| config.command(&msg_command.trim().to_lowercase()))
        .ok_or_else(|| CommandError::UnknownCommand {
            command: msg_command.to_string(),
            known: config.command_names(),
        })?;
    let command = cmd_config.name.clone();
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some(first) = words.first() else {
        return Ok(Request::Help { command });
    };
    match first.to_lowercase().as_str() {
        "help" | "-h" | "--help" => Ok(Request::Help { command }),
        "status" if !words[1..].iter().all(|w| w.eq_ignore_ascii_case("--locks")) => {
            Err(malformed(cmd_config, Malformation::StatusTakesNothing))
        }
        "status" => Ok(Request::Status { command }),
        "unlock" => parse_unlock(cmd_config, &words[1..], user_id, groups),
        "cancel" => parse_cancel(cmd_config, &words[1..]),
        "queue" => parse_queue(cmd_config, &words[1..]),
        "leave" => parse_leave(cmd_config, &words[1..]),
        "history" => parse_history(cmd_config, &words[1..]),
        "freeze" => parse_freeze(cmd_config, &words[1..], user_id, groups),
        "unfreeze" => parse_unfreeze(cmd_config, &words[1..], user_id, groups),
        _ => parse_run(cmd_config, &words, user_id, groups),
    }
}

fn malformed(config: &CommandConfig, problem: Malformation) -> CommandError {
    CommandError::Malformed {
        command: config.name.clone(),
        problem,
    }
}

/// `unlock <component> <environment> [--keep-run] <reason>`, for admins.
fn parse_unlock(
    config: &CommandConfig,
    words: &[&str],
    user_id: &str,
    groups: &Membership,
) -> Result<Request, CommandError> {
    if !config.user_may_unlock_as(user_id, groups) {
        return Err(CommandError::NotAllowedToUnlock {
            command: config.name.clone(),
            user: user_id.to_string(),
            unlock_users: config.unlock_users.clone(),
        });
    }
    let [component, environment, rest @ ..] = words else {
        return Err(malformed(config, Malformation::UnlockNeedsTarget));
    };
    if words.iter().any(|w| is_dry_run(w)) {
        return Err(malformed(config, Malformation::UnlockHasNoDryRun));
    }
    let target = check_target(config, component, environment)?;
    let keep_run = rest.iter().any(|w| w.eq_ignore_ascii_case("--keep-run"));
    let reason = rest
        .iter()
        .filter(|w| !w.eq_ignore_ascii_case("--keep-run"))
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    if reason.is_empty() {
        return Err(CommandError::MissingReason {
            command: target.command,
            component: target.component,
            environment: target.environment,
        });
    }
    let lock_key = config.lock_key(&target);
    Ok(Request::Unlock {
        target,
        lock_key,
        reason,
        keep_run,
    })
}

/// Freezing is for the command's admins (`unlock_users`), as unlocking is.
fn check_may_freeze(
    config: &CommandConfig,
    user_id: &str,
    groups: &Membership,
) -> Result<(), CommandError> {
    if config.user_may_unlock_as(user_id, groups) {
        return Ok(());
    }
    Err(CommandError::NotAllowedToFreeze {
        command: config.name.clone(),
        user: user_id.to_string(),
        unlock_users: config.unlock_users.clone(),
    })
}

/// The environment `word` names, checked against the config.
fn check_environment(config: &CommandConfig, word: &str) -> Result<String, CommandError> {
    let environment = word.to_lowercase();
    if config.environments.contains(&environment) {
        return Ok(environment);
    }
    Err(CommandError::UnknownEnvironment {
        command: config.name.clone(),
        environment,
        allowed: config.environments.clone(),
    })
}

/// `freeze <environment> <duration> <reason…>`, for admins.
fn parse_freeze(
    config: &CommandConfig,
    words: &[&str],
    user_id: &str,
    groups: &Membership,
) -> Result<Request, CommandError> {
    check_may_freeze(config, user_id, groups)?;
    let [environment, duration, reason @ ..] = words else {
        return Err(malformed(config, Malformation::FreezeNeedsArgs));
    };
    let environment = check_environment(config, environment)?;
    let duration = crate::freeze::parse_freeze_duration(duration)
        .ok_or_else(|| malformed(config, Malformation::FreezeDuration((*duration).to_owned())))?;
    let reason = unquote(&reason.join(" ")).to_owned();
    if reason.is_empty() {
        return Err(malformed(config, Malformation::FreezeNeedsArgs));
    }
    Ok(Request::Freeze {
        command: config.name.clone(),
        environment,
        duration,
        reason,
    })
}

/// `unfreeze <environment>`, for admins.
fn parse_unfreeze(
    config: &CommandConfig,
    words: &[&str],
    user_id: &str,
    groups: &Membership,
) -> Result<Request, CommandError> {
    check_may_freeze(config, user_id, groups)?;
    let [environment] = words else {
        return Err(malformed(config, Malformation::UnfreezeNeedsEnvironment));
    };
    Ok(Request::Unfreeze {
        command: config.name.clone(),
        environment: check_environment(config, environment)?,
    })
}

/// `cancel <component> <environment>`: the holder stops their own run.
fn parse_cancel(config: &CommandConfig, words: &[&str]) -> Result<Request, CommandError> {
    let [component, environment] = words else {
        return Err(malformed(config, Malformation::CancelNeedsTarget));
    };
    let target = check_target(config, component, environment)?;
    let lock_key = config.lock_key(&target);
    Ok(Request::Cancel { target, lock_key })
}

/// `queue [<component> <environment>]`: every line of the command, or one.
fn parse_queue(config: &CommandConfig, words: &[&str]) -> Result<Request, CommandError> {
    let target = match words {
        [] => None,
        [component, environment] => {
            let target = check_target(config, component, environment)?;
            let lock_key = config.lock_key(&target);
            Some((target, lock_key))
        }
        _ => return Err(malformed(config, Malformation::QueueNeedsTarget)),
    };
    Ok(Request::Queue {
        command: config.name.clone(),
        target,
    })
}

/// `history <component> <environment>`: the target's last runs.
fn parse_history(config: &CommandConfig, words: &[&str]) -> Result<Request, CommandError> {
    let [component, environment] = words else {
        return Err(malformed(config, Malformation::HistoryNeedsTarget));
    };
    let target = check_target(config, component, environment)?;
    let lock_key = config.lock_key(&target);
    Ok(Request::History { target, lock_key })
}

/// `leave <component> <environment>`: the requester stops waiting.
fn parse_leave(config: &CommandConfig, words: &[&str]) -> Result<Request, CommandError> {
    let [component, environment] = words else {
        return Err(malformed(config, Malformation::LeaveNeedsTarget));
    };
    let target = check_target(config, component, environment)?;
    let lock_key = config.lock_key(&target);
    Ok(Request::Leave { target, lock_key })
}

/// `<component> <environment> [--dry-run] [--test] [--keep-run] [--force REASON…]`,
/// for those allowed there (and, with `--force`, for the command's admins).
fn parse_run(
    config: &CommandConfig,
    words: &[&str],
    user_id: &str,
    groups: &Membership,
) -> Result<Request, CommandError> {
    let is_flag = |w: &str| {
        is_dry_run(w)
            || is_word(w, "--test")
            || is_word(w, "--keep-run")
            || is_word(w, "--override-freeze")
    };
    let (before, reason) = match words.iter().position(|w| is_word(w, "--force")) {
        Some(i) => {
            let reason = words[i + 1..]
                .iter()
                .copied()
                .filter(|w| !is_flag(w))
                .collect::<Vec<_>>()
                .join(" ");
            (words, Some(unquote(&reason).to_owned()))
        }
        None => (words, None),
    };
    let flag_words = |name: &str| before.iter().any(|w| is_word(w, name));
    let dry_run = before.iter().any(|w| is_dry_run(w));
    let (test, keep_run) = (flag_words("--test"), flag_words("--keep-run"));
    let override_freeze = flag_words("--override-freeze");
    let force_at = before.iter().position(|w| is_word(w, "--force"));
    let args: Vec<&str> = before[..force_at.unwrap_or(before.len())]
        .iter()
        .copied()
        .filter(|w| !is_flag(w))
        .collect();
    if let Some(option) = args.iter().find(|w| w.starts_with('-')) {
        return Err(malformed(
            config,
            Malformation::UnknownOption((*option).to_owned()),
        ));
    }
    let [component, environment] = args.as_slice() else {
        return Err(malformed(
            config,
            if args.len() < 2 {
                Malformation::RunNeedsTarget
            } else {
                Malformation::TooManyWords(args.len())
            },
        ));
    };
    let target = check_target(config, component, environment)?;
    if !config.user_may_run_as(user_id, &target.environment, groups) {
        let listed = config
            .allowed_users
            .get(&target.environment)
            .is_some_and(|users| !users.is_empty());
        if !listed && config.is_protected(&target.environment) {
            return Err(CommandError::Protected {
                command: target.command,
                environment: target.environment,
                unlock_users: config.unlock_users.clone(),
            });
        }
        return Err(CommandError::NotAllowed {
            command: target.command,
            user: user_id.to_string(),
            allowed_users: config
                .allowed_users
                .get(&target.environment)
                .cloned()
                .unwrap_or_default(),
            environment: target.environment,
        });
    }
    if keep_run && reason.is_none() {
        return Err(malformed(config, Malformation::KeepRunNeedsForce));
    }
    if reason.is_some() && (dry_run || test) {
        return Err(malformed(config, Malformation::ForceIsReal));
    }
    if test && !config.test_mode {
        return Err(CommandError::TestModeNotAllowed {
            command: target.command,
        });
    }
    if override_freeze && !config.user_may_unlock_as(user_id, groups) {
        return Err(CommandError::NotAllowedToOverrideFreeze {
            command: target.command,
            user: user_id.to_string(),
            unlock_users: config.unlock_users.clone(),
        });
    }
    let force = match reason {
        None => None,
        Some(_) if !config.user_may_unlock_as(user_id, groups) => {
            return Err(CommandError::NotAllowedToForce {
                command: target.command,
                user: user_id.to_string(),
                unlock_users: config.unlock_users.clone(),
            });
        }
        Some(reason) if reason.trim().is_empty() => {
            return Err(CommandError::MissingForceReason {
                command: target.command,
                component: target.component,
                environment: target.environment,
            });
        }
        Some(reason) => Some(Force { reason, keep_run }),
    };
    let lock_key = if test {
        config.test_lock_key(&target)
    } else {
        config.lock_key(&target)
    };
    Ok(Request::Run {
        target,
        lock_key,
        dry_run,
        test,
        force,
        override_freeze,
    })
}

/// Whether `word` is the option `name`, in any case.
fn is_word(word: &str, name: &str) -> bool {
    word.eq_ignore_ascii_case(name)
}

/// The target `component environment` names, checked against the config.
fn check_target(
    config: &CommandConfig,
    component: &str,
    environment: &str,
) -> Result<Target, CommandError> {
    let target = Target::new(&config.name, component, environment);
    if !config.components.contains(&target.component) {
        return Err(CommandError::UnknownComponent {
            command: target.command,
            component: target.component,
            allowed: config.components.clone(),
        });
    }
    if !config.environments.contains(&target.environment) {
        return Err(CommandError::UnknownEnvironment {
            command: target.command,
            environment: target.environment,
            allowed: config.environments.clone(),
        });
    }
    Ok(target)
}

/// A reason without the quotes a user may have put around it.
fn unquote(text: &str) -> &str {
    let t = text.trim();
    for (open, close) in [('"', '"'), ('\u{201c}', '\u{201d}'), ('\'', '\'')] {
        if let Some(inner) = t.strip_prefix(open).and_then(|r| r.strip_suffix(close)) {
            return inner.trim();
        }
    }
    t
}

fn is_dry_run(word: &str) -> bool {
    let lower = word.to_lowercase();
    [
        "--dry-run",
        "\u{2014}dry-run",
        "\u{2013}dry-run",
        "--dryrun",
    ]
    .contains(&lower.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::help_text;

    fn config() -> Config {
        Config::from_toml_str(
            r#"
[commands."/build"]
lock_ttl = "10m"
components = ["router", "api", "web"]
environments = ["dev", "plt", "prod"]
unlock_users = ["UADMIN"]
[commands."/build".allowed_users]
prod = ["UADMIN", "UREL"]
[commands."/build".pipeline]
repo = "acme/platform"
workflow = "build.yml"

[commands."/deploy"]
lock_ttl = "30m"
lock_scope = "environment"
components = ["router", "api", "web"]
environments = ["dev", "plt", "prod"]
[commands."/deploy".pipeline]
repo = "acme/platform"
workflow = "deploy.yml"
"#,
        )
        .unwrap()
    }

    fn message(team: &str, channel: &str, user: &str, cmd: &str, text: &str) -> CommandMessage {
        CommandMessage {
            command: cmd.into(),
            text: text.into(),
            user_id: user.into(),
            user_name: None,
            channel_id: channel.into(),
            channel_name: None,
            team_id: team.into(),
            team_domain: None,
            enterprise_id: None,
            response_url: "https://hooks.slack.com/commands/T0/1/x".into(),
            trigger_id: "1.2.3".into(),
            api_app_id: None,
            received_at: 0,
        }
    }

    #[test]
    fn decide_refuses_workspace_then_channel_then_user_naming_each_rule() {
        let closed = Config::from_toml_str(
            r#"
allowed_teams = ["T0ACME"]
[commands."/deploy"]
lock_ttl = "30m"
components = ["api"]
environments = ["dev", "prod"]
protected_environments = ["prod"]
allowed_channels = ["C0OPS"]
unlock_users = ["UADMIN"]
[commands."/deploy".pipeline]
repo = "acme/platform"
workflow = "deploy.yml"
"#,
        )
        .unwrap();
        let d = |team: &str, channel: &str, user: &str, cmd: &str, text: &str| {
            decide(
                &closed,
                &message(team, channel, user, cmd, text),
                &Membership::none(),
                0,
            )
        };
        // Another workspace is refused before anything else, unknown
        // commands included.
        for cmd in ["/deploy", "/nothing"] {
            let e = d("T0EVIL", "C0OPS", "UADMIN", cmd, "api dev").unwrap_err();
            assert!(
                matches!(&e, CommandError::TeamNotAllowed { team_id, .. } if team_id == "T0EVIL"),
                "{e:?}"
            );
            assert!(e.user_message().contains("allowed_teams"));
        }
        let e = d("T0ACME", "C0RANDOM", "UADMIN", "/deploy", "api dev").unwrap_err();
        assert!(
            matches!(&e, CommandError::ChannelNotAllowed { allowed_channels, .. } if allowed_channels == &["C0OPS"]),
            "{e:?}"
        );
        assert!(
            e.user_message().contains("<#C0OPS>"),
            "{}",
            e.user_message()
        );
        // Protected, nobody listed: refused even for an admin, saying how to
        // open it and whom to ask.
        let e = d("T0ACME", "C0OPS", "UADMIN", "/deploy", "api prod").unwrap_err();
        assert!(
            matches!(&e, CommandError::Protected { environment, .. } if environment == "prod"),
            "{e:?}"
        );
        let text = e.user_message();
        assert!(
            text.contains("`prod` is protected")
                && text.contains("an admin (<@UADMIN>)")
                && text.contains("`allowed_users.prod`")
                && text.contains("`/deploy help`"),
            "{text}"
        );
        assert!(matches!(
            d("T0ACME", "C0OPS", "U1", "/deploy", "api dev"),
            Ok(Request::Run { .. })
        ));
        // An empty list for a protected environment reads as "no one yet".
        let empty = Config::from_toml_str(&config_text_with_empty_prod()).unwrap();
        assert!(matches!(
            parse_request(&empty, "/deploy", "api prod", "U1"),
            Err(CommandError::Protected { .. })
        ));
    }

    #[test]
    fn help_says_which_environments_are_protected_and_who_may_run_there() {
        let builtin = Config::builtin();
        let text = help_text(builtin.command("/deploy").unwrap());
        assert!(
            text.contains("`prod` is protected and no one may run `/deploy` there yet")
                && text.contains("`allowed_users.prod`"),
            "{text}"
        );
        assert!(!text.contains("`plt` is protected"), "{text}");
        let listed = Config::from_toml_str(
            &config_text_with_empty_prod().replace("prod = []", "prod = [\"UREL\"]"),
        )
        .unwrap();
        let text = help_text(listed.command("/deploy").unwrap());
        assert!(
            text.contains("`prod` is protected: only <@UREL> may run `/deploy` there"),
            "{text}"
        );
        let grouped = Config::from_toml_str(
            &config_text_with_empty_prod().replace("prod = []", "prod = [\"S0REL\", \"UREL\"]"),
        )
        .unwrap();
        let text = help_text(grouped.command("/deploy").unwrap());
        assert!(
            text.contains("only <!subteam^S0REL> or <@UREL> may run"),
            "a group is mentioned as a group: {text}"
        );
    }

    fn config_text_with_empty_prod() -> String {
        r#"
[commands."/deploy"]
lock_ttl = "30m"
components = ["api"]
environments = ["prod"]
protected_environments = ["prod"]
[commands."/deploy".allowed_users]
prod = []
[commands."/deploy".pipeline]
repo = "acme/platform"
workflow = "deploy.yml"
"#
        .to_string()
    }

    fn parse(cmd: &str, text: &str) -> Result<Request, CommandError> {
        parse_request(&config(), cmd, text, "U1")
    }

    fn run(component: &str, env: &str, key: &str, dry_run: bool) -> Request {
        Request::Run {
            target: Target::new("/build", component, env),
            lock_key: key.into(),
            dry_run,
            test: false,
            force: None,
            override_freeze: false,
        }
    }

    /// `/deploy` with admins and test runs allowed.
    fn hatch_config() -> Config {
        Config::from_toml_str(
            r#"
[commands."/deploy"]
lock_ttl = "30m"
components = ["api"]
environments = ["prod"]
unlock_users = ["UADMIN"]
test_mode = true
[commands."/deploy".pipeline]
repo = "acme/platform"
workflow = "deploy.yml"

[commands."/build"]
lock_ttl = "10m"
components = ["api"]
environments = ["prod"]
[commands."/build".pipeline]
repo = "acme/platform"
workflow = "build.yml"
"#,
        )
        .unwrap()
    }

    #[test]
    fn force_test_and_the_original_forms_parse_or_say_what_is_wrong() {
        let config = hatch_config();
        let p = |cmd: &str, text: &str, user: &str| parse_request(&config, cmd, text, user);
        match p("/deploy", "api prod --force \"rollback of 1.4\"", "UADMIN").unwrap() {
            Request::Run {
                force: Some(force),
                lock_key,
                test: false,
                ..
            } => {
                assert_eq!(force.reason, "rollback of 1.4");
                assert!(!force.keep_run);
                assert_eq!(lock_key, "deploy-api-prod");
            }
            other => panic!("{other:?}"),
        }
        match p("/deploy", "api prod --keep-run --force stuck", "UADMIN").unwrap() {
            Request::Run { force: Some(f), .. } => assert!(f.keep_run && f.reason == "stuck"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            p("/deploy", "api prod --force because", "U1"),
            Err(CommandError::NotAllowedToForce { unlock_users, .. }) if unlock_users == ["UADMIN"]
        ));
        assert!(matches!(
            p("/deploy", "api prod --force", "UADMIN"),
            Err(CommandError::MissingForceReason { .. })
        ));
        assert!(matches!(
            p("/deploy", "api prod --keep-run", "UADMIN"),
            Err(CommandError::Malformed {
                problem: Malformation::KeepRunNeedsForce,
                ..
            })
        ));
        assert!(matches!(
            p("/deploy", "api prod --dry-run --force x", "UADMIN"),
            Err(CommandError::Malformed {
                problem: Malformation::ForceIsReal,
                ..
            })
        ));
        match p("/deploy", "api prod --test", "U1").unwrap() {
            Request::Run {
                test: true,
                lock_key,
                ..
            } => assert_eq!(lock_key, "deploy-api-prod#test"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            p("/build", "api prod --test", "U1"),
            Err(CommandError::TestModeNotAllowed { .. })
        ));
        assert_eq!(
            p("/build", "status --locks", "U1"),
            Ok(Request::Status {
                command: "/build".into()
            })
        );
        assert!(matches!(
            p("/build", "unlock api prod", "UADMIN"),
            Err(CommandError::NotAllowedToUnlock { .. })
        ));
        for text in [
            "api prod --test",
            "api prod --keep-run --force roll it back",
        ] {
            let user = "UADMIN";
            let request = p("/deploy", text, user).unwrap();
            assert_eq!(
                p("/deploy", &request.text(), user).unwrap(),
                request,
                "{text}"
            );
        }
    }

    #[test]
    fn a_request_reads_back_from_its_text() {
        let config = Config::builtin();
        for text in ["Router PLT --dry-run", "api   dev", "status", ""] {
            let request = parse_request(&config, "/build", text, "U1").unwrap();
            let again = parse_request(&config, "/build", &request.text(), "U1").unwrap();
            assert_eq!(again, request, "{text:?} -> {:?}", request.text());
        }
        let run = parse_request(&config, "/build", "Router PLT --dry-run", "U1").unwrap();
        assert_eq!(run.text(), "router plt --dry-run");
    }

    #[test]
    fn run_is_parsed_and_keyed() {
        assert_eq!(
            parse("/build", "router plt").unwrap(),
            run("router", "plt", "build-router-plt", false)
        );
        assert_eq!(
            parse("/deploy", "api prod").unwrap(),
            Request::Run {
                target: Target::new("/deploy", "api", "prod"),
                lock_key: "deploy-prod".into(),
                dry_run: false,
                test: false,
                force: None,
                override_freeze: false,
            }
        );
    }

    #[test]
    fn case_and_whitespace_are_normalised() {
        assert_eq!(
            parse("/build", "  Router\tPLT \n").unwrap(),
            run("router", "plt", "build-router-plt", false)
        );
        assert_eq!(parse("/BUILD", "STATUS").unwrap().command(), "/build");
    }

    #[test]
    fn dry_run_anywhere() {
        for text in [
            "--dry-run router plt",
            "router --dry-run plt",
            "router plt --DRY-RUN",
            "router plt \u{2014}dry-run",
        ] {
            assert_eq!(
                parse("/build", text).unwrap(),
                run("router", "plt", "build-router-plt", true),
                "{text}"
            );
        }
    }

    #[test]
    fn help_status() {
        assert_eq!(
            parse("/build", "").unwrap(),
            Request::Help {
                command: "/build".into()
            }
        );
        assert_eq!(
            parse("/build", "   ").unwrap(),
            Request::Help {
                command: "/build".into()
            }
        );
        assert_eq!(
            parse("/build", "Help").unwrap(),
            Request::Help {
                command: "/build".into()
            }
        );
        assert_eq!(
            parse("/build", "status").unwrap(),
            Request::Status {
                command: "/build".into()
            }
        );
        assert!(matches!(
            parse("/build", "status router"),
            Err(CommandError::Malformed { .. })
        ));
    }

    #[test]
    fn unknown_command_lists_known() {
        let err = parse("/echo", "hi").unwrap_err();
        assert_eq!(
            err,
            CommandError::UnknownCommand {
                command: "/echo".into(),
                known: vec!["/build".into(), "/deploy".into()]
            }
        );
        assert!(err.user_message().contains("`/build`, `/deploy`"));
    }

    #[test]
    fn unknown_component_says_what_is_allowed() {
        let err = parse("/build", "routr plt").unwrap_err();
        assert!(
            matches!(err, CommandError::UnknownComponent { ref component, .. } if component == "routr")
        );
        let msg = err.user_message();
        assert!(
            msg.starts_with(
                "`/build` doesn't know component `routr`. Try one of: `router`, `api`, `web`."
            ),
            "{msg}"
        );
        assert!(
            msg.contains("`/build <component> <environment> [--dry-run]`"),
            "{msg}"
        );
        assert!(
            msg.contains("`/build unlock <component> <environment> [--keep-run] <reason>`"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_environment_says_what_is_allowed() {
        let err = parse("/build", "router staging").unwrap_err();
        let msg = err.user_message();
        assert!(msg.contains("environment `staging`"), "{msg}");
        assert!(msg.contains("`dev`, `plt`, `prod`"), "{msg}");
    }

    #[test]
    fn malformed_texts() {
        for text in [
            "router",
            "router plt now",
            "router plt --bogus",
            "--dry-run",
        ] {
            let err = parse("/build", text).unwrap_err();
            assert!(
                matches!(err, CommandError::Malformed { .. }),
                "{text}: {err:?}"
            );
            assert!(err.user_message().contains("Usage:"), "{text}");
        }
        let msg = parse("/build", "router plt --force")
            .unwrap_err()
            .user_message();
        assert!(msg.contains("`--force`"), "{msg}");
    }

    #[test]
    fn environment_permissions() {
        let err = parse("/build", "router prod").unwrap_err();
        assert_eq!(
            err,
            CommandError::NotAllowed {
                command: "/build".into(),
                user: "U1".into(),
                environment: "prod".into(),
                allowed_users: vec!["UADMIN".into(), "UREL".into()],
            }
        );
        assert!(
            err.user_message().contains("Ask <@UADMIN> or <@UREL>"),
            "{}",
            err.user_message()
        );
        assert!(parse_request(&config(), "/build", "router prod", "UREL").is_ok());
        assert!(
            parse("/deploy", "router prod").is_ok(),
            "no allowed_users: open"
        );
    }

    #[test]
    fn unlock_needs_permission_and_reason() {
        let cfg = config();
        assert_eq!(
            parse_request(
                &cfg,
                "/build",
                "unlock Router PLT run died at step 3",
                "UADMIN"
            )
            .unwrap(),
            Request::Unlock {
                target: Target::new("/build", "router", "plt"),
                lock_key: "build-router-plt".into(),
                reason: "run died at step 3".into(),
                keep_run: false,
            }
        );
        assert!(matches!(
            parse_request(&cfg, "/build", "unlock router plt --keep-run stuck", "UADMIN"),
            Ok(Request::Unlock { keep_run: true, ref reason, .. }) if reason == "stuck"
        ));
        assert!(matches!(
            parse_request(&cfg, "/build", "cancel router plt", "U1"),
            Ok(Request::Cancel { ref lock_key, .. }) if lock_key == "build-router-plt"
        ));
        let err = parse_request(&cfg, "/build", "unlock router plt", "UADMIN").unwrap_err();
        assert!(matches!(err, CommandError::MissingReason { .. }), "{err:?}");
        assert!(err.user_message().contains("`/build unlock router plt "));

        let err = parse_request(&cfg, "/build", "unlock router plt stuck", "U1").unwrap_err();
        assert!(
            matches!(err, CommandError::NotAllowedToUnlock { .. }),
            "{err:?}"
        );
        assert!(err.user_message().contains("Only <@UADMIN>"));

        let err = parse_request(&cfg, "/deploy", "unlock router plt stuck", "UADMIN").unwrap_err();
        assert!(err.user_message().contains("isn't enabled for anyone"));

        let err = parse_request(&cfg, "/build", "unlock router", "UADMIN").unwrap_err();
        assert!(matches!(err, CommandError::Malformed { .. }));
        let err = parse_request(&cfg, "/build", "unlock routr plt x", "UADMIN").unwrap_err();
        assert!(matches!(err, CommandError::UnknownComponent { .. }));
        let err =
            parse_request(&cfg, "/build", "unlock router plt x --dry-run", "UADMIN").unwrap_err();
        assert!(matches!(err, CommandError::Malformed { .. }));
    }

    #[test]
    fn user_text_is_escaped() {
        let msg = parse("/build", "<!channel> plt")
            .unwrap_err()
            .user_message();
        assert!(msg.contains("`&lt;!channel&gt;`"), "{msg}");
        assert!(!msg.contains("<!channel>"), "{msg}");
    }

    #[test]
    fn help_lists_components() {
        let text = help_text(config().command("/build").unwrap());
        assert!(
            text.contains("Components: `router`, `api`, `web`"),
            "{text}"
        );
        assert!(
            text.contains("Environments: `dev`, `plt`, `prod`"),
            "{text}"
        );
    }

    fn frozen_config() -> Config {
        Config::from_toml_str(
            r#"
[commands."/deploy"]
lock_ttl = "30m"
components = ["api", "web"]
environments = ["dev", "prod"]
unlock_users = ["UADMIN"]
[commands."/deploy".pipeline]
repo = "acme/platform"
workflow = "deploy.yml"
[[commands."/deploy".freezes]]
cron = "0 17 * * 5"
duration = "63h"
timezone = "Europe/Berlin"
environments = ["prod"]
reason = "weekend"
"#,
        )
        .unwrap()
    }

    #[test]
    fn freeze_and_unfreeze_are_for_admins_and_read_their_arguments() {
        let config = frozen_config();
        let parse = |text: &str, user: &str| parse_request(&config, "/deploy", text, user);
        assert_eq!(
            parse("freeze PROD 2h \"release week\"", "UADMIN").unwrap(),
            Request::Freeze {
                command: "/deploy".into(),
                environment: "prod".into(),
                duration: std::time::Duration::from_secs(7200),
                reason: "release week".into(),
            }
        );
        assert_eq!(
            parse("unfreeze prod", "UADMIN").unwrap(),
            Request::Unfreeze {
                command: "/deploy".into(),
                environment: "prod".into(),
            }
        );
        assert!(matches!(
            parse("freeze prod 2h release", "U1"),
            Err(CommandError::NotAllowedToFreeze { .. })
        ));
        assert!(matches!(
            parse("unfreeze prod", "U1"),
            Err(CommandError::NotAllowedToFreeze { .. })
        ));
        for (text, problem) in [
            ("freeze prod", Malformation::FreezeNeedsArgs),
            ("freeze prod 2h", Malformation::FreezeNeedsArgs),
            (
                "freeze prod soon why",
                Malformation::FreezeDuration("soon".into()),
            ),
            (
                "freeze prod 40d why",
                Malformation::FreezeDuration("40d".into()),
            ),
            ("unfreeze", Malformation::UnfreezeNeedsEnvironment),
        ] {
            assert_eq!(
                parse(text, "UADMIN"),
                Err(CommandError::Malformed {
                    command: "/deploy".into(),
                    problem
                }),
                "{text}"
            );
        }
        assert!(matches!(
            parse("freeze qa 2h why", "UADMIN"),
            Err(CommandError::UnknownEnvironment { .. })
        ));
        assert!(matches!(
            parse("api prod --override-freeze", "U1"),
            Err(CommandError::NotAllowedToOverrideFreeze { .. })
        ));
    }

    #[test]
    fn a_scheduled_freeze_refuses_runs_at_both_doors_unless_overridden() {
        let config = frozen_config();
        // Friday 2026-12-04 18:00 Berlin = 17:00 UTC: in the weekend freeze.
        let friday_evening = 1_796_403_600_000;
        let thursday = friday_evening - 24 * 3_600_000;
        let msg = |user: &str, text: &str| message("T1", "C1", user, "/deploy", text);
        let decide_at = |user: &str, text: &str, now: u64| {
            decide(&config, &msg(user, text), &Membership::none(), now)
        };
        match decide_at("U1", "api prod", friday_evening) {
            Err(CommandError::Frozen {
                command,
                component,
                frozen,
                unlock_users,
            }) => {
                assert_eq!((command.as_str(), component.as_str()), ("/deploy", "api"));
                assert_eq!(frozen.environment, "prod");
                assert_eq!(frozen.reason, "weekend");
                // Monday 08:00 Berlin = 07:00 UTC.
                assert_eq!(frozen.until_ms, 1_796_626_800_000);
                assert_eq!(unlock_users, vec!["UADMIN".to_string()]);
            }
            other => panic!("expected Frozen, got {other:?}"),
        }
        assert!(decide_at("U1", "api prod", thursday).is_ok());
        assert!(decide_at("U1", "api dev", friday_evening).is_ok());
        assert!(decide_at("U1", "status", friday_evening).is_ok());
        assert!(matches!(
            decide_at("UADMIN", "api prod --override-freeze", friday_evening),
            Ok(Request::Run {
                override_freeze: true,
                ..
            })
        ));
        let text = decide_at("UADMIN", "api prod --override-freeze", friday_evening)
            .unwrap()
            .text();
        assert_eq!(text, "api prod --override-freeze");
    }
}
