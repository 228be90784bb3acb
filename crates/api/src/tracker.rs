//! Tracker compatibility under `/api/v1alpha1`: the request and response
//! shapes of Tracker's lock API, so scripts and pipelines written for it
//! move to baton by changing the URL and adding a token header.
//!
//! | Tracker | baton |
//! |---|---|
//! | `service` | the lock key |
//! | `who` | the owner (`lockedBy`) |
//! | `id` | `<lock id>.<key in base64url>` ([`TrackerId`]): found with one `GetItem`, no scan |
//! | `createdAt` | `lockedAt` |
//! | no TTL | a lease of `BATON_API_TRACKER_TTL` (default 12h), after which the next caller takes the lock over |
//!
//! One deliberate difference: Tracker shows every lock's `id`, and its id is
//! all it takes to release a lock. In baton a lock id is the holder's
//! ownership token, so only the caller that was granted a lock gets its id;
//! `existingLock` and the list leave `id` out. A stale lock is cleared with
//! `POST /v1/locks/{key}/force-unlock` (an `admin` token, and a reason).

use baton_lock::{
    AcquireRequest, ListQuery, LockError, LockRecord, LockState, LockStatus, LockStore,
    ReleaseRequest,
};
use lambda_http::http::StatusCode;
use serde_json::{Value, json};

use crate::answer::Answer;
use crate::api::Api;
use crate::auth::authorize;
use crate::failure;
use crate::scope::Need;
use crate::tokens::Token;
use crate::tracker_id::TrackerId;
use crate::v1::source;
use crate::wire::{self, TrackerLockBody};

/// Largest `per_page` accepted.
pub const MAX_PER_PAGE: u32 = 1000;
/// `per_page` when none is given.
pub const DEFAULT_PER_PAGE: u32 = 10;

/// A lock in Tracker's shape, with its id when the caller holds it.
fn lock_json(record: &LockRecord, with_id: bool) -> Value {
    let mut lock = json!({
        "service": record.lock_key,
        "who": record.locked_by,
        "createdAt": record.locked_at,
    });
    if with_id {
        lock["id"] = json!(TrackerId::encode(&record.lock_id, &record.lock_key));
    }
    lock
}

fn not_found() -> Answer {
    Answer::json(
        StatusCode::NOT_FOUND,
        "not_found",
        json!({"success": false, "error": "lock not found", "message": "no lock is held under this id"}),
    )
}

/// `POST /api/v1alpha1/lock` `{"service", "who"}`.
pub async fn create<S: LockStore>(api: &Api<S>, token: &Token, body: &[u8]) -> Answer {
    let body: TrackerLockBody = match wire::parse_body(body) {
        Ok(b) => b,
        Err(e) => return Answer::bad_input(&e.field, e.message),
    };
    if let Err(refused) = authorize(token, Need::Lock(&body.service)) {
        return refused;
    }
    if let Err(e) = wire::key("service", &body.service).and_then(|()| wire::text("who", &body.who))
    {
        return Answer::bad_input(&e.field, e.message);
    }
    let request = AcquireRequest {
        host: Some(source(token)),
        ..AcquireRequest::new(&body.service, &body.who, api.settings.tracker_ttl)
    };
    match api.store.acquire(&request).await {
        Ok(grant) => Answer::ok("acquired", lock_json(&grant.record, true)),
        Err(LockError::Held { holder }) => Answer::json(
            StatusCode::CONFLICT,
            "held",
            json!({"error": "lock already exists", "existingLock": lock_json(&holder, false)}),
        ),
        Err(e) => failure::answer(e),
    }
}

/// `GET /api/v1alpha1/lock/{id}`: the lock while it is held under `id`.
pub async fn get<S: LockStore>(api: &Api<S>, token: &Token, id: &str) -> Answer {
    let Some(id) = TrackerId::decode(id) else {
        return not_found();
    };
    if let Err(refused) = authorize(token, Need::ReadKey(&id.key)) {
        return refused;
    }
    match api.store.status(&id.key).await {
        Ok(Some(r))
            if id.names(&r.lock_id) && r.state_at_ms(api.store.now_millis()) == LockState::Held =>
        {
            Answer::ok("status", lock_json(&r, true))
        }
        Ok(_) => not_found(),
        Err(e) => failure::answer(e),
    }
}

/// `GET /api/v1alpha1/unlock/{id}`: releases the lock held under `id` as
/// COMPLETED. Unlocking again with the same token is a success again.
pub async fn unlock<S: LockStore>(api: &Api<S>, token: &Token, id: &str) -> Answer {
    let Some(id) = TrackerId::decode(id) else {
        return not_found();
    };
    if let Err(refused) = authorize(token, Need::Lock(&id.key)) {
        return refused;
    }
    let mut request = ReleaseRequest::new(&id.key, &id.lock_id, LockStatus::Completed);
    request.actor = Some(source(token));
    request.reason = Some("released through the Tracker API".to_owned());
    match api.store.release(&request).await {
        Ok(_) => Answer::ok(
            "released",
            json!({"success": true, "message": "Lock released successfully"}),
        ),
        Err(LockError::NotOwner { .. } | LockError::AlreadyEnded { .. }) => not_found(),
        Err(e) => failure::answer(e),
    }
}

/// `GET /api/v1alpha1/locks/list?per_page=&page=`: the held locks, in key
/// order, with `total`, `page` and `perPage`. `total` needs every held
/// lock, so this reads the whole active-locks index (one `Query` per 1000
/// locks; the index holds only locks in progress).
pub async fn list<S: LockStore>(api: &Api<S>, token: &Token, query: Option<&str>) -> Answer {
    if let Err(refused) = authorize(token, Need::ReadAll) {
        return refused;
    }
    let params = match wire::query(query, &["per_page", "page"]) {
        Ok(p) => p,
        Err(e) => return Answer::bad_input(&e.field, e.message),
    };
    let (mut per_page, mut page) = (DEFAULT_PER_PAGE, 1);
    for (name, value) in params {
        let parsed = match name {
            "per_page" => wire::number(name, &value, 1, MAX_PER_PAGE).map(|n| per_page = n),
            _ => wire::number(name, &value, 1, 1_000_000).map(|n| page = n),
        };
        if let Err(e) = parsed {
            return Answer::bad_input(&e.field, e.message);
        }
    }
    let mut held = Vec::new();
    let mut query = ListQuery {
        page_size: Some(1000),
        ..ListQuery::default()
    };
    loop {
        let listed = match api.store.list(&query).await {
            Ok(p) => p,
            Err(e) => return failure::answer(e),
        };
        let now_ms = api.store.now_millis();
        held.extend(
            listed
                .locks
                .into_iter()
                .filter(|r| r.state_at_ms(now_ms) == LockState::Held),
        );
        match listed.next_page_token {
            Some(token) => query.page_token = Some(token),
            None => break,
        }
    }
    let start = usize::try_from((page - 1).saturating_mul(per_page)).unwrap_or(usize::MAX);
    let locks: Vec<Value> = held
        .iter()
        .skip(start)
        .take(usize::try_from(per_page).unwrap_or(usize::MAX))
        .map(|r| lock_json(r, false))
        .collect();
    Answer::ok(
        "list",
        json!({"locks": locks, "total": held.len(), "page": page, "perPage": per_page}),
    )
}
