//! The slash-command grammar: turns what a user typed into a [`Request`]
//! the worker can act on, or a [`CommandError`] that tells them what would
//! have worked.
//!
//! ```text
//! /build <component> <environment> [--dry-run]
//! /build status
//! /build unlock <component> <environment> <reason>
//! /build help
//! ```
//!
//! Components, environments and sub-command words are case-insensitive and
//! normalised to lowercase; `--dry-run` may appear anywhere (and survives
//! chat clients that "smart-punctuate" `--` into a dash). Permissions are
//! checked here too, so the worker never starts a pipeline for a request
//! that was not allowed.

use crate::config::{CommandConfig, Config};
use crate::target::Target;

/// What a user asked for, checked against the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Take the lock and dispatch the pipeline (or, with `dry_run`, only
    /// say what would happen).
    Run {
        /// What to run.
        target: Target,
        /// The lock this run takes, per the command's lock scope.
        lock_key: String,
        /// Whether to only report what would happen.
        dry_run: bool,
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
    /// Show how to use the command.
    Help {
        /// The command, e.g. `/build`.
        command: String,
    },
}

impl Request {
    /// The slash command this request is for.
    pub fn command(&self) -> &str {
        match self {
            Request::Run { target, .. }
            | Request::Unlock { target, .. }
            | Request::Cancel { target, .. }
            | Request::Leave { target, .. } => &target.command,
            Request::Status { command }
            | Request::Help { command }
            | Request::Queue { command, .. } => command,
        }
    }

    /// The command text in its normal form (what follows the slash command):
    /// parsing it again gives the same request.
    pub fn text(&self) -> String {
        match self {
            Request::Run {
                target, dry_run, ..
            } => {
                let flag = if *dry_run { " --dry-run" } else { "" };
                format!("{} {}{flag}", target.component, target.environment)
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
        }
    }
}

/// How a command's text fails the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformation {
    /// `status` followed by more words.
    #[error("status takes no arguments")]
    StatusTakesNothing,
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

/// Parses a slash command's `text` for `msg_command`, on behalf of `user_id`.
pub fn parse_request(
    config: &Config,
    msg_command: &str,
    text: &str,
    user_id: &str,
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
        "status" if words.len() > 1 => Err(malformed(cmd_config, Malformation::StatusTakesNothing)),
        "status" => Ok(Request::Status { command }),
        "unlock" => parse_unlock(cmd_config, &words[1..], user_id),
        "cancel" => parse_cancel(cmd_config, &words[1..]),
        "queue" => parse_queue(cmd_config, &words[1..]),
        "leave" => parse_leave(cmd_config, &words[1..]),
        _ => parse_run(cmd_config, &words, user_id),
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
) -> Result<Request, CommandError> {
    if !config.user_may_unlock(user_id) {
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

/// `leave <component> <environment>`: the requester stops waiting.
fn parse_leave(config: &CommandConfig, words: &[&str]) -> Result<Request, CommandError> {
    let [component, environment] = words else {
        return Err(malformed(config, Malformation::LeaveNeedsTarget));
    };
    let target = check_target(config, component, environment)?;
    let lock_key = config.lock_key(&target);
    Ok(Request::Leave { target, lock_key })
}

/// `<component> <environment> [--dry-run]`, for those allowed there.
fn parse_run(
    config: &CommandConfig,
    words: &[&str],
    user_id: &str,
) -> Result<Request, CommandError> {
    let dry_run = words.iter().any(|w| is_dry_run(w));
    let args: Vec<&str> = words.iter().copied().filter(|w| !is_dry_run(w)).collect();
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
    if !config.user_may_run(user_id, &target.environment) {
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
    let lock_key = config.lock_key(&target);
    Ok(Request::Run {
        target,
        lock_key,
        dry_run,
    })
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

/// `--dry-run`, also as typed by clients that turn `--` into an en or em dash.
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

    fn parse(cmd: &str, text: &str) -> Result<Request, CommandError> {
        parse_request(&config(), cmd, text, "U1")
    }

    fn run(component: &str, env: &str, key: &str, dry_run: bool) -> Request {
        Request::Run {
            target: Target::new("/build", component, env),
            lock_key: key.into(),
            dry_run,
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
            "router plt --force",
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
}
