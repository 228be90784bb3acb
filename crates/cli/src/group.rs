//! The command's process group. `run` starts its command in a group of its
//! own, so a signal, a SIGKILL escalation or the end of the lock reaches
//! every process the command started (`terraform` under `bash deploy.sh`),
//! not only the direct child. Three mechanisms keep the group from outliving
//! the lock when baton itself dies:
//!
//! - the direct child gets a parent-death signal (SIGKILL) on Linux;
//! - a watcher process (baton re-executed with [`WATCH_ARG`]) holds the read
//!   end of a pipe only baton writes to; when the pipe closes without baton
//!   saying "done", baton is gone and the watcher SIGKILLs the whole group
//!   (the parent-death signal alone only reaches the direct child);
//! - baton is a child subreaper on Linux, so members of the group that lose
//!   their parent are re-parented to baton and reaped by it: "the group is
//!   gone" can then be observed, even under an init that never reaps.
//!
//! A process that leaves the group on purpose (`setsid`, `setpgid`) escapes
//! all of this; that is the documented limit.

#![allow(
    unsafe_code,
    reason = "process groups, parent-death signals and reaping have no safe std API; each block says why it is sound"
)]

use std::io::{BufRead, Write};
use std::process::{ChildStdin, Command, Stdio};

/// argv[1] that turns the `baton` binary into the group watcher.
pub const WATCH_ARG: &str = "__baton-watch-group";

/// Prepares `command` to run in a new process group whose id is its pid,
/// and (on Linux) to receive SIGKILL when baton dies and to tell `watcher`
/// its group itself, before it execs: baton cannot die between the start of
/// the command and the watcher knowing whom to kill.
pub fn isolate(command: &mut tokio::process::Command, watcher: Option<&Watcher>) {
    command.process_group(0);
    #[cfg(target_os = "linux")]
    {
        let parent = i32::try_from(std::process::id()).unwrap_or(0);
        // The watcher's pipe stays open in the child until exec (close-on-exec).
        let watcher_fd = watcher.map(|w| std::os::fd::AsRawFd::as_raw_fd(&w.stdin));
        // SAFETY: the closure runs in the forked child between fork and exec,
        // where only async-signal-safe calls are allowed: it calls prctl(2),
        // getppid(2), getpid(2), write(2) and _exit(2) on plain integers and
        // a stack buffer it owns, allocates nothing and takes no lock.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // baton died between fork and prctl: the signal will never
                // come, so do not start the command at all.
                if libc::getppid() != parent {
                    libc::_exit(crate::failure::RUN_ERROR.into());
                }
                if let Some(fd) = watcher_fd {
                    let mut buf = [0u8; 16];
                    let line = pid_line(libc::getpid(), &mut buf);
                    libc::write(fd, line.as_ptr().cast(), line.len());
                }
                Ok(())
            });
        }
    }
}

/// `pid` as a decimal line in `buf`, without allocating (for use between
/// fork and exec).
fn pid_line(pid: i32, buf: &mut [u8; 16]) -> &[u8] {
    let mut n = pid.unsigned_abs();
    let mut start = buf.len() - 1;
    buf[start] = b'\n';
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[start..]
}

/// Makes baton the reaper of its orphaned descendants (Linux), so members of
/// the command's group whose parent died are reaped by [`Group::reap`]
/// instead of lingering as zombies. Failure only means slower cleanup.
pub fn become_subreaper() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes integers and touches no memory.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        if rc != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "cannot become a child subreaper");
        }
    }
}

/// The command's process group, by its id (the command's pid).
#[derive(Debug, Clone, Copy)]
pub struct Group {
    pgid: i32,
}

impl Group {
    /// The group led by `pid` (started with [`isolate`]).
    pub fn new(pgid: i32) -> Group {
        Group { pgid }
    }

    /// The group id (the command's pid).
    pub fn id(self) -> i32 {
        self.pgid
    }

    /// Sends `signo` to every process in the group; false when none is left.
    pub fn signal(self, signo: i32) -> bool {
        // SAFETY: kill(2) has no memory-safety preconditions; a negative pid
        // addresses the process group.
        unsafe { libc::kill(-self.pgid, signo) == 0 }
    }

    /// Whether any process (zombies included) is left in the group.
    pub fn alive(self) -> bool {
        // SAFETY: as in `signal`; signal 0 only checks for existence.
        let rc = unsafe { libc::kill(-self.pgid, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }

    /// Reaps members of the group that exited and are baton's children (the
    /// leader, or orphans re-parented to baton as subreaper). Call only after
    /// the leader was waited for, or this could take its exit status.
    pub fn reap(self) {
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes only to `status`, a local that outlives the call.
            let rc = unsafe { libc::waitpid(-self.pgid, &mut status, libc::WNOHANG) };
            if rc <= 0 {
                return;
            }
        }
    }
}

/// baton's end of the watcher's pipe. Dropping it without [`Watcher::done`]
/// (baton crashed, was killed, or gave up waiting for the group) makes the
/// watcher SIGKILL the group.
pub struct Watcher {
    stdin: ChildStdin,
}

impl Watcher {
    /// Starts the watcher (`baton __baton-watch-group`) in a process group of
    /// its own, so signals aimed at baton's group do not reach it. `None`
    /// (with a warning) when it cannot start: the parent-death signal still
    /// covers the direct child.
    pub fn start() -> Option<Watcher> {
        let started = std::env::current_exe().and_then(|exe| {
            let mut command = Command::new(exe);
            command
                .arg(WATCH_ARG)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
            command.spawn()
        });
        match started {
            Ok(mut child) => child.stdin.take().map(|stdin| Watcher { stdin }),
            Err(e) => {
                crate::render::eprintln_stderr(&format!(
                    "baton: warning: cannot start the group watcher ({e}); if baton is killed, processes the command started may outlive it"
                ));
                None
            }
        }
    }

    /// Tells the watcher which group to kill if baton dies.
    pub fn watch(&mut self, group: Group) {
        let _ = writeln!(self.stdin, "{}", group.id());
        let _ = self.stdin.flush();
    }

    /// The group is gone: the watcher exits without killing anything.
    pub fn done(mut self) {
        let _ = writeln!(self.stdin, "done");
        let _ = self.stdin.flush();
    }
}

/// The watcher's main: read the group id, then wait for "done" or the end of
/// the pipe; at the end of the pipe without "done", SIGKILL the group.
/// Ignores SIGINT, SIGTERM and SIGHUP, which are meant for baton and its
/// command, so it outlives them long enough to do its one job.
pub fn watch_main() -> u8 {
    for signo in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
        // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
        unsafe { libc::signal(signo, libc::SIG_IGN) };
    }
    let mut group = None;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if line == "done" {
            return 0;
        }
        if let Ok(pgid) = line.parse::<i32>()
            && pgid > 1
        {
            group = Some(Group::new(pgid));
        }
    }
    if let Some(group) = group {
        group.signal(libc::SIGKILL);
    }
    0
}

#[cfg(test)]
mod tests {
    #[test]
    fn pid_lines_are_decimal_lines() {
        for (pid, want) in [(1, "1\n"), (40213, "40213\n"), (i32::MAX, "2147483647\n")] {
            assert_eq!(super::pid_line(pid, &mut [0u8; 16]), want.as_bytes());
        }
    }
}
