//! Shared by the integration tests: loud skipping, and base dirs that clean up after a pass.
//!
//! These tests run real `mariadbd` with Galera 4 to prove the harness itself; they need root
//! (servers run as `mysql`) and the Debian packages. When something is missing they print
//! `SKIPPED: <why>` straight to the terminal (not through the captured test output) and
//! return, so a skipped run is visible as such instead of passing silently.

#![allow(dead_code)] // each test binary uses its own subset

use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};

use trireme_testbed::{missing_prerequisite, ClusterSpec, GALERA_PROVIDER};

/// Returns true (after printing why) if `test` cannot run on this machine.
pub fn skip(test: &str, extra_binaries: &[&str]) -> bool {
    let why = missing_prerequisite(Path::new(GALERA_PROVIDER)).or_else(|| {
        extra_binaries
            .iter()
            .find(|b| !Path::new(b).exists())
            .map(|b| format!("{b} is not installed"))
    });
    match why {
        Some(why) => {
            // io::stderr() directly: the test harness captures print!/eprint!, not this.
            let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
            true
        }
        None => false,
    }
}

/// A fresh, unique base dir under /tmp. It is removed on drop only if the test called
/// [`TempBase::passed`] (and `TRIREME_TESTBED_KEEP` is unset); otherwise the datadirs and error logs stay as evidence. Declare it
/// before the cluster, so the cluster (dropped first) has stopped its servers by then.
pub struct TempBase {
    dir: PathBuf,
    passed: Cell<bool>,
}

impl TempBase {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tb-{tag}-{}", std::process::id()));
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
        // TRIREME_TESTBED_KEEP=1 keeps even a passing test's files, to read its logs.
        if self.passed.get() && std::env::var_os("TRIREME_TESTBED_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            let _ = writeln!(
                std::io::stderr(),
                "keeping {} for inspection (test failed, or TRIREME_TESTBED_KEEP is set)",
                self.dir.display()
            );
        }
    }
}

/// A Galera spec sized for a small, shared test box.
pub fn galera_spec(nodes: usize, base: &TempBase, port_base: u16) -> ClusterSpec {
    let mut spec = ClusterSpec::galera(nodes, base.path(), port_base);
    spec.provider_options = "gcache.size=32M".into();
    spec
}
