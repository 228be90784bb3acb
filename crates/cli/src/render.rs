//! Everything baton prints: human text (results on stdout, problems on
//! stderr) or exactly one JSON object per call on stdout, so
//! `baton --json … | jq` works on success and on failure alike.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use baton_lock::clock::now_epoch_secs;
use baton_lock::{LockRecord, LockState, LockStatus};
use serde_json::{Map, Value, json};

use crate::failure::{self, Failure};

/// A finished command: its JSON object, its human text and its exit code.
#[derive(Debug)]
pub struct Report {
    /// Top-level JSON object; `"ok"` is added when printed.
    pub json: Map<String, Value>,
    /// Text for stdout in human mode (`None`: the command already spoke on stderr).
    pub human: Option<String>,
    pub code: u8,
}

impl Report {
    /// A successful report (exit 0).
    pub fn ok(json: Map<String, Value>, human: impl Into<String>) -> Self {
        Report {
            json,
            human: Some(human.into()),
            code: failure::OK,
        }
    }
}

/// The record's fields at the top level of a JSON object, with the table's
/// attribute names, ready for more fields to be added.
pub fn record_fields(record: &LockRecord) -> Map<String, Value> {
    match serde_json::to_value(record) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// `held` / `expired` / `ended`, or `absent` for a key never locked.
pub fn state_name(record: Option<&LockRecord>) -> &'static str {
    match record.map(|r| r.state_at(now_epoch_secs())) {
        None => "absent",
        Some(LockState::Held) => "held",
        Some(LockState::Expired) => "expired",
        Some(LockState::Ended) => "ended",
    }
}

/// Epoch seconds as ISO-8601 UTC (`2026-01-02T03:04:05Z`).
pub fn iso(epoch_secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(epoch_secs)).to_string()
}

/// `in 9m 12s` or `3s ago`, relative to now.
fn relative(epoch_secs: u64) -> String {
    let now = now_epoch_secs();
    if epoch_secs >= now {
        format!(
            "in {}",
            humantime::format_duration(Duration::from_secs(epoch_secs - now))
        )
    } else {
        format!(
            "{} ago",
            humantime::format_duration(Duration::from_secs(now - epoch_secs))
        )
    }
}

/// The holder as a person reads it: `Deploy (octocat) [github:acme/app#42]`.
pub fn holder(record: &LockRecord) -> String {
    match &record.locked_by_name {
        Some(name) if name != &record.locked_by => format!("{name} [{}]", record.locked_by),
        _ => record.locked_by.clone(),
    }
}

/// A multi-line description of a record, each line indented by two spaces:
/// who, why, since when, until when, fence, where, and how it ended.
pub fn describe(record: &LockRecord) -> String {
    let mut lines = vec![format!("  holder:  {} ({})", holder(record), record.status)];
    if let Some(purpose) = &record.purpose {
        lines.push(format!("  purpose: {purpose}"));
    }
    if record.status == LockStatus::InProgress {
        lines.push(format!(
            "  since:   {}, lease until {} ({})",
            record.locked_at,
            iso(record.expires_at),
            relative(record.expires_at)
        ));
    } else {
        lines.push(format!("  since:   {}", record.locked_at));
    }
    lines.push(format!(
        "  fence:   {}, lock id {}",
        record.fence, record.lock_id
    ));
    let place: Vec<String> = [
        record.host.as_ref().map(|h| format!("host {h}")),
        record.pid.map(|p| format!("pid {p}")),
        record.run_url.as_ref().map(|u| format!("run {u}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !place.is_empty() {
        lines.push(format!("  where:   {}", place.join(", ")));
    }
    if let Some(ended) = &record.ended_at {
        lines.push(format!(
            "  ended:   {ended} by {}{}{}",
            record.released_by.as_deref().unwrap_or("?"),
            if record.forced { " (forced)" } else { "" },
            record
                .release_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
    }
    lines.join("\n")
}

/// Prints a command's result and returns the exit code.
pub fn emit(result: Result<Report, Failure>, json_mode: bool) -> u8 {
    match result {
        Ok(report) => {
            if json_mode {
                let mut object = Map::new();
                object.insert("ok".into(), Value::Bool(report.code == failure::OK));
                object.extend(report.json);
                print_json(&Value::Object(object));
            } else if let Some(text) = report.human {
                println_stdout(&text);
            }
            report.code
        }
        Err(failure) => {
            print_failure(&failure, json_mode);
            failure.code
        }
    }
}

/// A failure: the message and the record it concerns on stderr, and in JSON
/// mode also `{"ok":false,"error":…,"message":…,"holder"|"current":{…}}` on stdout.
pub fn print_failure(failure: &Failure, json_mode: bool) {
    let mut text = format!("baton: {}", failure.message);
    if let Some((_, record)) = &failure.record {
        text.push('\n');
        text.push_str(&describe(record));
    }
    eprintln_stderr(&text);
    if json_mode {
        let mut object = json!({
            "ok": false,
            "error": failure.kind,
            "exitCode": failure.code,
            "message": failure.message,
        });
        if let (Some((field, record)), Some(map)) = (&failure.record, object.as_object_mut()) {
            map.insert((*field).to_owned(), Value::Object(record_fields(record)));
        }
        print_json(&object);
    }
}

/// One line of JSON on stdout.
pub fn print_json(value: &Value) {
    println_stdout(&value.to_string());
}

/// Writes to stdout, ignoring a closed pipe (`baton list | head`) instead of
/// panicking like `println!`.
pub fn println_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Writes to stderr, never panicking.
pub fn eprintln_stderr(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}
