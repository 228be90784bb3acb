//! The `baton` binary end to end: real processes against DynamoDB Local, one
//! fresh table per test, asserting exit codes, stdout JSON, stderr messages
//! and the records left in the table.

#![allow(
    unsafe_code,
    reason = "the tests signal baton with kill(2), as a CI runner would"
)]

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
    for part in ["held by someone else", "Alice [alice]", "terraform apply"] {
        assert!(
            human.stderr.contains(part),
            "stderr lacks `{part}`: {}",
            human.stderr
        );
    }
    assert!(
        !human.stderr.contains(s(&first, "lockId")),
        "another holder's lock id is never printed: {human:?}"
    );

    let json = env.run(&["--json", "acquire", "deploy-prod", "--owner", "bob"]);
    assert_eq!(json.code, 3, "{json:?}");
    let v = json.json();
    assert_eq!(v["ok"], false);
    assert_eq!(s(&v, "error"), "held");
    assert_eq!(n(&v, "exitCode"), 3);
    assert!(v["holder"].get("lockId").is_none(), "{v}");
    assert!(!json.stdout.contains(s(&first, "lockId")), "{json:?}");
    assert_eq!(n(&v["holder"], "fence"), n(&first, "fence"));
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
    assert!(v["current"].get("lockId").is_none(), "{v}");
    assert!(!wrong.stdout.contains(lock_id) && !wrong.stderr.contains(lock_id));
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
    assert!(v["holder"].get("lockId").is_none(), "{v}");
    assert_eq!(n(&v["holder"], "fence"), n(&grant, "fence"));

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
    assert_eq!(
        s(&stored, "purpose"),
        "sh",
        "the program's name, no arguments"
    );

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
    assert_eq!(out.code, RUN_HELD, "{out:?}");
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
    assert_eq!(out.code, RUN_LOCK_LOST, "{out:?}");
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

// ---------------------------------------------------------------------------
// Issue 10: the command stops when the lock is lost, takes its children with
// it, and leaks nothing.
// ---------------------------------------------------------------------------

/// `run`'s reserved exit codes (see `baton run --help`).
const RUN_LOCK_LOST: i32 = 122;
const RUN_HELD: i32 = 123;
const RUN_WAIT_TIMED_OUT: i32 = 124;
const RUN_ERROR: i32 = 125;

/// A command whose shell (the group leader) starts a grandchild, writes
/// "LEADER_PID GRANDCHILD_PID" to `$PIDS` (atomically) and waits for it.
const GRANDCHILD_SHELL: &str =
    "sleep 300 & echo \"$$ $!\" > \"$PIDS.tmp\" && mv \"$PIDS.tmp\" \"$PIDS\"; wait";

/// The same, but the shell and its grandchild ignore SIGTERM (an ignored
/// disposition is inherited across fork and exec): only SIGKILL stops them.
const TERM_IGNORING_SHELL: &str =
    "trap '' TERM; sleep 300 & echo \"$$ $!\" > \"$PIDS.tmp\" && mv \"$PIDS.tmp\" \"$PIDS\"; wait";

/// Whether process `pid` no longer runs: no `/proc/PID`, or a zombie
/// (dead, waiting for a parent that may be an init that never reaps).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// The pids a [`GRANDCHILD_SHELL`] wrote, once it has written them.
fn wait_for_pids(path: &Path) -> Pids {
    eventually("the command wrote its pids", || path.exists());
    let text = std::fs::read_to_string(path).expect("pids file");
    let mut parts = text
        .split_whitespace()
        .map(|p| p.parse::<i32>().expect("a pid"));
    let pids = Pids(vec![
        parts.next().expect("leader pid"),
        parts.next().expect("grandchild pid"),
    ]);
    assert!(pids.0.iter().all(|&p| !gone(p)), "both run: {pids:?}");
    pids
}

/// Pids a test started; SIGKILLed on drop so a failing test leaks no `sleep 300`.
#[derive(Debug)]
struct Pids(Vec<i32>);

impl Pids {
    fn all_gone(&self) -> bool {
        self.0.iter().all(|&p| gone(p))
    }
}

impl Drop for Pids {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if !gone(pid) {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn signal(child: &Child, signo: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signo) }, 0);
}

#[test]
fn sigterm_to_baton_stops_the_whole_group_grandchildren_included() {
    let env = Env::new();
    let pids_file = env.path("pids");
    let child = env
        .cmd(&["run", "k", "--", "bash", "-c", GRANDCHILD_SHELL])
        .env("PIDS", &pids_file)
        .spawn()
        .expect("spawn");
    let pids = wait_for_pids(&pids_file);

    signal(&child, libc::SIGTERM);
    let out = finish(child);
    assert_eq!(out.code, 143, "{out:?}");
    // baton waits for its group before it exits: no polling needed.
    assert!(
        pids.all_gone(),
        "still running after baton exited: {pids:?}"
    );
    let stored = env.status("k");
    assert_eq!(s(&stored, "status"), "FAILED");
    assert_eq!(s(&stored, "releaseReason"), "interrupted by SIGTERM");
}

#[test]
fn a_group_that_ignores_sigterm_gets_sigkill_after_kill_after() {
    let env = Env::new();
    let pids_file = env.path("pids");
    let child = env
        .cmd(&[
            "run",
            "k",
            "--kill-after",
            "1s",
            "--",
            "bash",
            "-c",
            TERM_IGNORING_SHELL,
        ])
        .env("PIDS", &pids_file)
        .spawn()
        .expect("spawn");
    let pids = wait_for_pids(&pids_file);

    signal(&child, libc::SIGTERM);
    let out = finish(child);
    assert_eq!(out.code, 143, "{out:?}");
    assert!(out.stderr.contains("SIGKILL"), "{out:?}");
    assert!(
        pids.all_gone(),
        "still running after baton exited: {pids:?}"
    );
    assert_eq!(s(&env.status("k"), "status"), "FAILED");
}

#[test]
fn kill_9_of_baton_takes_the_command_and_its_grandchildren_with_it() {
    let env = Env::new();
    let pids_file = env.path("pids");
    let mut child = env
        .cmd(&["run", "k", "--", "bash", "-c", GRANDCHILD_SHELL])
        .env("PIDS", &pids_file)
        .spawn()
        .expect("spawn");
    let pids = wait_for_pids(&pids_file);

    signal(&child, libc::SIGKILL);
    child.wait().expect("reap baton");
    eventually("the command group is gone after kill -9 of baton", || {
        pids.all_gone()
    });
}

#[test]
fn leftover_background_processes_are_stopped_when_the_command_exits() {
    let env = Env::new();
    let pids_file = env.path("pids");
    // The shell exits 0 at once, leaving its grandchild behind.
    let out = finish(
        env.cmd(&[
            "run",
            "k",
            "--",
            "bash",
            "-c",
            "sleep 300 & echo \"$$ $!\" > \"$PIDS\"",
        ])
        .env("PIDS", &pids_file)
        .spawn()
        .expect("spawn"),
    );
    assert_eq!(out.code, 0, "{out:?}");
    let text = std::fs::read_to_string(&pids_file).expect("pids");
    let pids = Pids(
        text.split_whitespace()
            .map(|p| p.parse().expect("pid"))
            .collect(),
    );
    assert!(pids.all_gone(), "left running after the release: {pids:?}");
    assert_eq!(s(&env.status("k"), "status"), "COMPLETED");
}

/// A multi-thread runtime with a loopback proxy to DynamoDB Local that
/// forwards until `partition` is set, then holds every request unanswered
/// (a black hole, like a dead route), as a real partition does.
fn partition_proxy(
    env: &Env,
) -> (
    tokio::runtime::Runtime,
    baton_testkit::FaultProxy,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let partition = std::sync::Arc::new(AtomicBool::new(false));
    let flag = partition.clone();
    let proxy = runtime
        .block_on(baton_testkit::FaultProxy::start(
            &env.table.endpoint,
            move |_| {
                if flag.load(Ordering::SeqCst) {
                    baton_testkit::FaultAction::Delay(Duration::from_secs(3600))
                } else {
                    baton_testkit::FaultAction::Forward
                }
            },
        ))
        .expect("proxy");
    (runtime, proxy, partition)
}

#[test]
fn a_partition_stops_the_command_group_before_the_lease_ends() {
    let env = Env::new();
    let (_runtime, proxy, partition) = partition_proxy(&env);
    let pids_file = env.path("pids");
    let child = env
        .cmd(&[
            "--json",
            "run",
            "k",
            "--ttl",
            "3s",
            "--",
            "bash",
            "-c",
            GRANDCHILD_SHELL,
        ])
        .env("AWS_ENDPOINT_URL_DYNAMODB", proxy.url())
        .env("PIDS", &pids_file)
        .spawn()
        .expect("spawn");
    let pids = wait_for_pids(&pids_file);

    partition.store(true, std::sync::atomic::Ordering::SeqCst);
    eventually("the command group is gone", || pids.all_gone());
    let gone_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    // The lease as DynamoDB has it (read directly, not through the
    // partition): every renewal that landed is in it.
    let stored = env.status("k");
    assert_eq!(s(&stored, "status"), "IN_PROGRESS", "{stored}");
    let lease_end = n(&stored, "expiresAt") as f64;
    assert!(
        gone_at < lease_end,
        "the command group outlived its lease: gone at {gone_at}, lease ended at {lease_end}"
    );

    let out = finish(child);
    assert_eq!(out.code, RUN_LOCK_LOST, "{out:?}");
    assert!(out.stderr.contains("lease lost"), "{out:?}");
    let v = out.json();
    assert_eq!(s(&v, "error"), "lease_lost");

    // Someone else gets the key once the lease (plus the skew margin) ends.
    let second = env.run(&["--json", "acquire", "k", "--owner", "next", "--wait", "20s"]);
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(s(&second.json(), "lockedBy"), "next");
}

#[test]
fn on_lease_lost_warn_keeps_the_command_running_and_says_so() {
    let env = Env::new();
    let (_runtime, proxy, partition) = partition_proxy(&env);
    let (started, finish_file) = (env.path("started"), env.path("finish"));
    let child = env
        .cmd(&[
            "run",
            "k",
            "--ttl",
            "2s",
            "--on-lease-lost",
            "warn",
            "--",
            "sh",
            "-c",
            "touch \"$STARTED\"; while [ ! -e \"$FINISH\" ]; do sleep 0.05; done",
        ])
        .env("AWS_ENDPOINT_URL_DYNAMODB", proxy.url())
        .env("STARTED", &started)
        .env("FINISH", &finish_file)
        .spawn()
        .expect("spawn");
    eventually("the command started", || started.exists());
    let lease_end = n(&env.status("k"), "expiresAt");
    partition.store(true, std::sync::atomic::Ordering::SeqCst);
    eventually("the lease has ended", || now() > lease_end);
    std::fs::write(&finish_file, "").expect("finish");
    let out = finish(child);
    assert_eq!(out.code, 0, "the command ran to its end: {out:?}");
    assert!(out.stderr.contains("WITHOUT THE LOCK"), "{out:?}");
}

#[test]
fn another_owners_request_id_is_a_conflict_without_its_lock_id() {
    let env = Env::new();
    let alice = acquire(&env, "k", &["--owner", "alice", "--request-id", "r-1"]);
    let alice_id = s(&alice, "lockId");

    let human = env.run(&["acquire", "k", "--owner", "bob", "--request-id", "r-1"]);
    assert_eq!(human.code, 3, "{human:?}");
    assert!(human.stdout.is_empty(), "{human:?}");
    assert!(!human.stderr.contains(alice_id), "{human:?}");
    assert!(human.stderr.contains("alice"), "{human:?}");

    let json = env.run(&[
        "--json",
        "acquire",
        "k",
        "--owner",
        "bob",
        "--request-id",
        "r-1",
    ]);
    assert_eq!(json.code, 3, "{json:?}");
    assert!(!json.stdout.contains(alice_id), "{json:?}");
    assert!(!json.stderr.contains(alice_id), "{json:?}");
    let v = json.json();
    assert_eq!(s(&v, "error"), "held");
    assert_eq!(s(&v["holder"], "lockedBy"), "alice");
    assert!(v["holder"].get("lockId").is_none(), "{v}");

    // The same owner gets its live grant back.
    let again = acquire(&env, "k", &["--owner", "alice", "--request-id", "r-1"]);
    assert_eq!(s(&again, "grant"), "existing");
    assert_eq!(s(&again, "lockId"), alice_id);
}

#[test]
fn an_ended_request_id_already_ran() {
    let env = Env::new();
    let grant = acquire(&env, "k", &["--owner", "ci", "--request-id", "r-1"]);
    let released = env.run(&["release", "k", "--lock-id", s(&grant, "lockId")]);
    assert_eq!(released.code, 0, "{released:?}");

    let out = env.run(&[
        "--json",
        "acquire",
        "k",
        "--owner",
        "ci",
        "--request-id",
        "r-1",
    ]);
    assert_eq!(out.code, 5, "{out:?}");
    let v = out.json();
    assert_eq!(s(&v, "error"), "already_ran");
    assert!(out.stderr.contains("already ran"), "{out:?}");
    assert!(!out.stdout.contains(s(&grant, "lockId")), "{out:?}");
}

#[test]
fn a_lapsed_request_id_is_not_handed_back_as_held() {
    let env = Env::new();
    let grant = acquire(
        &env,
        "k",
        &["--owner", "ci", "--request-id", "r-1", "--ttl", "1s"],
    );
    let lease_end = n(&grant, "expiresAt");
    eventually("the lease has ended", || now() >= lease_end);

    let out = env.run(&[
        "--json",
        "acquire",
        "k",
        "--owner",
        "ci",
        "--request-id",
        "r-1",
    ]);
    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(s(&out.json(), "error"), "request_lapsed");
}

#[test]
fn a_secret_in_argv_never_reaches_the_record() {
    let env = Env::new();
    let out = env.run(&[
        "run",
        "k",
        "--",
        "sh",
        "-c",
        "true",
        "deploy",
        "--db-password=hunter2",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let stored = env.status("k");
    assert_eq!(s(&stored, "purpose"), "sh", "{stored}");
    assert!(!stored.to_string().contains("hunter2"), "{stored}");

    let explicit = env.run(&["run", "k", "--purpose", "deploy v42", "--", "/bin/true"]);
    assert_eq!(explicit.code, 0, "{explicit:?}");
    assert_eq!(s(&env.status("k"), "purpose"), "deploy v42");
    let path = env.run(&["run", "k", "--", "/bin/true"]);
    assert_eq!(path.code, 0, "{path:?}");
    assert_eq!(s(&env.status("k"), "purpose"), "true");
}

/// No escape character, no BEL, no other control character but newlines,
/// and no line a CI runner would read as a workflow command.
fn assert_inert(what: &str, text: &str) {
    for c in text.chars() {
        assert!(
            c == '\n' || !(c.is_control() || ('\u{80}'..='\u{9f}').contains(&c)),
            "{what} has control character {:?}: {text:?}",
            c
        );
    }
    for line in text.lines() {
        let t = line.trim_start();
        assert!(
            !t.starts_with("::") && !t.starts_with("##["),
            "{what} has a workflow command line: {line:?}"
        );
    }
}

#[test]
fn escape_sequences_in_a_holders_fields_never_reach_the_terminal() {
    let env = Env::new();
    let evil_name = "\u{1b}]0;pwned\u{7}\u{1b}[31mMallory\u{1b}[0m\n::warning::owned\r\u{9b}2J";
    let evil_purpose = "::add-mask::x\n::error file=a::boom\u{7}";
    let holder = acquire(
        &env,
        "k",
        &[
            "--owner",
            "::set-output name=a::b",
            "--owner-name",
            evil_name,
            "--purpose",
            evil_purpose,
            "--environment",
            "prod\u{1b}[2K",
        ],
    );
    let lock_id = s(&holder, "lockId");

    let conflict = env.run(&["acquire", "k", "--owner", "bob"]);
    assert_eq!(conflict.code, 3, "{conflict:?}");
    assert!(conflict.stderr.contains("Mallory"), "{conflict:?}");
    assert_inert("conflict stderr", &conflict.stderr);
    assert!(!conflict.stderr.contains(lock_id), "{conflict:?}");

    let status = env.run(&["status", "k"]);
    assert_eq!(status.code, 0, "{status:?}");
    assert!(status.stdout.contains("Mallory"), "{status:?}");
    assert_inert("status stdout", &status.stdout);
    assert!(!status.stdout.contains(lock_id), "{status:?}");

    let list = env.run(&["list"]);
    assert_eq!(list.code, 0, "{list:?}");
    assert_inert("list stdout", &list.stdout);

    let waited = env.run(&["wait", "k", "--timeout", "1s"]);
    assert_eq!(waited.code, 3, "{waited:?}");
    assert_inert("wait stderr", &waited.stderr);
    assert!(!waited.stderr.contains(lock_id), "{waited:?}");

    let ran = env.run(&["run", "k", "--", "true"]);
    assert_eq!(ran.code, RUN_HELD, "{ran:?}");
    assert_inert("run stderr", &ran.stderr);

    let forced = env.run(&["force-unlock", "k", "--actor", "ops", "--reason", "x"]);
    assert_eq!(forced.code, 0, "{forced:?}");
    assert_inert("force-unlock stdout", &forced.stdout);
}

#[test]
fn verify_says_whether_a_grant_is_still_current() {
    let env = Env::new();
    let grant = acquire(&env, "k", &["--ttl", "1m"]);
    let (lock_id, fence) = (s(&grant, "lockId"), n(&grant, "fence").to_string());

    let ok = env.run(&["verify", "k", "--lock-id", lock_id, "--fence", &fence]);
    assert_eq!(ok.code, 0, "{ok:?}");
    let json = env.run(&[
        "--json",
        "verify",
        "k",
        "--lock-id",
        lock_id,
        "--fence",
        &fence,
    ]);
    assert_eq!(json.code, 0, "{json:?}");
    assert_eq!(json.json()["current"], true);

    let other_fence = (n(&grant, "fence") + 1).to_string();
    let wrong_fence = env.run(&["verify", "k", "--lock-id", lock_id, "--fence", &other_fence]);
    assert_eq!(wrong_fence.code, 4, "{wrong_fence:?}");
    assert!(wrong_fence.stderr.contains("fence"), "{wrong_fence:?}");
    let wrong_id = env.run(&[
        "--json",
        "verify",
        "k",
        "--lock-id",
        "nope",
        "--fence",
        &fence,
    ]);
    assert_eq!(wrong_id.code, 4, "{wrong_id:?}");
    let v = wrong_id.json();
    assert_eq!(s(&v, "error"), "not_current");
    assert!(!wrong_id.stdout.contains(lock_id), "{wrong_id:?}");
    let absent = env.run(&["verify", "never", "--lock-id", lock_id, "--fence", &fence]);
    assert_eq!(absent.code, 4, "{absent:?}");

    let released = env.run(&[
        "release",
        "k",
        "--lock-id",
        lock_id,
        "--status",
        "COMPLETED",
    ]);
    assert_eq!(released.code, 0, "upper-case status: {released:?}");
    let ended = env.run(&["verify", "k", "--lock-id", lock_id, "--fence", &fence]);
    assert_eq!(ended.code, 4, "{ended:?}");
    assert!(ended.stderr.contains("COMPLETED"), "{ended:?}");
    let failed = env.run(&["release", "other", "--lock-id", "x", "--status", "Failed"]);
    assert_eq!(failed.code, 4, "mixed case parses: {failed:?}");
}

#[test]
fn run_reserves_its_own_exit_codes() {
    let env = Env::new();
    // The command's own 3 and 4 pass through untouched.
    assert_eq!(env.run(&["run", "k", "--", "sh", "-c", "exit 3"]).code, 3);
    assert_eq!(env.run(&["run", "k", "--", "sh", "-c", "exit 4"]).code, 4);

    acquire(&env, "k", &["--owner", "alice"]);
    let held = env.run(&["--json", "run", "k", "--", "true"]);
    assert_eq!(held.code, RUN_HELD, "{held:?}");
    assert_eq!(s(&held.json(), "error"), "held");
    let timed_out = env.run(&["run", "k", "--wait", "1s", "--", "true"]);
    assert_eq!(timed_out.code, RUN_WAIT_TIMED_OUT, "{timed_out:?}");

    let no_table = finish(
        env.cmd(&["run", "k", "--", "true"])
            .env_remove("BATON_TABLE")
            .spawn()
            .expect("spawn"),
    );
    assert_eq!(no_table.code, RUN_ERROR, "{no_table:?}");
    let bad_flag = env.run(&["run", "k", "--ttl", "soon", "--", "true"]);
    assert_eq!(bad_flag.code, RUN_ERROR, "{bad_flag:?}");
    let missing = unique_name("no-such-table");
    let table = env.run(&["--table", &missing, "run", "k", "--", "true"]);
    assert_eq!(table.code, RUN_ERROR, "{table:?}");

    let help = env.run(&["run", "--help"]);
    assert_eq!(help.code, 0, "{help:?}");
    for code in ["122", "123", "124", "125", "126", "127", "128+N"] {
        assert!(
            help.stdout.contains(code),
            "`run --help` lacks {code}: {}",
            help.stdout
        );
    }
}

// ---------------------------------------------------------------------------
// Waiting in line (`--queue`).

/// `baton run KEY --queue …` by `owner`, appending its owner to `log`,
/// returned once it has joined the line at `position`.
fn queued_run(env: &Env, owner: &str, position: usize, log: &Path) -> Child {
    let script = format!("echo {owner} >> {}", log.display());
    spawn_until_stderr(
        &mut env.cmd(&[
            "--json", "run", "k", "--queue", "--wait", "60s", "--ttl", "30s", "--owner", owner,
            "--", "sh", "-c", &script,
        ]),
        &format!("waiting in line at position {position}"),
    )
}

#[test]
fn queued_runs_are_granted_in_arrival_order_when_the_holder_releases() {
    let env = Env::new();
    let holder = acquire(&env, "k", &["--owner", "holder"]);
    let log = env.path("order.log");
    let waiters: Vec<Child> = ["w1", "w2", "w3"]
        .iter()
        .enumerate()
        .map(|(i, owner)| queued_run(&env, owner, i + 1, &log))
        .collect();

    let line = env.run(&["--json", "queue", "k"]);
    assert_eq!(line.code, 0, "{line:?}");
    let v = line.json();
    assert_eq!(n(&v, "waiting"), 3);
    let owners: Vec<&str> = v["waiters"]
        .as_array()
        .expect("waiters")
        .iter()
        .map(|w| s(w, "owner"))
        .collect();
    assert_eq!(owners, ["w1", "w2", "w3"]);
    assert!(
        v["waiters"][0].get("ticket").is_none(),
        "a waiter's ticket is its lock id to be: {v}"
    );
    let text = env.run(&["queue", "k"]);
    assert!(
        text.stdout.contains("k is held by holder") && text.stdout.contains("  2. w2"),
        "{text:?}"
    );
    let list = env.run(&["--json", "list"]);
    assert_eq!(n(&list.json()["locks"][0], "waiting"), 3, "{list:?}");

    let released = env.run(&["release", "k", "--lock-id", s(&holder, "lockId")]);
    assert_eq!(released.code, 0, "{released:?}");
    let fences: Vec<u64> = waiters
        .into_iter()
        .map(|w| {
            let out = finish(w);
            assert_eq!(out.code, 0, "{out:?}");
            n(&out.json(), "fence")
        })
        .collect();
    let order = std::fs::read_to_string(&log).expect("the runs wrote their names");
    assert_eq!(order.lines().collect::<Vec<_>>(), ["w1", "w2", "w3"]);
    let first = n(&holder, "fence");
    assert_eq!(
        fences,
        [first + 1, first + 2, first + 3],
        "each hand-off one grant"
    );
    let last = env.status("k");
    assert_eq!(s(&last, "status"), "COMPLETED");
    assert_eq!(s(&last, "lockedBy"), "w3");
}

#[test]
fn queue_needs_wait_and_a_full_line_refuses() {
    let env = Env::new();
    let no_wait = env.run(&["--json", "acquire", "k", "--queue"]);
    assert_eq!(no_wait.code, 2, "{no_wait:?}");
    assert!(
        no_wait.stderr.contains("--queue needs --wait"),
        "{no_wait:?}"
    );
    assert!(env.status("k")["lockId"].is_null(), "nothing was written");

    acquire(&env, "k", &["--owner", "holder"]);
    let mut first = spawn_until_stderr(
        &mut env.cmd(&[
            "acquire",
            "k",
            "--queue",
            "--wait",
            "60s",
            "--max-queue",
            "1",
        ]),
        "waiting in line at position 1",
    );
    let full = env.run(&[
        "--json",
        "acquire",
        "k",
        "--queue",
        "--wait",
        "60s",
        "--max-queue",
        "1",
    ]);
    assert_eq!(full.code, 3, "{full:?}");
    let v = full.json();
    assert_eq!(s(&v, "error"), "line_full");
    assert!(s(&v, "message").contains("full (1 waiting)"), "{v}");
    let _ = first.kill();
    let _ = first.wait();
}

#[test]
fn a_dead_waiter_loses_its_turn_and_the_next_one_takes_the_lock() {
    let env = Env::new();
    let holder = acquire(&env, "k", &["--owner", "holder"]);
    let queue = |owner: &str, position: usize| {
        spawn_until_stderr(
            &mut env.cmd(&[
                "--json",
                "acquire",
                "k",
                "--queue",
                "--wait",
                "60s",
                "--claim-window",
                "1s",
                "--owner",
                owner,
            ]),
            &format!("waiting in line at position {position}"),
        )
    };
    let mut dead = queue("dead", 1);
    let next = queue("next", 2);
    signal(&dead, libc::SIGKILL);
    let _ = dead.wait();
    let released = env.run(&["release", "k", "--lock-id", s(&holder, "lockId")]);
    assert_eq!(released.code, 0, "{released:?}");

    let out = finish(next);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(s(&v, "lockedBy"), "next");
    assert_eq!(
        s(&v, "grant"),
        "taken_over",
        "the dead waiter's turn lapsed"
    );
    assert_eq!(s(&v["previous"], "lockedBy"), "dead");
    assert_eq!(n(&v, "fence"), n(&holder, "fence") + 2);
}

// ---------------------------------------------------------------------------
// Going around the lock (`--no-lock`, `BATON_BYPASS_LOCK`, `--test`).

#[test]
fn a_bypass_is_recorded_on_the_key_and_shown_without_touching_the_grant() {
    let env = Env::new();
    let holder = acquire(&env, "k", &["--owner", "holder"]);
    let seen = env.path("bypassed");
    let script = format!("echo $BATON_LOCK_BYPASSED > {}; exit 3", seen.display());
    let out = env.run(&[
        "--json",
        "run",
        "k",
        "--no-lock",
        "--reason",
        "prod is down",
        "--owner",
        "oncall",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(out.code, 3, "the command's status passes through: {out:?}");
    assert!(
        out.stderr
            .contains("WARNING: running WITHOUT the lock on k"),
        "{out:?}"
    );
    assert_eq!(std::fs::read_to_string(&seen).unwrap().trim(), "1");
    let v = out.json();
    assert_eq!(s(&v["bypass"], "reason"), "prod is down");

    let status = env.status("k");
    assert_eq!(
        s(&status, "lockId"),
        s(&holder, "lockId"),
        "the grant is untouched"
    );
    assert_eq!(n(&status, "fence"), n(&holder, "fence"));
    assert_eq!(s(&status["bypass"], "by"), "oncall");
    assert_eq!(s(&status["bypass"], "reason"), "prod is down");
    let text = env.run(&["status", "k"]);
    assert!(
        text.stdout
            .contains("BYPASSED: oncall ran without the lock")
            && text.stdout.contains("prod is down"),
        "{text:?}"
    );
    let list = env.run(&["list"]);
    assert!(list.stdout.contains("held (bypassed)"), "{list:?}");

    // Automation: the environment variables, on a key never locked.
    let mut cmd = env.cmd(&["run", "fresh", "--", "true"]);
    cmd.env("BATON_BYPASS_LOCK", "1")
        .env("BATON_BYPASS_REASON", "nightly emergency job");
    let out = finish(cmd.spawn().expect("spawn"));
    assert_eq!(out.code, 0, "{out:?}");
    let fresh = env.status("fresh");
    assert_eq!(s(&fresh, "state"), "absent", "no grant was made");
    assert_eq!(s(&fresh["bypass"], "reason"), "nightly emergency job");
    assert_eq!(n(&fresh["bypass"], "count"), 1);
}

#[test]
fn a_bypass_without_a_reason_or_that_would_wait_is_refused_and_writes_nothing() {
    let env = Env::new();
    for args in [
        &["run", "k", "--no-lock", "--", "true"][..],
        &["run", "k", "--no-lock", "--reason", " ", "--", "true"],
        &[
            "run",
            "k",
            "--no-lock",
            "--reason",
            "x",
            "--wait",
            "1m",
            "--",
            "true",
        ],
        &[
            "run",
            "k",
            "--no-lock",
            "--reason",
            "x",
            "--queue",
            "--wait",
            "1m",
            "--",
            "true",
        ],
        &[
            "run",
            "k",
            "--no-lock",
            "--reason",
            "x",
            "--test",
            "--",
            "true",
        ],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, 125, "{args:?}: {out:?}");
        assert!(out.stderr.contains("--no-lock"), "{args:?}: {out:?}");
    }
    let status = env.status("k");
    assert_eq!(s(&status, "state"), "absent");
    assert!(
        status.get("bypass").is_none(),
        "nothing was recorded: {status}"
    );
}

#[test]
fn test_runs_and_real_runs_do_not_block_each_other() {
    let env = Env::new();
    let real = acquire(&env, "k", &["--owner", "real"]);
    let test = env.run(&["--json", "run", "k", "--test", "--", "true"]);
    assert_eq!(
        test.code, 0,
        "a test run is not blocked by a real one: {test:?}"
    );
    assert!(
        test.stderr.contains("test mode: holding k#test"),
        "{test:?}"
    );
    assert_eq!(s(&test.json(), "lockKey"), "k#test");
    assert_eq!(s(&env.status("k"), "lockId"), s(&real, "lockId"));

    // A held test key blocks test runs only.
    let test_holder = acquire(&env, "k#test", &["--owner", "tester-1"]);
    let blocked = env.run(&["run", "k", "--test", "--", "true"]);
    assert_eq!(
        blocked.code, 123,
        "test runs exclude each other: {blocked:?}"
    );
    let released = env.run(&["release", "k", "--lock-id", s(&real, "lockId")]);
    assert_eq!(released.code, 0, "{released:?}");
    let real_run = env.run(&["run", "k", "--", "true"]);
    assert_eq!(
        real_run.code, 0,
        "a real run is not blocked by a test one: {real_run:?}"
    );
    assert_eq!(
        s(&env.status("k#test"), "lockId"),
        s(&test_holder, "lockId")
    );
}

#[test]
fn history_shows_each_ended_grant_newest_first_with_how_it_ended() {
    let env = Env::new();
    // `table create` on an existing lock table adds the history table.
    let created = env.run(&["table", "create"]);
    assert_eq!(created.code, 0, "{created:?}");
    let first = acquire(
        &env,
        "deploy-api-prod",
        &["--owner", "alice", "--purpose", "v1"],
    );
    let out = env.run(&[
        "release",
        "deploy-api-prod",
        "--lock-id",
        s(&first, "lockId"),
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    acquire(&env, "deploy-api-prod", &["--owner", "bob"]);
    let out = env.run(&[
        "force-unlock",
        "deploy-api-prod",
        "--actor",
        "ops",
        "--reason",
        "runner died",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let other = acquire(&env, "deploy-web-prod", &["--owner", "carol"]);
    let out = env.run(&[
        "release",
        "deploy-web-prod",
        "--lock-id",
        s(&other, "lockId"),
        "--status",
        "failed",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(env.table.record_history());

    let out = env.run(&["--json", "history", "deploy-api-prod"]);
    assert_eq!(out.code, 0, "{out:?}");
    let entries = out.json()["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let summary: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| (s(e, "lockedBy"), s(e, "outcome"), s(e, "endedBy")))
        .collect();
    assert_eq!(
        summary,
        vec![("bob", "FORCED", "ops"), ("alice", "COMPLETED", "alice")]
    );
    assert_eq!(s(&entries[0], "reason"), "runner died");
    assert_eq!(s(&entries[1], "nextHolder"), "bob");

    // Every key: a KEY column, and the failed release of the other key.
    let out = env.run(&["history"]);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ENDED") && lines[0].contains("KEY"),
        "{out:?}"
    );
    assert_eq!(lines.len(), 4, "a header and three grants: {out:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("deploy-web-prod") && l.contains("FAILED")),
        "{out:?}"
    );

    let limited = env.run(&["--json", "history", "--limit", "1"]);
    assert_eq!(limited.json()["entries"].as_array().map(Vec::len), Some(1));
    let none = env.run(&["history", "never-locked"]);
    assert_eq!(none.code, 0, "{none:?}");
    assert!(none.stdout.contains("no grants ended"), "{none:?}");
    let bad = env.run(&["history", "--since", "last tuesday"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("--since"), "{bad:?}");
}

// ---------------------------------------------------------------------------
// The caller's identity as AWS knows it (sts:GetCallerIdentity on a loopback
// server answering STS's XML, reached through AWS_ENDPOINT_URL_STS).

const CI_ARN: &str = "arn:aws:sts::123456789012:assumed-role/baton-ci/github-run-7";
const OPS_ARN: &str = "arn:aws:sts::123456789012:assumed-role/baton-admin/alice";

fn sts_identity(arn: &str) -> baton_testkit::Reply {
    let body = format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <GetCallerIdentityResult><Arn>{arn}</Arn><UserId>AROAEXAMPLE:run</UserId>\
         <Account>123456789012</Account></GetCallerIdentityResult>\
         <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>\
         </GetCallerIdentityResponse>"
    );
    baton_testkit::Reply::new(200, body).header("content-type", "text/xml")
}

/// A multi-thread runtime (the server's tasks run while the test blocks on
/// baton) and a loopback STS.
fn sts() -> (tokio::runtime::Runtime, baton_testkit::HttpRecorder) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let recorder = runtime
        .block_on(baton_testkit::HttpRecorder::start())
        .expect("STS recorder");
    (runtime, recorder)
}

/// The GetCallerIdentity requests STS received.
fn identity_calls(recorder: &baton_testkit::HttpRecorder) -> usize {
    recorder
        .requests()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains("Action=GetCallerIdentity"))
        .count()
}

#[test]
fn the_callers_arn_is_recorded_on_grants_and_force_unlocks_asked_once_per_process() {
    let env = Env::new();
    let (_runtime, recorder) = sts();
    recorder.script("/", [sts_identity(CI_ARN), sts_identity(OPS_ARN)]);
    recorder.default_reply("/", sts_identity(CI_ARN));
    let with_sts = |args: &[&str]| {
        finish(
            env.cmd(args)
                .env("AWS_ENDPOINT_URL_STS", recorder.url())
                .spawn()
                .expect("spawn baton"),
        )
    };

    let grant = with_sts(&["--json", "acquire", "k", "--owner", "says-anything"]);
    assert_eq!(grant.code, 0, "{grant:?}");
    assert_eq!(s(&grant.json(), "callerArn"), CI_ARN);
    assert_eq!(identity_calls(&recorder), 1);
    let stored = env.status("k");
    assert_eq!(s(&stored, "callerArn"), CI_ARN);
    assert_eq!(s(&stored, "lockedBy"), "says-anything");
    let text = env.run(&["status", "k"]);
    assert!(
        text.stdout.contains(&format!("caller:  {CI_ARN}")),
        "{text:?}"
    );

    // Reading and renewing ask no one, even with STS reachable.
    let renewed = with_sts(&["renew", "k", "--lock-id", s(&grant.json(), "lockId")]);
    assert_eq!(renewed.code, 0, "{renewed:?}");
    assert_eq!(identity_calls(&recorder), 1);

    let forced = with_sts(&[
        "--json",
        "force-unlock",
        "k",
        "--actor",
        "ops",
        "--reason",
        "stuck",
    ]);
    assert_eq!(forced.code, 0, "{forced:?}");
    assert_eq!(identity_calls(&recorder), 2);
    let stored = env.status("k");
    assert_eq!(stored["forced"], true);
    assert_eq!(s(&stored, "forcedByArn"), OPS_ARN);
    assert_eq!(s(&stored, "releasedBy"), "ops");
    assert_eq!(s(&stored, "callerArn"), CI_ARN, "the grant's caller stays");
    let text = env.run(&["status", "k"]);
    assert!(
        text.stdout
            .contains(&format!("(forced, as AWS knows it {OPS_ARN})")),
        "{text:?}"
    );

    // `run` acquires, renews and releases: one question for the process.
    let run = with_sts(&["run", "k2", "--ttl", "2s", "--", "sleep", "1.5"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(identity_calls(&recorder), 3);
    assert_eq!(s(&env.status("k2"), "callerArn"), CI_ARN);
}

#[test]
fn a_failed_caller_lookup_writes_nothing_and_skip_goes_without() {
    let env = Env::new();
    let (_runtime, recorder) = sts();
    recorder.default_reply(
        "/",
        baton_testkit::Reply::new(
            403,
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
             <Type>Sender</Type><Code>ExpiredToken</Code>\
             <Message>The security token included in the request is expired</Message>\
             </Error><RequestId>r-2</RequestId></ErrorResponse>",
        )
        .header("content-type", "text/xml"),
    );
    let with_sts = |args: &[&str], setting: Option<&str>| {
        let mut cmd = env.cmd(args);
        cmd.env("AWS_ENDPOINT_URL_STS", recorder.url());
        if let Some(setting) = setting {
            cmd.env("BATON_CALLER_IDENTITY", setting);
        }
        finish(cmd.spawn().expect("spawn baton"))
    };

    let refused = with_sts(&["--json", "acquire", "k"], None);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert_eq!(s(&refused.json(), "error"), "caller_identity");
    assert!(
        refused.stderr.contains("sts:GetCallerIdentity")
            && refused.stderr.contains("ExpiredToken")
            && refused.stderr.contains("BATON_CALLER_IDENTITY=skip"),
        "{refused:?}"
    );
    assert_eq!(s(&env.status("k"), "state"), "absent");
    let run = with_sts(&["run", "k", "--", "true"], None);
    assert_eq!(run.code, 125, "baton's own error for run: {run:?}");
    let asked = identity_calls(&recorder);
    assert!(asked >= 2, "{asked}");

    let skipped = with_sts(&["--json", "acquire", "k"], Some("skip"));
    assert_eq!(skipped.code, 0, "{skipped:?}");
    assert!(skipped.json().get("callerArn").is_none_or(Value::is_null));
    assert_eq!(identity_calls(&recorder), asked, "skip asks no one");

    let typo = with_sts(&["--json", "acquire", "k2"], Some("off"));
    assert_eq!(typo.code, 2, "{typo:?}");
    assert_eq!(s(&env.status("k2"), "state"), "absent");
}
