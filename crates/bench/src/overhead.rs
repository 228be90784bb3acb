//! Figure 2: what `baton-lock` costs on top of the DynamoDB requests it
//! sends. Acquire+release through the library against the very same two
//! `UpdateItem` requests written by hand with the SDK (expressions copied
//! from `crates/lock/src/acquire.rs` and `ownership.rs`), on the same SDK
//! client, interleaved in one run against DynamoDB Local (alternating which
//! goes first). Before timing, one pair of each is captured at the wire and
//! compared, so the comparison cannot silently drift from the library.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use baton_lock::{AcquireRequest, LockClient, LockOptions, LockStatus, ReleaseRequest};
use baton_testkit::{FaultProxy, fast_options, local_dynamodb_client};
use serde_json::{Value, json};

use crate::Env;
use crate::fixtures;
use crate::report::{Row, Verdict, ms};
use crate::stats::Samples;

const SECTION: &str = "2 overhead";

// The library's acquire for a request with only key, owner and ttl: every
// optional attribute is removed so a grant never inherits the previous one's.
const ACQUIRE_UPDATE: &str = "SET #lockId = :lockId, #requestId = :requestId, #status = :status, \
    #lockedBy = :lockedBy, #lockedAt = :lockedAt, #expiresAt = :expiresAt, #ttl = :ttl, \
    #activeLock = :activeLock, \
    #prevRequestId7 = if_not_exists(#prevRequestId6, :none), #prevRequestId6 = if_not_exists(#prevRequestId5, :none), \
    #prevRequestId5 = if_not_exists(#prevRequestId4, :none), #prevRequestId4 = if_not_exists(#prevRequestId3, :none), \
    #prevRequestId3 = if_not_exists(#prevRequestId2, :none), #prevRequestId2 = if_not_exists(#prevRequestId, :none), \
    #prevRequestId = if_not_exists(#requestId, :none), #prevLockId = if_not_exists(#lockId, :none), \
    #prevLockedBy = if_not_exists(#lockedBy, :none), #prevStatus = if_not_exists(#status, :none), \
    #prevExpiresAt = if_not_exists(#expiresAt, :zero), #fence = if_not_exists(#fence, :fenceBase) + :one \
    REMOVE #lockedByName, #purpose, #component, #environment, #correlationId, #host, #pid, #runUrl, \
    #runId, #runRepository, #runWorkflow, #endedAt, #releasedBy, #releaseReason, #forced";
const ACQUIRE_CONDITION: &str = "(attribute_not_exists(#lockKey) OR #status <> :inProgress OR #expiresAt <= :takeoverBefore) \
    AND (attribute_not_exists(#requestId) OR #requestId <> :requestId) \
    AND (attribute_not_exists(#prevRequestId) OR #prevRequestId <> :requestId) \
    AND (attribute_not_exists(#prevRequestId2) OR #prevRequestId2 <> :requestId) \
    AND (attribute_not_exists(#prevRequestId3) OR #prevRequestId3 <> :requestId) \
    AND (attribute_not_exists(#prevRequestId4) OR #prevRequestId4 <> :requestId) \
    AND (attribute_not_exists(#prevRequestId5) OR #prevRequestId5 <> :requestId) \
    AND (attribute_not_exists(#prevRequestId6) OR #prevRequestId6 <> :requestId) \
    AND (attribute_not_exists(#prevRequestId7) OR #prevRequestId7 <> :requestId)";
const ACQUIRE_NAMES: &[&str] = &[
    "lockId",
    "requestId",
    "status",
    "lockedBy",
    "lockedAt",
    "expiresAt",
    "ttl",
    "activeLock",
    "prevLockId",
    "prevLockedBy",
    "prevStatus",
    "prevRequestId",
    "prevRequestId2",
    "prevRequestId3",
    "prevRequestId4",
    "prevRequestId5",
    "prevRequestId6",
    "prevRequestId7",
    "prevExpiresAt",
    "fence",
    "lockKey",
    "lockedByName",
    "purpose",
    "component",
    "environment",
    "correlationId",
    "host",
    "pid",
    "runUrl",
    "runId",
    "runRepository",
    "runWorkflow",
    "endedAt",
    "releasedBy",
    "releaseReason",
    "forced",
];

// The library's release by lock id, without actor, reason or fence.
const RELEASE_UPDATE: &str = "SET #status = :status, #endedAt = :endedAt, #releasedBy = #lockedBy, #ttl = :ttl \
    REMOVE #releaseReason, #activeLock";
const RELEASE_CONDITION: &str = "#lockId = :lockId AND #status = :inProgress";
const RELEASE_NAMES: &[&str] = &[
    "status",
    "endedAt",
    "releasedBy",
    "lockedBy",
    "ttl",
    "releaseReason",
    "activeLock",
    "lockId",
];

const WARMUP: usize = 50;
const ITERATIONS: usize = 300;

pub async fn run(env: &Env) -> anyhow::Result<Vec<Row>> {
    let table = fixtures::create_table(&env.ddb).await?;
    let result = measure(env, &table).await;
    fixtures::drop_table(&env.ddb, &table).await;
    result
}

/// The same two requests, hand-written with the SDK.
struct Direct {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    options: LockOptions,
}

impl Direct {
    async fn acquire(&self, key: &str, owner: &str, ttl: Duration) -> anyhow::Result<String> {
        let now_ms = epoch_millis();
        let lock_id = uuid::Uuid::new_v4().to_string();
        let expires_at = (now_ms + ttl.as_millis() as u64).div_ceil(1000);
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let n = |v: u64| AttributeValue::N(v.to_string());
        let values = HashMap::from([
            (":lockId".to_owned(), s(&lock_id)),
            (":requestId".to_owned(), s(&lock_id)),
            (":status".to_owned(), s("IN_PROGRESS")),
            (":lockedBy".to_owned(), s(owner)),
            (
                ":lockedAt".to_owned(),
                s(&humantime::format_rfc3339_seconds(SystemTime::now()).to_string()),
            ),
            (":expiresAt".to_owned(), n(expires_at)),
            (
                ":ttl".to_owned(),
                n(expires_at + self.options.retention.as_secs()),
            ),
            (":activeLock".to_owned(), s("IN_PROGRESS")),
            (":none".to_owned(), s("")),
            (":zero".to_owned(), n(0)),
            (":fenceBase".to_owned(), n(now_ms)),
            (":one".to_owned(), n(1)),
            (":inProgress".to_owned(), s("IN_PROGRESS")),
            (
                ":takeoverBefore".to_owned(),
                n(now_ms / 1000 - self.options.clock_skew.as_secs()),
            ),
        ]);
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("lockKey", s(key))
            .update_expression(ACQUIRE_UPDATE)
            .condition_expression(ACQUIRE_CONDITION)
            .set_expression_attribute_names(Some(names(ACQUIRE_NAMES)))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "direct acquire: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                )
            })?;
        Ok(lock_id)
    }

    async fn release(&self, key: &str, lock_id: &str) -> anyhow::Result<()> {
        let now = epoch_millis() / 1000;
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let values = HashMap::from([
            (":status".to_owned(), s("COMPLETED")),
            (
                ":endedAt".to_owned(),
                s(&humantime::format_rfc3339_seconds(SystemTime::now()).to_string()),
            ),
            (
                ":ttl".to_owned(),
                AttributeValue::N((now + self.options.retention.as_secs()).to_string()),
            ),
            (":lockId".to_owned(), s(lock_id)),
            (":inProgress".to_owned(), s("IN_PROGRESS")),
        ]);
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("lockKey", s(key))
            .update_expression(RELEASE_UPDATE)
            .condition_expression(RELEASE_CONDITION)
            .set_expression_attribute_names(Some(names(RELEASE_NAMES)))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "direct release: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                )
            })?;
        Ok(())
    }
}

fn names(list: &[&str]) -> HashMap<String, String> {
    list.iter()
        .map(|n| (format!("#{n}"), (*n).to_owned()))
        .collect()
}

fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

async fn library_pair(locks: &LockClient, key: &str) -> anyhow::Result<()> {
    let grant = locks
        .acquire(&AcquireRequest::new(
            key,
            "U0BENCH",
            Duration::from_secs(60),
        ))
        .await
        .context("library acquire")?;
    locks
        .release(&ReleaseRequest::new(
            key,
            grant.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .context("library release")?;
    Ok(())
}

async fn direct_pair(direct: &Direct, key: &str) -> anyhow::Result<()> {
    let lock_id = direct
        .acquire(key, "U0BENCH", Duration::from_secs(60))
        .await?;
    direct.release(key, &lock_id).await
}

async fn measure(env: &Env, table: &str) -> anyhow::Result<Vec<Row>> {
    let options = fast_options();
    let mismatch = compare_at_wire(env, table, &options).await?;

    let ddb = local_dynamodb_client(&env.ddb, 3);
    let locks = LockClient::with_options(ddb.clone(), table, options.clone());
    let direct = Direct {
        ddb,
        table: table.to_owned(),
        options,
    };
    let (mut lib, mut sdk) = (Vec::new(), Vec::new());
    let iterations = env.scale(ITERATIONS);
    for i in 0..WARMUP + iterations {
        for library_turn in if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        } {
            let start = Instant::now();
            if library_turn {
                library_pair(&locks, "bench-overhead-lib").await?;
            } else {
                direct_pair(&direct, "bench-overhead-sdk").await?;
            }
            let took = start.elapsed();
            if i >= WARMUP {
                if library_turn {
                    lib.push(took)
                } else {
                    sdk.push(took)
                }
            }
        }
    }
    let (lib, sdk) = (Samples::new(lib), Samples::new(sdk));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    let (r50, r99) = (ratio(lib.p50(), sdk.p50()), ratio(lib.p99(), sdk.p99()));
    let extra_us = (lib.p50().as_secs_f64() - sdk.p50().as_secs_f64()) * 1e6;

    let mut ratio_row = Row::new(
        SECTION,
        "Library overhead: ratio baton-lock / raw SDK",
        format!("{r50:.3}× p50 ({extra_us:+.0} µs), {r99:.3}× p99"),
    )
    .target("≤ 1.10× (p50)", Verdict::meets(r50 <= 1.10))
    .data(json!({ "ratio_p50": r50, "ratio_p99": r99, "extra_p50_us": extra_us }));
    let method = format!(
        "{iterations} acquire+release pairs each after {WARMUP} warm-up, interleaved, same SDK client, DynamoDB Local; \
         the raw-SDK pair sends the library's exact requests (checked at the wire{})",
        if mismatch.is_empty() {
            ": identical".to_owned()
        } else {
            format!(": DIFFERENT: {}", mismatch.join("; "))
        }
    );
    ratio_row = ratio_row.note(method);
    if !mismatch.is_empty() {
        ratio_row.verdict = Verdict::Error;
    }
    Ok(vec![
        Row::new(
            SECTION,
            "acquire+release via baton-lock (p50 / p99)",
            format!("{} / {}", ms(lib.p50()), ms(lib.p99())),
        )
        .data(lib.json()),
        Row::new(
            SECTION,
            "acquire+release, same requests, raw SDK (p50 / p99)",
            format!("{} / {}", ms(sdk.p50()), ms(sdk.p99())),
        )
        .data(sdk.json()),
        ratio_row,
    ])
}

/// Sends one library pair and one direct pair through a counting proxy and
/// compares what reached the wire; returns the differences.
async fn compare_at_wire(
    env: &Env,
    table: &str,
    options: &LockOptions,
) -> anyhow::Result<Vec<String>> {
    let proxy = FaultProxy::passthrough(&env.ddb).await?;
    let ddb = local_dynamodb_client(&proxy.url(), 1);
    let locks = LockClient::with_options(ddb.clone(), table, options.clone());
    let direct = Direct {
        ddb,
        table: table.to_owned(),
        options: options.clone(),
    };
    library_pair(&locks, "bench-wire-lib").await?;
    direct_pair(&direct, "bench-wire-sdk").await?;
    let requests = proxy.requests();
    if requests.len() != 4 {
        bail!(
            "expected 4 requests at the wire, saw {:?}",
            proxy.operations()
        );
    }
    let mut diffs = Vec::new();
    for (what, a, b) in [
        ("acquire", &requests[0], &requests[2]),
        ("release", &requests[1], &requests[3]),
    ] {
        let (a, b) = (shape(&a.body)?, shape(&b.body)?);
        if a != b {
            for (field, av) in &a {
                if b.get(field) != Some(av) {
                    diffs.push(format!(
                        "{what} {field}: library {av} vs bench {}",
                        b.get(field).unwrap_or(&Value::Null)
                    ));
                }
            }
        }
    }
    Ok(diffs)
}

/// What makes two `UpdateItem` requests "the same": expressions (update
/// clauses as a set), names, value placeholders and types, return values.
fn shape(body: &[u8]) -> anyhow::Result<BTreeMap<String, Value>> {
    let v: Value = serde_json::from_slice(body).context("request body is not JSON")?;
    let update = v["UpdateExpression"].as_str().unwrap_or_default();
    let (set, remove) = match update.split_once(" REMOVE ") {
        Some((set, remove)) => (set, remove),
        None => (update, ""),
    };
    let clauses = |s: &str| -> BTreeSet<String> {
        split_top_level(
            s.trim()
                .trim_start_matches("SET ")
                .trim_start_matches("REMOVE "),
        )
        .into_iter()
        .filter(|c| !c.is_empty())
        .collect()
    };
    let value_types: BTreeMap<String, String> = v["ExpressionAttributeValues"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, t)| {
                    (
                        k.clone(),
                        t.as_object()
                            .and_then(|t| t.keys().next().cloned())
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    out.insert("SET".into(), json!(clauses(set)));
    out.insert("REMOVE".into(), json!(clauses(remove)));
    out.insert(
        "ConditionExpression".into(),
        json!(
            v["ConditionExpression"]
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        ),
    );
    out.insert(
        "ExpressionAttributeNames".into(),
        v["ExpressionAttributeNames"].clone(),
    );
    out.insert(
        "ExpressionAttributeValues (types)".into(),
        json!(value_types),
    );
    out.insert("ReturnValues".into(), v["ReturnValues"].clone());
    out.insert(
        "ReturnValuesOnConditionCheckFailure".into(),
        v["ReturnValuesOnConditionCheckFailure"].clone(),
    );
    out.insert(
        "Key".into(),
        json!(
            v["Key"]
                .as_object()
                .map(|k| k.keys().cloned().collect::<Vec<_>>())
        ),
    );
    Ok(out)
}

/// Splits on commas outside parentheses.
fn split_top_level(s: &str) -> Vec<String> {
    let (mut out, mut depth, mut cur) = (Vec::new(), 0i32, String::new());
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_owned());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur.trim().to_owned());
    out
}
