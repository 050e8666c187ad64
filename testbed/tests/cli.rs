//! The `trireme-testbed` command: `up` leaves a running cluster behind and records it,
//! `status` and `sql` find it through the state file, `down` stops it by PID.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{skip, TempBase};
use trireme_testbed::{process, state::ClusterState, Cluster};

const BIN: &str = env!("CARGO_BIN_EXE_trireme-testbed");

fn cli(args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .env("TRIREME_TESTBED_LOG", "warn")
        .output()
        .expect("run trireme-testbed");
    eprintln!(
        "$ trireme-testbed {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "command failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Takes the cluster down even when an assertion fails, so no server outlives the test.
struct Down<'a>(&'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        if let Ok(mut c) = Cluster::attach(self.0) {
            let _ = c.stop_all();
        }
    }
}

#[test]
fn cli_up_status_sql_and_down_drive_a_cluster_that_outlives_the_command() {
    if skip(
        "cli_up_status_sql_and_down_drive_a_cluster_that_outlives_the_command",
        &[],
    ) {
        return;
    }
    let base = TempBase::new("cli");
    let dir = base.path().to_str().expect("utf-8 path").to_string();
    let _down = Down(base.path());

    let up = stdout(&cli(&[
        "up",
        "--galera",
        "--nodes",
        "1",
        "--base-dir",
        &dir,
        "--port-base",
        "18450",
        "--provider-options",
        "gcache.size=32M",
    ]));
    assert!(
        up.contains("node0 pid=") && up.contains("state=Synced"),
        "{up}"
    );
    assert!(
        up.contains("cluster=Primary") && up.contains("provider=Galera"),
        "{up}"
    );

    // A second `up` on the same base dir must not wipe a running cluster.
    let again = cli(&[
        "up",
        "--galera",
        "--nodes",
        "1",
        "--base-dir",
        &dir,
        "--port-base",
        "18450",
    ]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("trireme-testbed down --base-dir"),
        "{again:?}"
    );

    // The command has exited; the server it started still runs, recorded in the state file.
    let state = ClusterState::read(&base.path().join("cluster.state")).expect("state file");
    let pid = state.pids[0].expect("pid recorded");
    assert!(process::alive(pid));
    assert_eq!(process::comm(pid).as_deref(), Some("mariadbd"));

    let status = stdout(&cli(&["status", "--base-dir", &dir]));
    assert!(status.contains(&format!("node0 pid={pid} ")), "{status}");
    assert!(status.contains("ready=ON"), "{status}");

    let rows = stdout(&cli(&[
        "sql",
        "--base-dir",
        &dir,
        "--node",
        "0",
        "SELECT 6*7, 'x'",
    ]));
    assert_eq!(rows, "42\tx\n");
    let bad = cli(&["sql", "--base-dir", &dir, "--node", "5", "SELECT 1"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no node 5"));

    let down = stdout(&cli(&["down", "--base-dir", &dir]));
    assert!(down.contains("node0 stopped in"), "{down}");
    assert!(!process::alive(pid));
    let after = stdout(&cli(&["status", "--base-dir", &dir]));
    assert!(
        after.contains("node0 pid=- ") && after.contains("down"),
        "{after}"
    );
    base.passed();
}
