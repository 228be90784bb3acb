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

/// [`record_fields`] without the lock ids (the grant's and its
/// predecessor's) and the request ids (a CLI grant's request id defaults to
/// its lock id): what a caller who does not own the record may see.
pub fn foreign_fields(record: &LockRecord) -> Map<String, Value> {
    let mut fields = record_fields(record);
    fields.remove("lockId");
    fields.remove("requestId");
    if let Some(Value::Object(previous)) = fields.get_mut("previous") {
        previous.remove("lockId");
        previous.remove("requestId");
    }
    fields
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

/// A field written by someone else (a holder's name, a purpose, a reason),
/// made safe to print on a terminal or into a CI log: escape sequences
/// (CSI, OSC, and the rest of ESC …) and every other control character are
/// removed, line breaks of any kind become spaces (a field cannot start a
/// line of its own), and a leading `::` or `##[` is broken up, so a GitHub
/// Actions or Azure DevOps runner never reads it as a workflow command.
pub fn clean(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            // C1 CSI and OSC/DCS/APC/PM/SOS introducers: drop the sequence.
            '\u{9b}' => skip_until_final(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\n' | '\r' | '\t' | '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}' => {
                out.push(' ')
            }
            // Bidirectional overrides reorder what the reader sees.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    let trimmed = out.trim_start();
    if trimmed.starts_with("::") || trimmed.starts_with("##[") {
        let indent = out.len() - trimmed.len();
        out.insert(indent + 1, ' ');
    }
    out
}

/// Skips the rest of an ESC sequence: CSI (`ESC [ … final`), string
/// sequences (OSC `ESC ]`, DCS `ESC P`, SOS, PM, APC) up to BEL or ST, or
/// the one character of a two-character escape.
fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        Some('[') => skip_until_final(chars),
        Some(']' | 'P' | 'X' | '^' | '_') => skip_string(chars),
        _ => {}
    }
}

/// CSI parameters and intermediates (0x20–0x3f) up to the final byte.
fn skip_until_final(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) || !('\u{20}'..='\u{3f}').contains(&c) {
            break;
        }
    }
}

/// A string sequence's body, up to BEL, ST (`ESC \\`) or C1 ST.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => break,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                break;
            }
            _ => {}
        }
    }
}

/// An optional field, cleaned.
fn clean_opt(field: Option<&str>) -> Option<String> {
    field.map(clean)
}

/// The holder as a person reads it: `Deploy (octocat) [github:acme/app#42]`,
/// cleaned for printing.
pub fn holder(record: &LockRecord) -> String {
    match &record.locked_by_name {
        Some(name) if name != &record.locked_by => {
            format!("{} [{}]", clean(name), clean(&record.locked_by))
        }
        _ => clean(&record.locked_by),
    }
}

/// A multi-line description of a record, each line indented by two spaces:
/// who, why, since when, until when, fence, where, and how it ended. Every
/// field is [`clean`]ed, and the lock id is left out: the record is usually
/// someone else's, and its lock id is their ownership token (the fence
/// identifies the grant just as well for a reader).
pub fn describe(record: &LockRecord) -> String {
    let mut lines = vec![format!("  holder:  {} ({})", holder(record), record.status)];
    if let Some(purpose) = &record.purpose {
        lines.push(format!("  purpose: {}", clean(purpose)));
    }
    let what: Vec<String> = [
        clean_opt(record.component.as_deref()).map(|c| format!("component {c}")),
        clean_opt(record.environment.as_deref()).map(|e| format!("environment {e}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !what.is_empty() {
        lines.push(format!("  what:    {}", what.join(", ")));
    }
    if record.status == LockStatus::InProgress {
        lines.push(format!(
            "  since:   {}, lease until {} ({})",
            clean(&record.locked_at),
            iso(record.expires_at),
            relative(record.expires_at)
        ));
    } else {
        lines.push(format!("  since:   {}", clean(&record.locked_at)));
    }
    lines.push(format!("  fence:   {}", record.fence));
    let place: Vec<String> = [
        clean_opt(record.host.as_deref()).map(|h| format!("host {h}")),
        record.pid.map(|p| format!("pid {p}")),
        clean_opt(record.run_url.as_deref()).map(|u| format!("run {u}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !place.is_empty() {
        lines.push(format!("  where:   {}", place.join(", ")));
    }
    if let Some(arn) = &record.caller_arn {
        lines.push(format!("  caller:  {} (as AWS knows it)", clean(arn)));
    }
    if let Some(next) = record.waiters.first() {
        lines.push(format!(
            "  waiting: {} (next: {})",
            record.waiters.len(),
            clean(next.owner_name.as_deref().unwrap_or(&next.owner))
        ));
    }
    if let Some(b) = &record.bypass {
        lines.push(bypass_line(b));
    }
    if let Some(ended) = &record.ended_at {
        lines.push(format!(
            "  ended:   {} by {}{}{}",
            clean(ended),
            clean(record.released_by.as_deref().unwrap_or("?")),
            match (&record.forced_by_arn, record.forced) {
                (Some(arn), _) => format!(" (forced, as AWS knows it {})", clean(arn)),
                (None, true) => " (forced)".to_owned(),
                (None, false) => String::new(),
            },
            record
                .release_reason
                .as_deref()
                .map(|r| format!(": {}", clean(r)))
                .unwrap_or_default()
        ));
    }
    lines.join("\n")
}

/// The last bypass of a key, for people: who ran without the lock, when and
/// why. Every field is [`clean`]ed.
pub fn bypass_line(b: &baton_lock::Bypass) -> String {
    let place: Vec<String> = [
        b.host.as_deref().map(|h| format!("host {}", clean(h))),
        b.run_url.as_deref().map(|u| format!("run {}", clean(u))),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!(
        "  BYPASSED: {} ran without the lock at {}{}: {} ({} bypass{} in all)",
        clean(&b.by),
        clean(&b.at),
        if place.is_empty() {
            String::new()
        } else {
            format!(" ({})", place.join(", "))
        },
        clean(&b.reason),
        b.count,
        if b.count == 1 { "" } else { "es" }
    )
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
/// mode also `{"ok":false,"error":…,"message":…,"holder"|"current":{…}}` on
/// stdout. The record in a failure is never the caller's grant to use (it is
/// someone else's, or ended, or lapsed), so its lock id — the ownership
/// token — is left out of both.
pub fn print_failure(failure: &Failure, json_mode: bool) {
    let mut text = format!("baton: {}", clean(&failure.message));
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
            map.insert((*field).to_owned(), Value::Object(foreign_fields(record)));
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

/// Rows under a header, each column as wide as its widest cell, two spaces
/// apart: the plain table `list` and `history` print.
pub fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let mut widths = vec![0usize; header.len()];
    for row in std::iter::once(&header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    std::iter::once(&header)
        .chain(rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
