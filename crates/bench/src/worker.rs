//! Figure 4: the worker, in process (`Worker::handle`), against DynamoDB
//! Local and loopback recorders standing in for Slack and GitHub.
//!
//! Time beyond its own requests. Every DynamoDB, Slack and GitHub request
//! of the worker goes through a [`FaultProxy`] that records when the
//! request reached it and when the upstream's whole answer was in hand. A
//! `/build` makes its requests one after another (acquire, dispatch, record
//! the run, reply), so `handle()` wall time minus the sum of those intervals
//! is what the worker spends itself: parsing the SQS record and command,
//! building and signing requests, (de)serialising, rendering the reply, and
//! the socket work of each request. One thing in that difference is the
//! proxy's, not the worker's: the extra loopback hop into the proxy and its
//! HTTP parsing. It is calibrated by timing bare requests through the same
//! proxy from a minimal client (client round trip minus the proxy's own
//! record) and subtracted once per request. The uncorrected value is kept in
//! the notes and the JSON as an upper bound.
//!
//! Batch against single: wall time of `handle()` for 10 commands on 10
//! distinct keys against one command, medians over interleaved repetitions,
//! twice: on bare loopback, and with a fixed latency added in the proxies
//! (DynamoDB 5 ms, GitHub and Slack 20 ms per request) standing in for the
//! network that real services sit behind.

use std::time::{Duration, Instant};

use anyhow::bail;
use baton_chatops::Config;
use baton_lock::LockClient;
use baton_testkit::{
    FaultProxy, HttpRecorder, ProxiedRequest, fast_options, local_dynamodb_client,
};
use baton_worker::{Worker, WorkerSettings};
use bytes::Bytes;
use serde_json::json;

use crate::Env;
use crate::fixtures;
use crate::net::Connection;
use crate::report::{Row, Verdict, ms, ms_f};
use crate::stats::Samples;

const SECTION: &str = "4 worker";
const WARMUP: usize = 10;
const MESSAGES: usize = 100;
const CALIBRATION: usize = 200;
const BATCH: usize = 10;
const REPS: usize = 15;
/// Latency added at the proxies for the "real network" variant (also used
/// by the reconciler figures).
pub const DDB_LATENCY: Duration = Duration::from_millis(5);
pub const HTTP_LATENCY: Duration = Duration::from_millis(20);

fn settings(config: Config, slack_url: &str, github_url: &str) -> WorkerSettings {
    WorkerSettings {
        default_budget: Duration::from_secs(20),
        http_timeout: Duration::from_secs(3),
        ..WorkerSettings::local(config, slack_url, github_url)
    }
}

pub async fn run(env: &Env) -> anyhow::Result<Vec<Row>> {
    let table = fixtures::create_table(&env.ddb).await?;
    let result = measure(env, &table).await;
    fixtures::drop_table(&env.ddb, &table).await;
    result
}

/// A worker whose every request passes a proxy that times it (figures 4
/// and 7).
pub struct Rig {
    pub ddb: FaultProxy,
    pub slack: FaultProxy,
    pub github: FaultProxy,
    pub worker: Worker,
    response_prefix: String,
}

impl Rig {
    /// `latency` is added at the proxies: `(DynamoDB, Slack and GitHub)`.
    pub async fn new(
        env: &Env,
        table: &str,
        config: &Config,
        recorders: (&HttpRecorder, &HttpRecorder),
        latency: (Duration, Duration),
    ) -> anyhow::Result<Rig> {
        let ddb = FaultProxy::with_latency(&env.ddb, latency.0).await?;
        let slack = FaultProxy::with_latency(&recorders.0.url(), latency.1).await?;
        let github = FaultProxy::with_latency(&recorders.1.url(), latency.1).await?;
        let locks =
            LockClient::with_options(local_dynamodb_client(&ddb.url(), 3), table, fast_options());
        let worker = Worker::new(locks, settings(config.clone(), &slack.url(), &github.url()))?;
        let response_prefix = format!("{}/response/", slack.url());
        Ok(Rig {
            ddb,
            slack,
            github,
            worker,
            response_prefix,
        })
    }

    /// Requests since the last call, in the order they started.
    fn take(&self) -> Vec<ProxiedRequest> {
        let mut seen = self.ddb.take();
        seen.extend(self.slack.take());
        seen.extend(self.github.take());
        seen.sort_by_key(|t| t.arrived);
        seen
    }

    /// Handles one event; returns its wall time and the requests it made.
    async fn handle(
        &self,
        records: &[(String, String)],
    ) -> anyhow::Result<(Duration, Vec<ProxiedRequest>)> {
        let event = fixtures::sqs_event(records)?;
        let _ = self.take();
        let start = Instant::now();
        let response = self.worker.handle(event).await;
        let wall = start.elapsed();
        if !response.batch_item_failures.is_empty() {
            bail!(
                "the worker sent commands back to the queue: {:?}",
                response.batch_item_failures
            );
        }
        Ok((wall, self.take()))
    }
}

async fn measure(env: &Env, table: &str) -> anyhow::Result<Vec<Row>> {
    let config = Config::from_toml_str(&fixtures::config_toml())
        .map_err(|e| anyhow::anyhow!("bench config: {e}"))?;
    let slack = HttpRecorder::start().await?;
    let github = HttpRecorder::start().await?;
    fixtures::github_stub(&github);
    let recorders = (&slack, &github);

    let bare = Rig::new(
        env,
        table,
        &config,
        recorders,
        (Duration::ZERO, Duration::ZERO),
    )
    .await?;
    let mut rows = per_message(env, &bare).await?;
    let dispatches = github.requests_to("/repos/").len();
    rows.push(batch_against_single(env, &bare, "/build", None).await?);
    let slow = Rig::new(env, table, &config, recorders, (DDB_LATENCY, HTTP_LATENCY)).await?;
    rows.push(
        batch_against_single(env, &slow, "/deploy", Some((DDB_LATENCY, HTTP_LATENCY))).await?,
    );
    let expected = 2 * (2 + env.scale(REPS)) * (BATCH + 1);
    let dispatched = github.requests_to("/repos/").len() - dispatches;
    if dispatched != expected {
        bail!("expected {expected} dispatches in the batch runs, GitHub saw {dispatched}");
    }
    Ok(rows)
}

async fn per_message(env: &Env, rig: &Rig) -> anyhow::Result<Vec<Row>> {
    let messages = env.scale(MESSAGES);
    let (mut beyond, mut walls, mut external) = (Vec::new(), Vec::new(), Vec::new());
    let mut sequence: Option<Vec<String>> = None;
    for i in 0..WARMUP + messages {
        let (wall, seen) = rig
            .handle(&fixtures::commands(
                "/build",
                i,
                1,
                "dev",
                &rig.response_prefix,
            ))
            .await?;
        let spent: Duration = seen.iter().filter_map(ProxiedRequest::took).sum();
        if i >= WARMUP {
            beyond.push(wall.saturating_sub(spent));
            walls.push(wall);
            external.push(spent);
        }
        let this: Vec<String> = seen.iter().map(|t| kind(t.label())).collect();
        match &sequence {
            None => sequence = Some(this),
            Some(first) if *first != this => {
                bail!("a /build made different requests: {first:?} then {this:?}")
            }
            Some(_) => {}
        }
    }
    let sequence = sequence.unwrap_or_default();
    let hop = proxy_hop(env, rig).await?;
    let corrected: Vec<Duration> = beyond
        .iter()
        .map(|b| b.saturating_sub(hop * sequence.len() as u32))
        .collect();
    let (corrected, beyond) = (Samples::new(corrected), Samples::new(beyond));
    let (walls, external) = (Samples::new(walls), Samples::new(external));
    let ddb_ops = sequence.iter().filter(|k| !k.contains(' ')).count();
    let http = sequence.len() - ddb_ops;
    Ok(vec![
        Row::new(
            SECTION,
            "Worker: time per /build beyond its requests (p50 / p99)",
            format!("{} / {}", ms(corrected.p50()), ms(corrected.p99())),
        )
        .note(format!(
            "handle() wall minus the time its {} requests spent at timing proxies in front of DynamoDB Local, Slack and \
             GitHub, minus the proxy hop ({} per request, calibrated); {messages} messages after {WARMUP} warm-up; \
             handle() p50 {}, requests p50 {}, uncorrected difference p50 {} / p99 {}",
            sequence.len(),
            ms(hop),
            ms(walls.p50()),
            ms(external.p50()),
            ms(beyond.p50()),
            ms(beyond.p99())
        ))
        .data(json!({
            "beyond_requests": corrected.json(),
            "beyond_requests_uncorrected": beyond.json(),
            "proxy_hop_ms": ms_f(hop),
            "handle": walls.json(),
            "requests": external.json(),
        })),
        Row::new(SECTION, "Worker: requests per /build", format!("DynamoDB {ddb_ops}, HTTP {http}"))
            .note(format!(
                "a /build makes, in order: {}; the second UpdateItem records the run URL on the grant before Slack is \
                 told, so a redelivered message can never dispatch twice",
                sequence.join(" → ")
            ))
            .data(json!({ "sequence": sequence, "dynamodb": ddb_ops, "http": http })),
    ])
}

/// What the proxy adds to a request beyond what it records: the median of
/// (client round trip − proxy record) for bare requests through it.
async fn proxy_hop(env: &Env, rig: &Rig) -> anyhow::Result<Duration> {
    let mut client = Connection::open(&rig.slack.url()).await?;
    let body = Bytes::from_static(br#"{"text":"calibration"}"#);
    let headers = [("content-type", "application/json".to_owned())];
    let _ = rig.take();
    let mut trips = Vec::new();
    for _ in 0..env.scale(CALIBRATION) {
        let sent = Instant::now();
        client.post("/calibrate", &headers, body.clone()).await?;
        trips.push(sent.elapsed());
    }
    let recorded = rig.take();
    if recorded.len() != trips.len() {
        bail!(
            "calibration: {} requests sent, the proxy recorded {}",
            trips.len(),
            recorded.len()
        );
    }
    let hops: Vec<Duration> = trips
        .iter()
        .zip(&recorded)
        .map(|(t, r)| t.saturating_sub(r.took().unwrap_or_default()))
        .collect();
    Ok(Samples::new(hops).p50())
}

/// A DynamoDB operation name as is; an HTTP path as what it is for.
fn kind(label: &str) -> String {
    if label.starts_with("/response/") {
        "Slack response_url".into()
    } else if label.ends_with("/dispatches") {
        "GitHub dispatch".into()
    } else if label.starts_with('/') {
        format!("HTTP {label}")
    } else {
        label.to_owned()
    }
}

async fn batch_against_single(
    env: &Env,
    rig: &Rig,
    command: &str,
    latency: Option<(Duration, Duration)>,
) -> anyhow::Result<Row> {
    let reps = env.scale(REPS);
    let (mut batches, mut singles) = (Vec::new(), Vec::new());
    let (mut ddb_in_batch, mut ddb_alone) = (Vec::new(), Vec::new());
    let (mut next_batch, mut next_single) = (0, 0);
    for rep in 0..2 + reps {
        for batch_turn in if rep % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        } {
            let records = if batch_turn {
                next_batch += BATCH;
                fixtures::commands(
                    command,
                    next_batch - BATCH,
                    BATCH,
                    "plt",
                    &rig.response_prefix,
                )
            } else {
                next_single += 1;
                fixtures::commands(command, next_single - 1, 1, "prod", &rig.response_prefix)
            };
            let (took, seen) = rig.handle(&records).await?;
            if rep >= 2 {
                let ddb = seen
                    .iter()
                    .filter(|t| !t.operation.is_empty())
                    .filter_map(ProxiedRequest::took);
                if batch_turn {
                    batches.push(took);
                    ddb_in_batch.extend(ddb);
                } else {
                    singles.push(took);
                    ddb_alone.extend(ddb);
                }
            }
        }
    }
    let (batches, singles) = (Samples::new(batches), Samples::new(singles));
    let (ddb_in_batch, ddb_alone) = (Samples::new(ddb_in_batch), Samples::new(ddb_alone));
    let ratio = batches.p50().as_secs_f64() / singles.p50().as_secs_f64().max(1e-9);
    let (figure, setting) = match latency {
        None => (
            "Worker: batch of 10 vs 1, bare loopback (p50 wall)".to_owned(),
            "no added latency".to_owned(),
        ),
        Some((ddb, http)) => (
            format!(
                "Worker: batch of 10 vs 1, +{}/{} ms service latency",
                ddb.as_millis(),
                http.as_millis()
            ),
            format!(
                "{} ms added per DynamoDB request and {} ms per Slack/GitHub request at the proxies",
                ddb.as_millis(),
                http.as_millis()
            ),
        ),
    };
    let mut note = format!(
        "{command} commands, each on its own key; {reps} interleaved repetitions after 2 warm-up; {setting}; \
         a DynamoDB request took p50 {} alone and {} inside a batch",
        ms(ddb_alone.p50()),
        ms(ddb_in_batch.p50())
    );
    if latency.is_none() && ratio >= 2.0 {
        note.push_str(
            ": on bare loopback nothing waits on a network, so the batch measures DynamoDB Local's write throughput \
             (its requests queue behind each other) and the worker's CPU time (one task), not how much of the \
             waiting overlaps",
        );
    }
    Ok(Row::new(SECTION, figure, format!("{} vs {} = {ratio:.2}×", ms(batches.p50()), ms(singles.p50())))
        .target("< 2×", Verdict::meets(ratio < 2.0))
        .note(note)
        .data(json!({
            "ratio": ratio,
            "batch_of_10": batches.json(),
            "single": singles.json(),
            "dynamodb_request_in_batch": ddb_in_batch.json(),
            "dynamodb_request_alone": ddb_alone.json(),
            "added_latency_ms": latency.map(|(d, h)| json!({ "dynamodb": d.as_millis() as u64, "http": h.as_millis() as u64 })),
        })))
}
