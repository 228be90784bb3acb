//! Figure 1, continued: what the freeze check costs an acquire. The
//! checked acquire is one `TransactWriteItems` (a `ConditionCheck` on the
//! freeze's item and the grant's `Update`) whether it grants, meets a
//! holder or meets a freeze; requests are counted at the wire as for the
//! other operations. Write units are what DynamoDB Local reports with
//! `ReturnConsumedCapacity = TOTAL`, which an SDK interceptor adds to the
//! library's own writes (a granted write; a refused one reports none
//! through the SDK's error).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsInput, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemInput, UpdateItemOutput};
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use aws_smithy_runtime_api::box_error::BoxError;
use baton_lock::{
    AcquireRequest, FreezeKey, FreezeRequest, GrantKind, LockClient, LockError, LockStatus,
    ReleaseRequest,
};
use baton_testkit::{FaultProxy, fast_options, local_dynamodb_client};
use serde_json::json;

use crate::Env;
use crate::report::{Row, Verdict, describe};

const SECTION: &str = "1 requests";

/// Asks every write for its consumed capacity and keeps what comes back.
#[derive(Debug, Clone, Default)]
struct WriteUnits(Arc<Mutex<Vec<f64>>>);

impl WriteUnits {
    fn take(&self) -> Vec<f64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Intercept for WriteUnits {
    fn name(&self) -> &'static str {
        "WriteUnits"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input_mut();
        if let Some(update) = input.downcast_mut::<UpdateItemInput>() {
            update.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
        } else if let Some(transaction) = input.downcast_mut::<TransactWriteItemsInput>() {
            transaction.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(output) = context.output_or_error() else {
            return Ok(());
        };
        let units = match output.downcast_ref::<UpdateItemOutput>() {
            Some(out) => out.consumed_capacity().and_then(|c| c.capacity_units()),
            None => output
                .downcast_ref::<TransactWriteItemsOutput>()
                .map(|out| {
                    out.consumed_capacity()
                        .iter()
                        .filter_map(|c| c.capacity_units())
                        .sum()
                }),
        };
        if let Some(units) = units {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(units);
        }
        Ok(())
    }
}

/// The rows: requests of a checked acquire (granted, held, frozen) and
/// the write units of a granted acquire with and without the check.
pub async fn rows(env: &Env, table: &str) -> anyhow::Result<Vec<Row>> {
    let proxy = FaultProxy::passthrough(&env.ddb).await?;
    let units = WriteUnits::default();
    let sdk = local_dynamodb_client(&proxy.url(), 3);
    let sdk = aws_sdk_dynamodb::Client::from_conf(
        sdk.config().to_builder().interceptor(units.clone()).build(),
    );
    let locks = LockClient::with_options(sdk, table, fast_options());
    let freeze = FreezeKey::new("bench/prod").context("freeze key")?;
    let ops = |proxy: &FaultProxy| {
        let ops = proxy.operations();
        proxy.clear();
        ops
    };
    let request = |key: &str, owner: &str, checked: bool| {
        let mut r = AcquireRequest::new(key, owner, Duration::from_secs(600));
        r.purpose = Some("/deploy api prod".into());
        r.environment = Some("prod".into());
        if checked {
            r.unless_frozen = Some(freeze.clone());
        }
        r
    };
    let mut rows = Vec::new();

    // The same grant (a key released once before), without and with the check.
    let mut measured = Vec::new();
    for (checked, key) in [
        (false, "bench-freeze-plain"),
        (true, "bench-freeze-checked"),
    ] {
        let first = locks.acquire(&request(key, "U0ALICE", false)).await?;
        locks
            .release(&ReleaseRequest::new(
                key,
                first.lock_id(),
                LockStatus::Completed,
            ))
            .await?;
        proxy.clear();
        units.take();
        let grant = locks
            .acquire(&request(key, "U0BOB", checked))
            .await
            .with_context(|| format!("acquire (checked: {checked})"))?;
        let seen = ops(&proxy);
        let wcu: f64 = units.take().iter().sum();
        if checked && grant.kind != GrantKind::Checked {
            bail!("a checked acquire returned {:?}", grant.kind);
        }
        measured.push((checked, seen, wcu));
    }
    let (_, checked_ops, checked_wcu) = &measured[1];
    rows.push(count_row("freeze-checked acquire (free)", checked_ops));
    let plain_wcu = measured[0].2;
    rows.push(
        Row::new(
            SECTION,
            "write units: acquire without / with the freeze check",
            format!("{plain_wcu} / {checked_wcu} (DynamoDB Local's ConsumedCapacity)"),
        )
        .target("reported", Verdict::Info)
        .data(json!({ "plain": plain_wcu, "checked": checked_wcu }))
        .note("A transaction is charged twice its items' write units (DynamoDB's transactional rate): the grant's update doubled, plus two for the condition check of the freeze item (under 1 KB). A lock item with its history is 1-2 KB, so 2 units plain, 6 checked; these are DynamoDB Local's figures for this run."),
    );

    // Held, then frozen: still one request each, the refusal read from it.
    let held = locks
        .acquire(&request("bench-freeze-checked", "U0CAROL", true))
        .await;
    let seen = ops(&proxy);
    if !matches!(held, Err(LockError::Held { .. })) {
        bail!("a checked acquire of a held key returned {held:?}");
    }
    rows.push(count_row("freeze-checked acquire (held)", &seen));
    locks
        .freeze(&FreezeRequest {
            key: freeze.clone(),
            by: "U0ADMIN".into(),
            by_name: None,
            reason: "bench".into(),
            duration: Duration::from_secs(600),
        })
        .await?;
    proxy.clear();
    let frozen = locks
        .acquire(&request("bench-freeze-other", "U0CAROL", true))
        .await;
    let seen = ops(&proxy);
    if !matches!(frozen, Err(LockError::Frozen { .. })) {
        bail!("a checked acquire under a freeze returned {frozen:?}");
    }
    rows.push(count_row(
        "freeze-checked acquire (frozen; freeze identified)",
        &seen,
    ));
    Ok(rows)
}

fn count_row(what: &str, ops: &[String]) -> Row {
    let at_floor = ops.len() == 1;
    Row::new(
        SECTION,
        format!("DynamoDB requests: {what}"),
        format!("{} ({})", ops.len(), describe(ops)),
    )
    .target("1 (floor)", Verdict::meets(at_floor))
    .data(json!({ "requests": ops.len(), "operations": ops }))
}
