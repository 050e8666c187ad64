//! Helpers shared by the integration tests: where the provider is, loud skipping, unique
//! base directories and port bases.
//!
//! The tests start real `mariadbd` processes (as user `mysql`) on `target/release/libtrireme.so`
//! (or `$TRIREME_PROVIDER`) and check the provider's promises through SQL only. Build the
//! library first: `cargo build --release -p trireme-ffi`.

pub mod bank;
pub mod faults;

use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use trireme_testbed::{missing_prerequisite, ClusterSpec};

/// The provider under test.
pub fn provider() -> PathBuf {
    if let Some(path) = std::env::var_os("TRIREME_PROVIDER") {
        return PathBuf::from(path);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/libtrireme.so")
}

/// True (after saying why, on the real stderr) if the test cannot run here. A missing
/// provider library is not a reason to skip: it is a failure of the build step.
pub fn skip(test: &str) -> bool {
    let provider = provider();
    assert!(
        provider.exists(),
        "{} is missing: run `cargo build --release -p trireme-ffi` first",
        provider.display()
    );
    match missing_prerequisite(&provider) {
        Some(why) => {
            let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
            true
        }
        None => false,
    }
}

/// A unique base directory under /tmp, removed only when the test passed.
pub struct TempBase {
    dir: PathBuf,
    passed: Cell<bool>,
}

impl TempBase {
    pub fn new(tag: &str) -> TempBase {
        let dir = std::env::temp_dir().join(format!("trireme-it-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempBase {
            dir,
            passed: Cell::new(false),
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn passed(&self) {
        self.passed.set(true);
    }
}

impl Drop for TempBase {
    fn drop(&mut self) {
        if self.passed.get() && std::env::var_os("TRIREME_TESTBED_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            let _ = writeln!(
                std::io::stderr(),
                "keeping {} for inspection",
                self.dir.display()
            );
        }
    }
}

/// A Trireme spec for a small shared test box.
/// `TRIREME_ITEST_TRANSPORT=portable` runs the same tests on the portable transport.
pub fn trireme_spec(nodes: usize, base: &TempBase, port_base: u16) -> ClusterSpec {
    let mut spec = ClusterSpec::new(provider(), nodes, base.path(), port_base);
    spec.provider_options = "gcache.size=16M".into();
    if let Ok(transport) = std::env::var("TRIREME_ITEST_TRANSPORT") {
        spec.provider_options
            .push_str(&format!("; trireme.transport={transport}"));
    }
    spec
}

/// Whether `SHOW STATUS` output has every `(variable, value)` of `expected` (for
/// `Node::wait_status` conditions).
pub fn status_is(
    st: &std::collections::BTreeMap<String, String>,
    expected: &[(&str, &str)],
) -> bool {
    expected
        .iter()
        .all(|(name, value)| st.get(*name).map(String::as_str) == Some(*value))
}

/// Lines of a server error log at `[ERROR]` level, minus the ones MariaDB prints on every
/// test box whatever the provider (none known so far).
pub fn error_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("[ERROR]"))
        .map(String::from)
        .collect()
}

/// A long-lived `mariadb` client: one process, statements written to its stdin and answers
/// read line by line, so a test can issue thousands of statements and time them without a
/// process start per statement.
pub struct Session {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Session {
    pub fn open(socket: &Path) -> std::io::Result<Session> {
        use std::process::{Command, Stdio};
        let mut child = Command::new("/usr/bin/mariadb")
            .arg(format!("--socket={}", socket.display()))
            .args([
                "--user=root",
                "--batch",
                "--skip-column-names",
                "--unbuffered",
                "--force",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
        Ok(Session {
            child,
            stdin,
            stdout,
        })
    }

    /// Runs `statement` (which must end by selecting exactly one row of one column) and
    /// returns that value, or None if the client stopped answering (server gone).
    pub fn value(&mut self, statement: &str) -> Option<String> {
        use std::io::{BufRead, Write};
        writeln!(self.stdin, "{statement}").ok()?;
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end().to_string()),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
