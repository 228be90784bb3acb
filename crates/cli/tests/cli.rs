//! The `baton` binary end to end: real processes against DynamoDB Local, one
//! fresh table per test, asserting exit codes, stdout JSON, stderr messages
//! and the records left in the table.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use baton_testkit::{TestTable, unique_name};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_baton");
/// No single baton call in these tests may take longer than this.
const CALL_LIMIT: Duration = Duration::from_secs(60);

/// A table on DynamoDB Local plus a scratch directory (also used as HOME so
/// no developer AWS profile leaks in).
struct Env {
    table: TestTable,
    dir: PathBuf,
}

impl Env {
    fn new() -> Env {
        let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
        let table = runtime.block_on(TestTable::create());
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique_name("cli"));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Env { table, dir }
    }

    /// `baton ARGS` with a clean environment: DynamoDB Local, dummy
    /// credentials, `BATON_TABLE`, `USER=tester`, and no CI variables.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            )
            .env("HOME", &self.dir)
            .env("USER", "tester")
            .env("BATON_TABLE", &self.table.name)
            .env("AWS_ENDPOINT_URL_DYNAMODB", &self.table.endpoint)
            .env("AWS_ACCESS_KEY_ID", "baton")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn run(&self, args: &[&str]) -> Out {
        finish(self.cmd(args).spawn().expect("spawn baton"))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `status KEY` as JSON.
    fn status(&self, key: &str) -> Value {
        let out = self.run(&["--json", "status", key]);
        assert_eq!(out.code, 0, "{out:?}");
        out.json()
    }
}

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// stdout as exactly one JSON object on one line.
    fn json(&self) -> Value {
        let text = self.stdout.trim_end();
        assert_eq!(
            text.lines().count(),
            1,
            "one JSON object on stdout: {self:?}"
        );
        serde_json::from_str(text).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

impl From<Output> for Out {
    fn from(o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Waits for a spawned baton, killing it (and failing) past [`CALL_LIMIT`].
fn finish(child: Child) -> Out {
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(CALL_LIMIT) {
        Ok(output) => output.expect("wait for baton").into(),
        Err(_) => {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("baton did not finish within {CALL_LIMIT:?}");
        }
    }
}

/// Polls `check` until it holds; fails after 20 s. This is synchronisation
/// on an observable state, not a guess at how long something takes.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Spawns `cmd` and returns once its stderr has printed a line containing
/// `needle` (the rest of stderr is drained in the background).
fn spawn_until_stderr(cmd: &mut Command, needle: &str) -> Child {
    let mut child = cmd.spawn().expect("spawn baton");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    let wanted = needle.to_owned();
    std::thread::spawn(move || {
        let mut seen = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !seen && line.contains(&wanted) {
                seen = true;
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(20)).is_err() {
        let _ = child.kill();
        panic!("baton never printed `{needle}` on stderr");
    }
    child
}

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` is not a string in {v}"))
}

fn n(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("`{field}` is not a number in {v}"))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn acquire(env: &Env, key: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--json", "acquire", key];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    assert_eq!(out.code, 0, "{out:?}");
    out.json()
}

#[test]
fn acquire_prints_the_grant_as_json_and_records_the_holder() {
    let env = Env::new();
    let before = now();
    let grant = acquire(
        &env,
        "build-router-plt",
        &[
            "--ttl",
            "90s",
            "--purpose",
            "deploy router",
            "--component",
            "router",
            "--environment",
            "plt",
        ],
    );

    assert_eq!(grant["ok"], true);
    assert_eq!(s(&grant, "grant"), "new");
    assert_eq!(s(&grant, "status"), "IN_PROGRESS");
    assert_eq!(s(&grant, "lockKey"), "build-router-plt");
    let lock_id = s(&grant, "lockId");
    assert_eq!(lock_id.len(), 36, "a uuid: {lock_id}");
    assert!(n(&grant, "fence") > 0);
    let host = s(&grant, "host");
    assert_eq!(s(&grant, "lockedBy"), format!("tester@{host}"));
    assert!(n(&grant, "pid") > 0);
    let expires = n(&grant, "expiresAt");
    assert!(
        expires >= before + 90 && expires <= now() + 91,
        "expiresAt {expires}"
    );

    let stored = env.status("build-router-plt");
    assert_eq!(s(&stored, "state"), "held");
    assert_eq!(s(&stored, "lockId"), lock_id);
    assert_eq!(n(&stored, "fence"), n(&grant, "fence"));
    assert_eq!(s(&stored, "purpose"), "deploy router");
    assert_eq!(s(&stored, "component"), "router");
    assert_eq!(s(&stored, "environment"), "plt");
    assert_eq!(stored["pid"], grant["pid"]);

    let human = env.run(&["acquire", "other-key"]);
    assert_eq!(human.code, 0, "{human:?}");
    assert!(
        human.stdout.starts_with("acquired other-key: lock id "),
        "{human:?}"
    );
}

#[test]
fn second_acquire_is_exit_3_and_names_the_holder() {
    let env = Env::new();
    let first = acquire(
        &env,
        "deploy-prod",
        &[
            "--owner",
            "alice",
            "--owner-name",
            "Alice",
            "--purpose",
            "terraform apply",
        ],
    );

    let human = env.run(&["acquire", "deploy-prod", "--owner", "bob"]);
    assert_eq!(human.code, 3, "{human:?}");
    assert!(human.stdout.is_empty(), "{human:?}");
    for part in [
        "held by someone else",
        "Alice [alice]",
        "terraform apply",
        s(&first, "lockId"),
    ] {
        assert!(
            human.stderr.contains(part),
            "stderr lacks `{part}`: {}",
            human.stderr
        );
    }

    let json = env.run(&["--json", "acquire", "deploy-prod", "--owner", "bob"]);
    assert_eq!(json.code, 3, "{json:?}");
    let v = json.json();
    assert_eq!(v["ok"], false);
    assert_eq!(s(&v, "error"), "held");
    assert_eq!(n(&v, "exitCode"), 3);
    assert_eq!(s(&v["holder"], "lockId"), s(&first, "lockId"));
    assert_eq!(s(&v["holder"], "lockedBy"), "alice");
    assert!(json.stderr.contains("terraform apply"), "{json:?}");
}

#[test]
fn release_checks_the_lock_id_and_records_the_outcome() {
    let env = Env::new();
    let grant = acquire(&env, "k", &[]);
    let lock_id = s(&grant, "lockId");

    let wrong = env.run(&["--json", "release", "k", "--lock-id", "not-mine"]);
    assert_eq!(wrong.code, 4, "{wrong:?}");
    let v = wrong.json();
    assert_eq!(s(&v, "error"), "not_owner");
    assert_eq!(s(&v["current"], "lockId"), lock_id);
    assert_eq!(s(&env.status("k"), "status"), "IN_PROGRESS");

    let ok = env.run(&[
        "--json",
        "release",
        "k",
        "--lock-id",
        lock_id,
        "--reason",
        "deployed v42",
    ]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert_eq!(s(&ok.json(), "status"), "COMPLETED");
    let stored = env.status("k");
    assert_eq!(s(&stored, "state"), "ended");
    assert_eq!(s(&stored, "status"), "COMPLETED");
    assert_eq!(s(&stored, "releaseReason"), "deployed v42");
    assert_eq!(s(&stored, "releasedBy"), s(&grant, "lockedBy"));

    let again = env.run(&["release", "k", "--lock-id", lock_id, "--status", "failed"]);
    assert_eq!(
        again.code, 4,
        "a different outcome for an ended grant: {again:?}"
    );
    assert!(again.stderr.contains("already ended"), "{again:?}");
}

#[test]
fn renew_extends_the_lease() {
    let env = Env::new();
    let grant = acquire(&env, "k", &["--ttl", "1m"]);
    let out = env.run(&[
        "--json",
        "renew",
        "k",
        "--lock-id",
        s(&grant, "lockId"),
        "--ttl",
        "20m",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let renewed = n(&out.json(), "expiresAt");
    assert!(
        renewed >= n(&grant, "expiresAt") + 18 * 60,
        "{renewed} vs {}",
        grant["expiresAt"]
    );
    assert_eq!(n(&env.status("k"), "expiresAt"), renewed);

    let wrong = env.run(&["renew", "k", "--lock-id", "nope"]);
    assert_eq!(wrong.code, 4, "{wrong:?}");
}

#[test]
fn status_of_a_key_never_locked_is_absent() {
    let env = Env::new();
    let v = env.status("nobody-ever");
    assert_eq!(v["ok"], true);
    assert_eq!(s(&v, "state"), "absent");
    assert_eq!(s(&v, "lockKey"), "nobody-ever");
    assert!(v.get("lockId").is_none(), "{v}");
    let human = env.run(&["status", "nobody-ever"]);
    assert_eq!(human.code, 0);
    assert_eq!(human.stdout.trim(), "nobody-ever is free (never locked)");
}

#[test]
fn list_follows_every_page_and_filters() {
    let env = Env::new();
    for i in 0..7 {
        let key = format!("app-{i}");
        let extra: &[&str] = if i % 2 == 0 {
            &["--environment", "prod"]
        } else {
            &[]
        };
        acquire(&env, &key, extra);
    }
    acquire(&env, "other-1", &[]);
    acquire(&env, "other-2", &["--environment", "prod"]);

    let out = env.run(&["--json", "list", "--prefix", "app-", "--page-size", "2"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(n(&v, "count"), 7, "{v}");
    assert!(n(&v, "pages") >= 4, "7 items in pages of 2: {v}");
    let mut keys: Vec<&str> = v["locks"]
        .as_array()
        .expect("locks")
        .iter()
        .map(|l| s(l, "lockKey"))
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "app-0", "app-1", "app-2", "app-3", "app-4", "app-5", "app-6"
        ]
    );
    assert!(
        v["locks"]
            .as_array()
            .expect("locks")
            .iter()
            .all(|l| s(l, "state") == "held")
    );

    let prod = env.run(&[
        "--json",
        "list",
        "--prefix",
        "app-",
        "--environment",
        "prod",
        "--page-size",
        "2",
    ]);
    assert_eq!(n(&prod.json(), "count"), 4, "{prod:?}");
    let all = env.run(&["--json", "list", "--page-size", "3"]);
    assert_eq!(n(&all.json(), "count"), 9, "{all:?}");

    let human = env.run(&["list", "--prefix", "other-"]);
    let lines: Vec<&str> = human.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{human:?}");
    assert!(
        lines[0].starts_with("KEY")
            && lines[1].starts_with("other-1")
            && lines[2].starts_with("other-2")
    );
}

#[test]
fn wait_times_out_while_held_and_returns_after_release() {
    let env = Env::new();
    let grant = acquire(&env, "k", &[]);
    let lock_id = s(&grant, "lockId");

    let started = Instant::now();
    let timeout = env.run(&["--json", "wait", "k", "--timeout", "1s"]);
    assert_eq!(timeout.code, 3, "{timeout:?}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    let v = timeout.json();
    assert_eq!(s(&v, "error"), "wait_timed_out");
    assert_eq!(s(&v["holder"], "lockId"), lock_id);

    let mut waiter = spawn_until_stderr(
        &mut env.cmd(&["--json", "wait", "k", "--timeout", "60s"]),
        "waiting up to 1m",
    );
    assert!(
        waiter.try_wait().expect("try_wait").is_none(),
        "wait returned while the key is held"
    );
    let released = env.run(&["release", "k", "--lock-id", lock_id]);
    assert_eq!(released.code, 0, "{released:?}");
    let out = finish(waiter);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(s(&v, "state"), "ended");
    assert_eq!(s(&v, "lockId"), lock_id);
    assert_eq!(s(&v, "status"), "COMPLETED");
}

#[test]
fn sigint_stops_a_wait_with_exit_130() {
    let env = Env::new();
    acquire(&env, "k", &["--owner", "alice"]);
    let waiter = spawn_until_stderr(&mut env.cmd(&["--json", "wait", "k"]), "k is held by alice");
    // SAFETY: kill(2) has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(waiter.id() as i32, libc::SIGINT) }, 0);
    let out = finish(waiter);
    assert_eq!(out.code, 130, "{out:?}");
    assert_eq!(s(&out.json(), "error"), "interrupted");
}

#[test]
fn acquire_with_wait_gets_the_lock_once_released() {
    let env = Env::new();
    let first = acquire(&env, "k", &[]);
    let waiter = spawn_until_stderr(
        &mut env.cmd(&[
            "--json", "acquire", "k", "--wait", "60s", "--owner", "second",
        ]),
        "k is held by tester@",
    );
    let released = env.run(&["release", "k", "--lock-id", s(&first, "lockId")]);
    assert_eq!(released.code, 0, "{released:?}");
    let out = finish(waiter);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(s(&v, "lockedBy"), "second");
    assert!(n(&v, "fence") > n(&first, "fence"));

    let timed_out = env.run(&["acquire", "k", "--wait", "1s"]);
    assert_eq!(timed_out.code, 3, "{timed_out:?}");
    assert!(timed_out.stderr.contains("timed out"), "{timed_out:?}");
}

#[test]
fn force_unlock_needs_a_reason_and_records_who_and_why() {
    let env = Env::new();
    let grant = acquire(&env, "k", &["--owner", "stuck-job"]);

    let no_reason = env.run(&["force-unlock", "k", "--actor", "ops"]);
    assert_eq!(no_reason.code, 2, "{no_reason:?}");
    assert!(no_reason.stderr.contains("--reason"), "{no_reason:?}");
    let blank = env.run(&[
        "--json",
        "force-unlock",
        "k",
        "--actor",
        "ops",
        "--reason",
        " ",
    ]);
    assert_eq!(blank.code, 2, "{blank:?}");
    assert_eq!(s(&blank.json(), "error"), "invalid_input");
    assert_eq!(s(&env.status("k"), "status"), "IN_PROGRESS");

    let out = env.run(&[
        "--json",
        "force-unlock",
        "k",
        "--actor",
        "ops",
        "--reason",
        "runner died",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["unlocked"], true);
    let stored = env.status("k");
    assert_eq!(s(&stored, "status"), "FAILED");
    assert_eq!(stored["forced"], true);
    assert_eq!(s(&stored, "releasedBy"), "ops");
    assert_eq!(s(&stored, "releaseReason"), "runner died");
    assert_eq!(s(&stored, "lockId"), s(&grant, "lockId"));

    // Nothing held: exit 0, nothing written.
    let nothing = env.run(&[
        "--json",
        "force-unlock",
        "never",
        "--actor",
        "ops",
        "--reason",
        "cleanup",
    ]);
    assert_eq!(nothing.code, 0, "{nothing:?}");
    assert_eq!(nothing.json()["unlocked"], false);

    // --lock-id of an old grant never breaks a newer one.
    let newer = acquire(&env, "k", &[]);
    let stale = env.run(&[
        "force-unlock",
        "k",
        "--actor",
        "ops",
        "--reason",
        "x",
        "--lock-id",
        s(&grant, "lockId"),
    ]);
    assert_eq!(stale.code, 4, "{stale:?}");
    let stored = env.status("k");
    assert_eq!(s(&stored, "status"), "IN_PROGRESS");
    assert_eq!(s(&stored, "lockId"), s(&newer, "lockId"));
}

#[test]
fn a_missing_table_is_exit_1_and_says_how_to_create_it() {
    let env = Env::new();
    let missing = unique_name("no-such-table");
    let out = env.run(&["--table", &missing, "status", "k"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("baton table create"), "{out:?}");
    assert!(out.stderr.contains(&missing), "{out:?}");
    let json = env.run(&["--json", "--table", &missing, "acquire", "k"]);
    assert_eq!(json.code, 1, "{json:?}");
    assert_eq!(s(&json.json(), "error"), "table_not_found");
}

#[test]
fn no_table_at_all_is_a_usage_error() {
    let env = Env::new();
    let out = finish(
        env.cmd(&["status", "k"])
            .env_remove("BATON_TABLE")
            .spawn()
            .expect("spawn"),
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("--table") && out.stderr.contains("BATON_TABLE"),
        "{out:?}"
    );
    let bad = env.run(&["--json", "acquire"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert_eq!(s(&bad.json(), "error"), "usage");
    let bad_duration = env.run(&["acquire", "k", "--ttl", "ten minutes"]);
    assert_eq!(bad_duration.code, 2, "{bad_duration:?}");
}

#[test]
fn run_exits_with_the_command_status_and_records_it() {
    let env = Env::new();
    let failed = env.run(&["run", "k", "--", "sh", "-c", "exit 7"]);
    assert_eq!(failed.code, 7, "{failed:?}");
    let stored = env.status("k");
    assert_eq!(s(&stored, "status"), "FAILED");
    assert_eq!(s(&stored, "releaseReason"), "exit status 7");
    assert_eq!(s(&stored, "purpose"), "sh -c 'exit 7'");

    let ok = env.run(&["run", "k", "--", "true"]);
    assert_eq!(ok.code, 0, "{ok:?}");
    let stored = env.status("k");
    assert_eq!(s(&stored, "status"), "COMPLETED");
    assert!(stored["releaseReason"].is_null(), "{stored}");

    let killed = env.run(&["run", "k", "--", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(killed.code, 128 + 9, "{killed:?}");
    assert_eq!(s(&env.status("k"), "releaseReason"), "killed by SIGKILL");

    let missing = env.run(&["run", "k", "--", "/nonexistent/command"]);
    assert_eq!(missing.code, 127, "{missing:?}");
    assert!(missing.stderr.contains("could not start"), "{missing:?}");
    assert_eq!(s(&env.status("k"), "status"), "FAILED");
}

#[test]
fn run_while_held_never_starts_the_command() {
    let env = Env::new();
    let holder = acquire(&env, "k", &["--owner", "alice"]);
    let marker = env.path("ran");
    let out = finish(
        env.cmd(&["run", "k", "--", "sh", "-c", "touch \"$MARKER\""])
            .env("MARKER", &marker)
            .spawn()
            .expect("spawn"),
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("alice"), "{out:?}");
    assert!(
        !marker.exists(),
        "the command ran although the lock was held"
    );
    assert_eq!(s(&env.status("k"), "lockId"), s(&holder, "lockId"));
}

#[test]
fn run_gives_the_command_its_grant() {
    let env = Env::new();
    let file = env.path("grant");
    let out = finish(
        env.cmd(&[
            "--json",
            "run",
            "deploy-api",
            "--",
            "sh",
            "-c",
            "echo \"$BATON_LOCK_KEY $BATON_LOCK_ID $BATON_FENCE\" > \"$OUT\"",
        ])
        .env("OUT", &file)
        .spawn()
        .expect("spawn"),
    );
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(n(&v, "exitCode"), 0);
    assert_eq!(s(&v, "status"), "COMPLETED");
    let seen = std::fs::read_to_string(&file).expect("the command wrote its environment");
    let stored = env.status("deploy-api");
    assert_eq!(
        seen.trim(),
        format!(
            "deploy-api {} {}",
            s(&stored, "lockId"),
            n(&stored, "fence")
        )
    );
    assert_eq!(s(&v, "lockId"), s(&stored, "lockId"));
}

/// A shell that records SIGTERM in `$GOT`, says it started in `$STARTED`,
/// and waits (interruptibly) for a long sleep.
const TRAPPING_SHELL: &str = "trap 'echo got > \"$GOT\"; kill $pid 2>/dev/null; exit 143' TERM; sleep 30 & pid=$!; touch \"$STARTED\"; wait $pid";

#[test]
fn sigterm_is_forwarded_and_the_lock_released_as_failed() {
    let env = Env::new();
    let (got, started) = (env.path("got"), env.path("started"));
    let child = env
        .cmd(&["run", "k", "--", "sh", "-c", TRAPPING_SHELL])
        .env("GOT", &got)
        .env("STARTED", &started)
        .spawn()
        .expect("spawn");
    eventually("the command started", || started.exists());
    eventually("the lock is IN_PROGRESS", || {
        env.status("k")["status"] == "IN_PROGRESS"
    });

    // SAFETY: kill(2) has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = finish(child);

    assert_eq!(out.code, 143, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&got)
            .expect("the command got SIGTERM")
            .trim(),
        "got"
    );
    let stored = env.status("k");
    assert_eq!(s(&stored, "status"), "FAILED");
    assert_eq!(s(&stored, "releaseReason"), "interrupted by SIGTERM");
}

#[test]
fn a_lock_lost_mid_run_stops_the_command() {
    let env = Env::new();
    let (got, started) = (env.path("got"), env.path("started"));
    let child = env
        .cmd(&["run", "k", "--ttl", "3s", "--", "sh", "-c", TRAPPING_SHELL])
        .env("GOT", &got)
        .env("STARTED", &started)
        .spawn()
        .expect("spawn");
    eventually("the command started", || started.exists());
    let broke = env.run(&["force-unlock", "k", "--actor", "ops", "--reason", "test"]);
    assert_eq!(broke.code, 0, "{broke:?}");

    let out = finish(child);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("LOCK LOST"), "{out:?}");
    assert!(got.exists(), "the command was not stopped");
    let stored = env.status("k");
    assert_eq!(
        s(&stored, "releasedBy"),
        "ops",
        "baton must not release a lock it lost"
    );
    assert_eq!(s(&stored, "releaseReason"), "test");
}

#[test]
fn github_actions_identity_is_the_default_owner() {
    let env = Env::new();
    let out = finish(
        env.cmd(&["--json", "acquire", "k"])
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_REPOSITORY", "acme/app")
            .env("GITHUB_RUN_ID", "42")
            .env("GITHUB_WORKFLOW", "Deploy")
            .env("GITHUB_ACTOR", "octocat")
            .spawn()
            .expect("spawn"),
    );
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(s(&v, "lockedBy"), "github:acme/app#42");
    assert_eq!(s(&v, "lockedByName"), "Deploy (octocat)");
    assert_eq!(s(&v, "correlationId"), "42");
    assert_eq!(
        s(&v, "runUrl"),
        "https://github.com/acme/app/actions/runs/42"
    );
    let stored = env.status("k");
    assert_eq!(s(&stored, "lockedBy"), "github:acme/app#42");
    assert_eq!(
        s(&stored, "runUrl"),
        "https://github.com/acme/app/actions/runs/42"
    );
}

#[test]
fn table_create_makes_a_usable_table_once() {
    let env = Env::new();
    let name = unique_name("baton-cli-created");
    let created = env.run(&["--table", &name, "table", "create"]);
    assert_eq!(created.code, 0, "{created:?}");
    assert_eq!(created.stdout.trim(), format!("created table {name}"));

    let status = env.run(&["--json", "--table", &name, "status", "k"]);
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(s(&status.json(), "state"), "absent");
    let list = env.run(&["--json", "--table", &name, "list"]);
    assert_eq!(n(&list.json(), "count"), 0, "{list:?}");

    let again = env.run(&["--json", "--table", &name, "table", "create"]);
    assert_eq!(again.code, 0, "{again:?}");
    let v = again.json();
    assert_eq!(v["created"], false);
    let human = env.run(&["--table", &name, "table", "create"]);
    assert_eq!(human.stdout.trim(), format!("table {name} already exists"));
}
