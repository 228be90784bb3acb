//! The one table `make bench` prints, and the same rows as JSON.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

/// How a figure compares with its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Meets the target.
    Pass,
    /// Measured, and falls short of the target.
    Miss,
    /// Measured; there is no target to meet.
    Info,
    /// Not measured because something it needs is not there (reported, not fatal).
    Gap,
    /// Could not be measured: the bench itself failed.
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Miss => "MISS",
            Verdict::Info => "info",
            Verdict::Gap => "GAP",
            Verdict::Error => "ERROR",
        }
    }

    /// `Pass` when `ok`, else `Miss`.
    pub fn meets(ok: bool) -> Verdict {
        if ok { Verdict::Pass } else { Verdict::Miss }
    }
}

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Row {
    /// Section number and name, e.g. `1 requests`.
    pub section: &'static str,
    pub figure: String,
    pub value: String,
    pub target: String,
    pub verdict: Verdict,
    /// How it was measured, or why it is where it is (printed under the table).
    pub note: Option<String>,
    /// Raw numbers for the JSON file.
    pub data: Value,
}

impl Row {
    pub fn new(section: &'static str, figure: impl Into<String>, value: impl Into<String>) -> Row {
        Row {
            section,
            figure: figure.into(),
            value: value.into(),
            target: "-".into(),
            verdict: Verdict::Info,
            note: None,
            data: Value::Null,
        }
    }

    pub fn target(mut self, target: impl Into<String>, verdict: Verdict) -> Row {
        self.target = target.into();
        self.verdict = verdict;
        self
    }

    pub fn verdict(mut self, verdict: Verdict) -> Row {
        self.verdict = verdict;
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.note = Some(note.into());
        self
    }

    pub fn data(mut self, data: Value) -> Row {
        self.data = data;
        self
    }

    /// A row for a section that could not be measured at all.
    pub fn failed(
        section: &'static str,
        figure: &str,
        verdict: Verdict,
        why: impl Into<String>,
    ) -> Row {
        Row::new(section, figure, "not measured")
            .verdict(verdict)
            .note(why)
    }
}

/// Milliseconds with a precision that suits the magnitude.
pub fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v < 1.0 {
        format!("{v:.3} ms")
    } else if v < 100.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.0} ms")
    }
}

pub fn ms_f(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// `Query ×3 + UpdateItem ×100` style summary of an operation list, in
/// order of first appearance.
pub fn describe(ops: &[String]) -> String {
    let mut out: Vec<(&str, usize)> = Vec::new();
    for op in ops {
        match out.iter_mut().find(|(o, _)| o == op) {
            Some((_, n)) => *n += 1,
            None => out.push((op, 1)),
        }
    }
    if out.is_empty() {
        return "none".into();
    }
    out.iter()
        .map(|(o, n)| {
            if *n == 1 {
                (*o).to_owned()
            } else {
                format!("{o} ×{n}")
            }
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

pub fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The table, columns sized to their content, then the numbered notes.
pub fn render(rows: &[Row]) -> String {
    let headers = ["#", "figure", "value", "target", "verdict"];
    let mut notes = Vec::new();
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let mut verdict = r.verdict.as_str().to_owned();
            if let Some(note) = &r.note {
                notes.push(note.clone());
                let _ = write!(verdict, " [{}]", notes.len());
            }
            let section = r
                .section
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            [
                section,
                r.figure.clone(),
                r.value.clone(),
                r.target.clone(),
                verdict,
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: [&str; 5]| {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            let pad = w.saturating_sub(c.chars().count());
            s.push_str(c);
            if i + 1 < cols.len() {
                s.push_str(&" ".repeat(pad));
                s.push_str(" | ");
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers);
    out.push_str(&line(
        widths.map(|w| "-".repeat(w)).each_ref().map(String::as_str),
    ));
    for row in &cells {
        out.push_str(&line(row.each_ref().map(String::as_str)));
    }
    if !notes.is_empty() {
        out.push('\n');
        for (i, note) in notes.iter().enumerate() {
            let _ = writeln!(out, "[{}] {}", i + 1, note);
        }
    }
    out
}

/// Writes `rows` (and `meta`) as JSON to `path`, creating its directory.
pub fn write_json(path: &Path, rows: &[Row], meta: Value) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let figures: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "section": r.section,
                "figure": r.figure,
                "value": r.value,
                "target": r.target,
                "verdict": r.verdict.as_str(),
                "note": r.note,
                "data": r.data,
            })
        })
        .collect();
    let doc = json!({ "meta": meta, "figures": figures });
    let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
    std::fs::write(path, text + "\n")
}
