//! Logging set-up. In Lambda: JSON lines on stdout (CloudWatch adds the
//! time and request context). Locally: JSON or text on stderr, so stdout
//! stays for the program's answer. Colour codes only reach a terminal.
//! `RUST_LOG` overrides the level.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Where the log lines go and in what shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logs {
    /// JSON lines on stdout, as Lambda expects.
    LambdaJson,
    /// JSON lines on stderr (a local server whose stdout says where it listens).
    StderrJson,
    /// Human-readable lines on stderr (command-line tools).
    StderrText,
}

/// Installs the global subscriber once; later calls are ignored.
pub fn init(logs: Logs, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = match logs {
        Logs::LambdaJson => builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .with_ansi(false)
            .try_init(),
        Logs::StderrJson => builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .try_init(),
        Logs::StderrText => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .try_init(),
    };
}
