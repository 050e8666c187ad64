//! Processes: running helper commands with a deadline, signalling servers by PID, and
//! reading `/proc`.
//!
//! The machine is shared: other engineers run their own `mariadbd` instances. So the testbed
//! never looks processes up by name. It signals only PIDs it spawned itself, and before it
//! signals a PID it did not spawn in this process (the CLI's `down`), it checks in
//! `/proc/<pid>/cmdline` that the process is a `mariadbd` started with *our* defaults file, which
//! also guards against PID reuse.
//!
//! Signals are sent with `/usr/bin/kill` rather than `libc::kill`: the project keeps `unsafe`
//! in `ffi` and the io_uring layer only, and a fork per signal costs nothing here.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Result, TestbedError};

/// How often the testbed polls for a state change (process exit, readiness, ...).
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// What a finished helper command produced.
#[derive(Debug)]
pub(crate) struct Captured {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Renders a command line for error messages (arguments are not shell-quoted: it is for eyes).
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion with piped stdout/stderr, killing it (by its own PID, through the
/// `Child` handle) if it outlives `timeout`. A non-zero exit is *not* an error here: callers
/// decide, because for SQL the exit code alone says less than stderr.
pub(crate) fn run_captured(node: &str, mut cmd: Command, timeout: Duration) -> Result<Captured> {
    let line = describe(&cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| TestbedError::io(node, format!("spawn `{line}`"), e))?;
    // Drain both pipes on threads: a chatty child would otherwise block on a full pipe while we
    // wait for it to exit.
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() >= timeout => {
                // Our own child: killing it through the handle targets exactly its PID.
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err.join().unwrap_or_default();
                return Err(TestbedError::CommandTimeout {
                    node: node.to_string(),
                    command: line,
                    timeout,
                    stderr: stderr.trim().to_string(),
                });
            }
            Ok(None) => thread::sleep(POLL / 10),
            Err(e) => return Err(TestbedError::io(node, format!("wait for `{line}`"), e)),
        }
    };
    Ok(Captured {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Like [`run_captured`], but a non-zero exit becomes [`TestbedError::Command`].
pub(crate) fn run_checked(node: &str, cmd: Command, timeout: Duration) -> Result<Captured> {
    let line = describe(&cmd);
    let c = run_captured(node, cmd, timeout)?;
    if c.status.success() {
        Ok(c)
    } else {
        Err(TestbedError::Command {
            node: node.to_string(),
            command: line,
            status: c.status.to_string(),
            stderr: last_lines(&format!("{}{}", c.stderr, c.stdout), 30),
        })
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// The last `n` lines of `text`.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The signals the testbed sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Clean shutdown request.
    Term,
    /// Crash simulation: no cleanup, no `grastate.dat` update.
    Kill,
    /// Freeze (the node stops answering the group; peers eventually suspect it).
    Stop,
    /// Thaw a frozen node.
    Cont,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
        }
    }
}

/// Sends `sig` to exactly `pid`. The caller has established that `pid` is ours.
pub(crate) fn send_signal(node: &str, pid: u32, sig: Signal) -> Result<()> {
    let mut cmd = Command::new("/usr/bin/kill");
    cmd.arg("-s").arg(sig.name()).arg(pid.to_string());
    run_checked(node, cmd, Duration::from_secs(10)).map(|_| ())
}

/// `/proc/<pid>/comm`, without the newline; `None` if there is no such process.
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

/// `/proc/<pid>/cmdline` as arguments; `None` if there is no such process.
pub(crate) fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// The one-letter state of `/proc/<pid>/stat` (`R`, `S`, `T`, `Z`, ...).
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: the state follows the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

/// Whether `pid` is a live (not zombie) process. Only meaningful for processes that are not our
/// children: for children, reap through the `Child` handle instead.
pub fn alive(pid: u32) -> bool {
    matches!(proc_state(pid), Some(s) if s != 'Z' && s != 'X')
}

/// Checks that `pid` is a `mariadbd` started with `--defaults-file=<cnf>`.
pub(crate) fn verify_ours(node: &str, pid: u32, cnf: &Path) -> Result<()> {
    let not_ours = |detail: String| TestbedError::NotOurProcess {
        node: node.to_string(),
        pid,
        detail,
    };
    match comm(pid) {
        Some(c) if c == "mariadbd" => {}
        Some(c) => return Err(not_ours(format!("its name is `{c}`"))),
        None => return Err(not_ours("no such process".into())),
    }
    let want = format!("--defaults-file={}", cnf.display());
    let args = cmdline(pid).unwrap_or_default();
    if args.contains(&want) {
        Ok(())
    } else {
        Err(not_ours(format!(
            "its command line `{}` lacks `{want}`",
            args.join(" ")
        )))
    }
}

/// Waits until a child exits, up to `timeout`; returns its status, or `None` on timeout.
pub(crate) fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if start.elapsed() >= timeout {
            return None;
        }
        thread::sleep(POLL / 5);
    }
}

/// Waits until a non-child process is gone, up to `timeout`.
pub(crate) fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let start = Instant::now();
    while alive(pid) {
        if start.elapsed() >= timeout {
            return false;
        }
        thread::sleep(POLL / 5);
    }
    true
}

/// The effective uid of this process (from `/proc/self/status`, to stay free of `unsafe`).
pub fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    // Uid: real effective saved fs
    line.split_whitespace().nth(2)?.parse().ok()
}

/// A local account's uid and primary gid, from `/etc/passwd`.
pub fn account(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 4 && f[0] == name {
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        } else {
            None
        }
    })
}

/// Recursively hands `path` to `uid:gid` (without following symlinks), so that `mariadbd`,
/// running as `mysql`, owns its datadir even where `mariadb-install-db` left root-owned files.
pub(crate) fn chown_tree(node: &str, path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(|e| TestbedError::io(node, format!("chown {}", path.display()), e))?;
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| TestbedError::io(node, format!("stat {}", path.display()), e))?;
    if meta.is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|e| TestbedError::io(node, format!("read dir {}", path.display()), e))?;
        for entry in entries {
            let entry = entry
                .map_err(|e| TestbedError::io(node, format!("read dir {}", path.display()), e))?;
            chown_tree(node, &entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keeps_only_the_tail() {
        assert_eq!(last_lines("a\nb\nc\nd", 2), "c\nd");
        assert_eq!(last_lines("a", 5), "a");
        assert_eq!(last_lines("", 5), "");
    }

    #[test]
    fn own_process_is_alive_and_readable_in_proc() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(comm(me).is_some());
        assert!(matches!(proc_state(me), Some('R') | Some('S')));
        assert!(!cmdline(me).unwrap_or_default().is_empty());
    }

    #[test]
    fn run_captured_kills_a_command_that_overstays() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let start = Instant::now();
        let err = run_captured("t", cmd, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, TestbedError::CommandTimeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn run_checked_reports_stderr_of_a_failing_command() {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("echo boom >&2; exit 3");
        let err = run_checked("node7", cmd, Duration::from_secs(10)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("node7") && text.contains("boom") && text.contains("sh -c"),
            "{text}"
        );
    }

    #[test]
    fn verify_ours_refuses_a_process_that_is_not_mariadbd() {
        let err = verify_ours("n", std::process::id(), Path::new("/x/my.cnf")).unwrap_err();
        assert!(matches!(err, TestbedError::NotOurProcess { .. }), "{err}");
    }
}
