//! Figure 5: cold start and footprint of the worker Lambda.
//!
//! Cold start: the release `baton-worker` is spawned with the environment
//! Lambda gives a function (`AWS_LAMBDA_RUNTIME_API` pointing at
//! [`LambdaRuntimeApi`] on loopback, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256`, …)
//! plus the worker's own settings (DynamoDB Local, loopback Slack/GitHub
//! recorders). "Ready" is its first `GET …/invocation/next`: the process has
//! run `main`, read its settings, built the SDK, lock and HTTP clients, and
//! asks for work. The clock starts just before `spawn` (fork/exec included).
//! One unmeasured spawn first (page cache), then the median of the rest.
//!
//! Footprint: one more process handles a batch of 10 `/build` commands on
//! distinct keys; then `VmHWM` (peak resident set) is read from
//! `/proc/PID/status`. Sizes come from the zips `make package` builds and
//! the `bootstrap` inside each (extracted by bench.sh).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use baton_testkit::{HttpRecorder, LambdaRuntimeApi};
use bytes::Bytes;
use object::{Architecture, Object};
use serde_json::json;
use tokio::process::{Child, Command};

use crate::Env;
use crate::fixtures;
use crate::report::{Row, Verdict, mib, ms};
use crate::stats::Samples;

const SECTION: &str = "5 cold start";
const SPAWNS: usize = 10;
const RSS_TARGET: u64 = 32 * 1024 * 1024;
const ZIP_TARGET: u64 = 4 * 1024 * 1024;
const READY_TARGET: Duration = Duration::from_millis(20);

pub async fn run(env: &Env) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    match pick_worker_binary(env) {
        Ok((binary, why)) => {
            let table = fixtures::create_table(&env.ddb).await?;
            let result = measure(env, &table, &binary, &why).await;
            fixtures::drop_table(&env.ddb, &table).await;
            match result {
                Ok(measured) => rows.extend(measured),
                Err(e) => rows.push(Row::failed(
                    SECTION,
                    "Worker cold start / peak RSS",
                    Verdict::Error,
                    format!("{e:#}"),
                )),
            }
        }
        Err(e) => rows.push(Row::failed(
            SECTION,
            "Worker cold start / peak RSS",
            Verdict::Error,
            format!("{e:#}"),
        )),
    }
    for name in ["baton-worker", "baton-router"] {
        rows.extend(sizes(env, name));
    }
    Ok(rows)
}

/// The worker binary to run: the Lambda's own `bootstrap` when it is built
/// for this machine, else the host release build of the same code.
fn pick_worker_binary(env: &Env) -> anyhow::Result<(PathBuf, String)> {
    let host = std::env::consts::ARCH;
    let mut skipped = Vec::new();
    let mut candidates = vec![
        env.lambda_dir.join("baton-worker/bootstrap"),
        env.out_dir.join("lambda/baton-worker/bootstrap"),
    ];
    candidates.extend(env.worker_bin.clone());
    for path in candidates {
        let file = std::fs::File::open(&path).ok();
        match file.and_then(|f| elf_arch(&object::ReadCache::new(f))) {
            Some(arch) if arch == host => {
                let why = if skipped.is_empty() {
                    format!("{} ({arch})", display(env, &path))
                } else {
                    format!("{} ({arch}; {})", display(env, &path), skipped.join("; "))
                };
                return Ok((path, why));
            }
            Some(arch) => skipped.push(format!("the Lambda build is {arch} and cannot run on this {host} machine, so the host release build of the same code is timed")),
            None => {}
        }
    }
    bail!(
        "no runnable baton-worker binary (looked for the Lambda bootstrap and --worker-bin); {}",
        skipped.join("; ")
    )
}

fn display(env: &Env, path: &Path) -> String {
    path.strip_prefix(&env.root)
        .map_or_else(|_| path.display().to_string(), |p| p.display().to_string())
}

struct Spawned {
    child: Child,
    api: LambdaRuntimeApi,
    started: Instant,
}

async fn spawn(
    env: &Env,
    binary: &Path,
    table: &str,
    slack: &str,
    github: &str,
    config: &Path,
) -> anyhow::Result<Spawned> {
    let api = LambdaRuntimeApi::start().await?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(env.out_dir.join("worker-cold-start.log"))
        .context("opening the worker log")?;
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("TZ", ":UTC")
        .env("LANG", "en_US.UTF-8")
        .env("AWS_LAMBDA_RUNTIME_API", api.host())
        .env("AWS_LAMBDA_FUNCTION_NAME", "baton-worker")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/baton-worker")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[1]bench")
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
        .env("_HANDLER", "bootstrap")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "baton")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_SESSION_TOKEN", "bench")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", env.out_dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            env.out_dir.join("no-aws-credentials"),
        )
        .env("AWS_ENDPOINT_URL_DYNAMODB", &env.ddb)
        .env("BATON_TABLE", table)
        .env("BATON_CONFIG", config)
        .env("SLACK_BOT_TOKEN", "xoxb-bench")
        .env("GITHUB_TOKEN", "ghp-bench")
        .env("SLACK_API_URL", format!("{slack}/api"))
        .env("SLACK_RESPONSE_URL_PREFIX", format!("{slack}/response/"))
        .env("GITHUB_API_URL", github)
        .env("GITHUB_SERVER_URL", "https://github.example")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("spawning {}", binary.display()))?;
    Ok(Spawned {
        child,
        api,
        started,
    })
}

/// Waits for the first poll; returns the time from spawn to it.
async fn ready(spawned: &mut Spawned) -> anyhow::Result<Duration> {
    tokio::select! {
        polled = spawned.api.wait_until(Duration::from_secs(20), |s| !s.polls.is_empty()) => {
            if !polled {
                bail!("the worker did not poll the runtime API within 20 s");
            }
        }
        status = spawned.child.wait() => {
            let errors = spawned.api.with(|s| s.errors.iter().map(|(p, b)| format!("{p}: {}", String::from_utf8_lossy(b))).collect::<Vec<_>>());
            bail!("the worker exited before its first poll ({status:?}); init errors {errors:?}; see target/bench/worker-cold-start.log");
        }
    }
    let first = spawned
        .api
        .with(|s| s.polls.first().copied())
        .flatten()
        .context("no poll recorded")?;
    Ok(first.saturating_duration_since(spawned.started))
}

async fn stop(mut spawned: Spawned) {
    let _ = spawned.child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), spawned.child.wait()).await;
}

/// `(VmHWM, VmRSS)` in bytes.
fn memory(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading /proc/PID/status")?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Ok((
        field("VmHWM:").context("no VmHWM")?,
        field("VmRSS:").context("no VmRSS")?,
    ))
}

async fn measure(env: &Env, table: &str, binary: &Path, which: &str) -> anyhow::Result<Vec<Row>> {
    let slack = HttpRecorder::start().await?;
    let github = HttpRecorder::start().await?;
    fixtures::github_stub(&github);
    std::fs::create_dir_all(&env.out_dir)?;
    let config = env.out_dir.join("worker-config.toml");
    std::fs::write(&config, fixtures::config_toml())?;
    let _ = std::fs::remove_file(env.out_dir.join("worker-cold-start.log"));
    let (slack_url, github_url) = (slack.url(), github.url());

    let spawns = env.scale(SPAWNS);
    let mut times = Vec::new();
    for i in 0..=spawns {
        let mut spawned = spawn(env, binary, table, &slack_url, &github_url, &config).await?;
        let took = ready(&mut spawned).await;
        stop(spawned).await;
        if i > 0 {
            times.push(took?);
        } else {
            took?;
        }
    }
    let times = Samples::new(times);
    let ready_p50 = times.p50();

    // Footprint: a batch of 10 through the real runtime loop.
    let mut spawned = spawn(env, binary, table, &slack_url, &github_url, &config).await?;
    ready(&mut spawned).await?;
    let pid = spawned.child.id().context("the worker has no pid")?;
    let (idle_hwm, _) = memory(pid)?;
    let records = fixtures::commands("/build", 0, 10, "plt", &format!("{slack_url}/response/"));
    let event = serde_json::to_vec(&fixtures::sqs_event_json(&records))?;
    let sent = Instant::now();
    spawned.api.invoke("bench-batch-1", Bytes::from(event));
    let answered = spawned
        .api
        .wait_until(Duration::from_secs(30), |s| {
            !s.responses.is_empty() || !s.errors.is_empty()
        })
        .await;
    let outcome = spawned
        .api
        .with(|s| (s.responses.first().cloned(), s.errors.first().cloned()))
        .unwrap_or_default();
    let memory = memory(pid);
    stop(spawned).await;
    let (response_at, body) = match (answered, outcome) {
        (true, (Some((_, at, body)), _)) => (at, body),
        (_, (_, Some((path, body)))) => bail!(
            "the worker reported an error at {path}: {}",
            String::from_utf8_lossy(&body)
        ),
        _ => bail!("the worker did not answer the batch within 30 s"),
    };
    let batch_time = response_at.saturating_duration_since(sent);
    let response: serde_json::Value =
        serde_json::from_slice(&body).context("batch response is not JSON")?;
    let failures = response["batchItemFailures"].as_array().map_or(0, Vec::len);
    let dispatched = github.requests_to("/repos/").len();
    if failures != 0 || dispatched != 10 {
        bail!(
            "the batch did not go through: {failures} failures, {dispatched} dispatches; response {response}"
        );
    }
    let (hwm, rss) = memory?;

    Ok(vec![
        Row::new(
            SECTION,
            format!("Worker cold start: spawn → first GET /next (median of {spawns})"),
            format!("{} (min {}, max {})", ms(ready_p50), ms(times.pct(0.0)), ms(times.max())),
        )
        .target("≤ 20 ms", Verdict::meets(ready_p50 <= READY_TARGET))
        .note(format!("binary: {which}; local Runtime API on loopback, 256 MB env, worker settings from env"))
        .data(json!({ "ready": times.json(), "binary": binary.display().to_string() })),
        Row::new(SECTION, "Worker peak RSS (VmHWM) after a batch of 10", mib(hwm))
            .target("≤ 32 MiB", Verdict::meets(hwm <= RSS_TARGET))
            .note(format!(
                "VmHWM {} after init, {} after the batch (VmRSS now {}); first batch of 10 answered in {}",
                mib(idle_hwm),
                mib(hwm),
                mib(rss),
                ms(batch_time)
            ))
            .data(json!({ "vmhwm_bytes": hwm, "vmrss_bytes": rss, "vmhwm_after_init_bytes": idle_hwm, "first_batch_ms": crate::report::ms_f(batch_time) })),
    ])
}

/// Zip size and the stripped `bootstrap` inside it.
fn sizes(env: &Env, name: &str) -> Vec<Row> {
    let zip = env.lambda_dir.join(name).join("bootstrap.zip");
    let short = name.trim_start_matches("baton-");
    let Ok(meta) = std::fs::metadata(&zip) else {
        return vec![Row::failed(
            SECTION,
            &format!("{short} zip / stripped binary"),
            Verdict::Error,
            format!(
                "{} is missing: `make package` did not produce it",
                display(env, &zip)
            ),
        )];
    };
    let zip_size = meta.len();
    let mut rows = vec![
        Row::new(SECTION, format!("{short} zip"), mib(zip_size))
            .target("≤ 4 MiB", Verdict::meets(zip_size <= ZIP_TARGET))
            .data(json!({ "bytes": zip_size, "path": display(env, &zip) })),
    ];
    let extracted = env.out_dir.join("lambda").join(name).join("bootstrap");
    match std::fs::read(&extracted) {
        Ok(bytes) => {
            let arch = elf_arch(&*bytes).unwrap_or("unknown");
            let stripped = !object::File::parse(&*bytes).is_ok_and(|f| f.symbol_table().is_some());
            let mut row = Row::new(
                SECTION,
                format!("{short} binary (bootstrap in the zip)"),
                format!(
                    "{} ({arch}{})",
                    mib(bytes.len() as u64),
                    if stripped {
                        ", stripped"
                    } else {
                        ", NOT stripped"
                    }
                ),
            )
            .data(json!({ "bytes": bytes.len(), "arch": arch, "stripped": stripped }));
            let host_bin = if name == "baton-worker" {
                env.worker_bin.clone()
            } else {
                env.router_bin.clone()
            };
            if let Some(size) = host_bin
                .and_then(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
            {
                row = row.note(format!(
                    "{short}: host ({}) release build of the same code is {}",
                    std::env::consts::ARCH,
                    mib(size)
                ));
            }
            rows.push(row);
        }
        Err(e) => rows.push(Row::failed(
            SECTION,
            &format!("{short} binary (bootstrap in the zip)"),
            Verdict::Error,
            format!(
                "{} could not be read ({e}); bench.sh extracts it from the zip",
                display(env, &extracted)
            ),
        )),
    }
    rows
}

/// The machine an ELF file is built for; `None` when it is not ELF.
fn elf_arch<'data>(data: impl object::ReadRef<'data>) -> Option<&'static str> {
    Some(match object::File::parse(data).ok()?.architecture() {
        Architecture::X86_64 => "x86_64",
        Architecture::Aarch64 => "aarch64",
        _ => "other",
    })
}
