//! The command line grammar (clap derive). Kept apart from the commands so
//! `--help` and the exit-code table can be read in one place.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Shown under every `--help`: CI scripts branch on these codes.
const EXIT_CODES: &str = "\
Exit codes (every command but `run`):
  0    done (force-unlock of a key nobody holds is also 0: nothing to do)
  1    error: DynamoDB unreachable, table missing, malformed record
  2    usage: bad arguments, no --table/BATON_TABLE, input the library refuses
  3    held by someone else (also: `wait` or `--wait` timed out, the line is
       full, or a `--queue` waiter lost its place)
  4    not the owner: the lock id is not the current grant, or the grant already
       ended (`verify`: the grant is not current)
  5    already ran: `acquire --request-id` of your own grant that has ended
  6    lapsed: `acquire --request-id` of your own grant whose lease ran out
       without release; acquire with a new request id

Exit codes of `run` (like timeout(1) and env(1), the command's status passes through):
  N    the command's own exit status; 128+N when it was killed by signal N
  122  lock lost while the command ran (lease not renewed in time, or ended or
       taken over): the command's process group was stopped
  123  held by someone else; the command never started
  124  --wait timed out while the key was held; the command never started
  125  baton's own error (usage, DynamoDB, table); the command never started
       or its release failed for a reason other than losing the lock
  126  the command could not be executed
  127  the command was not found
  128+N  baton itself received signal N (the group got it too and was stopped)

With --json every call prints exactly one JSON object on stdout, errors included
(`\"ok\": false`, `\"error\"`, `\"message\"` and the holder's record without its
lock id); messages go to stderr.";

/// `baton [--table NAME] [--json] COMMAND`.
#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    about = "DynamoDB leases for builds and deploys: take, hold and release a lock from any CI pipeline.",
    after_help = EXIT_CODES,
    propagate_version = true
)]
pub struct Cli {
    /// Lock table name.
    #[arg(long, env = "BATON_TABLE", global = true, value_name = "NAME")]
    pub table: Option<String>,

    /// Print one JSON object on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands a CI user calls.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Take a lock and keep it after baton exits (prints the lock id to release it with).
    #[command(after_help = EXIT_CODES)]
    Acquire(AcquireArgs),
    /// End your grant as COMPLETED or FAILED.
    #[command(after_help = EXIT_CODES)]
    Release(ReleaseArgs),
    /// Extend the lease of your grant.
    #[command(after_help = EXIT_CODES)]
    Renew(RenewArgs),
    /// Show the current record of a key.
    #[command(after_help = EXIT_CODES)]
    Status(KeyArg),
    /// List held locks (and expired ones not yet taken over).
    #[command(after_help = EXIT_CODES)]
    List(ListArgs),
    /// Block until a key is free.
    #[command(after_help = EXIT_CODES)]
    Wait(WaitArgs),
    /// Exit 0 if the grant (lock id + fence) is still current and its lease live, else 4.
    ///
    /// One strongly consistent read. Pipelines dispatched under a lock run it
    /// as their first step, so a run whose grant was already lost does not start.
    #[command(after_help = EXIT_CODES)]
    Verify(VerifyArgs),
    /// End someone else's grant as FAILED, recording who and why.
    #[command(name = "force-unlock", after_help = EXIT_CODES)]
    ForceUnlock(ForceUnlockArgs),
    /// Acquire, run COMMAND while renewing, release by its exit status.
    ///
    /// COMMAND runs in its own process group and sees BATON_LOCK_KEY,
    /// BATON_LOCK_ID and BATON_FENCE. The lease is renewed in the background.
    /// When it cannot be renewed before its end (minus a safety margin), or the
    /// grant is ended or taken over, the whole group gets SIGTERM, then SIGKILL
    /// (before the lease ends), the lock is released as FAILED ("lease lost")
    /// and baton exits 122. SIGINT/SIGTERM/SIGHUP to baton go to the whole
    /// group, SIGKILL follows after --kill-after, and the lock is released as
    /// FAILED. Processes the command leaves behind in its group are stopped
    /// before the release. On Linux, if baton itself is killed (even with
    /// SIGKILL), the command and its group are killed too. The recorded purpose
    /// is the program's name unless --purpose is given: arguments often hold
    /// secrets. COMMAND keeps stdout; baton's own lines go to stderr, and with
    /// --json its one object is printed on stdout after COMMAND has finished.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Show who waits for a key, in order (the line `--queue` joins).
    #[command(after_help = EXIT_CODES)]
    Queue(KeyArg),
    /// Show ended grants, newest first: of one key, or of every key.
    ///
    /// Read from the history table (`<table>-history` unless
    /// --history-table or BATON_HISTORY_TABLE says otherwise), which the
    /// baton-history consumer fills from the lock table's stream.
    #[command(after_help = EXIT_CODES)]
    History(HistoryArgs),
    /// Manage the lock table.
    #[command(subcommand)]
    Table(TableCommand),
}

/// `table …` subcommands.
#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Create the table (key, TTL, active-locks index) exactly as infra/ does.
    Create,
}

/// Who holds a lock and why: shared by `acquire` and `run`.
#[derive(Debug, Args)]
pub struct HolderArgs {
    /// Owner id; default from CI variables (GitHub Actions, Azure DevOps) or user@host.
    #[arg(long, value_name = "ID")]
    pub owner: Option<String>,
    /// Human name of the owner; default from CI variables.
    #[arg(long, value_name = "NAME")]
    pub owner_name: Option<String>,
    /// Lease length; renew before it ends.
    #[arg(long, default_value = "10m", value_parser = duration)]
    pub ttl: Duration,
    /// Keep trying this long while someone else holds the key (0 = fail at once).
    #[arg(long, default_value = "0s", value_parser = duration)]
    pub wait: Duration,
    /// Wait in the key's line instead of polling: granted in arrival order
    /// the moment the holder releases (needs --wait). Leaving, timing out or
    /// being interrupted takes you out of the line.
    #[arg(long)]
    pub queue: bool,
    /// With --queue: refuse to join a line already this long.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub max_queue: u16,
    /// With --queue: how long a turn waits to be claimed before the line
    /// moves on (a dead waiter's turn passes after it). Tests shorten it.
    #[arg(long, default_value = "15s", value_parser = duration, hide = true)]
    pub claim_window: Duration,
    /// What the lock is for (shown to whoever is blocked).
    #[arg(long, value_name = "TEXT")]
    pub purpose: Option<String>,
    /// Component being built or deployed.
    #[arg(long)]
    pub component: Option<String>,
    /// Target environment (filter for `list --environment`).
    #[arg(long)]
    pub environment: Option<String>,
    /// Correlation id; default the CI run id.
    #[arg(long, value_name = "ID")]
    pub correlation_id: Option<String>,
}

/// `acquire KEY …`.
#[derive(Debug, Args)]
pub struct AcquireArgs {
    /// Lock key, e.g. `deploy-api-prod`.
    pub key: String,
    #[command(flatten)]
    pub holder: HolderArgs,
    /// Idempotency key: acquiring again with it returns the same grant.
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
}

/// Outcome written by `release` (`completed`, `COMPLETED`, … all parse).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Outcome {
    Completed,
    Failed,
}

/// `release KEY --lock-id ID …`.
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// Lock key, e.g. `deploy-api-prod`.
    pub key: String,
    #[arg(long, value_name = "ID")]
    pub lock_id: String,
    #[arg(long, value_enum, default_value = "completed", ignore_case = true)]
    pub status: Outcome,
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// `renew KEY --lock-id ID [--ttl 10m]`.
#[derive(Debug, Args)]
pub struct RenewArgs {
    /// Lock key, e.g. `deploy-api-prod`.
    pub key: String,
    #[arg(long, value_name = "ID")]
    pub lock_id: String,
    /// New lease length, counted from now.
    #[arg(long, default_value = "10m", value_parser = duration)]
    pub ttl: Duration,
}

/// A bare `KEY` argument.
#[derive(Debug, Args)]
pub struct KeyArg {
    /// Lock key, e.g. `deploy-api-prod`.
    pub key: String,
}

/// `list [--prefix P] [--environment E]`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only keys starting with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only locks recorded with this environment.
    #[arg(long)]
    pub environment: Option<String>,
    /// Items per DynamoDB page (tests use it to force pagination).
    #[arg(long, hide = true)]
    pub page_size: Option<i32>,
}

/// `history [KEY] [--since 7d] [--limit 20]`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this key's grants; every key's when left out.
    pub key: Option<String>,
    /// How far back to look.
    #[arg(long, default_value = "7d", value_parser = duration)]
    pub since: Duration,
    /// At most this many entries.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub limit: u16,
    /// The history table; default the lock table's name + `-history`.
    #[arg(long, env = "BATON_HISTORY_TABLE", value_name = "NAME")]
    pub history_table: Option<String>,
}

/// `wait KEY [--timeout 30m]`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Lock key, e.g. `deploy-api-prod`.
    pub key: String,
    #[arg(long, default_value = "30m", value_parser = duration)]
    pub timeout: Duration,
}

/// `force-unlock KEY --actor ID --reason TEXT [--lock-id ID]`.
#[derive(Debug, Args)]
pub struct ForceUnlockArgs {
    /// Lock key, e.g. `deploy-api-prod`.
    pub key: String,
    /// Who breaks the lock (recorded as releasedBy).
    #[arg(long, value_name = "ID")]
    pub actor: String,
    /// Why (recorded as releaseReason; mandatory).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Only end this grant, never a newer one.
    #[arg(long, value_name = "ID")]
    pub lock_id: Option<String>,
}

/// `verify KEY --lock-id ID --fence N`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Lock key, e.g. `deploy-api-prod`.
    pub key: String,
    /// The grant's lock id (e.g. the `lock_id` workflow input).
    #[arg(long, value_name = "ID")]
    pub lock_id: String,
    /// The grant's fencing token (e.g. the `fence` workflow input).
    #[arg(long, value_name = "N")]
    pub fence: u64,
}

/// What `run` does when its lease cannot be renewed before it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnLeaseLost {
    /// Stop the command's group (TERM, then KILL), release as FAILED, exit 122.
    Stop,
    /// Keep the command running without the lock, warning loudly (the
    /// old behaviour; mutual exclusion is then not guaranteed).
    Warn,
}

/// `run KEY [options] -- COMMAND…`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Lock key, e.g. `deploy-api-prod`.
    pub key: String,
    #[command(flatten)]
    pub holder: HolderArgs,
    /// After SIGTERM to the command's group, wait this long before SIGKILL
    /// (when the lease is lost, never past the lease's end).
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub kill_after: Duration,
    /// What to do when the lease cannot be renewed before it ends.
    #[arg(long, value_enum, default_value = "stop")]
    pub on_lease_lost: OnLeaseLost,
    /// Run WITHOUT taking the lock (an emergency): needs --reason. The
    /// bypass is recorded on the key (who, when, why, host, CI run) for
    /// `status`, `list` and chat to show; the grant and its fence are left
    /// alone. BATON_BYPASS_LOCK=1 does the same for automation.
    #[arg(long = "no-lock", env = "BATON_BYPASS_LOCK", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false, action = clap::ArgAction::Set, num_args = 0, default_missing_value = "true")]
    pub no_lock: bool,
    /// Why the lock is bypassed (mandatory with --no-lock).
    #[arg(long, env = "BATON_BYPASS_REASON", value_name = "TEXT")]
    pub reason: Option<String>,
    /// Test mode: hold KEY#test instead of KEY, which excludes other test
    /// runs but never blocks, nor waits for, real ones.
    #[arg(long)]
    pub test: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, num_args = 1.., value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Parses `10m`, `90s`, `1h 30m` (humantime).
fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like 90s, 10m or 1h: {e}"))
}
