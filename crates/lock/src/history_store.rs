//! [`HistoryClient`]: reading the history table on DynamoDB, always by
//! `Query`, never by a scan (`baton history`, the chat commands). The table
//! is written only by the change stream's consumer (`baton-history`), never
//! by a lock operation, so acquire, release and renew stay one request each;
//! the item layout both sides share is [`entry_item`] and [`entry_of`].

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use crate::error::LockError;
use crate::history::{HistoryEntry, Outcome};
use crate::schema::{TTL_ATTRIBUTE, history as h};

const DAY_MS: u64 = 86_400_000;

/// Reads and writes one history table.
#[derive(Debug, Clone)]
pub struct HistoryClient {
    ddb: Client,
    table: String,
}

/// Filters and paging for a history read.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// Only entries that ended at or after this instant (epoch ms).
    pub since_ms: Option<u64>,
    /// Entries per page; default 20, at most 1000.
    pub page_size: Option<i32>,
    /// The previous page's `next_page_token`.
    pub page_token: Option<String>,
}

/// One page of history, newest first.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    pub entries: Vec<HistoryEntry>,
    /// Pass back as [`HistoryQuery::page_token`] for the next page.
    pub next_page_token: Option<String>,
}

/// How long entries are kept unless the writer says otherwise.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// How far back a read across keys looks when it is given no `since`.
pub const DEFAULT_RECENT_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// The furthest back a read across keys looks, whatever `since` asks: it
/// reads one day per `Query`, so an unbounded `since` (`--since 100y`)
/// would cost a request per day back to 1970 for days TTL has emptied.
pub const MAX_RECENT_WINDOW: Duration = Duration::from_secs(400 * 24 * 3600);

impl HistoryClient {
    /// A client for the history table `table`.
    pub fn new(ddb: Client, table: impl Into<String>) -> Self {
        HistoryClient {
            ddb,
            table: table.into(),
        }
    }

    /// Name of the table this client works on.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The underlying SDK client (table creation, tests).
    pub fn dynamodb(&self) -> &Client {
        &self.ddb
    }

    /// One key's entries, newest first: one `Query` per page.
    pub async fn for_key(&self, key: &str, query: &HistoryQuery) -> Result<HistoryPage, LockError> {
        crate::client::validate_key(key)?;
        let mut request = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("#key = :key")
            .expression_attribute_names("#key", h::PARTITION_KEY)
            .expression_attribute_values(":key", s(key))
            .scan_index_forward(false)
            .limit(page_size(query));
        if let Some(since) = query.since_ms {
            request = request
                .filter_expression("#ended >= :since")
                .expression_attribute_names("#ended", h::TIME_INDEX_SORT_KEY)
                .expression_attribute_values(":since", n(since));
        }
        if let Some(token) = query.page_token.as_deref() {
            let fence = token.parse::<u64>().map_err(|_| bad_token(token))?;
            request = request
                .exclusive_start_key(h::PARTITION_KEY, s(key))
                .exclusive_start_key(h::SORT_KEY, n(fence));
        }
        let out = request
            .send()
            .await
            .map_err(|e| LockError::from_sdk("Query", &self.table, e))?;
        let entries = out.items().iter().map(entry_of).collect::<Result<_, _>>()?;
        let next_page_token = out
            .last_evaluated_key()
            .and_then(|k| k.get(h::SORT_KEY))
            .and_then(|v| v.as_n().ok())
            .cloned();
        Ok(HistoryPage {
            entries,
            next_page_token,
        })
    }

    /// Every key's entries, newest first, from now back to `since_ms`
    /// (default: [`DEFAULT_RECENT_WINDOW`]): one `Query` per day read.
    pub async fn recent(
        &self,
        query: &HistoryQuery,
        now_ms: u64,
    ) -> Result<HistoryPage, LockError> {
        let window = |d: Duration| now_ms.saturating_sub(d.as_millis() as u64);
        let since = query
            .since_ms
            .unwrap_or_else(|| window(DEFAULT_RECENT_WINDOW))
            .max(window(MAX_RECENT_WINDOW));
        let limit = page_size(query);
        let (mut day, mut start) = match query.page_token.as_deref() {
            Some(token) => parse_recent_token(token).ok_or_else(|| bad_token(token))?,
            None => (now_ms / DAY_MS, None),
        };
        let mut entries = Vec::new();
        while day >= since / DAY_MS {
            let remaining = limit - entries.len() as i32;
            let mut request = self
                .ddb
                .query()
                .table_name(&self.table)
                .index_name(h::TIME_INDEX_NAME)
                .key_condition_expression("#day = :day AND #ended >= :since")
                .expression_attribute_names("#day", h::TIME_INDEX_PARTITION_KEY)
                .expression_attribute_names("#ended", h::TIME_INDEX_SORT_KEY)
                .expression_attribute_values(":day", s(&day_name(day)))
                .expression_attribute_values(":since", n(since))
                .scan_index_forward(false)
                .limit(remaining);
            if let Some((ended_ms, fence, key)) = &start {
                request = request
                    .exclusive_start_key(h::TIME_INDEX_PARTITION_KEY, s(&day_name(day)))
                    .exclusive_start_key(h::TIME_INDEX_SORT_KEY, n(*ended_ms))
                    .exclusive_start_key(h::SORT_KEY, n(*fence))
                    .exclusive_start_key(h::PARTITION_KEY, s(key));
            }
            let out = request
                .send()
                .await
                .map_err(|e| LockError::from_sdk("Query", &self.table, e))?;
            for item in out.items() {
                entries.push(entry_of(item)?);
            }
            start = out.last_evaluated_key().and_then(|k| {
                Some((
                    k.get(h::TIME_INDEX_SORT_KEY)?.as_n().ok()?.parse().ok()?,
                    k.get(h::SORT_KEY)?.as_n().ok()?.parse().ok()?,
                    k.get(h::PARTITION_KEY)?.as_s().ok()?.clone(),
                ))
            });
            if start.is_none() {
                match day.checked_sub(1) {
                    Some(earlier) => day = earlier,
                    None => break,
                }
            }
            if entries.len() as i32 >= limit {
                break;
            }
        }
        let next_page_token = (day >= since / DAY_MS && entries.len() as i32 >= limit)
            .then(|| recent_token(day, start.as_ref()));
        Ok(HistoryPage {
            entries,
            next_page_token,
        })
    }
}

/// The stored form of `e`, kept for `retention` after it ended (DynamoDB TTL).
pub fn entry_item(e: &HistoryEntry, retention: Duration) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        (h::PARTITION_KEY.to_owned(), s(&e.lock_key)),
        (h::SORT_KEY.to_owned(), n(e.fence)),
        ("lockId".to_owned(), s(&e.lock_id)),
        ("lockedBy".to_owned(), s(&e.locked_by)),
        ("grantedAt".to_owned(), s(&e.granted_at)),
        ("endedAt".to_owned(), s(&e.ended_at)),
        (h::TIME_INDEX_SORT_KEY.to_owned(), n(e.ended_at_ms)),
        (
            h::TIME_INDEX_PARTITION_KEY.to_owned(),
            s(&day_name(e.ended_at_ms / DAY_MS)),
        ),
        ("durationMs".to_owned(), n(e.duration_ms)),
        ("outcome".to_owned(), s(e.outcome.as_str())),
        (
            TTL_ATTRIBUTE.to_owned(),
            n(e.ended_at_ms / 1000 + retention.as_secs()),
        ),
    ]);
    let optional = [
        ("lockedByName", &e.locked_by_name),
        ("purpose", &e.purpose),
        ("component", &e.component),
        ("environment", &e.environment),
        ("runUrl", &e.run_url),
        ("endedBy", &e.ended_by),
        ("reason", &e.reason),
        ("nextHolder", &e.next_holder),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            item.insert(name.to_owned(), s(value));
        }
    }
    if let Some(fence) = e.next_fence {
        item.insert("nextFence".to_owned(), n(fence));
    }
    item
}

/// Reads a stored history entry.
pub fn entry_of(item: &HashMap<String, AttributeValue>) -> Result<HistoryEntry, LockError> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let key = text(h::PARTITION_KEY).unwrap_or_default();
    let corrupt = |what: &str| LockError::Corrupt {
        key: key.clone(),
        detail: format!("history entry: missing or malformed `{what}`"),
    };
    Ok(HistoryEntry {
        fence: number(h::SORT_KEY).ok_or_else(|| corrupt(h::SORT_KEY))?,
        lock_id: text("lockId").ok_or_else(|| corrupt("lockId"))?,
        locked_by: text("lockedBy").ok_or_else(|| corrupt("lockedBy"))?,
        locked_by_name: text("lockedByName"),
        purpose: text("purpose"),
        component: text("component"),
        environment: text("environment"),
        run_url: text("runUrl"),
        granted_at: text("grantedAt").unwrap_or_default(),
        ended_at: text("endedAt").unwrap_or_default(),
        ended_at_ms: number(h::TIME_INDEX_SORT_KEY)
            .ok_or_else(|| corrupt(h::TIME_INDEX_SORT_KEY))?,
        duration_ms: number("durationMs").unwrap_or(0),
        outcome: text("outcome")
            .as_deref()
            .and_then(Outcome::parse)
            .ok_or_else(|| corrupt("outcome"))?,
        ended_by: text("endedBy"),
        reason: text("reason"),
        next_holder: text("nextHolder"),
        next_fence: number("nextFence"),
        lock_key: key.clone(),
    })
}

fn page_size(query: &HistoryQuery) -> i32 {
    query.page_size.unwrap_or(20).clamp(1, 1000)
}

/// `YYYY-MM-DD` of a day counted from the epoch.
fn day_name(day: u64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_secs(day * 86_400);
    humantime::format_rfc3339_seconds(at).to_string()[..10].to_owned()
}

/// `DAY` or `DAY.ENDED_MS.FENCE.KEY`: where the next page starts.
fn recent_token(day: u64, start: Option<&(u64, u64, String)>) -> String {
    match start {
        Some((ended, fence, key)) => format!("{day}.{ended}.{fence}.{key}"),
        None => day.to_string(),
    }
}

type RecentStart = (u64, Option<(u64, u64, String)>);

fn parse_recent_token(token: &str) -> Option<RecentStart> {
    let mut parts = token.splitn(4, '.');
    let day = parts.next()?.parse().ok()?;
    match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => Some((day, None)),
        (Some(ended), Some(fence), Some(key)) if !key.is_empty() => Some((
            day,
            Some((ended.parse().ok()?, fence.parse().ok()?, key.to_owned())),
        )),
        _ => None,
    }
}

fn bad_token(token: &str) -> LockError {
    LockError::InvalidInput(format!("`{token}` is not a page token this history gave"))
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_named_as_utc_dates() {
        assert_eq!(day_name(0), "1970-01-01");
        assert_eq!(day_name(20_425), "2025-12-03");
    }

    #[test]
    fn page_tokens_read_back_and_refuse_garbage() {
        let start = (5, 7, "a.b.c".to_owned());
        assert_eq!(
            parse_recent_token(&recent_token(9, Some(&start))),
            Some((9, Some(start)))
        );
        assert_eq!(parse_recent_token(&recent_token(9, None)), Some((9, None)));
        for bad in ["", "x", "1.2", "1.2.3.", "1.x.3.k"] {
            assert_eq!(parse_recent_token(bad), None, "{bad}");
        }
    }
}
