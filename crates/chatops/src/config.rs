//! Per-command configuration: which slash commands exist, what they lock,
//! for how long, who may run them, and which pipeline they start.
//!
//! The configuration is TOML, read and validated once at start-up by
//! [`Config::from_toml_str`]; everything after that works with checked,
//! typed values ([`CommandConfig`], [`LockScope`], a real [`Duration`]).
//! A mistake in the file should stop a deployment, not surface as a confused
//! Slack reply hours later, so every check runs up front and every error
//! names the field path, e.g. `commands."/deploy".lock_ttl`: the file is read
//! through `serde_path_to_error`, which knows the path of whatever serde
//! refused, and baton's own checks name theirs.
//!
//! ```toml
//! allowed_teams = ["T0ACME"]
//!
//! [commands."/build"]
//! requires_lock = true
//! lock_scope = "component-environment"
//! lock_ttl = "10m"
//! components = ["router", "api", "web"]
//! environments = ["dev", "plt", "prod"]
//! on_conflict = "reject"
//! unlock_users = ["U0ADMIN"]
//! protected_environments = ["prod"]
//! allowed_channels = ["C0BUILDS"]
//! [commands."/build".allowed_users]
//! prod = ["U0ADMIN"]
//! [commands."/build".pipeline]
//! repo = "acme/platform"
//! workflow = "build.yml"
//! ref = "main"
//! [commands."/build".pipeline.inputs]
//! notify = "true"
//!
//! [commands."/deploy"]
//! lock_ttl = "30m"
//! components = ["api"]
//! environments = ["prod"]
//! [commands."/deploy".pipeline]
//! kind = "azure-pipelines"
//! organization = "acme"
//! project = "Platform"
//! pipeline_id = 42
//! branch = "main"
//! [commands."/deploy".pipeline.parameters]
//! notify = "true"
//! ```
//!
//! A pipeline's `kind` is `github-actions` (the default) or
//! `azure-pipelines`; each kind has its own fields, and a field of the
//! other kind is refused by name.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_path_to_error::{Path, Segment};

use crate::freeze::{Frozen, RawFreeze, ScheduledFreeze};
use crate::target::Target;

/// The workflow inputs baton always sends with a dispatch, so a pipeline can
/// report its completion back with the lock identity it was given.
pub const BATON_INPUTS: [&str; 6] = [
    "component",
    "environment",
    "lock_key",
    "lock_id",
    "fence",
    "requested_by",
];

/// GitHub's limit on the number of inputs a `workflow_dispatch` may carry.
pub const MAX_DISPATCH_INPUTS: usize = 25;

/// What a `--test` run's key adds to its target's lock key: `#` never occurs
/// in a name, so no configured key ends in it.
const TEST_KEY_SUFFIX: &str = "#test";

/// Shortest lock TTL accepted: anything shorter expires before a pipeline
/// has even been dispatched.
pub const MIN_LOCK_TTL: Duration = Duration::from_secs(60);

/// Longest lock TTL accepted: a crashed run should not block a component for
/// more than half a day.
pub const MAX_LOCK_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// Words of the command grammar; a component or environment with one of
/// these names could never be addressed, so the config rejects them.
pub const RESERVED_WORDS: [&str; 8] = [
    "status", "unlock", "help", "cancel", "queue", "leave", "freeze", "unfreeze",
];

/// How long a queued request waits at most, unless the command says
/// otherwise (`max_wait`).
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60 * 60);

/// How many requests may wait for one lock, unless the command says
/// otherwise (`max_queue`).
pub const DEFAULT_MAX_QUEUE: usize = 20;

/// Why a configuration file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file is not valid TOML, or a value cannot be read as its field:
    /// an unknown key, a missing key, a value of the wrong type or a name
    /// (lock scope, conflict policy) that baton does not know. `path` is the
    /// field path (`None` when the problem is plain TOML syntax).
    #[error("{}line {line}, column {column}: {message}", path_prefix(.path))]
    Syntax {
        /// The field path, e.g. `commands."/build".lock_ttl`, when known.
        path: Option<String>,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// The TOML reader's description.
        message: String,
    },
    /// The file parsed, but a value breaks one of baton's rules.
    #[error("{path}: {message}")]
    Invalid {
        /// The field path, e.g. `commands."/deploy".lock_ttl`.
        path: String,
        /// What is wrong and what is accepted instead.
        message: String,
    },
}

fn path_prefix(path: &Option<String>) -> String {
    path.as_ref().map(|p| format!("{p}: ")).unwrap_or_default()
}

/// How a command's lock key is formed, i.e. what two runs must share to
/// exclude each other. The config file names it in kebab case
/// (`component-environment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockScope {
    /// One lock per component and environment (`build-router-plt`): the
    /// usual choice, so building `api` never waits for `router`; the default.
    #[default]
    ComponentEnvironment,
    /// One lock per component across environments (`build-router`).
    Component,
    /// One lock per environment across components (`deploy-prod`).
    Environment,
    /// One lock for the whole command (`build`).
    Command,
}

/// What to do when a command's lock is already held. The config file names
/// it in kebab case (`reject`, `queue`, `queue-latest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnConflict {
    /// Tell the requester who holds the lock and do nothing.
    #[default]
    Reject,
    /// Queue the request: first come, first served; when the lock is
    /// released the next request starts, with no one racing for it.
    Queue,
    /// Queue only the newest request: a later one replaces the waiting one
    /// (for deploys where only the latest commit matters).
    QueueLatest,
}

impl OnConflict {
    /// Whether requests that find the lock held wait in its line.
    pub fn queues(self) -> bool {
        !matches!(self, OnConflict::Reject)
    }
}

/// Which CI service runs a command's pipeline; the config file names it in
/// kebab case as the pipeline's `kind`. Each kind has its own adapter in the
/// worker, and its own fields in [`PipelineConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PipelineKind {
    /// A GitHub Actions workflow started by `workflow_dispatch`; the default,
    /// so configs written before there was a choice keep their meaning.
    #[default]
    #[serde(rename = "github-actions")]
    GitHubActions,
    /// An Azure DevOps YAML pipeline queued through the Pipelines REST API.
    AzurePipelines,
}

impl PipelineKind {
    /// The name the config file uses (`github-actions`, `azure-pipelines`),
    /// from the serde names alone so reading and messages cannot disagree.
    pub fn as_str(self) -> &'static str {
        serde_variant::to_variant_name(&self).expect("a unit variant always has a serde name")
    }

    /// The service that runs this kind's pipelines, as people call it in
    /// messages (`GitHub`, `Azure DevOps`).
    pub fn service(self) -> &'static str {
        match self {
            PipelineKind::GitHubActions => "GitHub",
            PipelineKind::AzurePipelines => "Azure DevOps",
        }
    }
}

/// The pipeline a command starts: one variant per [`PipelineKind`], so code
/// that starts, reads or cancels a run handles every kind the config allows
/// (the compiler sees to it) and never reads one kind's fields for another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineConfig {
    /// `kind = "github-actions"` (the default).
    GitHubActions(GitHubActions),
    /// `kind = "azure-pipelines"`.
    AzurePipelines(AzurePipelines),
}

/// The GitHub Actions workflow a command dispatches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubActions {
    /// Repository owner (user or organisation).
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Workflow file name or id, e.g. `build.yml`.
    pub workflow: String,
    /// The git ref to run the workflow on, e.g. `main`.
    pub git_ref: String,
    /// Extra string inputs sent alongside baton's own [`BATON_INPUTS`].
    pub inputs: BTreeMap<String, String>,
}

impl GitHubActions {
    /// `owner/name`, for messages and API paths.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }
}

/// The Azure DevOps pipeline a command queues a run of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzurePipelines {
    /// The organization, as in `https://dev.azure.com/<organization>`.
    pub organization: String,
    /// The project inside the organization (its name may contain spaces).
    pub project: String,
    /// The pipeline's numeric id (`definitionId` in its web address).
    pub pipeline_id: u64,
    /// The branch the run builds, e.g. `main` (a full `refs/...` name is
    /// accepted too; see [`AzurePipelines::ref_name`]).
    pub branch: String,
    /// Extra template parameters sent alongside baton's own [`BATON_INPUTS`].
    pub parameters: BTreeMap<String, String>,
}

impl AzurePipelines {
    /// `organization/project`, for messages.
    pub fn project_path(&self) -> String {
        format!("{}/{}", self.organization, self.project)
    }

    /// The branch as the run API wants it: `refs/heads/<branch>` unless the
    /// config already wrote a full ref.
    pub fn ref_name(&self) -> String {
        if self.branch.starts_with("refs/") {
            self.branch.clone()
        } else {
            format!("refs/heads/{}", self.branch)
        }
    }
}

/// The prefix of an Azure pipeline's [`PipelineConfig::repository`]: no
/// GitHub `owner/name` contains a colon, so a grant's binding can never name
/// a pipeline of the other kind.
pub const AZURE_REPOSITORY_PREFIX: &str = "azure-devops:";

impl PipelineConfig {
    /// Which kind of pipeline this is.
    pub fn kind(&self) -> PipelineKind {
        match self {
            PipelineConfig::GitHubActions(_) => PipelineKind::GitHubActions,
            PipelineConfig::AzurePipelines(_) => PipelineKind::AzurePipelines,
        }
    }

    /// The first half of the binding a grant records for its run (with
    /// [`PipelineConfig::workflow`]), and a completion must name: a GitHub
    /// pipeline's `owner/name`; an Azure pipeline's
    /// `azure-devops:organization/project`.
    pub fn repository(&self) -> String {
        match self {
            PipelineConfig::GitHubActions(g) => g.repository(),
            PipelineConfig::AzurePipelines(a) => {
                format!("{AZURE_REPOSITORY_PREFIX}{}", a.project_path())
            }
        }
    }

    /// The second half of the binding: a GitHub workflow file (or id); an
    /// Azure pipeline's id.
    pub fn workflow(&self) -> String {
        match self {
            PipelineConfig::GitHubActions(g) => g.workflow.clone(),
            PipelineConfig::AzurePipelines(a) => a.pipeline_id.to_string(),
        }
    }

    /// The configured extras sent with baton's own [`BATON_INPUTS`]: a
    /// GitHub workflow's `inputs`, an Azure pipeline's template `parameters`.
    pub fn extra_inputs(&self) -> &BTreeMap<String, String> {
        match self {
            PipelineConfig::GitHubActions(g) => &g.inputs,
            PipelineConfig::AzurePipelines(a) => &a.parameters,
        }
    }

    /// The GitHub workflow, when this is one.
    pub fn github(&self) -> Option<&GitHubActions> {
        match self {
            PipelineConfig::GitHubActions(g) => Some(g),
            PipelineConfig::AzurePipelines(_) => None,
        }
    }

    /// The Azure pipeline, when this is one.
    pub fn azure(&self) -> Option<&AzurePipelines> {
        match self {
            PipelineConfig::AzurePipelines(a) => Some(a),
            PipelineConfig::GitHubActions(_) => None,
        }
    }
}

/// Everything baton needs to know about one slash command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandConfig {
    /// The command, including its slash, e.g. `/build`.
    pub name: String,
    /// Whether runs take a lock at all; `false` just dispatches.
    pub requires_lock: bool,
    /// What the lock key covers.
    pub lock_scope: LockScope,
    /// How long a lock lasts unless released earlier by the run's completion.
    pub lock_ttl: Duration,
    /// The components users may name, lowercase.
    pub components: Vec<String>,
    /// The environments users may name, lowercase.
    pub environments: Vec<String>,
    /// What happens when the lock is held.
    pub on_conflict: OnConflict,
    /// How long a queued request waits at most before it is dropped.
    pub max_wait: Duration,
    /// How many requests may wait for one lock.
    pub max_queue: usize,
    /// Whether `--test` runs are allowed: on the target's test key, which
    /// excludes other test runs but never blocks (nor waits for) real ones.
    pub test_mode: bool,
    /// Slack user ids (or user group ids, `S…`) allowed to force-unlock;
    /// empty means nobody.
    pub unlock_users: Vec<String>,
    /// Per environment, the Slack user ids (or user group ids, `S…`) allowed
    /// to run the command there;
    /// an environment that is not listed is open to everyone unless it is
    /// one of [`CommandConfig::protected_environments`].
    pub allowed_users: BTreeMap<String, Vec<String>>,
    /// Environments closed to everyone not listed in `allowed_users`: a
    /// protected environment without a list refuses everyone, so forgetting
    /// the list never opens production.
    pub protected_environments: Vec<String>,
    /// Slack channel ids (`C…`, `G…`) the command may be run from; empty
    /// means any channel.
    pub allowed_channels: Vec<String>,
    /// The pipeline to start: a GitHub workflow or an Azure DevOps pipeline.
    pub pipeline: PipelineConfig,
    /// Scheduled change freezes: windows in which runs in some
    /// environments are refused (admins may override).
    pub freezes: Vec<ScheduledFreeze>,
}

impl CommandConfig {
    /// The lock key for a run of `target`, according to this command's
    /// [`LockScope`].
    pub fn lock_key(&self, target: &Target) -> String {
        target.lock_key(self.lock_scope)
    }

    /// The key a `--test` run of `target` locks: the target's lock key with
    /// a suffix no configured key can have (`#` never occurs in names), so
    /// test runs exclude each other and nothing else.
    pub fn test_lock_key(&self, target: &Target) -> String {
        format!("{}{TEST_KEY_SUFFIX}", self.lock_key(target))
    }

    /// Every lock this command's runs can take, each with the runs that take
    /// it as a person would write them: `/build router plt` under
    /// `component-environment`, `/build router (every environment)` under
    /// `component`, and so on. The config check that no two targets share a
    /// key, and `status`, which lists only this command's keys, both read it.
    pub fn lock_keys(&self) -> Vec<(String, String)> {
        let name = &self.name;
        let key = |component: &str, environment: &str| {
            Target::new(name, component, environment).lock_key(self.lock_scope)
        };
        match self.lock_scope {
            LockScope::ComponentEnvironment => self
                .components
                .iter()
                .flat_map(|c| {
                    self.environments
                        .iter()
                        .map(move |e| (key(c, e), format!("{name} {c} {e}")))
                })
                .collect(),
            LockScope::Component => self
                .components
                .iter()
                .map(|c| (key(c, ""), format!("{name} {c} (every environment)")))
                .collect(),
            LockScope::Environment => self
                .environments
                .iter()
                .map(|e| (key("", e), format!("{name} (every component) {e}")))
                .collect(),
            LockScope::Command => vec![(key("", ""), format!("{name} (every target)"))],
        }
    }

    /// Whether `lock_key` is a lock this command's runs take, `--test` runs'
    /// keys included. A prefix test is not enough: `build-x-api-dev` starts
    /// like a key of `/build` but may be one of `/build-x`.
    pub fn owns_key(&self, lock_key: &str) -> bool {
        let key = lock_key.strip_suffix(TEST_KEY_SUFFIX).unwrap_or(lock_key);
        self.lock_keys().iter().any(|(own, _)| own == key)
    }

    /// Whether `user_id` may run this command in `environment`, counting
    /// user ids only (a listed user group admits no one here): a listed
    /// environment admits its list; an unlisted one is open unless it is
    /// protected, and a protected one without a list admits no one.
    pub fn user_may_run(&self, user_id: &str, environment: &str) -> bool {
        self.user_may_run_as(user_id, environment, &Membership::none())
    }

    /// [`CommandConfig::user_may_run`], with what is known of the user's
    /// groups: a listed group admits its members.
    pub fn user_may_run_as(&self, user_id: &str, environment: &str, groups: &Membership) -> bool {
        match self.allowed_users.get(environment) {
            Some(users) => groups.admits(users, user_id),
            None => !self.is_protected(environment),
        }
    }

    /// The Slack user groups (`S…`) this command's `allowed_users` and
    /// `unlock_users` name: the ones whose members a door must look up.
    pub fn groups(&self) -> BTreeSet<String> {
        self.allowed_users
            .values()
            .flatten()
            .chain(&self.unlock_users)
            .filter(|id| is_group_id(id))
            .cloned()
            .collect()
    }

    /// The scheduled freeze in force on `environment` at `now_ms` (epoch
    /// milliseconds), the one ending last if several are.
    pub fn frozen_at(&self, environment: &str, now_ms: u64) -> Option<Frozen> {
        crate::freeze::latest(
            self.freezes
                .iter()
                .filter_map(|f| f.frozen_at(environment, now_ms)),
        )
    }

    /// The scope of `environment`'s admin freeze record in the lock table:
    /// `deploy/prod` for `/deploy` in `prod` (the lock crate prefixes it so
    /// it can never be a lock key).
    pub fn freeze_scope(&self, environment: &str) -> String {
        format!("{}/{environment}", crate::target::key_base(&self.name))
    }

    /// Whether `environment` is one of this command's protected ones.
    pub fn is_protected(&self, environment: &str) -> bool {
        self.protected_environments.iter().any(|e| e == environment)
    }

    /// Whether the command may be run from `channel_id` (any channel when
    /// `allowed_channels` is empty).
    pub fn channel_allowed(&self, channel_id: &str) -> bool {
        self.allowed_channels.is_empty() || self.allowed_channels.iter().any(|c| c == channel_id)
    }

    /// Whether `user_id` may force-unlock this command's locks, counting
    /// user ids only.
    pub fn user_may_unlock(&self, user_id: &str) -> bool {
        self.user_may_unlock_as(user_id, &Membership::none())
    }

    /// [`CommandConfig::user_may_unlock`], with what is known of the
    /// user's groups: a listed group makes its members admins.
    pub fn user_may_unlock_as(&self, user_id: &str, groups: &Membership) -> bool {
        groups.admits(&self.unlock_users, user_id)
    }

    /// The lock TTL as a person would write it, e.g. `10m`.
    pub fn lock_ttl_display(&self) -> String {
        humantime::format_duration(self.lock_ttl).to_string()
    }
}

/// Whether a configured id names a Slack user group (`S…`) rather than a
/// user (`U…`, `W…`).
pub fn is_group_id(id: &str) -> bool {
    id.starts_with('S')
}

/// What a door knows of the requester's Slack user groups when it decides.
/// The router has no bot token and cannot look groups up; the worker can,
/// and decides again with what it found, so a group entry is finally
/// honoured only by a door that knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// Not looked up: a listed group admits the user for now (the router
    /// lets the worker decide), never more than [`Membership::Known`] would.
    Unresolved,
    /// The listed groups the user is a member of.
    Known(BTreeSet<String>),
}

impl Membership {
    /// Known to be in no group: group entries admit no one.
    pub fn none() -> Membership {
        Membership::Known(BTreeSet::new())
    }

    /// Whether `entries` (user ids and group ids) admit `user_id`.
    fn admits(&self, entries: &[String], user_id: &str) -> bool {
        entries.iter().any(|e| {
            e == user_id
                || (is_group_id(e)
                    && match self {
                        Membership::Unresolved => true,
                        Membership::Known(groups) => groups.contains(e),
                    })
        })
    }
}

/// The whole, validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    commands: BTreeMap<String, CommandConfig>,
    allowed_teams: Vec<String>,
}

impl Config {
    /// The configuration baton ships with, matching the original design:
    /// `/build` (10 minute locks) and `/deploy` (30 minute locks), both
    /// locked per component and environment, over components `router`,
    /// `api`, `web` and environments `dev`, `plt`, `prod`. Nobody may
    /// force-unlock, and `prod` is protected: nobody may run there until an
    /// operator lists who may (`allowed_users.prod`); `dev` and `plt` are
    /// open. Read from [`Config::BUILTIN_TOML`], so the file an
    /// operator starts from and the default can never differ.
    pub fn builtin() -> Config {
        // A constant of this crate, checked by `builtin_matches_the_seed`;
        // no user input reaches this parse.
        Config::from_toml_str(Config::BUILTIN_TOML).expect("the built-in config is valid")
    }

    /// [`Config::builtin`] written out as TOML: a starting point for an
    /// operator's own file.
    pub const BUILTIN_TOML: &'static str = r#"[commands."/build"]
requires_lock = true
lock_scope = "component-environment"
lock_ttl = "10m"
components = ["router", "api", "web"]
environments = ["dev", "plt", "prod"]
on_conflict = "reject"
unlock_users = []
protected_environments = ["prod"]

[commands."/build".allowed_users]

[commands."/build".pipeline]
repo = "acme/platform"
workflow = "build.yml"
ref = "main"

[commands."/deploy"]
requires_lock = true
lock_scope = "component-environment"
lock_ttl = "30m"
components = ["router", "api", "web"]
environments = ["dev", "plt", "prod"]
on_conflict = "reject"
unlock_users = []
protected_environments = ["prod"]

[commands."/deploy".allowed_users]

[commands."/deploy".pipeline]
repo = "acme/platform"
workflow = "deploy.yml"
ref = "main"
"#;

    /// Reads and validates a TOML configuration.
    pub fn from_toml_str(source: &str) -> Result<Config, ConfigError> {
        let document =
            toml::Deserializer::parse(source).map_err(|e| syntax_error(source, None, &e))?;
        let raw: RawConfig = serde_path_to_error::deserialize(document)
            .map_err(|e| syntax_error(source, toml_path(e.path()), e.inner()))?;
        raw.validate()
    }

    /// The configuration of one command (`/build`), if it exists.
    pub fn command(&self, name: &str) -> Option<&CommandConfig> {
        self.commands.get(name)
    }

    /// The configured command names, sorted, for usage messages.
    pub fn command_names(&self) -> Vec<String> {
        self.commands.keys().cloned().collect()
    }

    /// All command configurations, sorted by name.
    pub fn commands(&self) -> impl Iterator<Item = &CommandConfig> {
        self.commands.values()
    }

    /// The Slack workspace (`T…`) and Enterprise Grid (`E…`) ids every
    /// command is restricted to; empty means any workspace the app is
    /// installed in.
    pub fn allowed_teams(&self) -> &[String] {
        &self.allowed_teams
    }

    /// The config restricted to the workspaces a deployment names (its
    /// `BATON_ALLOWED_TEAMS`): the ids must be Slack workspace or Enterprise
    /// Grid ids, and a config that lists its own `allowed_teams` must list
    /// the same ones, so the two places can never disagree in silence.
    pub fn restricted_to_teams(mut self, teams: &[String]) -> Result<Config, ConfigError> {
        check_slack_ids(
            "BATON_ALLOWED_TEAMS",
            teams,
            &['T', 'E'],
            "a Slack workspace or Enterprise Grid id (like \"T0123ABCD\" or \"E0123ABCD\")",
        )?;
        if teams.is_empty() {
            return Err(invalid(
                "BATON_ALLOWED_TEAMS",
                "is empty; name the Slack workspaces (T…) or Enterprise Grid (E…) this deployment serves",
            ));
        }
        let (mut wanted, mut listed) = (teams.to_vec(), self.allowed_teams.clone());
        wanted.sort();
        listed.sort();
        if !listed.is_empty() && listed != wanted {
            return Err(invalid(
                "allowed_teams",
                format!(
                    "the config lists {listed:?} but the deployment's BATON_ALLOWED_TEAMS is {wanted:?}; list the same workspaces in both, or only in the deployment"
                ),
            ));
        }
        self.allowed_teams = wanted;
        Ok(self)
    }

    /// Whether a command from workspace `team_id` (part of Enterprise Grid
    /// `enterprise_id`, if any) may be served: always when `allowed_teams`
    /// is empty, else when either id is listed.
    pub fn team_allowed(&self, team_id: &str, enterprise_id: Option<&str>) -> bool {
        self.allowed_teams.is_empty()
            || self
                .allowed_teams
                .iter()
                .any(|t| t == team_id || Some(t.as_str()) == enterprise_id)
    }
}

// ---------------------------------------------------------------------------
// Raw file shape and validation.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    allowed_teams: Vec<String>,
    #[serde(default)]
    commands: BTreeMap<String, RawCommand>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    #[serde(default = "default_true")]
    requires_lock: bool,
    #[serde(default)]
    lock_scope: LockScope,
    lock_ttl: String,
    components: Vec<String>,
    environments: Vec<String>,
    #[serde(default)]
    on_conflict: OnConflict,
    #[serde(default)]
    max_wait: Option<String>,
    #[serde(default)]
    max_queue: Option<usize>,
    #[serde(default)]
    test_mode: bool,
    #[serde(default)]
    unlock_users: Vec<String>,
    #[serde(default)]
    allowed_users: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    protected_environments: Vec<String>,
    #[serde(default)]
    allowed_channels: Vec<String>,
    pipeline: RawPipeline,
    #[serde(default)]
    freezes: Vec<RawFreeze>,
}

/// The pipeline table as written. It is one flat table whatever the kind
/// (TOML has no tagged unions, and a flat table keeps serde's line and
/// column for every field); [`RawPipeline::validate`] then checks that the
/// fields present are the ones the chosen kind uses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    #[serde(default)]
    kind: PipelineKind,
    repo: Option<String>,
    workflow: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    inputs: Option<BTreeMap<String, String>>,
    organization: Option<String>,
    project: Option<String>,
    pipeline_id: Option<u64>,
    branch: Option<String>,
    parameters: Option<BTreeMap<String, String>>,
}

fn default_true() -> bool {
    true
}
/// The branch or ref a pipeline runs on when the config names none.
const DEFAULT_REF: &str = "main";

fn invalid(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

/// Quotes a TOML key when it is not a bare key (`/build` becomes `"/build"`).
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// `[a-z0-9][a-z0-9_.-]*`: safe in lock keys, workflow inputs and messages.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
}

/// GitHub owner and repository names: letters, digits, `-`, `_`, `.`.
fn is_github_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        if self.commands.is_empty() {
            return Err(invalid(
                "commands",
                "no commands are configured; add at least one [commands.\"/name\"] table",
            ));
        }
        check_slack_ids(
            "allowed_teams",
            &self.allowed_teams,
            &['T', 'E'],
            "a Slack workspace or Enterprise Grid id (like \"T0123ABCD\" or \"E0123ABCD\")",
        )?;
        let mut commands: BTreeMap<String, CommandConfig> = BTreeMap::new();
        for (name, raw) in self.commands {
            let cmd = raw.validate(&name)?;
            check_azure_ids_distinct(&cmd, commands.values())?;
            commands.insert(name, cmd);
        }
        check_lock_keys_distinct(commands.values())?;
        Ok(Config {
            commands,
            allowed_teams: self.allowed_teams,
        })
    }
}

impl RawCommand {
    /// Checks one command's settings in the order a reader of the file meets
    /// them, each failure naming its path: a list of checks, not a tangle.
    fn validate(self, name: &str) -> Result<CommandConfig, ConfigError> {
        let at = format!("commands.{}", toml_key(name));
        let field = |f: &str| format!("{at}.{f}");

        let rest = name.strip_prefix('/').unwrap_or_default();
        if !name.starts_with('/') || rest.is_empty() {
            return Err(invalid(
                &at,
                format!(
                    "command name {name:?} must start with `/` followed by a name, e.g. \"/build\""
                ),
            ));
        }
        if !is_identifier(rest) {
            return Err(invalid(
                &at,
                format!(
                    "command name {name:?} may only use lowercase letters, digits, `_`, `.` and `-` after the `/`"
                ),
            ));
        }

        let lock_ttl = humantime::parse_duration(self.lock_ttl.trim()).map_err(|e| {
            invalid(
                field("lock_ttl"),
                format!(
                    "invalid duration {:?} ({e}); write it like \"10m\", \"1h 30m\"",
                    self.lock_ttl
                ),
            )
        })?;
        if !(MIN_LOCK_TTL..=MAX_LOCK_TTL).contains(&lock_ttl) {
            return Err(invalid(
                field("lock_ttl"),
                format!(
                    "{:?} is out of range; a lock TTL must be between 1m and 12h",
                    self.lock_ttl
                ),
            ));
        }

        let max_wait = match self.max_wait.as_deref().map(str::trim) {
            None => DEFAULT_MAX_WAIT,
            Some(text) => humantime::parse_duration(text)
                .ok()
                .filter(|d| (Duration::from_secs(60)..=Duration::from_secs(24 * 3600)).contains(d))
                .ok_or_else(|| {
                    invalid(
                        field("max_wait"),
                        format!("{text:?} is not a duration between 1m and 24h, e.g. \"1h\""),
                    )
                })?,
        };
        let max_queue = self.max_queue.unwrap_or(DEFAULT_MAX_QUEUE);
        if !(1..=100).contains(&max_queue) {
            return Err(invalid(
                field("max_queue"),
                format!("{max_queue} is out of range; a line holds 1 to 100 requests"),
            ));
        }

        let components = check_names(&field("components"), self.components, "component")?;
        let environments = check_names(&field("environments"), self.environments, "environment")?;

        check_user_ids(&field("unlock_users"), &self.unlock_users)?;

        for (env, users) in &self.allowed_users {
            let path = format!("{}.{}", field("allowed_users"), toml_key(env));
            if !environments.contains(env) {
                return Err(invalid(
                    path,
                    format!(
                        "environment {env:?} is not in {}; listed environments: {}",
                        field("environments"),
                        environments.join(", ")
                    ),
                ));
            }
            check_user_ids(&path, users)?;
        }

        let protected_path = field("protected_environments");
        for env in &self.protected_environments {
            if !environments.contains(env) {
                return Err(invalid(
                    &protected_path,
                    format!(
                        "environment {env:?} is not in {}; listed environments: {}",
                        field("environments"),
                        environments.join(", ")
                    ),
                ));
            }
        }
        check_slack_ids(
            &field("allowed_channels"),
            &self.allowed_channels,
            &['C', 'G'],
            "a Slack channel id (like \"C0123ABCD\" or \"G0123ABCD\")",
        )?;

        let pipeline = self.pipeline.validate(&field("pipeline"))?;
        let freezes = self
            .freezes
            .into_iter()
            .enumerate()
            .map(|(i, f)| f.validate(&format!("{}[{i}]", field("freezes")), &environments))
            .collect::<Result<Vec<_>, _>>()?;

        Ok(CommandConfig {
            name: name.to_string(),
            requires_lock: self.requires_lock,
            lock_scope: self.lock_scope,
            lock_ttl,
            components,
            environments,
            on_conflict: self.on_conflict,
            max_wait,
            max_queue,
            test_mode: self.test_mode,
            unlock_users: self.unlock_users,
            allowed_users: self.allowed_users,
            protected_environments: self.protected_environments,
            allowed_channels: self.allowed_channels,
            pipeline,
            freezes,
        })
    }
}

impl RawPipeline {
    /// Checks the pipeline table for its kind: the kind's own fields, field
    /// by field like [`RawCommand::validate`], and none of the other kind's.
    fn validate(self, at: &str) -> Result<PipelineConfig, ConfigError> {
        let field = |f: &str| format!("{at}.{f}");
        let (github, azure) = (
            [
                ("repo", self.repo.is_some()),
                ("workflow", self.workflow.is_some()),
                ("ref", self.git_ref.is_some()),
                ("inputs", self.inputs.is_some()),
            ],
            [
                ("organization", self.organization.is_some()),
                ("project", self.project.is_some()),
                ("pipeline_id", self.pipeline_id.is_some()),
                ("branch", self.branch.is_some()),
                ("parameters", self.parameters.is_some()),
            ],
        );
        let foreign: &[(&str, bool)] = match self.kind {
            PipelineKind::GitHubActions => &azure,
            PipelineKind::AzurePipelines => &github,
        };
        if let Some((name, _)) = foreign.iter().find(|(_, present)| *present) {
            let other = match self.kind {
                PipelineKind::GitHubActions => PipelineKind::AzurePipelines,
                PipelineKind::AzurePipelines => PipelineKind::GitHubActions,
            };
            return Err(invalid(
                field(name),
                format!(
                    "`{name}` belongs to {} pipelines, but this pipeline's kind is {:?}{}",
                    other.as_str(),
                    self.kind.as_str(),
                    if self.kind == PipelineKind::GitHubActions {
                        " (the default); set kind = \"azure-pipelines\" for an Azure DevOps pipeline"
                    } else {
                        ""
                    }
                ),
            ));
        }
        match self.kind {
            PipelineKind::GitHubActions => self.github(at).map(PipelineConfig::GitHubActions),
            PipelineKind::AzurePipelines => self.azure(at).map(PipelineConfig::AzurePipelines),
        }
    }

    /// A `github-actions` pipeline: `repo`, `workflow`, `ref`, `inputs`.
    fn github(self, at: &str) -> Result<GitHubActions, ConfigError> {
        let field = |f: &str| format!("{at}.{f}");
        let repo = required(self.repo, &field("repo"), "repo", "\"owner/name\"")?;
        let (owner, repo) = match repo.split_once('/') {
            Some((o, r)) if is_github_name(o) && is_github_name(r) => {
                (o.to_string(), r.to_string())
            }
            _ => {
                return Err(invalid(
                    field("repo"),
                    format!("{repo:?} is not a repository; write it as \"owner/name\""),
                ));
            }
        };
        let workflow = required(
            self.workflow,
            &field("workflow"),
            "workflow",
            "the workflow file, e.g. \"build.yml\"",
        )?;
        let workflow = workflow.trim();
        if !is_workflow_name(workflow) {
            return Err(invalid(
                field("workflow"),
                format!(
                    "{workflow:?} is not a workflow: name the workflow file (e.g. \"build.yml\") or its numeric id, without `/`, `..`, `?`, `#`, `%`, `\\`, spaces or control characters"
                ),
            ));
        }
        let git_ref = self.git_ref.unwrap_or_else(|| DEFAULT_REF.into());
        let git_ref = git_ref.trim();
        if let Err(rule) = check_ref_format(git_ref) {
            return Err(invalid(
                field("ref"),
                format!(
                    "{git_ref:?} is not a git ref ({rule}); name a branch, tag or commit, e.g. \"main\""
                ),
            ));
        }
        let inputs = self.inputs.unwrap_or_default();
        check_extras(&field("inputs"), &inputs, "input")?;
        let total = BATON_INPUTS.len() + inputs.len();
        if total > MAX_DISPATCH_INPUTS {
            return Err(invalid(
                field("inputs"),
                format!(
                    "{} extra inputs plus baton's {} own make {total}; GitHub accepts at most {MAX_DISPATCH_INPUTS}, so keep extra inputs to {}",
                    inputs.len(),
                    BATON_INPUTS.len(),
                    MAX_DISPATCH_INPUTS - BATON_INPUTS.len()
                ),
            ));
        }
        Ok(GitHubActions {
            owner,
            repo,
            workflow: workflow.to_string(),
            git_ref: git_ref.to_string(),
            inputs,
        })
    }

    /// An `azure-pipelines` pipeline: `organization`, `project`,
    /// `pipeline_id`, `branch`, `parameters`.
    fn azure(self, at: &str) -> Result<AzurePipelines, ConfigError> {
        let field = |f: &str| format!("{at}.{f}");
        let organization = required(
            self.organization,
            &field("organization"),
            "organization",
            "the Azure DevOps organization, as in https://dev.azure.com/<organization>",
        )?;
        if !is_azure_organization(&organization) {
            return Err(invalid(
                field("organization"),
                format!(
                    "{organization:?} is not an Azure DevOps organization name (letters, digits and `-`, not at either end, at most 50)"
                ),
            ));
        }
        let project = required(
            self.project,
            &field("project"),
            "project",
            "the project that holds the pipeline",
        )?;
        if !is_azure_project(&project) {
            return Err(invalid(
                field("project"),
                format!(
                    "{project:?} is not an Azure DevOps project name (1 to 64 characters, none of {AZURE_PROJECT_FORBIDDEN:?}, not starting with `_` or `.`, not ending with `.`)"
                ),
            ));
        }
        let pipeline_id = required(
            self.pipeline_id,
            &field("pipeline_id"),
            "pipeline_id",
            "the pipeline's number (definitionId in its web address)",
        )?;
        if pipeline_id == 0 {
            return Err(invalid(
                field("pipeline_id"),
                "must be the pipeline's number (definitionId in its web address), which starts at 1",
            ));
        }
        let branch = self.branch.unwrap_or_else(|| DEFAULT_REF.into());
        let branch = branch.trim();
        if let Err(rule) = check_ref_format(branch) {
            return Err(invalid(
                field("branch"),
                format!(
                    "{branch:?} is not a git ref ({rule}); name a branch, e.g. \"main\" (or a full ref such as \"refs/tags/v1\")"
                ),
            ));
        }
        let parameters = self.parameters.unwrap_or_default();
        check_extras(&field("parameters"), &parameters, "parameter")?;
        Ok(AzurePipelines {
            organization,
            project,
            pipeline_id,
            branch: branch.to_string(),
            parameters,
        })
    }
}

/// A GitHub workflow as the dispatch API's path names it: a file name such
/// as `build.yml` or a numeric id. The value becomes one segment of an API
/// path sent with the worker's token, so nothing that could leave that
/// segment or start a query or fragment is accepted.
fn is_workflow_name(s: &str) -> bool {
    !s.is_empty()
        && !s.contains("..")
        && !s.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '/' | '\\' | '?' | '#' | '%')
        })
}

/// Git's `check-ref-format` rules for a ref name (a branch such as `main`,
/// or a full `refs/...` name): what git itself would refuse, and what a
/// ref could use to mean something other than one ref, is refused here,
/// with the rule it breaks.
fn check_ref_format(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name == "@" {
        return Err("it may not be `@` alone");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c))
    {
        return Err("it may not contain spaces, control characters or any of ~ ^ : ? * [ \\");
    }
    if name.contains("..") {
        return Err("it may not contain `..`");
    }
    if name.contains("@{") {
        return Err("it may not contain `@{`");
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err("it may not start or end with `/` or contain `//`");
    }
    if name.ends_with('.') {
        return Err("it may not end with `.`");
    }
    for part in name.split('/') {
        if part.starts_with('.') {
            return Err("no part between slashes may start with `.`");
        }
        if part.ends_with(".lock") {
            return Err("no part between slashes may end with `.lock`");
        }
    }
    Ok(())
}

/// A field the pipeline's kind needs: missing, it is refused naming the
/// field and what it should hold.
fn required<T>(value: Option<T>, path: &str, name: &str, what: &str) -> Result<T, ConfigError> {
    value.ok_or_else(|| invalid(path, format!("missing field `{name}`: {what}")))
}

/// Checks extra inputs or parameters: named, and none of baton's own.
fn check_extras(
    path: &str,
    extras: &BTreeMap<String, String>,
    what: &str,
) -> Result<(), ConfigError> {
    for key in extras.keys() {
        let path = format!("{path}.{}", toml_key(key));
        if key.trim().is_empty() {
            return Err(invalid(path, format!("{what} names must not be empty")));
        }
        if BATON_INPUTS.contains(&key.as_str()) {
            return Err(invalid(
                path,
                format!("{key:?} is one of baton's own {what}s and is always sent; remove it"),
            ));
        }
    }
    Ok(())
}

/// Characters Azure DevOps does not allow in a project name.
const AZURE_PROJECT_FORBIDDEN: &str = "\\/:*?\"<>|;#$*{},+=[]%&'@~`^";

/// Azure DevOps organization names: letters, digits and `-`, neither end a
/// `-`, at most 50 characters.
fn is_azure_organization(s: &str) -> bool {
    (1..=50).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Azure DevOps project names: 1 to 64 characters, no control characters
/// and none of [`AZURE_PROJECT_FORBIDDEN`], not starting with `_` or `.`,
/// not ending with `.`; spaces are allowed (API paths escape them).
fn is_azure_project(s: &str) -> bool {
    (1..=64).contains(&s.chars().count())
        && s.trim() == s
        && !s.starts_with(['_', '.'])
        && !s.ends_with('.')
        && !s
            .chars()
            .any(|c| c.is_control() || AZURE_PROJECT_FORBIDDEN.contains(c))
}

/// Azure DevOps service hooks name a run's pipeline by its id alone, so two
/// Azure pipelines with one id in different projects could not be told
/// apart when their runs report back: such a config is refused.
fn check_azure_ids_distinct<'a>(
    cmd: &CommandConfig,
    earlier: impl Iterator<Item = &'a CommandConfig>,
) -> Result<(), ConfigError> {
    let Some(mine) = cmd.pipeline.azure() else {
        return Ok(());
    };
    for other in earlier {
        let Some(theirs) = other.pipeline.azure() else {
            continue;
        };
        let same_id = theirs.pipeline_id == mine.pipeline_id;
        let same_project = theirs.organization.eq_ignore_ascii_case(&mine.organization)
            && theirs.project.eq_ignore_ascii_case(&mine.project);
        if same_id && !same_project {
            return Err(invalid(
                format!("commands.{}.pipeline.pipeline_id", toml_key(&cmd.name)),
                format!(
                    "pipeline {} of {} has the same id as the pipeline of commands.{} in {}; Azure DevOps service hooks name a run's pipeline by id alone, so their runs could not be told apart",
                    mine.pipeline_id,
                    mine.project_path(),
                    toml_key(&other.name),
                    theirs.project_path()
                ),
            ));
        }
    }
    Ok(())
}

/// A lock key joins the command, component and environment with `-`, which
/// names may contain too: `/a` on `b-c` and `/a-b` on `c` would share one
/// lock, and `status` could not tell whose it is. Such a config is refused,
/// naming both runs. Runs that share a key by their command's own scope
/// (`/build router dev` and `/build router plt` under `component`) are one
/// entry of [`CommandConfig::lock_keys`] and meet no other here.
fn check_lock_keys_distinct<'a>(
    commands: impl Iterator<Item = &'a CommandConfig>,
) -> Result<(), ConfigError> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for cmd in commands {
        for (key, runs) in cmd.lock_keys() {
            if let Some(earlier) = seen.get(&key) {
                let at = format!("commands.{}", toml_key(&cmd.name));
                let path = match cmd.lock_scope {
                    LockScope::ComponentEnvironment | LockScope::Component => {
                        format!("{at}.components")
                    }
                    LockScope::Environment => format!("{at}.environments"),
                    LockScope::Command => at,
                };
                return Err(invalid(
                    path,
                    format!(
                        "`{runs}` and `{earlier}` would take the same lock {key:?}: a lock key joins command, component and environment with `-`; rename a component, environment or command so every lock key is distinct"
                    ),
                ));
            }
            seen.insert(key, runs);
        }
    }
    Ok(())
}

fn check_names(path: &str, names: Vec<String>, what: &str) -> Result<Vec<String>, ConfigError> {
    if names.is_empty() {
        return Err(invalid(path, format!("list at least one {what}")));
    }
    let mut seen: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if !is_identifier(&name) {
            return Err(invalid(
                path,
                format!("{what} {name:?} must match [a-z0-9][a-z0-9_.-]* (lowercase, no spaces)"),
            ));
        }
        if RESERVED_WORDS.contains(&name.as_str()) {
            return Err(invalid(
                path,
                format!(
                    "{what} {name:?} is a command word ({}); rename it",
                    RESERVED_WORDS.join(", ")
                ),
            ));
        }
        if seen.contains(&name) {
            return Err(invalid(path, format!("{what} {name:?} is listed twice")));
        }
        seen.push(name);
    }
    Ok(seen)
}

fn check_user_ids(path: &str, users: &[String]) -> Result<(), ConfigError> {
    for user in users {
        if user.is_empty() || !user.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid(
                path,
                format!(
                    "{user:?} is not a Slack user id (like \"U0123ABCD\") or user group id (like \"S0123ABCD\")"
                ),
            ));
        }
    }
    Ok(())
}

/// Checks Slack ids of one kind: an upper-case letter from `prefixes` and
/// upper-case letters or digits after it, as Slack writes them, so a
/// channel name or a workspace domain is refused rather than never matched.
fn check_slack_ids(
    path: &str,
    ids: &[String],
    prefixes: &[char],
    what: &str,
) -> Result<(), ConfigError> {
    for id in ids {
        let mut chars = id.chars();
        let ok = chars.next().is_some_and(|c| prefixes.contains(&c))
            && id.len() >= 2
            && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !ok {
            return Err(invalid(path, format!("{id:?} is not {what}")));
        }
    }
    Ok(())
}

/// Turns a TOML/serde error into a [`ConfigError::Syntax`] with the line and
/// column where the TOML reader located it and the field `path`, if known.
fn syntax_error(source: &str, path: Option<String>, err: &toml::de::Error) -> ConfigError {
    let (line, column) = err.span().map_or((1, 1), |span| {
        let start = source.floor_char_boundary(span.start);
        let before = &source[..start];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        (line, source[line_start..start].chars().count() + 1)
    });
    ConfigError::Syntax {
        path,
        line,
        column,
        message: err.message().trim().to_string(),
    }
}

/// A serde path written the way the file writes it, e.g.
/// `commands."/build".components[1]`; `None` for the document itself.
fn toml_path(path: &Path) -> Option<String> {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&toml_key(key));
            }
            Segment::Unknown => out.push_str(if out.is_empty() { "?" } else { ".?" }),
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_only() -> String {
        r#"
[commands."/build"]
lock_ttl = "10m"
components = ["router", "api", "web"]
environments = ["dev", "plt", "prod"]
unlock_users = ["U0ADMIN"]
[commands."/build".allowed_users]
prod = ["U0ADMIN"]
[commands."/build".pipeline]
repo = "acme/platform"
workflow = "build.yml"
"#
        .to_string()
    }

    fn err(source: &str) -> ConfigError {
        match Config::from_toml_str(source) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e,
        }
    }

    fn err_text(source: &str) -> String {
        err(source).to_string()
    }

    #[test]
    fn builtin_matches_the_seed() {
        let c = Config::builtin();
        assert_eq!(c.command_names(), vec!["/build", "/deploy"]);
        let build = c.command("/build").unwrap();
        let deploy = c.command("/deploy").unwrap();
        assert_eq!(build.lock_ttl, Duration::from_secs(600));
        assert_eq!(deploy.lock_ttl, Duration::from_secs(1800));
        assert_eq!(deploy.lock_ttl_display(), "30m");
        assert_eq!(build.lock_scope, LockScope::ComponentEnvironment);
        assert!(build.requires_lock && deploy.requires_lock);
        assert_eq!(build.components, vec!["router", "api", "web"]);
        assert_eq!(deploy.environments, vec!["dev", "plt", "prod"]);
        assert_eq!(build.pipeline.repository(), "acme/platform");
        assert_eq!(
            (build.pipeline.workflow(), deploy.pipeline.workflow()),
            ("build.yml".to_string(), "deploy.yml".to_string())
        );
        assert_eq!(build.pipeline.kind(), PipelineKind::GitHubActions);
        assert_eq!(build.pipeline.github().unwrap().git_ref, "main");
        assert!(build.unlock_users.is_empty() && build.allowed_users.is_empty());
        assert_eq!(
            build.lock_key(&Target::new("/build", "router", "plt")),
            "build-router-plt"
        );
        assert_eq!(
            deploy.lock_key(&Target::new("/deploy", "api", "prod")),
            "deploy-api-prod"
        );
        assert!(c.command("/echo").is_none());
    }

    #[test]
    fn defaults_apply() {
        let c = Config::from_toml_str(&build_only()).unwrap();
        let b = c.command("/build").unwrap();
        assert!(b.requires_lock);
        assert_eq!(b.lock_scope, LockScope::ComponentEnvironment);
        assert_eq!(b.on_conflict, OnConflict::Reject);
        let PipelineConfig::GitHubActions(g) = &b.pipeline else {
            panic!("the default kind is github-actions: {:?}", b.pipeline);
        };
        assert_eq!(g.git_ref, "main");
        assert_eq!(g.repository(), "acme/platform");
        assert!(g.inputs.is_empty());
    }

    #[test]
    fn lock_key_per_scope() {
        let mut b = Config::builtin().command("/build").unwrap().clone();
        let cases = [
            (LockScope::ComponentEnvironment, "build-router-plt"),
            (LockScope::Component, "build-router"),
            (LockScope::Environment, "build-plt"),
            (LockScope::Command, "build"),
        ];
        for (scope, want) in cases {
            b.lock_scope = scope;
            assert_eq!(
                b.lock_key(&Target::new("/build", "Router", "PLT")),
                want,
                "{scope:?}"
            );
        }
    }

    #[test]
    fn scope_names_parse() {
        let src = build_only().replace("lock_ttl", "lock_scope = \"environment\"\nlock_ttl");
        let c = Config::from_toml_str(&src).unwrap();
        assert_eq!(
            c.command("/build").unwrap().lock_scope,
            LockScope::Environment
        );
        let src = build_only().replace("lock_ttl", "lock_scope = \"team\"\nlock_ttl");
        let e = err_text(&src);
        assert!(
            e.starts_with(r#"commands."/build".lock_scope: line 3, column 14: unknown variant `team`, expected one of"#),
            "{e}"
        );
        for known in [
            "component-environment",
            "component",
            "environment",
            "command",
        ] {
            assert!(e.contains(&format!("`{known}`")), "{e}");
        }
    }

    #[test]
    fn bad_ttl_names_field() {
        let e = err_text(&build_only().replace("\"10m\"", "\"30\""));
        assert!(
            e.starts_with(r#"commands."/build".lock_ttl: invalid duration "30""#),
            "{e}"
        );
        let e = err_text(&build_only().replace("\"10m\"", "\"half an hour\""));
        assert!(
            e.starts_with(r#"commands."/build".lock_ttl: invalid duration"#),
            "{e}"
        );
    }

    #[test]
    fn ttl_out_of_range() {
        for ttl in ["30s", "13h", "0s"] {
            let e = err_text(&build_only().replace("\"10m\"", &format!("{ttl:?}")));
            assert!(e.starts_with(r#"commands."/build".lock_ttl: "#), "{e}");
            assert!(e.contains("between 1m and 12h"), "{e}");
        }
        for ttl in ["1m", "12h", "1h 30m"] {
            let src = build_only().replace("\"10m\"", &format!("{ttl:?}"));
            assert!(Config::from_toml_str(&src).is_ok(), "{ttl}");
        }
    }

    #[test]
    fn unknown_key_is_rejected_with_path() {
        let e = err(&build_only().replace("lock_ttl", "lock_tll = \"1m\"\nlock_ttl"));
        let ConfigError::Syntax {
            path,
            line,
            message,
            ..
        } = &e
        else {
            panic!("expected a syntax error, got {e:?}");
        };
        assert_eq!(path.as_deref(), Some(r#"commands."/build".lock_tll"#));
        assert_eq!(*line, 3);
        assert!(message.contains("unknown field `lock_tll`"), "{message}");

        let e = err_text(&build_only().replace("workflow =", "brnach = \"x\"\nworkflow ="));
        assert!(
            e.starts_with(r#"commands."/build".pipeline.brnach: line "#),
            "{e}"
        );
        assert!(e.contains("unknown field `brnach`"), "{e}");

        let e = err_text(&format!("verbose = true\n{}", build_only()));
        assert!(e.contains("unknown field `verbose`"), "{e}");
    }

    #[test]
    fn wrong_type_and_missing_field_are_located() {
        let e = err_text(&build_only().replace("\"10m\"", "10"));
        assert!(
            e.starts_with(r#"commands."/build".lock_ttl: line 3"#),
            "{e}"
        );
        let e = err_text(&build_only().replace("workflow = \"build.yml\"\n", ""));
        assert!(e.contains("missing field `workflow`"), "{e}");
        assert!(e.contains(r#"commands."/build".pipeline"#), "{e}");
        let e = err_text("[commands.\n");
        assert!(e.contains("line 1"), "{e}");
        let e = err_text(&build_only().replace("\"api\"", "3"));
        assert!(
            e.starts_with(r#"commands."/build".components[1]: line 4"#)
                && e.contains("invalid type: integer `3`, expected a string"),
            "{e}"
        );
    }

    #[test]
    fn on_conflict_names_the_three_policies_and_the_line_limits() {
        let with = |extra: &str| build_only().replace("lock_ttl", &format!("{extra}\nlock_ttl"));
        let c = Config::from_toml_str(&with("on_conflict = \"queue\"")).unwrap();
        let build = c.command("/build").unwrap();
        assert_eq!(build.on_conflict, OnConflict::Queue);
        assert_eq!(
            (build.max_wait, build.max_queue),
            (DEFAULT_MAX_WAIT, DEFAULT_MAX_QUEUE)
        );
        let c = Config::from_toml_str(&with(
            "on_conflict = \"queue-latest\"\nmax_wait = \"20m\"\nmax_queue = 3",
        ))
        .unwrap();
        let build = c.command("/build").unwrap();
        assert_eq!(build.on_conflict, OnConflict::QueueLatest);
        assert_eq!(build.max_wait, Duration::from_secs(20 * 60));
        assert_eq!(build.max_queue, 3);
        let e = err_text(&with("on_conflict = \"wait\""));
        assert!(
            e.starts_with(r#"commands."/build".on_conflict: line 3"#)
                && e.ends_with(
                    "unknown variant `wait`, expected one of `reject`, `queue`, `queue-latest`"
                ),
            "{e}"
        );
        assert_eq!(
            err_text(&with("max_wait = \"2d\"")),
            r#"commands."/build".max_wait: "2d" is not a duration between 1m and 24h, e.g. "1h""#
        );
        assert_eq!(
            err_text(&with("max_queue = 0")),
            r#"commands."/build".max_queue: 0 is out of range; a line holds 1 to 100 requests"#
        );
        let c = Config::from_toml_str(&build_only()).unwrap();
        assert_eq!(c.command("/build").unwrap().on_conflict, OnConflict::Reject);
    }

    #[test]
    fn allowed_users_env_must_be_listed() {
        let e = err_text(&build_only().replace("prod = [", "staging = ["));
        assert!(
            e.starts_with(
                r#"commands."/build".allowed_users.staging: environment "staging" is not in"#
            ),
            "{e}"
        );
        assert!(e.contains("dev, plt, prod"), "{e}");
    }

    #[test]
    fn too_many_inputs() {
        let mut src = build_only();
        src.push_str("[commands.\"/build\".pipeline.inputs]\n");
        for i in 0..19 {
            src.push_str(&format!("extra{i} = \"v\"\n"));
        }
        let c = Config::from_toml_str(&src).unwrap();
        assert_eq!(
            c.command("/build").unwrap().pipeline.extra_inputs().len(),
            19
        );
        src.push_str("extra19 = \"v\"\n");
        let e = err_text(&src);
        assert!(
            e.starts_with(r#"commands."/build".pipeline.inputs: 20 extra inputs"#),
            "{e}"
        );
        assert!(e.contains("at most 25"), "{e}");
    }

    #[test]
    fn input_may_not_shadow_baton_inputs() {
        let mut src = build_only();
        src.push_str("[commands.\"/build\".pipeline.inputs]\nfence = \"1\"\n");
        let e = err_text(&src);
        assert!(
            e.starts_with(r#"commands."/build".pipeline.inputs.fence: "#),
            "{e}"
        );
    }

    #[test]
    fn command_names_need_a_slash() {
        let e = err_text(&build_only().replace("\"/build\"", "\"build\""));
        assert!(
            e.starts_with("commands.build: command name \"build\" must start with `/`"),
            "{e}"
        );
        let e = err_text(&build_only().replace("\"/build\"", "\"/\""));
        assert!(e.contains("must start with `/` followed by a name"), "{e}");
    }

    #[test]
    fn component_and_environment_names_are_checked() {
        let e = err_text(&build_only().replace("[\"router\", \"api\", \"web\"]", "[]"));
        assert_eq!(
            e,
            r#"commands."/build".components: list at least one component"#
        );
        let e = err_text(&build_only().replace("\"router\"", "\"Router\""));
        assert!(
            e.starts_with(r#"commands."/build".components: component "Router" must match"#),
            "{e}"
        );
        let e = err_text(&build_only().replace("\"dev\"", "\"status\""));
        assert!(e.contains("command word"), "{e}");
        let e = err_text(&build_only().replace("\"dev\"", "\"plt\""));
        assert!(e.contains("listed twice"), "{e}");
    }

    #[test]
    fn repo_workflow_and_users_are_checked() {
        let e = err_text(&build_only().replace("acme/platform", "platform"));
        assert!(
            e.starts_with(r#"commands."/build".pipeline.repo: "platform""#),
            "{e}"
        );
        let e = err_text(&build_only().replace("acme/platform", "acme/plat/form"));
        assert!(e.contains("owner/name"), "{e}");
        let e = err_text(&build_only().replace("\"build.yml\"", "\"\""));
        assert!(
            e.starts_with(r#"commands."/build".pipeline.workflow: "#),
            "{e}"
        );
        let e = err_text(
            &build_only().replace("unlock_users = [\"U0ADMIN\"]", "unlock_users = [\"@ann\"]"),
        );
        assert!(
            e.starts_with(r#"commands."/build".unlock_users: "@ann""#),
            "{e}"
        );
    }

    #[test]
    fn empty_config_is_rejected() {
        assert!(err_text("").starts_with("commands: no commands"));
    }

    #[test]
    fn permissions() {
        let c = Config::from_toml_str(&build_only()).unwrap();
        let b = c.command("/build").unwrap();
        assert!(b.user_may_run("U1", "plt"), "unlisted env is open");
        assert!(!b.user_may_run("U1", "prod"));
        assert!(b.user_may_run("U0ADMIN", "prod"));
        assert!(b.user_may_unlock("U0ADMIN"));
        assert!(!b.user_may_unlock("U1"));
        assert!(
            !Config::builtin()
                .command("/build")
                .unwrap()
                .user_may_unlock("U0ADMIN")
        );
    }

    #[test]
    fn builtin_protects_prod_and_leaves_the_rest_open() {
        let c = Config::builtin();
        assert!(c.allowed_teams().is_empty(), "any workspace until listed");
        for name in ["/build", "/deploy"] {
            let cmd = c.command(name).unwrap();
            assert_eq!(cmd.protected_environments, vec!["prod"], "{name}");
            assert!(!cmd.user_may_run("U0ANYONE", "prod"), "{name} prod");
            assert!(cmd.user_may_run("U0ANYONE", "plt"), "{name} plt");
            assert!(cmd.user_may_run("U0ANYONE", "dev"), "{name} dev");
            assert!(cmd.channel_allowed("C0ANY"), "no channel list");
        }
    }

    #[test]
    fn a_protected_environment_admits_only_its_list() {
        let src = build_only().replace(
            "unlock_users = [\"U0ADMIN\"]",
            "unlock_users = [\"U0ADMIN\"]\nprotected_environments = [\"prod\", \"plt\"]",
        );
        let c = Config::from_toml_str(&src).unwrap();
        let b = c.command("/build").unwrap();
        assert!(b.user_may_run("U0ADMIN", "prod"), "listed");
        assert!(!b.user_may_run("U1", "prod"), "not listed");
        assert!(!b.user_may_run("U0ADMIN", "plt"), "protected, no list");
        assert!(b.user_may_run("U1", "dev"), "unprotected, no list");
    }

    #[test]
    fn user_groups_admit_their_members_once_known() {
        let src = build_only()
            .replace("prod = [\"U0ADMIN\"]", "prod = [\"U0ADMIN\", \"S0OPS\"]")
            .replace(
                "unlock_users = [\"U0ADMIN\"]",
                "unlock_users = [\"S0ADMINS\"]",
            );
        let c = Config::from_toml_str(&src).unwrap();
        let b = c.command("/build").unwrap();
        assert_eq!(
            b.groups().into_iter().collect::<Vec<_>>(),
            vec!["S0ADMINS", "S0OPS"]
        );
        let member = Membership::Known(["S0OPS".to_string()].into());
        assert!(b.user_may_run_as("U1", "prod", &member));
        assert!(!b.user_may_run_as("U1", "prod", &Membership::none()));
        assert!(
            !b.user_may_run("U1", "prod"),
            "ids only: a group admits no one"
        );
        assert!(
            b.user_may_run_as("U1", "prod", &Membership::Unresolved),
            "provisional"
        );
        assert!(b.user_may_run("U0ADMIN", "prod"), "listed ids still count");
        assert!(!b.user_may_unlock_as("U1", &member));
        let admin = Membership::Known(["S0ADMINS".to_string()].into());
        assert!(b.user_may_unlock_as("U1", &admin));
        assert!(is_group_id("S0OPS") && !is_group_id("U0OPS"));
    }

    #[test]
    fn teams_and_channels_restrict_and_are_checked_by_field() {
        let src = format!(
            "allowed_teams = [\"T0ACME\", \"E0GRID\"]\n{}",
            build_only().replace(
                "unlock_users =",
                "allowed_channels = [\"C0BUILDS\", \"G0PRIVATE\"]\nunlock_users ="
            )
        );
        let c = Config::from_toml_str(&src).unwrap();
        assert!(c.team_allowed("T0ACME", None));
        assert!(
            c.team_allowed("T0OTHER", Some("E0GRID")),
            "a grid's workspace"
        );
        assert!(!c.team_allowed("T0OTHER", None));
        assert!(!c.team_allowed("T0OTHER", Some("E0ELSE")));
        let b = c.command("/build").unwrap();
        assert!(b.channel_allowed("C0BUILDS") && b.channel_allowed("G0PRIVATE"));
        assert!(!b.channel_allowed("C0RANDOM"));

        for bad in ["acme", "U0ACME", "t0acme", "T", "T0 ACME", ""] {
            let e = err_text(&format!(
                "allowed_teams = [{}]\n{}",
                quoted(bad),
                build_only()
            ));
            assert!(
                e.starts_with(&format!("allowed_teams: {bad:?} is not a Slack workspace")),
                "{bad:?}: {e}"
            );
        }
        for bad in ["#builds", "builds", "U0X", "D0DM", "c0lower"] {
            let e = err_text(&build_only().replace(
                "unlock_users =",
                &format!("allowed_channels = [{}]\nunlock_users =", quoted(bad)),
            ));
            assert!(
                e.starts_with(&format!(
                    "commands.\"/build\".allowed_channels: {bad:?} is not a Slack channel id"
                )),
                "{bad:?}: {e}"
            );
        }
        let e = err_text(&build_only().replace(
            "unlock_users =",
            "protected_environments = [\"production\"]\nunlock_users =",
        ));
        assert!(
            e.starts_with(
                r#"commands."/build".protected_environments: environment "production" is not in commands."/build".environments"#
            ),
            "{e}"
        );
    }

    fn azure_deploy() -> String {
        r#"
[commands."/deploy"]
lock_ttl = "30m"
components = ["api"]
environments = ["prod"]
[commands."/deploy".pipeline]
kind = "azure-pipelines"
organization = "acme"
project = "Platform Team"
pipeline_id = 42
[commands."/deploy".pipeline.parameters]
notify = "true"
"#
        .to_string()
    }

    #[test]
    fn azure_pipeline_reads_into_its_own_variant() {
        let c = Config::from_toml_str(&azure_deploy()).unwrap();
        let d = c.command("/deploy").unwrap();
        assert_eq!(d.pipeline.kind(), PipelineKind::AzurePipelines);
        let PipelineConfig::AzurePipelines(a) = &d.pipeline else {
            panic!("expected an Azure pipeline, got {:?}", d.pipeline);
        };
        assert_eq!(
            (a.organization.as_str(), a.project.as_str(), a.pipeline_id),
            ("acme", "Platform Team", 42)
        );
        assert_eq!(a.branch, "main", "branch defaults to main");
        assert_eq!(a.ref_name(), "refs/heads/main");
        assert_eq!(a.parameters.get("notify").map(String::as_str), Some("true"));
        assert_eq!(d.pipeline.repository(), "azure-devops:acme/Platform Team");
        assert_eq!(d.pipeline.workflow(), "42");
        assert!(d.pipeline.github().is_none());

        let tagged = azure_deploy().replace(
            "pipeline_id = 42",
            "pipeline_id = 42\nbranch = \"refs/tags/v1\"",
        );
        let c = Config::from_toml_str(&tagged).unwrap();
        let a = c
            .command("/deploy")
            .unwrap()
            .pipeline
            .azure()
            .unwrap()
            .clone();
        assert_eq!(a.ref_name(), "refs/tags/v1");

        let explicit = build_only().replace("repo =", "kind = \"github-actions\"\nrepo =");
        assert_eq!(
            Config::from_toml_str(&explicit).unwrap(),
            Config::from_toml_str(&build_only()).unwrap()
        );
    }

    #[test]
    fn kind_names_are_the_config_names() {
        assert_eq!(PipelineKind::GitHubActions.as_str(), "github-actions");
        assert_eq!(PipelineKind::AzurePipelines.as_str(), "azure-pipelines");
    }

    #[test]
    fn unknown_pipeline_kind_names_the_field_and_the_kinds() {
        let e = err_text(&azure_deploy().replace("\"azure-pipelines\"", "\"jenkins\""));
        assert!(
            e.starts_with(
                r#"commands."/deploy".pipeline.kind: line 7, column 8: unknown variant `jenkins`"#
            ),
            "{e}"
        );
        assert!(
            e.contains("`github-actions`") && e.contains("`azure-pipelines`"),
            "{e}"
        );
    }

    #[test]
    fn azure_fields_are_required_and_checked_by_name() {
        let e = err_text(&azure_deploy().replace("organization = \"acme\"\n", ""));
        assert_eq!(
            e,
            r#"commands."/deploy".pipeline.organization: missing field `organization`: the Azure DevOps organization, as in https://dev.azure.com/<organization>"#
        );
        let e = err_text(&azure_deploy().replace("project = \"Platform Team\"\n", ""));
        assert!(
            e.starts_with(r#"commands."/deploy".pipeline.project: missing field `project`"#),
            "{e}"
        );
        let e = err_text(&azure_deploy().replace("pipeline_id = 42\n", ""));
        assert!(
            e.starts_with(
                r#"commands."/deploy".pipeline.pipeline_id: missing field `pipeline_id`"#
            ),
            "{e}"
        );
        let e = err_text(&azure_deploy().replace("pipeline_id = 42", "pipeline_id = \"42\""));
        assert!(
            e.starts_with(r#"commands."/deploy".pipeline.pipeline_id: line "#)
                && e.contains("expected u64"),
            "{e}"
        );
        let e = err_text(&azure_deploy().replace("pipeline_id = 42", "pipeline_id = 0"));
        assert!(
            e.starts_with(r#"commands."/deploy".pipeline.pipeline_id: must be"#),
            "{e}"
        );
        let e = err_text(&azure_deploy().replace("\"acme\"", "\"acme corp\""));
        assert!(
            e.starts_with(r#"commands."/deploy".pipeline.organization: "acme corp" is not"#),
            "{e}"
        );
        let e = err_text(&azure_deploy().replace("Platform Team", "Platform/Team"));
        assert!(
            e.starts_with(r#"commands."/deploy".pipeline.project: "Platform/Team" is not"#),
            "{e}"
        );
        let e = err_text(&azure_deploy().replace(
            "pipeline_id = 42",
            "pipeline_id = 42\nbranch = \"my branch\"",
        ));
        assert!(
            e.starts_with(r#"commands."/deploy".pipeline.branch: "#),
            "{e}"
        );
        let e = err_text(&azure_deploy().replace("notify = ", "lock_id = "));
        assert!(
            e.starts_with(r#"commands."/deploy".pipeline.parameters.lock_id: "#)
                && e.contains("baton's own parameters"),
            "{e}"
        );
    }

    #[test]
    fn one_kinds_fields_are_refused_on_the_other() {
        let e = err_text(
            &azure_deploy().replace("pipeline_id = 42", "pipeline_id = 42\nworkflow = \"x.yml\""),
        );
        assert_eq!(
            e,
            r#"commands."/deploy".pipeline.workflow: `workflow` belongs to github-actions pipelines, but this pipeline's kind is "azure-pipelines""#
        );
        let e =
            err_text(&build_only().replace("workflow =", "organization = \"acme\"\nworkflow ="));
        assert!(
            e.starts_with(r#"commands."/build".pipeline.organization: `organization` belongs to azure-pipelines pipelines"#)
                && e.contains("set kind = \"azure-pipelines\""),
            "{e}"
        );
        let e = err_text(&build_only().replace("workflow =", "branch = \"x\"\nworkflow ="));
        assert!(
            e.starts_with(r#"commands."/build".pipeline.branch: "#),
            "{e}"
        );
    }

    #[test]
    fn azure_pipeline_ids_must_tell_runs_apart() {
        let same = format!(
            "{}{}",
            azure_deploy(),
            azure_deploy().replace("/deploy", "/build")
        );
        assert!(
            Config::from_toml_str(&same).is_ok(),
            "one pipeline, two commands"
        );
        let clash = format!(
            "{}{}",
            azure_deploy(),
            azure_deploy()
                .replace("/deploy", "/build")
                .replace("Platform Team", "Other")
        );
        let e = err_text(&clash);
        assert!(
            e.starts_with(r#"commands."/deploy".pipeline.pipeline_id: pipeline 42 of acme/Platform Team has the same id"#)
                && e.contains("acme/Other"),
            "{e}"
        );
    }

    /// `s` as a TOML basic string (Rust's `{:?}` writes `\u{7}`, which TOML
    /// does not read).
    fn quoted(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    fn command(name: &str, scope: &str, components: &str, environments: &str) -> String {
        format!(
            r#"
[commands."{name}"]
lock_ttl = "10m"
lock_scope = "{scope}"
components = [{components}]
environments = [{environments}]
[commands."{name}".pipeline]
repo = "acme/platform"
workflow = "build.yml"
"#
        )
    }

    #[test]
    fn two_commands_whose_keys_would_meet_are_refused_naming_both_runs() {
        let src = format!(
            "{}{}",
            command("/a", "component-environment", "\"b-c\"", "\"x\""),
            command("/a-b", "component-environment", "\"c\"", "\"x\"")
        );
        assert_eq!(
            err_text(&src),
            r#"commands."/a-b".components: `/a-b c x` and `/a b-c x` would take the same lock "a-b-c-x": a lock key joins command, component and environment with `-`; rename a component, environment or command so every lock key is distinct"#
        );
    }

    #[test]
    fn one_commands_targets_whose_keys_would_meet_are_refused() {
        let src = command(
            "/deploy",
            "component-environment",
            "\"a\", \"a-b\"",
            "\"b-c\", \"c\"",
        );
        let e = err_text(&src);
        assert!(
            e.starts_with(r#"commands."/deploy".components: `/deploy a-b c` and `/deploy a b-c` would take the same lock "deploy-a-b-c""#),
            "{e}"
        );
    }

    #[test]
    fn keys_meet_across_scopes_too() {
        // `/a` per environment `b` takes `a-b`; `/a-b` per command takes `a-b`.
        let src = format!(
            "{}{}",
            command("/a", "environment", "\"web\"", "\"b\""),
            command("/a-b", "command", "\"web\"", "\"dev\"")
        );
        let e = err_text(&src);
        assert!(
            e.starts_with(r#"commands."/a-b": `/a-b (every target)` and `/a (every component) b` would take the same lock "a-b""#),
            "{e}"
        );
        let src = format!(
            "{}{}",
            command("/a", "component", "\"b-web\"", "\"dev\""),
            command("/a-b", "environment", "\"api\"", "\"web\"")
        );
        let e = err_text(&src);
        assert!(
            e.starts_with(r#"commands."/a-b".environments: `/a-b (every component) web` and `/a b-web (every environment)`"#),
            "{e}"
        );
    }

    #[test]
    fn prefixes_that_never_meet_are_accepted_and_keys_stay_as_they_were() {
        let src = format!(
            "{}{}",
            command("/build", "component-environment", "\"api\"", "\"dev\""),
            command("/build-x", "component-environment", "\"api\"", "\"dev\"")
        );
        let c = Config::from_toml_str(&src).unwrap();
        let (build, build_x) = (c.command("/build").unwrap(), c.command("/build-x").unwrap());
        assert_eq!(
            build.lock_keys(),
            vec![("build-api-dev".to_string(), "/build api dev".to_string())]
        );
        assert!(build.owns_key("build-api-dev"));
        assert!(!build.owns_key("build-x-api-dev"), "a key of /build-x");
        assert!(build_x.owns_key("build-x-api-dev"));
        assert!(!build_x.owns_key("build-api-dev"));
        assert!(!build.owns_key("build") && !build.owns_key("build-api"));
        assert!(build.owns_key("build-api-dev#test"), "a --test run's key");
        assert!(!build.owns_key("build-x-api-dev#test"));
        // Runs that share a lock by their own scope are one entry, not a clash.
        let c = Config::from_toml_str(&command(
            "/build",
            "component",
            "\"api\"",
            "\"dev\", \"prod\"",
        ))
        .unwrap();
        let build = c.command("/build").unwrap();
        assert_eq!(build.lock_keys().len(), 1);
        assert!(build.owns_key("build-api") && !build.owns_key("build-api-dev"));
        assert!(Config::from_toml_str(Config::BUILTIN_TOML).is_ok());
    }

    #[test]
    fn workflow_must_be_a_file_name_or_id() {
        for good in ["build.yml", "deploy.yaml", "123456", "my_flow-2.yml"] {
            let src = build_only().replace("\"build.yml\"", &quoted(good));
            let c = Config::from_toml_str(&src).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(c.command("/build").unwrap().pipeline.workflow(), good);
        }
        for bad in [
            "../../../../user",
            "a/b.yml",
            "build.yml?x=1",
            "build.yml#x",
            "..",
            "build%2Fx.yml",
            "a\\b.yml",
            "build .yml",
            "build\u{7}.yml",
        ] {
            let src = build_only().replace("\"build.yml\"", &quoted(bad));
            let e = err_text(&src);
            assert!(
                e.starts_with(r#"commands."/build".pipeline.workflow: "#)
                    && e.contains("is not a workflow"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn ref_follows_git_check_ref_format() {
        let with_ref = |r: &str| {
            build_only().replace("workflow =", &format!("ref = {}\nworkflow =", quoted(r)))
        };
        for good in [
            "main",
            "release/1.2",
            "refs/heads/main",
            "refs/tags/v1.0.0",
            "feature/a-b_c",
            "0123abcd",
        ] {
            let c =
                Config::from_toml_str(&with_ref(good)).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(
                c.command("/build")
                    .unwrap()
                    .pipeline
                    .github()
                    .unwrap()
                    .git_ref,
                good
            );
        }
        for (bad, rule) in [
            ("", "empty"),
            ("@", "`@` alone"),
            ("a..b", "`..`"),
            ("../main", "`..`"),
            ("main~1", "~ ^ :"),
            ("main^", "~ ^ :"),
            ("a:b", "~ ^ :"),
            ("a?b", "~ ^ :"),
            ("a*", "~ ^ :"),
            ("a[b", "~ ^ :"),
            ("a\\b", "~ ^ :"),
            ("my branch", "spaces"),
            ("a\u{1}b", "control"),
            ("a\u{7f}b", "control"),
            ("/main", "`/`"),
            ("main/", "`/`"),
            ("a//b", "`//`"),
            ("main.", "end with `.`"),
            (".hidden", "start with `.`"),
            ("a/.b", "start with `.`"),
            ("main.lock", "`.lock`"),
            ("a.lock/b", "`.lock`"),
            ("main@{1}", "`@{`"),
        ] {
            let e = err_text(&with_ref(bad));
            assert!(
                e.starts_with(r#"commands."/build".pipeline.ref: "#)
                    && e.contains("is not a git ref")
                    && e.contains(rule),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn azure_branch_follows_the_same_ref_rules() {
        let with_branch = |b: &str| {
            azure_deploy().replace(
                "pipeline_id = 42",
                &format!("pipeline_id = 42\nbranch = {}", quoted(b)),
            )
        };
        assert!(Config::from_toml_str(&with_branch("refs/heads/release/2")).is_ok());
        for bad in ["a..b", "main.lock", "refs/heads/", "x@{1}"] {
            let e = err_text(&with_branch(bad));
            assert!(
                e.starts_with(r#"commands."/deploy".pipeline.branch: "#)
                    && e.contains("is not a git ref"),
                "{bad:?}: {e}"
            );
        }
    }
}
