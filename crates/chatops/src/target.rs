//! What a run is for: one command on one component in one environment, and
//! the one rule that turns it into a lock key.

use crate::config::LockScope;

/// `/build router plt`: the command, and the component and environment it
/// runs on (lowercase, as checked against the config).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The slash command, e.g. `/build`.
    pub command: String,
    /// The component, e.g. `router`.
    pub component: String,
    /// The environment, e.g. `plt`.
    pub environment: String,
}

impl Target {
    /// A target; component and environment are lowercased, as the grammar
    /// treats them case-insensitively.
    pub fn new(command: &str, component: &str, environment: &str) -> Target {
        Target {
            command: command.to_owned(),
            component: component.to_lowercase(),
            environment: environment.to_lowercase(),
        }
    }

    /// The run as a user would type it: `/build router plt`.
    pub fn invocation(&self) -> String {
        format!("{} {} {}", self.command, self.component, self.environment)
    }

    /// The lock this target takes under `scope`: `/build router plt` gives
    /// `build-router-plt`, `build-router`, `build-plt` or `build`.
    pub fn lock_key(&self, scope: LockScope) -> String {
        let base = key_base(&self.command);
        let (component, environment) = (&self.component, &self.environment);
        match scope {
            LockScope::ComponentEnvironment => format!("{base}-{component}-{environment}"),
            LockScope::Component => format!("{base}-{component}"),
            LockScope::Environment => format!("{base}-{environment}"),
            LockScope::Command => base,
        }
    }
}

/// What every lock key of `command` starts with: `build` for `/build`. Also
/// the queue group of the command's requests that take no lock.
pub fn key_base(command: &str) -> String {
    command.trim_start_matches('/').to_lowercase()
}

/// Whether `lock_key` is one of `command`'s locks (whatever its scope).
pub fn is_key_of(command: &str, lock_key: &str) -> bool {
    let base = key_base(command);
    lock_key
        .strip_prefix(&base)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scope_gives_its_key() {
        let t = Target::new("/build", "Router", "PLT");
        assert_eq!(t.invocation(), "/build router plt");
        assert_eq!(
            t.lock_key(LockScope::ComponentEnvironment),
            "build-router-plt"
        );
        assert_eq!(t.lock_key(LockScope::Component), "build-router");
        assert_eq!(t.lock_key(LockScope::Environment), "build-plt");
        assert_eq!(t.lock_key(LockScope::Command), "build");
    }

    #[test]
    fn keys_belong_to_their_command_only() {
        assert!(is_key_of("/build", "build"));
        assert!(is_key_of("/build", "build-router-plt"));
        assert!(!is_key_of("/build", "buildx-router"));
        assert!(!is_key_of("/build", "deploy-api-prod"));
    }
}
