//! The one-shot commands: each makes the library call(s) and turns the answer
//! into a [`Report`] or a [`Failure`]. `run` lives in its own module.

use baton_lock::clock::now_epoch_secs;
use std::time::Duration;

use baton_lock::{
    AcquireRequest, CancellationToken, Grant, GrantKind, JoinRequest, LineMode, ListQuery,
    LockClient, LockError, LockRecord, LockState, LockStatus, LockStore, ReleaseRequest,
    TableCreation,
};
use serde_json::{Value, json};

use crate::cli::{
    AcquireArgs, ForceUnlockArgs, HolderArgs, ListArgs, Outcome, ReleaseArgs, RenewArgs,
    VerifyArgs, WaitArgs,
};
use crate::failure::{Failure, NOT_OWNER, signal_exit};
use crate::identity::{self, ProcessEnv};
use crate::render::{self, Report, clean, describe, holder, iso, record_fields, state_name};
use crate::signals::{self, Signals, until_signal};

/// The acquire request for `key` from the flags, with CI-derived defaults,
/// this host and this process id, and the CI run URL when there is one.
pub fn acquire_request(key: &str, args: &HolderArgs, request_id: Option<String>) -> AcquireRequest {
    let host = identity::hostname();
    let id = identity::detect(&ProcessEnv, &host);
    AcquireRequest {
        key: key.to_owned(),
        owner: args.owner.clone().unwrap_or_else(|| id.owner.clone()),
        owner_name: args.owner_name.clone().or_else(|| id.owner_name.clone()),
        ttl: args.ttl,
        request_id,
        purpose: args.purpose.clone(),
        component: args.component.clone(),
        environment: args.environment.clone(),
        correlation_id: args
            .correlation_id
            .clone()
            .or_else(|| id.correlation_id.clone()),
        host: Some(host),
        pid: Some(std::process::id()),
        run_url: id.run_url,
        // CLI grants dispatch no pipeline and take over any expired lease.
        ..AcquireRequest::default()
    }
}

/// Acquires, waiting up to `--wait` (saying so on stderr) by polling or, with
/// `--queue`, in the key's line, stopping on SIGINT/SIGTERM. A grant that
/// lands while a signal is being handled is released at once (FAILED),
/// since the caller is going away and will never learn its lock id.
pub async fn acquire_interruptible(
    client: &LockClient,
    request: &AcquireRequest,
    args: &HolderArgs,
    signals: &mut Signals,
) -> Result<Grant, Failure> {
    let wait = args.wait;
    if args.queue && wait.is_zero() {
        return Err(Failure::usage(
            "--queue needs --wait: how long to wait in line, e.g. --queue --wait 30m",
        ));
    }
    let cancel = CancellationToken::new();
    let key = clean(&request.key);
    let work = async {
        if args.queue {
            let join = JoinRequest {
                acquire: request.clone(),
                mode: LineMode::Fifo {
                    max: usize::from(args.max_queue),
                },
                max_wait: wait,
                // The first lease a hand-off gives: a waiter polls every
                // fraction of a second, so only a dead one misses its turn.
                claim: Some(args.claim_window),
                member: None,
            };
            return client
                .acquire_in_line(&join, wait, &cancel, |place| {
                    render::eprintln_stderr(&format!(
                        "baton: {key} is held by {}; waiting in line at position {} (up to {})",
                        render::holder(&place.record),
                        place.position,
                        humantime::format_duration(wait)
                    ));
                })
                .await;
        }
        let mut told = false;
        client
            .acquire_with_wait(request, wait, &cancel, |holder| {
                if !told {
                    told = true;
                    render::eprintln_stderr(&format!(
                        "baton: {key} is held by {}; waiting up to {}",
                        render::holder(holder),
                        humantime::format_duration(wait)
                    ));
                }
            })
            .await
    };
    let (result, signal) = until_signal(work, signals, &cancel).await;
    match (result, signal) {
        (Ok(grant), Some(signo)) => {
            let reason = format!("interrupted by {} while acquiring", signals::name(signo));
            let mut release =
                ReleaseRequest::new(&request.key, grant.lock_id(), LockStatus::Failed);
            release.reason = Some(reason.clone());
            if let Err(e) = client.release(&release).await {
                render::eprintln_stderr(&format!(
                    "baton: warning: could not release the grant made while interrupted: {e}"
                ));
            }
            Err(interrupted(signo, &request.key))
        }
        (Err(LockError::Cancelled { .. }), Some(signo)) => Err(interrupted(signo, &request.key)),
        (Err(e), _) => Err(e.into()),
        (Ok(grant), None) => Ok(grant),
    }
}

/// The failure for a wait or acquire stopped by a signal: exit 128+N.
pub fn interrupted(signo: i32, key: &str) -> Failure {
    Failure::new(
        signal_exit(signo),
        "interrupted",
        format!(
            "interrupted by {} while waiting for `{key}`",
            signals::name(signo)
        ),
    )
}

/// `"new"`, `"taken_over"`, `"existing"` or (past a freeze check, which
/// the CLI never asks for) `"checked"`.
pub fn grant_kind_name(kind: &GrantKind) -> &'static str {
    match kind {
        GrantKind::New => "new",
        GrantKind::TakenOver { .. } => "taken_over",
        GrantKind::Existing => "existing",
        GrantKind::Checked => "checked",
    }
}

/// One line saying what was granted, plus how (took over, existing). The
/// lock id is the caller's own; the one it replaced is not printed.
pub fn grant_text(grant: &Grant) -> String {
    let r = &grant.record;
    let mut text = format!(
        "acquired {}: lock id {}, fence {}, expires {}",
        clean(&r.lock_key),
        r.lock_id,
        r.fence,
        iso(r.expires_at)
    );
    match &grant.kind {
        GrantKind::New | GrantKind::Checked => {}
        GrantKind::TakenOver { from } => text.push_str(&format!(
            " (took over the expired lease of {})",
            clean(&from.locked_by)
        )),
        GrantKind::Existing => text.push_str(" (existing grant of this request id)"),
    }
    text
}

/// `acquire KEY …`, recording `caller` (the STS ARN) on the grant.
pub async fn acquire(
    client: &LockClient,
    args: AcquireArgs,
    caller: Option<String>,
) -> Result<Report, Failure> {
    let mut request = acquire_request(&args.key, &args.holder, args.request_id);
    request.caller_arn = caller;
    let mut signals = Signals::install()?;
    let grant = acquire_interruptible(client, &request, &args.holder, &mut signals).await?;
    let mut json = record_fields(&grant.record);
    json.insert("grant".into(), json!(grant_kind_name(&grant.kind)));
    Ok(Report::ok(json, grant_text(&grant)))
}

/// `release KEY --lock-id ID`.
pub async fn release(client: &LockClient, args: ReleaseArgs) -> Result<Report, Failure> {
    let outcome = match args.status {
        Outcome::Completed => LockStatus::Completed,
        Outcome::Failed => LockStatus::Failed,
    };
    let mut request = ReleaseRequest::new(&args.key, &args.lock_id, outcome);
    request.reason = args.reason;
    let ended = client.release(&request).await?;
    let record = ended.record;
    let text = format!(
        "released {} as {}{} (lock id {}, fence {})",
        clean(&record.lock_key),
        record.status,
        record
            .release_reason
            .as_deref()
            .map(|r| format!(": {}", clean(r)))
            .unwrap_or_default(),
        clean(&record.lock_id),
        record.fence
    );
    Ok(Report::ok(record_fields(&record), text))
}

/// `queue KEY`: the holder and the line behind it, head first. Waiters'
/// tickets are never shown (each is its waiter's lock id to be).
pub async fn queue(client: &LockClient, key: &str) -> Result<Report, Failure> {
    let record = client.status(key).await?;
    let now_ms = client.now_millis();
    let waiters: Vec<Value> = record
        .iter()
        .flat_map(|r| r.waiters.iter())
        .enumerate()
        .map(|(i, w)| {
            json!({
                "position": i + 1,
                "owner": w.owner,
                "ownerName": w.owner_name,
                "purpose": w.purpose,
                "waitedSecs": w.waited(now_ms).as_secs(),
                "joinedAt": iso(w.joined_at_ms / 1000),
            })
        })
        .collect();
    let mut json = serde_json::Map::new();
    json.insert("lockKey".into(), json!(key));
    json.insert("state".into(), json!(state_name(record.as_ref())));
    json.insert("holder".into(), json!(record.as_ref().map(render::holder)));
    json.insert("waiting".into(), json!(waiters.len()));
    json.insert("waiters".into(), Value::Array(waiters));
    let mut text = match record
        .as_ref()
        .filter(|r| r.status == LockStatus::InProgress)
    {
        Some(r) => format!("{} is held by {}", clean(key), render::holder(r)),
        None => format!("{} is free", clean(key)),
    };
    match record.as_ref().map_or(&[][..], |r| r.waiters.as_slice()) {
        [] => text.push_str("; no one is waiting"),
        line => {
            for (i, w) in line.iter().enumerate() {
                text.push_str(&format!(
                    "\n  {}. {}{}, waiting {}",
                    i + 1,
                    clean(w.owner_name.as_deref().unwrap_or(&w.owner)),
                    w.purpose
                        .as_deref()
                        .map(|p| format!(" ({})", clean(p)))
                        .unwrap_or_default(),
                    humantime::format_duration(Duration::from_secs(w.waited(now_ms).as_secs())),
                ));
            }
        }
    }
    Ok(Report::ok(json, text))
}

/// `renew KEY --lock-id ID`.
pub async fn renew(client: &LockClient, args: RenewArgs) -> Result<Report, Failure> {
    let record = client.renew(&args.key, &args.lock_id, args.ttl).await?;
    let text = format!(
        "renewed {}: lease until {} (lock id {}, fence {})",
        clean(&record.lock_key),
        iso(record.expires_at),
        clean(&record.lock_id),
        record.fence
    );
    Ok(Report::ok(record_fields(&record), text))
}

/// The JSON and text for a key's state, shared by `status` and `wait`.
fn state_report(key: &str, record: Option<&LockRecord>) -> Report {
    let state = state_name(record);
    let mut json = record.map(record_fields).unwrap_or_default();
    json.insert("lockKey".into(), json!(key));
    json.insert("state".into(), json!(state));
    let key = clean(key);
    let text = match record {
        None => format!("{key} is free (never locked)"),
        Some(r) => {
            let head = match state {
                "held" => format!("{key} is held"),
                "expired" => format!(
                    "{key} is free: the lease expired without release; the next acquire takes it over"
                ),
                _ => format!("{key} is free (last grant ended as {})", r.status),
            };
            format!("{head}\n{}", describe(r))
        }
    };
    Report::ok(json, text)
}

/// `status KEY`: always exit 0 when the read worked; `state` says the rest,
/// and `bypass` the last run that went around the lock, if any.
pub async fn status(client: &LockClient, key: &str) -> Result<Report, Failure> {
    let (record, bypass) = client.inspect(key).await?;
    let mut report = state_report(key, record.as_ref());
    // A record shows its own bypass; a key never granted shows it here.
    if let Some(b) = bypass.as_ref().filter(|_| record.is_none()) {
        report.json.insert("bypass".into(), json!(b));
        if let Some(text) = report.human.as_mut() {
            text.push_str(&format!("\n{}", render::bypass_line(b)));
        }
    }
    Ok(report)
}

/// `list`: follows every page of the active-locks index.
pub async fn list(client: &LockClient, args: ListArgs) -> Result<Report, Failure> {
    let mut query = ListQuery {
        prefix: args.prefix,
        environment: args.environment,
        page_size: args.page_size,
        page_token: None,
    };
    let mut locks = Vec::new();
    let mut pages = 0u32;
    loop {
        let page = client.list(&query).await?;
        pages += 1;
        locks.extend(page.locks);
        match page.next_page_token {
            Some(token) => query.page_token = Some(token),
            None => break,
        }
    }
    let items: Vec<Value> = locks
        .iter()
        .map(|r| {
            let mut fields = record_fields(r);
            fields.insert("state".into(), json!(state_name(Some(r))));
            fields.insert("waiting".into(), json!(r.waiters.len()));
            Value::Object(fields)
        })
        .collect();
    let mut json = serde_json::Map::new();
    json.insert("count".into(), json!(locks.len()));
    json.insert("pages".into(), json!(pages));
    json.insert("locks".into(), Value::Array(items));
    Ok(Report::ok(json, list_text(&locks)))
}

fn list_text(locks: &[LockRecord]) -> String {
    if locks.is_empty() {
        return "no locks held".to_owned();
    }
    let rows: Vec<Vec<String>> = locks
        .iter()
        .map(|r| {
            vec![
                clean(&r.lock_key),
                match &r.bypass {
                    Some(_) => format!("{} (bypassed)", state_name(Some(r))),
                    None => state_name(Some(r)).to_owned(),
                },
                holder(r),
                r.fence.to_string(),
                iso(r.expires_at),
                r.waiters.len().to_string(),
                clean(r.purpose.as_deref().unwrap_or_default()),
            ]
        })
        .collect();
    render::columns(
        &[
            "KEY", "STATE", "HOLDER", "FENCE", "EXPIRES", "WAITING", "PURPOSE",
        ],
        &rows,
    )
}

/// `wait KEY --timeout D`: exit 0 once free, 3 on timeout.
pub async fn wait(client: &LockClient, args: WaitArgs) -> Result<Report, Failure> {
    let mut signals = Signals::install()?;
    let cancel = CancellationToken::new();
    let work = async {
        if let Some(current) = client.status(&args.key).await?
            && current.state_at(now_epoch_secs()) == LockState::Held
        {
            render::eprintln_stderr(&format!(
                "baton: {} is held by {}; waiting up to {}",
                clean(&args.key),
                render::holder(&current),
                humantime::format_duration(args.timeout)
            ));
        }
        client
            .wait_until_free(&args.key, args.timeout, &cancel)
            .await
    };
    let (result, signal) = until_signal(work, &mut signals, &cancel).await;
    match (result, signal) {
        (Err(LockError::Cancelled { .. }), Some(signo)) => Err(interrupted(signo, &args.key)),
        (result, _) => Ok(state_report(&args.key, result?.as_ref())),
    }
}

/// `force-unlock KEY --actor ID --reason TEXT [--lock-id ID]`. A key nobody
/// holds is a success with `"unlocked": false` (exit 0): the state the
/// operator asked for is already there, and cleanup steps that run
/// `if: always()` must not fail because the holder released first. Naming a
/// `--lock-id` that is no longer the holding grant is exit 4: someone newer
/// holds it and was deliberately not touched.
///
/// `caller` (the STS ARN) is recorded beside the declared `--actor`.
pub async fn force_unlock(
    client: &LockClient,
    args: ForceUnlockArgs,
    caller: Option<String>,
) -> Result<Report, Failure> {
    match client
        .force_unlock_as(
            &args.key,
            &args.actor,
            caller.as_deref(),
            &args.reason,
            args.lock_id.as_deref(),
        )
        .await
    {
        Ok(record) => {
            let mut json = record_fields(&record);
            json.insert("unlocked".into(), json!(true));
            let text = format!(
                "force-unlocked {} (fence {}, held by {}); recorded as FAILED by {}: {}",
                clean(&record.lock_key),
                record.fence,
                holder(&record),
                clean(&args.actor),
                clean(&args.reason)
            );
            Ok(Report::ok(json, text))
        }
        Err(LockError::NotHeld { key, current })
            if current
                .as_ref()
                .is_none_or(|c| c.status != LockStatus::InProgress) =>
        {
            let mut json = current.as_deref().map(record_fields).unwrap_or_default();
            json.insert("lockKey".into(), json!(key));
            json.insert("unlocked".into(), json!(false));
            let text = match current.as_deref() {
                Some(r) => format!(
                    "nothing to unlock: {} is not held (last grant ended as {})\n{}",
                    clean(&key),
                    r.status,
                    describe(r)
                ),
                None => format!("nothing to unlock: {} was never locked", clean(&key)),
            };
            Ok(Report::ok(json, text))
        }
        Err(e) => Err(e.into()),
    }
}

/// `verify KEY --lock-id ID --fence N`: exit 0 when that grant is the
/// current one (`IN_PROGRESS`, same lock id and fence, lease not ended),
/// exit 4 with the reason otherwise. One strongly consistent `GetItem`. A
/// pipeline started under a lock runs it first, so a run whose grant was
/// lost (force-unlocked, expired, replaced) never starts its work.
pub async fn verify(client: &LockClient, args: VerifyArgs) -> Result<Report, Failure> {
    let record = client.status(&args.key).await?;
    let now = now_epoch_secs();
    let key = clean(&args.key);
    let problem = match &record {
        None => Some(format!("{key} has no lock record")),
        Some(r) if r.lock_id != args.lock_id => Some(format!(
            "the given lock id is not the current grant of {key} (current fence {}, {})",
            r.fence, r.status
        )),
        Some(r) if r.fence != args.fence => Some(format!(
            "fence {} does not match the current grant of {key} (fence {})",
            args.fence, r.fence
        )),
        Some(r) if r.status != LockStatus::InProgress => Some(format!(
            "the grant on {key} (fence {}) already ended as {}",
            r.fence, r.status
        )),
        Some(r) if r.state_at(now) != LockState::Held => Some(format!(
            "the lease of the grant on {key} (fence {}) ended at {} without renewal",
            r.fence,
            iso(r.expires_at)
        )),
        Some(_) => None,
    };
    match (problem, record) {
        (None, Some(r)) => {
            let mut json = record_fields(&r);
            json.insert("current".into(), json!(true));
            let text = format!(
                "{key}: the grant with fence {} is current; lease until {}",
                r.fence,
                iso(r.expires_at)
            );
            Ok(Report::ok(json, text))
        }
        (problem, record) => Err(Failure {
            code: NOT_OWNER,
            kind: "not_current",
            message: format!(
                "not current: {}",
                problem.unwrap_or_else(|| format!("{key} has no lock record"))
            ),
            record: record.map(|r| ("current", Box::new(r))),
        }),
    }
}

/// `table create`: exit 0 whether it was created now or existed already.
pub async fn table_create(client: &LockClient) -> Result<Report, Failure> {
    let outcome = client.create_table().await?;
    // The history table beside it, read by `baton history`.
    let history = baton_lock::HistoryClient::new(
        client.dynamodb().clone(),
        baton_lock::schema::history::table_for(client.table()),
    );
    history.create_table().await?;
    let created = outcome == TableCreation::Created;
    let mut json = serde_json::Map::new();
    json.insert("table".into(), json!(client.table()));
    json.insert("created".into(), json!(created));
    let text = if created {
        format!("created table {}", client.table())
    } else {
        format!("table {} already exists", client.table())
    };
    Ok(Report::ok(json, text))
}
