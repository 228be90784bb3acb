//! `baton-bench`: the figures behind `make bench`, measured on loopback
//! against DynamoDB Local, a local SQS (moto) and in-process stand-ins for
//! Slack and GitHub. Prints one table (figure, value, target, verdict) on
//! stdout and writes the same rows to `target/bench/results.json`.
//!
//! ```text
//! baton-bench [--root DIR] [--worker-bin PATH] [--router-bin PATH]
//!             [--lambda-dir DIR] [--only 1,2,…] [--quick]
//! ```
//!
//! `tests/tooling/bench.sh` (`make bench`) starts the servers, builds the
//! binaries and the Lambda zips, and runs this. Endpoints come from
//! `BATON_TEST_DYNAMODB_ENDPOINT` / `BATON_TEST_SQS_ENDPOINT` (defaults
//! `http://127.0.0.1:8000` / `:4566`) and must be loopback. Progress goes to
//! stderr. Exit status 1 when a figure could not be measured (ERROR); a
//! figure that misses its target is reported, not an error.

mod coldstart;
mod contention;
mod fixtures;
mod freeze;
mod history;
mod line;
mod net;
mod overhead;
mod reconciler;
mod report;
mod requests;
mod router;
mod stats;
mod worker;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use report::{Row, Verdict};
use serde_json::json;

const USAGE: &str = "usage: baton-bench [--root DIR] [--worker-bin PATH] [--router-bin PATH] [--lambda-dir DIR] [--only 1,2,...] [--quick]";

/// Where things are and how long to measure.
pub struct Env {
    pub root: PathBuf,
    /// `target/bench` under the repository.
    pub out_dir: PathBuf,
    /// `target/lambda` under the repository (`make package` output).
    pub lambda_dir: PathBuf,
    pub ddb: String,
    pub sqs: String,
    /// The host release `baton-worker` (used when the Lambda build cannot run here).
    pub worker_bin: Option<PathBuf>,
    /// The host release `baton-router`.
    pub router_bin: Option<PathBuf>,
    /// Fewer iterations, for trying the bench out.
    pub quick: bool,
    pub contention_time: Duration,
    only: Vec<u8>,
}

impl Env {
    /// `n` iterations, or a tenth of them (at least 3) with `--quick`.
    pub fn scale(&self, n: usize) -> usize {
        if self.quick { (n / 10).max(3) } else { n }
    }

    fn from_args() -> anyhow::Result<Env> {
        let mut root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        let (mut worker_bin, mut router_bin, mut lambda_dir, mut only, mut quick) =
            (None, None, None, Vec::new(), false);
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .with_context(|| format!("{arg} needs a value\n{USAGE}"))
            };
            match arg.as_str() {
                "--root" => root = PathBuf::from(value()?),
                "--worker-bin" => worker_bin = Some(PathBuf::from(value()?)),
                "--router-bin" => router_bin = Some(PathBuf::from(value()?)),
                "--lambda-dir" => lambda_dir = Some(PathBuf::from(value()?)),
                "--only" => {
                    only = value()?
                        .split(',')
                        .map(|s| {
                            s.trim().parse::<u8>().with_context(|| {
                                format!(
                                    "--only takes figure numbers 1-{}, got {s:?}",
                                    SECTIONS.len()
                                )
                            })
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--quick" => quick = true,
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        let root = root.canonicalize().unwrap_or(root);
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let ddb = var("BATON_TEST_DYNAMODB_ENDPOINT", "http://127.0.0.1:8000");
        let sqs = var("BATON_TEST_SQS_ENDPOINT", "http://127.0.0.1:4566");
        net::ensure_loopback(&ddb)?;
        net::ensure_loopback(&sqs)?;
        Ok(Env {
            out_dir: root.join("target/bench"),
            lambda_dir: lambda_dir.unwrap_or_else(|| root.join("target/lambda")),
            root,
            ddb,
            sqs,
            worker_bin,
            router_bin,
            quick,
            contention_time: Duration::from_secs(if quick { 1 } else { 5 }),
            only,
        })
    }
}

type Section<'a> = Pin<Box<dyn Future<Output = anyhow::Result<Vec<Row>>> + Send + 'a>>;

const SECTIONS: [(u8, &str, &str); 9] = [
    (1, "1 requests", "DynamoDB requests per operation"),
    (2, "2 overhead", "library overhead against the raw SDK"),
    (
        3,
        "3 contention",
        "contention: 8, 32, 64 contenders on one key",
    ),
    (
        4,
        "4 worker",
        "worker: time beyond its requests; batch of 10 against 1",
    ),
    (5, "5 cold start", "cold start, peak RSS and sizes"),
    (6, "6 router", "router: signed request to 200"),
    (
        7,
        "7 reconciler",
        "reconciler: requests and time per pass, lost-webhook release",
    ),
    (
        8,
        "8 line",
        "waiting lines: requests, throughput, fairness, hand-off latency",
    ),
    (
        9,
        "9 history",
        "history: lock requests with the stream on, consumer writes, reads",
    ),
];

fn section(env: &Env, n: u8) -> Section<'_> {
    match n {
        1 => Box::pin(requests::run(env)),
        2 => Box::pin(overhead::run(env)),
        3 => Box::pin(contention::run(env)),
        4 => Box::pin(worker::run(env)),
        5 => Box::pin(coldstart::run(env)),
        6 => Box::pin(router::run(env)),
        7 => Box::pin(reconciler::run(env)),
        8 => Box::pin(line::run(env)),
        _ => Box::pin(history::run(env)),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let started = Instant::now();
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let env = match Env::from_args() {
        Ok(env) => env,
        Err(e) => {
            eprintln!("baton-bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&env.out_dir) {
        eprintln!("baton-bench: cannot create {}: {e}", env.out_dir.display());
        return ExitCode::FAILURE;
    }
    let mut rows = Vec::new();
    let mut timings = serde_json::Map::new();
    for (n, name, title) in SECTIONS {
        if !env.only.is_empty() && !env.only.contains(&n) {
            continue;
        }
        eprintln!("bench: {n}/{} {title} …", SECTIONS.len());
        let t = Instant::now();
        match tokio::time::timeout(Duration::from_secs(300), section(&env, n)).await {
            Ok(Ok(measured)) => rows.extend(measured),
            Ok(Err(e)) => rows.push(Row::failed(
                name,
                title,
                Verdict::Error,
                format!("{title}: {e:#}"),
            )),
            Err(_) => rows.push(Row::failed(
                name,
                title,
                Verdict::Error,
                format!("{title}: did not finish within 300 s"),
            )),
        }
        timings.insert(name.to_owned(), json!(t.elapsed().as_secs_f64()));
    }

    let elapsed = started.elapsed();
    print!("{}", report::render(&rows));
    let meta = json!({
        "started_at": started_at,
        "wall_time_s": elapsed.as_secs_f64(),
        "section_time_s": timings,
        "host": { "arch": std::env::consts::ARCH, "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0) },
        "dynamodb": env.ddb,
        "sqs": env.sqs,
        "quick": env.quick,
        "worker_bin": env.worker_bin,
        "router_bin": env.router_bin,
    });
    let json_path = env.out_dir.join("results.json");
    let written = report::write_json(&json_path, &rows, meta);
    match &written {
        Ok(()) => eprintln!(
            "bench: figures measured in {:.0} s; JSON in {}",
            elapsed.as_secs_f64(),
            json_path.display()
        ),
        Err(e) => eprintln!("bench: could not write {}: {e}", json_path.display()),
    }
    let errors = rows.iter().filter(|r| r.verdict == Verdict::Error).count();
    if errors > 0 {
        eprintln!("bench: {errors} figure(s) could not be measured (ERROR above)");
    }
    if errors > 0 || written.is_err() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
