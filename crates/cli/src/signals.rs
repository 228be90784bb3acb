//! SIGINT, SIGTERM and SIGHUP as values. A CI runner cancelling a job sends these;
//! baton must then stop waiting, or forward them to `run`'s command and
//! still release the lock, instead of dying with the lock held.

use std::future::Future;

use baton_lock::CancellationToken;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::failure::{ERROR, Failure};

/// Listens for SIGINT, SIGTERM and SIGHUP from the moment it is created
/// (their default "terminate" action is replaced for the rest of the
/// process): a closed terminal or a cancelled CI job must not kill baton
/// before it has stopped its command and released the lock.
pub struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> Result<Self, Failure> {
        let fail = |e: std::io::Error| {
            Failure::new(
                ERROR,
                "signals",
                format!("cannot install signal handlers: {e}"),
            )
        };
        Ok(Signals {
            int: signal(SignalKind::interrupt()).map_err(fail)?,
            term: signal(SignalKind::terminate()).map_err(fail)?,
            hup: signal(SignalKind::hangup()).map_err(fail)?,
        })
    }

    /// The next signal received, as its number.
    pub async fn recv(&mut self) -> i32 {
        tokio::select! {
            _ = self.int.recv() => libc::SIGINT,
            _ = self.term.recv() => libc::SIGTERM,
            _ = self.hup.recv() => libc::SIGHUP,
        }
    }
}

/// Runs `work` (which watches `cancel`) to completion; the first signal
/// cancels it rather than dropping it, so a DynamoDB write in flight is
/// never abandoned half-known. Returns the result and the signal, if any.
pub async fn until_signal<T>(
    work: impl Future<Output = T>,
    signals: &mut Signals,
    cancel: &CancellationToken,
) -> (T, Option<i32>) {
    tokio::pin!(work);
    let mut received = None;
    loop {
        tokio::select! {
            out = &mut work => return (out, received),
            signo = signals.recv(), if received.is_none() => {
                tracing::info!(signo, "signal received; cancelling");
                received = Some(signo);
                cancel.cancel();
            }
        }
    }
}

/// `SIGTERM`, `SIGINT`, … for messages and release reasons.
pub fn name(signo: i32) -> String {
    match signo {
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGPIPE => "SIGPIPE".into(),
        libc::SIGALRM => "SIGALRM".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGUSR1 => "SIGUSR1".into(),
        libc::SIGUSR2 => "SIGUSR2".into(),
        other => format!("signal {other}"),
    }
}
