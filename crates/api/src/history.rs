//! `GET /v1/history` and `GET /v1/history/{key}`: ended grants, newest
//! first, from the history table the change-stream consumer
//! (`baton-history`) fills. Reading is one `Query` per page (per day across
//! keys), never a scan. Entries are shown without their lock ids, as every
//! record this API shows to someone other than its holder. Without a history
//! table (the consumer is not deployed) both routes answer 404
//! `history_not_configured`.

use baton_lock::history::HistoryEntry;
use baton_lock::{HistoryClient, HistoryPage, HistoryQuery, LockStore};
use lambda_http::http::StatusCode;
use serde_json::{Value, json};

use crate::answer::Answer;
use crate::api::Api;
use crate::auth::authorize;
use crate::failure;
use crate::scope::Need;
use crate::tokens::Token;
use crate::wire::{self, BadInput};

/// `GET /v1/history?since=&pageSize=&pageToken=`: every key (needs `read`).
pub async fn recent<S: LockStore>(api: &Api<S>, token: &Token, query: Option<&str>) -> Answer {
    if let Err(refused) = authorize(token, Need::ReadAll) {
        return refused;
    }
    let Some(history) = api.history.as_ref() else {
        return unconfigured();
    };
    let now_ms = api.store.now_millis();
    let q = match history_query(query, now_ms) {
        Ok(q) => q,
        Err(e) => return Answer::bad_input(&e.field, e.message),
    };
    page(history.recent(&q, now_ms).await)
}

/// `GET /v1/history/{key}?since=&pageSize=&pageToken=`: one key (needs
/// `read`, or a `lock:PREFIX` scope covering the key).
pub async fn for_key<S: LockStore>(
    api: &Api<S>,
    token: &Token,
    key: &str,
    query: Option<&str>,
) -> Answer {
    if let Err(refused) = authorize(token, Need::ReadKey(key)) {
        return refused;
    }
    if let Err(e) = wire::key("key", key) {
        return Answer::bad_input(&e.field, e.message);
    }
    let Some(history) = api.history.as_ref() else {
        return unconfigured();
    };
    let q = match history_query(query, api.store.now_millis()) {
        Ok(q) => q,
        Err(e) => return Answer::bad_input(&e.field, e.message),
    };
    page(history.for_key(key, &q).await)
}

fn unconfigured() -> Answer {
    Answer::error(
        StatusCode::NOT_FOUND,
        "history_not_configured",
        "this API has no history table",
    )
}

/// `since` is a duration back from now (`24h`, `7d`).
fn history_query(query: Option<&str>, now_ms: u64) -> Result<HistoryQuery, BadInput> {
    let mut q = HistoryQuery::default();
    for (name, value) in wire::query(query, &["since", "pageSize", "pageToken"])? {
        match name {
            "since" => {
                let back = wire::duration("since", &value)?;
                let back_ms = u64::try_from(back.as_millis()).unwrap_or(u64::MAX);
                q.since_ms = Some(now_ms.saturating_sub(back_ms));
            }
            "pageToken" => q.page_token = Some(value),
            _ => q.page_size = i32::try_from(wire::number(name, &value, 1, 1000)?).ok(),
        }
    }
    Ok(q)
}

fn page(result: Result<HistoryPage, baton_lock::LockError>) -> Answer {
    match result {
        Ok(page) => {
            let entries: Vec<Value> = page.entries.iter().map(shown).collect();
            Answer::ok(
                "history",
                json!({"entries": entries, "nextPageToken": page.next_page_token}),
            )
        }
        // No history table beside this lock table: this API keeps no history.
        Err(baton_lock::LockError::TableNotFound { .. }) => unconfigured(),
        Err(e) => failure::answer(e),
    }
}

/// An entry without its lock id.
fn shown(entry: &HistoryEntry) -> Value {
    let mut value = serde_json::to_value(entry).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("lockId");
    }
    value
}

/// The history client for `lock_table`'s history table (`table`, or the
/// lock table's name + `-history`).
pub fn client(ddb: aws_sdk_dynamodb::Client, table: String) -> HistoryClient {
    HistoryClient::new(ddb, table)
}
