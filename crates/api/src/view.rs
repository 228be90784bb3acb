//! How lock records are shown over HTTP. A lock id is the ownership token
//! of a grant (whoever presents it may release it), so it is shown only to
//! the caller that was just granted it; every other view of a record drops
//! the lock ids and request ids, its predecessor's included, and the
//! waiters' tickets (which the lock library never serialises).

use baton_lock::{LockRecord, LockState};
use serde_json::{Map, Value, json};

/// Every field of `record` under the table's attribute names, lock id included.
pub fn owned(record: &LockRecord) -> Map<String, Value> {
    match serde_json::to_value(record) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// [`owned`] without the lock ids and request ids: what a caller who does
/// not hold the grant may see.
pub fn foreign(record: &LockRecord) -> Map<String, Value> {
    let mut fields = owned(record);
    fields.remove("lockId");
    fields.remove("requestId");
    if let Some(Value::Object(previous)) = fields.get_mut("previous") {
        previous.remove("lockId");
        previous.remove("requestId");
    }
    fields
}

/// `held`, `expired` or `ended` at `now_ms`.
pub fn state_name(record: &LockRecord, now_ms: u64) -> &'static str {
    match record.state_at_ms(now_ms) {
        LockState::Held => "held",
        LockState::Expired => "expired",
        LockState::Ended => "ended",
    }
}

/// [`foreign`] with the record's `state` and how many wait in its line:
/// the shape of a lock in `GET /v1/locks` and `GET /v1/locks/{key}`.
pub fn listed(record: &LockRecord, now_ms: u64) -> Value {
    let mut fields = foreign(record);
    fields.insert("state".into(), json!(state_name(record, now_ms)));
    fields.insert("waiting".into(), json!(record.waiters.len()));
    Value::Object(fields)
}
