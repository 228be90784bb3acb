//! The native `/v1` routes: the CLI's operations over HTTP, with the same
//! semantics (see `crates/cli/src/commands.rs`) and the CLI's exit-code
//! meanings as statuses (see [`crate::failure`]).
//!
//! Every write records the calling token as its source: the grant's `host`
//! is `api-token:<name>`, and releases and force unlocks are recorded as
//! made by `api-token:<name>`. The owner a caller names (`owner`) is kept
//! as given, as the CLI keeps `--owner`.

use std::time::Duration;

use baton_lock::{
    AcquireRequest, CancellationToken, Ended, GrantKind, JoinRequest, LineMode, ListQuery,
    LockError, LockStatus, LockStore, ReleaseRequest,
};
use lambda_http::http::StatusCode;
use serde_json::{Value, json};

use crate::answer::Answer;
use crate::api::Api;
use crate::auth::authorize;
use crate::failure;
use crate::route::Action;
use crate::scope::Need;
use crate::tokens::Token;
use crate::view;
use crate::wire::{self, AcquireBody, BadInput, ForceUnlockBody, Outcome, ReleaseBody, RenewBody};

/// The line length a queued acquire accepts unless it says otherwise (the CLI's default).
pub const DEFAULT_MAX_QUEUE: u16 = 20;

/// How a write made with `token` is recorded (grant host, releaser, actor).
pub fn source(token: &Token) -> String {
    format!("api-token:{}", token.name)
}

fn bad(e: BadInput) -> Answer {
    Answer::bad_input(&e.field, e.message)
}

/// `GET /v1/locks/{key}`: the key's record without its lock id, and its
/// `state` (`held`, `expired`, `ended`); 404 when the key was never locked.
pub async fn status<S: LockStore>(api: &Api<S>, token: &Token, key: &str) -> Answer {
    if let Err(refused) = authorize(token, Need::ReadKey(key)) {
        return refused;
    }
    if let Err(e) = wire::key("key", key) {
        return bad(e);
    }
    match api.store.status(key).await {
        Ok(Some(record)) => Answer::ok("status", view::listed(&record, api.store.now_millis())),
        Ok(None) => Answer::error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("`{key}` has no lock record"),
        )
        .with_field("lockKey", json!(key))
        .with_field("state", json!("absent")),
        Err(e) => failure::answer(e),
    }
}

/// `GET /v1/locks?prefix=&environment=&pageSize=&pageToken=`: one page of
/// the locks in progress (held, or expired and not yet taken over), in key
/// order, from the active-locks index.
pub async fn list<S: LockStore>(api: &Api<S>, token: &Token, query: Option<&str>) -> Answer {
    if let Err(refused) = authorize(token, Need::ReadAll) {
        return refused;
    }
    let params = match wire::query(query, &["prefix", "environment", "pageSize", "pageToken"]) {
        Ok(p) => p,
        Err(e) => return bad(e),
    };
    let mut list = ListQuery::default();
    for (name, value) in params {
        match name {
            "prefix" => list.prefix = Some(value),
            "environment" => list.environment = Some(value),
            "pageToken" => list.page_token = Some(value),
            _ => match wire::number(name, &value, 1, 1000) {
                Ok(n) => list.page_size = i32::try_from(n).ok(),
                Err(e) => return bad(e),
            },
        }
    }
    match api.store.list(&list).await {
        Ok(page) => {
            let now_ms = api.store.now_millis();
            let locks: Vec<Value> = page.locks.iter().map(|r| view::listed(r, now_ms)).collect();
            Answer::ok(
                "list",
                json!({"locks": locks, "nextPageToken": page.next_page_token}),
            )
        }
        Err(e) => failure::answer(e),
    }
}

/// `POST /v1/locks/{key}/{action}`.
pub async fn act<S: LockStore>(
    api: &Api<S>,
    token: &Token,
    key: &str,
    action: Action,
    body: &[u8],
) -> Answer {
    let need = match action {
        Action::ForceUnlock => Need::Admin,
        _ => Need::Lock(key),
    };
    if let Err(refused) = authorize(token, need) {
        return refused;
    }
    if let Err(e) = wire::key("key", key) {
        return bad(e);
    }
    let result = match action {
        Action::Acquire => acquire(api, token, key, body).await,
        Action::Release => release(api, token, key, body).await,
        Action::Renew => renew(api, key, body).await,
        Action::ForceUnlock => force_unlock(api, token, key, body).await,
    };
    result.unwrap_or_else(|answer| answer)
}

/// What an acquire body asks for, checked.
struct Acquire {
    request: AcquireRequest,
    wait: Duration,
    queue: Option<u16>,
}

fn acquire_request(
    api_max_wait: Duration,
    token: &Token,
    key: &str,
    body: AcquireBody,
) -> Result<Acquire, BadInput> {
    wire::text("owner", &body.owner)?;
    for (field, value) in [
        ("ownerName", &body.owner_name),
        ("purpose", &body.purpose),
        ("requestId", &body.request_id),
        ("environment", &body.environment),
        ("component", &body.component),
        ("correlationId", &body.correlation_id),
        ("runUrl", &body.run_url),
    ] {
        wire::opt_text(field, value.as_deref())?;
    }
    let ttl = wire::ttl("ttl", &body.ttl)?;
    let wait = match body.wait.as_deref() {
        Some(w) => wire::duration("wait", w)?,
        None => Duration::ZERO,
    };
    if wait > api_max_wait {
        return Err(BadInput::new(
            "wait",
            format!(
                "must be at most {} on this API; retry after a 409 instead",
                humantime::format_duration(api_max_wait)
            ),
        ));
    }
    let queue = match (body.queue, body.max_queue) {
        (false, Some(_)) => return Err(BadInput::new("maxQueue", "needs \"queue\": true")),
        (false, None) => None,
        (true, _) if wait.is_zero() => {
            return Err(BadInput::new(
                "queue",
                "needs a wait: how long to wait in line, e.g. \"wait\": \"20s\"",
            ));
        }
        (true, Some(max)) if !(1..=100).contains(&max) => {
            return Err(BadInput::new("maxQueue", "must be from 1 to 100"));
        }
        (true, max) => Some(max.unwrap_or(DEFAULT_MAX_QUEUE)),
    };
    let request = AcquireRequest {
        key: key.to_owned(),
        owner: body.owner,
        owner_name: body.owner_name,
        ttl,
        request_id: body.request_id,
        purpose: body.purpose,
        component: body.component,
        environment: body.environment,
        correlation_id: body.correlation_id,
        host: Some(source(token)),
        run_url: body.run_url,
        ..AcquireRequest::default()
    };
    Ok(Acquire {
        request,
        wait,
        queue,
    })
}

async fn acquire<S: LockStore>(
    api: &Api<S>,
    token: &Token,
    key: &str,
    body: &[u8],
) -> Result<Answer, Answer> {
    let body: AcquireBody = wire::parse_body(body).map_err(bad)?;
    let Acquire {
        request,
        wait,
        queue,
    } = acquire_request(api.settings.max_wait, token, key, body).map_err(bad)?;
    let cancel = CancellationToken::new();
    let granted = match queue {
        _ if wait.is_zero() => api.store.acquire(&request).await,
        Some(max) => {
            let join = JoinRequest {
                acquire: request,
                mode: LineMode::Fifo {
                    max: usize::from(max),
                },
                max_wait: wait,
                claim: Some(api.settings.claim_window),
                member: None,
            };
            api.store
                .acquire_in_line(&join, wait, &cancel, |_| {})
                .await
        }
        None => {
            api.store
                .acquire_with_wait(&request, wait, &cancel, |_| {})
                .await
        }
    };
    let grant = granted.map_err(failure::answer)?;
    let mut fields = view::owned(&grant.record);
    fields.insert("state".into(), json!("held"));
    fields.insert(
        "grant".into(),
        json!(match grant.kind {
            GrantKind::New => "new",
            GrantKind::TakenOver { .. } => "taken_over",
            GrantKind::Existing => "existing",
            // Past a freeze check, which the API does not ask for.
            GrantKind::Checked => "checked",
        }),
    );
    Ok(Answer::ok("acquired", Value::Object(fields)))
}

async fn release<S: LockStore>(
    api: &Api<S>,
    token: &Token,
    key: &str,
    body: &[u8],
) -> Result<Answer, Answer> {
    let body: ReleaseBody = wire::parse_body(body).map_err(bad)?;
    wire::text("lockId", &body.lock_id).map_err(bad)?;
    wire::opt_text("reason", body.reason.as_deref()).map_err(bad)?;
    let outcome = match body.status {
        None | Some(Outcome::Completed) => LockStatus::Completed,
        Some(Outcome::Failed) => LockStatus::Failed,
    };
    let mut request = ReleaseRequest::new(key, &body.lock_id, outcome);
    request.reason = body.reason;
    request.actor = Some(source(token));
    let ended = api.store.release(&request).await.map_err(failure::answer)?;
    Ok(Answer::ok(
        "released",
        ended_json(&ended, view::owned(&ended.record)),
    ))
}

async fn renew<S: LockStore>(api: &Api<S>, key: &str, body: &[u8]) -> Result<Answer, Answer> {
    let body: RenewBody = wire::parse_body(body).map_err(bad)?;
    wire::text("lockId", &body.lock_id).map_err(bad)?;
    let ttl = wire::ttl("ttl", &body.ttl).map_err(bad)?;
    let record = api
        .store
        .renew(key, &body.lock_id, ttl)
        .await
        .map_err(failure::answer)?;
    Ok(Answer::ok("renewed", Value::Object(view::owned(&record))))
}

/// Force unlock, as `baton force-unlock`: a key nobody holds is a success
/// with `"unlocked": false` (the state asked for is already there); naming
/// a `lockId` that is no longer the holding grant is a 409 and touches
/// nothing.
async fn force_unlock<S: LockStore>(
    api: &Api<S>,
    token: &Token,
    key: &str,
    body: &[u8],
) -> Result<Answer, Answer> {
    let body: ForceUnlockBody = wire::parse_body(body).map_err(bad)?;
    wire::text("reason", &body.reason).map_err(bad)?;
    wire::opt_text("lockId", body.lock_id.as_deref()).map_err(bad)?;
    let actor = source(token);
    match api
        .store
        .force_unlock(key, &actor, &body.reason, body.lock_id.as_deref())
        .await
    {
        Ok(ended) => {
            let mut fields = view::foreign(&ended.record);
            fields.insert("unlocked".into(), json!(true));
            Ok(Answer::ok("force_unlocked", ended_json(&ended, fields)))
        }
        Err(LockError::NotHeld { key, current })
            if current
                .as_ref()
                .is_none_or(|c| c.status != LockStatus::InProgress) =>
        {
            let mut fields = current.as_deref().map(view::foreign).unwrap_or_default();
            fields.insert("lockKey".into(), json!(key));
            fields.insert("unlocked".into(), json!(false));
            Ok(Answer::ok("nothing_to_unlock", Value::Object(fields)))
        }
        Err(e) => Err(failure::answer(e)),
    }
}

/// The ended record's fields plus, when the key went to the head of its
/// line, whom it went to (without the new grant's lock id).
fn ended_json(ended: &Ended, mut fields: serde_json::Map<String, Value>) -> Value {
    if let Some(next) = &ended.next {
        fields.insert(
            "handedTo".into(),
            Value::Object(view::foreign(&next.record)),
        );
    }
    Value::Object(fields)
}
