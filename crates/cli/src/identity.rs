//! Who is asking: defaults for the owner id, its display name, the
//! correlation id and the run URL, read from the CI system's own variables so
//! pipelines need no flags and a blocked job can see which run holds the lock.

use std::collections::HashMap;

/// The identity baton records on a grant unless flags override it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// `lockedBy`: stable per pipeline run (or `user@host` on a workstation).
    pub owner: String,
    /// `lockedByName`: what a human reading a conflict recognises.
    pub owner_name: Option<String>,
    /// `correlationId`: the CI run id.
    pub correlation_id: Option<String>,
    /// `runUrl`: link to the pipeline run holding the lock.
    pub run_url: Option<String>,
}

/// Environment lookup, so the detection logic is testable without touching
/// the process environment.
pub trait Env {
    /// The variable's value if set and not blank.
    fn get(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Env for HashMap<&str, &str> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name)
            .map(|v| (*v).to_owned())
            .filter(|v| !v.trim().is_empty())
    }
}

/// Detects GitHub Actions, then Azure DevOps, else `user@host`.
pub fn detect(env: &impl Env, host: &str) -> Identity {
    if env
        .get("GITHUB_ACTIONS")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return github(env);
    }
    if env.get("TF_BUILD").is_some() || env.get("BUILD_BUILDNUMBER").is_some() {
        return azure_devops(env);
    }
    let user = env
        .get("USER")
        .or_else(|| env.get("LOGNAME"))
        .unwrap_or_else(|| format!("uid{}", current_uid()));
    Identity {
        owner: format!("{user}@{host}"),
        ..Identity::default()
    }
}

fn github(env: &impl Env) -> Identity {
    let repo = env
        .get("GITHUB_REPOSITORY")
        .unwrap_or_else(|| "unknown".to_owned());
    let run_id = env.get("GITHUB_RUN_ID");
    let owner = format!("github:{repo}#{}", run_id.as_deref().unwrap_or("unknown"));
    let owner_name = match (env.get("GITHUB_WORKFLOW"), env.get("GITHUB_ACTOR")) {
        (Some(w), Some(a)) => Some(format!("{w} ({a})")),
        (Some(w), None) => Some(w),
        (None, Some(a)) => Some(a),
        (None, None) => None,
    };
    let server = env
        .get("GITHUB_SERVER_URL")
        .unwrap_or_else(|| "https://github.com".to_owned());
    let run_url = match (env.get("GITHUB_REPOSITORY"), &run_id) {
        (Some(repo), Some(id)) => Some(format!(
            "{}/{repo}/actions/runs/{id}",
            server.trim_end_matches('/')
        )),
        _ => None,
    };
    Identity {
        owner,
        owner_name,
        correlation_id: run_id,
        run_url,
    }
}

fn azure_devops(env: &impl Env) -> Identity {
    let project = env
        .get("SYSTEM_TEAMPROJECT")
        .unwrap_or_else(|| "unknown".to_owned());
    let build_id = env.get("BUILD_BUILDID");
    let run = build_id.clone().or_else(|| env.get("BUILD_BUILDNUMBER"));
    let owner = format!("azdo:{project}#{}", run.as_deref().unwrap_or("unknown"));
    let owner_name = match (
        env.get("BUILD_DEFINITIONNAME"),
        env.get("BUILD_REQUESTEDFOR"),
    ) {
        (Some(d), Some(r)) => Some(format!("{d} ({r})")),
        (Some(d), None) => Some(d),
        (None, Some(r)) => Some(r),
        (None, None) => None,
    };
    let run_url = match (
        env.get("SYSTEM_COLLECTIONURI"),
        env.get("SYSTEM_TEAMPROJECT"),
        &build_id,
    ) {
        (Some(collection), Some(project), Some(id)) => Some(format!(
            "{}/{project}/_build/results?buildId={id}",
            collection.trim_end_matches('/')
        )),
        _ => None,
    };
    Identity {
        owner,
        owner_name,
        correlation_id: run,
        run_url,
    }
}

/// The real user id, for a name when `USER` is unset (containers).
#[allow(unsafe_code, reason = "std has no getuid")]
fn current_uid() -> u32 {
    // SAFETY: getuid(2) cannot fail and touches no memory.
    unsafe { libc::getuid() }
}

/// This machine's host name (`gethostname`, else `/etc/hostname`), recorded
/// on CLI grants so an operator can find a stuck holder.
#[allow(unsafe_code, reason = "std has no gethostname")]
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call;
    // gethostname writes at most `len` bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let name = String::from_utf8_lossy(&buf[..end]).trim().to_owned();
        if !name.is_empty() {
            return name;
        }
    }
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_actions() {
        let env = HashMap::from([
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "acme/app"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_WORKFLOW", "Deploy"),
            ("GITHUB_ACTOR", "octocat"),
            ("USER", "runner"),
        ]);
        let id = detect(&env, "h");
        assert_eq!(id.owner, "github:acme/app#42");
        assert_eq!(id.owner_name.as_deref(), Some("Deploy (octocat)"));
        assert_eq!(id.correlation_id.as_deref(), Some("42"));
        assert_eq!(
            id.run_url.as_deref(),
            Some("https://github.com/acme/app/actions/runs/42")
        );
    }

    #[test]
    fn azure_devops_prefers_build_id() {
        let env = HashMap::from([
            ("TF_BUILD", "True"),
            ("SYSTEM_TEAMPROJECT", "Platform"),
            ("BUILD_BUILDID", "981"),
            ("BUILD_BUILDNUMBER", "20260101.3"),
            ("SYSTEM_COLLECTIONURI", "https://dev.azure.com/acme/"),
        ]);
        let id = detect(&env, "h");
        assert_eq!(id.owner, "azdo:Platform#981");
        assert_eq!(
            id.run_url.as_deref(),
            Some("https://dev.azure.com/acme/Platform/_build/results?buildId=981")
        );
        let env = HashMap::from([
            ("BUILD_BUILDNUMBER", "20260101.3"),
            ("SYSTEM_TEAMPROJECT", "P"),
        ]);
        assert_eq!(detect(&env, "h").owner, "azdo:P#20260101.3");
    }

    #[test]
    fn workstation_is_user_at_host() {
        let env = HashMap::from([("USER", "alice"), ("GITHUB_ACTIONS", "false")]);
        assert_eq!(detect(&env, "laptop").owner, "alice@laptop");
        assert!(detect(&HashMap::new(), "laptop").owner.starts_with("uid"));
    }
}
