//! Figure 9: what the history and the HTTP API cost. Lock operations are
//! counted at the wire on a table whose stream is on (the history is
//! derived from it, so the operations must stay one request each); the
//! consumer's own writes per ended grant are counted at a second proxy; a
//! key with 1,000 entries is read newest first; and an acquire + release
//! through `baton-api` on loopback is timed against the same two calls
//! made with the library.

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_api::{Api, Settings, Tokens, hash_hex};
use bytes::Bytes;

use anyhow::Context;
use baton_history::consume::record_all;
use baton_history::follow::Follower;
use baton_history::writer::HistoryWriter;
use baton_lock::{
    AcquireRequest, HistoryClient, HistoryQuery, LockClient, LockStatus, ReleaseRequest,
};
use baton_testkit::{FaultProxy, fast_options, local_dynamodb_client, local_streams_client};
use serde_json::json;

use crate::Env;
use crate::fixtures;
use crate::net::Connection;
use crate::report::{Row, Verdict, describe, ms};
use crate::stats::Samples;

const SECTION: &str = "9 history";

pub async fn run(env: &Env) -> anyhow::Result<Vec<Row>> {
    let table = fixtures::create_table(&env.ddb).await?;
    let result = measure(env, &table).await;
    fixtures::drop_table(&env.ddb, &baton_lock::schema::history::table_for(&table)).await;
    fixtures::drop_table(&env.ddb, &table).await;
    result
}

async fn measure(env: &Env, table: &str) -> anyhow::Result<Vec<Row>> {
    let history_table = baton_lock::schema::history::table_for(table);
    HistoryClient::new(local_dynamodb_client(&env.ddb, 3), &history_table)
        .create_table()
        .await
        .context("history table")?;
    let lock_proxy = FaultProxy::passthrough(&env.ddb).await?;
    let locks = LockClient::with_options(
        local_dynamodb_client(&lock_proxy.url(), 3),
        table,
        fast_options(),
    );
    let mut rows = Vec::new();

    // Lock operations with the stream on: acquire, renew, release.
    lock_proxy.clear();
    let grant = locks
        .acquire(&AcquireRequest::new(
            "bench-history",
            "U0ALICE",
            Duration::from_secs(60),
        ))
        .await
        .context("acquire")?;
    let acquire_ops = lock_proxy.operations();
    lock_proxy.clear();
    locks
        .renew("bench-history", grant.lock_id(), Duration::from_secs(60))
        .await
        .context("renew")?;
    let renew_ops = lock_proxy.operations();
    lock_proxy.clear();
    locks
        .release(&ReleaseRequest::new(
            "bench-history",
            grant.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .context("release")?;
    let release_ops = lock_proxy.operations();
    for (op, ops) in [
        ("acquire", &acquire_ops),
        ("renew", &renew_ops),
        ("release", &release_ops),
    ] {
        rows.push(
            Row::new(
                SECTION,
                format!("{op} with history on: requests"),
                describe(ops),
            )
            .target("1", Verdict::meets(ops.len() == 1))
            .note("the history is derived from the table's stream, not written by the operation"),
        );
    }

    // The consumer: 1,000 grants of one key, recorded from the stream.
    let grants = env.scale(1_000);
    for i in 1..grants {
        let g = locks
            .acquire(&AcquireRequest::new(
                "bench-history",
                format!("U{i}"),
                Duration::from_secs(60),
            ))
            .await
            .context("acquire")?;
        locks
            .release(&ReleaseRequest::new(
                "bench-history",
                g.lock_id(),
                LockStatus::Completed,
            ))
            .await
            .context("release")?;
    }
    let writer_proxy = FaultProxy::passthrough(&env.ddb).await?;
    let writer = HistoryWriter::new(
        local_dynamodb_client(&writer_proxy.url(), 3),
        &history_table,
        baton_lock::DEFAULT_RETENTION,
    );
    let mut follower = Follower::new(
        &local_dynamodb_client(&env.ddb, 3),
        local_streams_client(&env.ddb),
        table,
    )
    .await?;
    let changes = follower.poll().await?;
    writer_proxy.clear();
    let started = Instant::now();
    let (tally, failed) = record_all(&writer, &changes).await;
    let took = started.elapsed();
    anyhow::ensure!(failed.is_empty(), "{} changes not recorded", failed.len());
    let writes = writer_proxy.operations();
    let per_grant = writes.len() as f64 / grants as f64;
    rows.push(
        Row::new(
            SECTION,
            "consumer writes per ended grant",
            format!("{per_grant:.2} ({} writes for {grants} grants)", writes.len()),
        )
        .target("<= 2", Verdict::meets(per_grant <= 2.0))
        .note("one PutItem per entry, and one UpdateItem naming the next holder when the key is granted again after a plain release")
        .data(json!({"writes": writes.len(), "grants": grants, "tally": tally, "stream_changes": changes.len(), "record_ms": took.as_millis()})),
    );

    // Reading: the newest page of 20 of a key with `grants` entries,
    // through a proxy that counts the requests of each read.
    let read_proxy = FaultProxy::passthrough(&env.ddb).await?;
    let reader = HistoryClient::new(local_dynamodb_client(&read_proxy.url(), 3), &history_table);
    let mut samples = Vec::new();
    let mut most_requests = 0;
    for _ in 0..env.scale(200) {
        read_proxy.clear();
        let t = Instant::now();
        let page = reader
            .for_key("bench-history", &HistoryQuery::default())
            .await
            .context("history read")?;
        samples.push(t.elapsed());
        most_requests = most_requests.max(read_proxy.operations().len());
        anyhow::ensure!(
            page.entries.len() == 20,
            "a page of 20, got {}",
            page.entries.len()
        );
    }
    let samples = Samples::new(samples);
    rows.push(
        Row::new(
            SECTION,
            format!("history read, newest 20 of {grants}: p50"),
            ms(samples.p50()),
        )
        .target("1 Query per page", Verdict::meets(most_requests == 1))
        .data(json!({"latency": samples.json(), "most_requests_per_read": most_requests})),
    );
    rows.push(api_against_library(env, table).await?);
    Ok(rows)
}

/// Acquire + release: through the HTTP API (its own server on loopback,
/// one kept-alive connection, token checked on every call) against the
/// library calling DynamoDB Local directly.
async fn api_against_library(env: &Env, table: &str) -> anyhow::Result<Row> {
    let token = "bench-token";
    let tokens = Tokens::parse(&format!(
        r#"{{"tokens": [{{"name": "bench", "sha256": "{}", "scopes": ["lock:"]}}]}}"#,
        hash_hex(token)
    ))?;
    let locks = LockClient::with_options(local_dynamodb_client(&env.ddb, 3), table, fast_options());
    let api = Arc::new(Api::new(locks.clone(), tokens, Settings::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(baton_api::local::serve(listener, api));
    let mut connection = Connection::open(&url).await?;
    let headers = [
        ("authorization", format!("Bearer {token}")),
        ("content-type", "application/json".to_owned()),
    ];
    let rounds = env.scale(200);
    let (mut through_api, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let (status, body) = connection
            .post(
                "/v1/locks/bench-api/acquire",
                &headers,
                Bytes::from_static(br#"{"owner": "bench", "ttl": "1m"}"#),
            )
            .await?;
        anyhow::ensure!(status.is_success(), "acquire answered {status}");
        let lock_id = serde_json::from_slice::<serde_json::Value>(&body)?["lockId"]
            .as_str()
            .context("the grant's lockId")?
            .to_owned();
        let (status, _) = connection
            .post(
                "/v1/locks/bench-api/release",
                &headers,
                Bytes::from(json!({"lockId": lock_id}).to_string()),
            )
            .await?;
        anyhow::ensure!(status.is_success(), "release answered {status}");
        through_api.push(t.elapsed());

        let t = Instant::now();
        let g = locks
            .acquire(&AcquireRequest::new(
                "bench-lib",
                "bench",
                Duration::from_secs(60),
            ))
            .await?;
        locks
            .release(&ReleaseRequest::new(
                "bench-lib",
                g.lock_id(),
                LockStatus::Completed,
            ))
            .await?;
        direct.push(t.elapsed());
    }
    server.abort();
    let (through_api, direct) = (Samples::new(through_api), Samples::new(direct));
    let ratio = through_api.p50().as_secs_f64() / direct.p50().as_secs_f64().max(1e-9);
    Ok(Row::new(
        SECTION,
        "API acquire+release p50 against the library's",
        format!(
            "{} against {} ({ratio:.2}x)",
            ms(through_api.p50()),
            ms(direct.p50())
        ),
    )
    .target("<= 2x", Verdict::meets(ratio <= 2.0))
    .note("the API's own work: HTTP on loopback, token hash, JSON both ways")
    .data(json!({"api": through_api.json(), "library": direct.json(), "ratio": ratio})))
}
