//! Figure 1: DynamoDB requests per lock operation, counted at the wire by
//! `baton_testkit::FaultProxy::passthrough` (an HTTP proxy on loopback in
//! front of DynamoDB Local that logs every request's `X-Amz-Target`), not
//! from the library's own claims. SDK retries, if any, would be counted too.

use std::time::Duration;

use anyhow::{Context, bail};
use baton_lock::clock::now_epoch_secs;
use baton_lock::{
    AcquireRequest, GrantKind, ListQuery, LockClient, LockError, LockStatus, ReleaseRequest,
};
use baton_testkit::{FaultProxy, fast_options, local_dynamodb_client};
use serde_json::json;

use crate::Env;
use crate::fixtures;
use crate::report::{Row, Verdict, describe};

const SECTION: &str = "1 requests";

pub async fn run(env: &Env) -> anyhow::Result<Vec<Row>> {
    let table = fixtures::create_table(&env.ddb).await?;
    let result = measure(env, &table).await;
    fixtures::drop_table(&env.ddb, &table).await;
    result
}

async fn measure(env: &Env, table: &str) -> anyhow::Result<Vec<Row>> {
    let proxy = FaultProxy::passthrough(&env.ddb).await?;
    let locks = LockClient::with_options(
        local_dynamodb_client(&proxy.url(), 3),
        table,
        fast_options(),
    );
    let mut rows = Vec::new();
    let ops = |proxy: &FaultProxy| {
        let ops = proxy.operations();
        proxy.clear();
        ops
    };

    // Acquire when free.
    proxy.clear();
    let alice = locks
        .acquire(&AcquireRequest::new(
            "bench-free",
            "U0ALICE",
            Duration::from_secs(600),
        ))
        .await
        .context("acquire (free)")?;
    if alice.kind != GrantKind::New {
        bail!("acquire of a fresh key returned {:?}", alice.kind);
    }
    rows.push(count_row("acquire (free)", &ops(&proxy)));

    // Acquire when held: the error must name the holder, from the same request.
    let held = locks
        .acquire(&AcquireRequest::new(
            "bench-free",
            "U0BOB",
            Duration::from_secs(600),
        ))
        .await;
    let seen = ops(&proxy);
    match held {
        Err(LockError::Held { holder })
            if holder.lock_id == alice.lock_id() && holder.locked_by == "U0ALICE" =>
        {
            rows.push(count_row("acquire (held; holder identified)", &seen));
        }
        Err(LockError::Held { holder }) => bail!(
            "acquire (held) named the wrong holder: {} / {} instead of U0ALICE / {}",
            holder.locked_by,
            holder.lock_id,
            alice.lock_id()
        ),
        other => bail!("acquire of a held key did not fail with Held: {other:?}"),
    }

    // Takeover of an expired lease (1 s lease, zero clock skew).
    let lapsed = locks
        .acquire(&AcquireRequest::new(
            "bench-expiring",
            "U0ALICE",
            Duration::from_secs(1),
        ))
        .await
        .context("acquire (1 s lease)")?;
    // Expired once the store's clock (this machine's) passes the lease end.
    while now_epoch_secs() < lapsed.record.expires_at {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.clear();
    let bob = locks
        .acquire(&AcquireRequest::new(
            "bench-expiring",
            "U0BOB",
            Duration::from_secs(600),
        ))
        .await
        .context("takeover of an expired lock")?;
    let seen = ops(&proxy);
    match &bob.kind {
        GrantKind::TakenOver { from } if from.lock_id == lapsed.lock_id() => {
            rows.push(count_row("takeover of an expired lock", &seen));
        }
        other => bail!(
            "acquire after expiry returned {other:?}, not a takeover of {}",
            lapsed.lock_id()
        ),
    }

    // Release.
    locks
        .release(&ReleaseRequest::new(
            "bench-free",
            alice.lock_id(),
            LockStatus::Completed,
        ))
        .await
        .context("release")?;
    rows.push(count_row("release", &ops(&proxy)));

    // Renew.
    locks
        .renew("bench-expiring", bob.lock_id(), Duration::from_secs(900))
        .await
        .context("renew")?;
    rows.push(count_row("renew", &ops(&proxy)));

    // Status.
    let status = locks.status("bench-expiring").await.context("status")?;
    if status.map(|r| r.lock_id) != Some(bob.lock_id().to_owned()) {
        bail!("status did not return the current grant");
    }
    rows.push(count_row("status", &ops(&proxy)));

    // List, per page: 25 held locks read 10 at a time.
    for i in 0..25 {
        locks
            .acquire(&AcquireRequest::new(
                format!("bench-list-{i:02}"),
                "U0ALICE",
                Duration::from_secs(600),
            ))
            .await
            .context("acquire for list")?;
    }
    proxy.clear();
    let mut query = ListQuery {
        prefix: Some("bench-list-".into()),
        page_size: Some(10),
        ..Default::default()
    };
    let (mut pages, mut listed) = (0usize, 0usize);
    loop {
        let page = locks.list(&query).await.context("list")?;
        pages += 1;
        listed += page.locks.len();
        match page.next_page_token {
            Some(token) if pages < 50 => query.page_token = Some(token),
            _ => break,
        }
    }
    let seen = ops(&proxy);
    if listed != 25 {
        bail!("list returned {listed} locks, expected 25");
    }
    let per_page = seen.len() as f64 / pages as f64;
    let value = format!(
        "{per_page:.2} per page ({} {} / {pages} pages of ≤10)",
        seen.len(),
        describe(&seen)
    );
    let at_floor = seen.len() == pages;
    let mut row = Row::new(SECTION, "DynamoDB requests: list, per page", value)
        .target("1 per page (floor)", Verdict::meets(at_floor))
        .data(
            json!({ "requests": seen.len(), "pages": pages, "locks": listed, "operations": seen }),
        );
    if !at_floor {
        row = row.note(format!(
            "list sent {} requests for {pages} pages: {seen:?}",
            seen.len()
        ));
    }
    rows.push(row);
    rows.extend(crate::freeze::rows(env, table).await?);
    Ok(rows)
}

fn count_row(what: &str, ops: &[String]) -> Row {
    let at_floor = ops.len() == 1;
    let mut row = Row::new(
        SECTION,
        format!("DynamoDB requests: {what}"),
        format!("{} ({})", ops.len(), describe(ops)),
    )
    .target("1 (floor)", Verdict::meets(at_floor))
    .data(json!({ "requests": ops.len(), "operations": ops }));
    if !at_floor {
        row = row.note(format!(
            "{what}: {} requests at the wire ({ops:?}), above the floor of 1 (an SDK retry, or an extra read)",
            ops.len()
        ));
    }
    row
}
