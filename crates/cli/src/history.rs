//! `baton history [KEY]`: who held a key (or any key), how long, and how
//! each grant ended, newest first, read from the history table.

use std::time::Duration;

use baton_lock::clock::now_epoch_millis;
use baton_lock::history::HistoryEntry;
use baton_lock::{HistoryClient, HistoryQuery, LockClient};
use serde_json::json;

use crate::cli::HistoryArgs;
use crate::failure::Failure;
use crate::render::{self, Report, clean};

/// Reads up to `--limit` entries ended within `--since`, following pages.
pub async fn history(client: &LockClient, args: HistoryArgs) -> Result<Report, Failure> {
    let table = args
        .history_table
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| baton_lock::schema::history::table_for(client.table()));
    let history = HistoryClient::new(client.dynamodb().clone(), table);
    let now = now_epoch_millis();
    let limit = usize::from(args.limit);
    let mut query = HistoryQuery {
        since_ms: Some(now.saturating_sub(args.since.as_millis() as u64)),
        page_size: Some(i32::from(args.limit)),
        page_token: None,
    };
    let mut entries = Vec::new();
    while entries.len() < limit {
        let page = match &args.key {
            Some(key) => history.for_key(key, &query).await?,
            None => history.recent(&query, now).await?,
        };
        entries.extend(page.entries);
        match page.next_page_token {
            Some(token) => query.page_token = Some(token),
            None => break,
        }
    }
    entries.truncate(limit);
    let mut json = serde_json::Map::new();
    json.insert("entries".into(), json!(entries));
    Ok(Report::ok(json, text(&entries, args.key.is_some())))
}

fn text(entries: &[HistoryEntry], one_key: bool) -> String {
    if entries.is_empty() {
        return "no grants ended in that time".to_owned();
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let mut row = vec![e.ended_at.clone()];
            if !one_key {
                row.push(clean(&e.lock_key));
            }
            row.extend([
                e.fence.to_string(),
                clean(e.locked_by_name.as_deref().unwrap_or(&e.locked_by)),
                e.outcome.as_str().to_owned(),
                humantime::format_duration(Duration::from_secs(e.duration_ms / 1000)).to_string(),
                clean(e.ended_by.as_deref().unwrap_or("-")),
                clean(e.next_holder.as_deref().unwrap_or("-")),
                clean(
                    e.reason
                        .as_deref()
                        .or(e.purpose.as_deref())
                        .unwrap_or_default(),
                ),
            ]);
            row
        })
        .collect();
    let mut header = vec!["ENDED"];
    if !one_key {
        header.push("KEY");
    }
    header.extend([
        "FENCE", "HOLDER", "OUTCOME", "HELD", "ENDED BY", "NEXT", "WHY",
    ]);
    render::columns(&header, &rows)
}
