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
/// the queue group of the command's requests that take no lock. Another
/// command's keys may start with it too (`/build-x`'s); whether a key is a
/// command's own is [`crate::CommandConfig::owns_key`].
pub fn key_base(command: &str) -> String {
    command.trim_start_matches('/').to_lowercase()
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
}
