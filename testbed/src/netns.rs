//! Network namespaces: each node of a cluster in its own network namespace, so that a test can
//! cut one node off, split the cluster, and heal it again, with real TCP underneath.
//!
//! The layout ([`ClusterSpec::netns`](crate::ClusterSpec::netns) turns it on):
//!
//! ```text
//!   <prefix>-n0            <prefix>-n1            <prefix>-n2          (one per node)
//!   eth0 10.77.0.1/24      eth0 10.77.0.2/24      eth0 10.77.0.3/24
//!        |                      |                      |             veth pairs
//!   +----n0---------------------n1---------------------n2----+
//!   |  br0 10.77.0.254/24               <prefix>-hub         |     bridge in its own namespace
//!   +--------------------------------------------------------+
//! ```
//!
//! The bridge lives in a namespace of its own (not the root namespace), so clusters of
//! parallel tests use the same addresses without meeting, and nothing in the machine's own
//! routing changes. The root namespace cannot reach the nodes over TCP; run TCP clients in the
//! hub ([`Network::hub_command`]) or in a node's namespace ([`Network::node_command`]). Unix
//! sockets are not bound to a network namespace, so the testbed's SQL client works as before.
//!
//! Faults:
//! - [`Network::partition`] drops, with `iptables` inside each node's namespace, every packet
//!   between nodes of different groups: peers see silence (no RST, no ICMP), as with a cut
//!   link between switches. [`Network::heal`] removes the rules.
//! - [`Network::unplug`] / [`Network::plug`] take the node's bridge port down and up: the
//!   node loses its carrier, as with a pulled cable.
//!
//! Names are `tbn-<pid>-<seq>-hub` and `tbn-<pid>-<seq>-n<i>` (the creating process and a
//! per-process counter), so parallel tests never collide. Dropping the [`Network`] deletes
//! its namespaces (and with them the veth pairs and the bridge); the [`Cluster`](crate::Cluster)
//! owning it stops its servers first. Namespaces left behind by a test process that was
//! killed outright are deleted by the next [`Network::create`] once their creator is gone and
//! no process runs inside them.
//!
//! Processes enter a namespace through `nsenter --net=/run/netns/<name>`, which execs in place
//! (the PID spawned stays the server's PID) and switches to the `mysql` uid and gid itself
//! (entering a namespace needs root, so the switch must come after it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::error::{Result, TestbedError};
use crate::process;

/// `ip` from iproute2.
pub const IP: &str = "/usr/sbin/ip";
/// `iptables` (either backend).
pub const IPTABLES: &str = "/usr/sbin/iptables";
/// `nsenter` from util-linux.
pub const NSENTER: &str = "/usr/bin/nsenter";

/// Where `ip netns add` mounts named namespaces.
const NETNS_DIR: &str = "/run/netns";
/// Prefix of every namespace the testbed creates.
const PREFIX: &str = "tbn-";
/// The first three octets of the nodes' /24.
const SUBNET: &str = "10.77.0";
/// The hub's own address on the bridge (TCP clients run there).
pub const HUB_ADDRESS: &str = "10.77.0.254";
/// Nodes get .1 to .250.
pub const MAX_NODES: usize = 250;

/// How long one `ip`/`iptables` invocation may take on a loaded machine.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The address of node `i` inside its namespace (`10.77.0.<i+1>`).
pub fn node_address(i: usize) -> String {
    format!("{SUBNET}.{}", i + 1)
}

/// The namespaces, links and bridge of one cluster; deleted on drop unless kept.
#[derive(Debug)]
pub struct Network {
    prefix: String,
    nodes: usize,
    /// Namespaces created so far, in creation order (hub first).
    created: Vec<String>,
    keep: bool,
}

impl Network {
    /// Creates the hub namespace with its bridge and one namespace per node, linked by a veth
    /// pair, addressed `10.77.0.<i+1>/24`, loopback up. On failure, whatever was created is
    /// deleted again.
    pub fn create(nodes: usize) -> Result<Network> {
        if nodes == 0 || nodes > MAX_NODES {
            return Err(TestbedError::Spec(format!(
                "network namespaces: {nodes} nodes (1..={MAX_NODES} fit in {SUBNET}.0/24)"
            )));
        }
        if let Some(why) = missing_tools() {
            return Err(TestbedError::Prerequisite(why));
        }
        sweep_stale();
        let prefix = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut net = Network {
            prefix,
            nodes,
            created: Vec::new(),
            keep: false,
        };
        net.build()?; // on error, `net` is dropped and deletes what exists
        log::info!(
            "network namespaces {}-hub and {}-n0..n{} on {SUBNET}.0/24",
            net.prefix,
            net.prefix,
            nodes - 1
        );
        Ok(net)
    }

    fn build(&mut self) -> Result<()> {
        let hub = self.hub_netns();
        ip(&["netns", "add", &hub])?;
        self.created.push(hub.clone());
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&[
            "-n",
            &hub,
            "addr",
            "add",
            &format!("{HUB_ADDRESS}/24"),
            "dev",
            "br0",
        ])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for i in 0..self.nodes {
            let ns = self.node_netns(i);
            ip(&["netns", "add", &ns])?;
            self.created.push(ns.clone());
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            // Both ends are created from the hub: interface names are per namespace, so
            // `n<i>` and `eth0` never collide with another cluster's.
            let port = format!("n{i}");
            ip(&[
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &port, "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", node_address(i)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }

    /// Number of node namespaces.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The name of the hub namespace (the bridge).
    pub fn hub_netns(&self) -> String {
        format!("{}-hub", self.prefix)
    }

    /// The name of node `i`'s namespace.
    pub fn node_netns(&self, i: usize) -> String {
        format!("{}-n{i}", self.prefix)
    }

    /// The mount point of node `i`'s namespace (what `nsenter --net=` takes).
    pub fn node_netns_path(&self, i: usize) -> PathBuf {
        Path::new(NETNS_DIR).join(self.node_netns(i))
    }

    /// Node `i`'s address.
    pub fn address(&self, i: usize) -> String {
        node_address(i)
    }

    /// A command that runs `program` in the hub namespace, as root: the place to run TCP
    /// clients that must reach every node (`mariadb -h 10.77.0.1 ...`).
    pub fn hub_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        enter(&Path::new(NETNS_DIR).join(self.hub_netns()), None, program)
    }

    /// A command that runs `program` in node `i`'s namespace, as root.
    pub fn node_command(&self, i: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
        enter(&self.node_netns_path(i), None, program)
    }

    /// Splits the nodes into `groups`: packets between nodes of different groups are dropped
    /// (both ways, silently). A node listed in no group is cut off from every other node.
    /// Replaces any earlier partition.
    pub fn partition(&self, groups: &[&[usize]]) -> Result<()> {
        for g in groups {
            if let Some(&bad) = g.iter().find(|&&i| i >= self.nodes) {
                return Err(TestbedError::NoSuchNode {
                    index: bad,
                    nodes: self.nodes,
                });
            }
        }
        let group_of = |i: usize| groups.iter().position(|g| g.contains(&i));
        self.flush_rules()?;
        for i in 0..self.nodes {
            for j in (0..self.nodes).filter(|&j| j != i) {
                let apart = match (group_of(i), group_of(j)) {
                    (Some(a), Some(b)) => a != b,
                    _ => true,
                };
                if apart {
                    let peer = node_address(j);
                    self.iptables(i, &["-A", "INPUT", "-s", &peer, "-j", "DROP"])?;
                    self.iptables(i, &["-A", "OUTPUT", "-d", &peer, "-j", "DROP"])?;
                }
            }
        }
        log::info!("network partitioned: {groups:?}");
        Ok(())
    }

    /// Cuts node `i` off from every other node ([`Network::partition`] with the others in one
    /// group and `i` alone).
    pub fn isolate(&self, i: usize) -> Result<()> {
        let others: Vec<usize> = (0..self.nodes).filter(|&j| j != i).collect();
        self.partition(&[&others, &[i]])
    }

    /// Removes every partition rule and plugs every node back in.
    pub fn heal(&self) -> Result<()> {
        self.flush_rules()?;
        for i in 0..self.nodes {
            self.plug(i)?;
        }
        log::info!("network healed");
        Ok(())
    }

    /// Takes node `i`'s bridge port down: its link loses carrier (a pulled cable).
    pub fn unplug(&self, i: usize) -> Result<()> {
        self.check(i)?;
        ip(&[
            "-n",
            &self.hub_netns(),
            "link",
            "set",
            &format!("n{i}"),
            "down",
        ])
    }

    /// Brings node `i`'s bridge port back up.
    pub fn plug(&self, i: usize) -> Result<()> {
        self.check(i)?;
        ip(&[
            "-n",
            &self.hub_netns(),
            "link",
            "set",
            &format!("n{i}"),
            "up",
        ])
    }

    /// Leaves the namespaces in place when dropped (for a cluster left running on purpose).
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// The command that starts `program` in node `i`'s namespace as `uid:gid` (the servers,
    /// `--wsrep-recover`). The caller must not set a uid on it: `nsenter` switches after
    /// entering.
    pub(crate) fn server_command(
        netns: &Path,
        uid: u32,
        gid: u32,
        program: impl AsRef<std::ffi::OsStr>,
    ) -> Command {
        enter(netns, Some((uid, gid)), program)
    }

    fn check(&self, i: usize) -> Result<()> {
        if i < self.nodes {
            Ok(())
        } else {
            Err(TestbedError::NoSuchNode {
                index: i,
                nodes: self.nodes,
            })
        }
    }

    fn flush_rules(&self) -> Result<()> {
        for i in 0..self.nodes {
            self.iptables(i, &["-F", "INPUT"])?;
            self.iptables(i, &["-F", "OUTPUT"])?;
        }
        Ok(())
    }

    fn iptables(&self, i: usize, args: &[&str]) -> Result<()> {
        let mut cmd = self.node_command(i, IPTABLES);
        // -w: wait for the xtables lock rather than fail (legacy backend).
        cmd.arg("-w").args(args);
        process::run_checked(&format!("node{i}"), cmd, TOOL_TIMEOUT).map(|_| ())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // Nodes first, the hub (and its bridge) last. Deleting a namespace deletes its end of
        // each veth pair, which deletes the pair.
        for ns in self.created.iter().rev() {
            if let Err(e) = ip(&["netns", "del", ns]) {
                log::warn!("could not delete network namespace {ns}: {e}");
            }
        }
    }
}

/// Why network namespaces cannot be used here, if they cannot.
pub fn missing_tools() -> Option<String> {
    if process::effective_uid() != Some(0) {
        return Some("network namespaces need root".into());
    }
    [IP, IPTABLES, NSENTER]
        .iter()
        .find(|b| !Path::new(b).exists())
        .map(|b| format!("{b} is not installed (network namespaces)"))
}

fn enter(netns: &Path, user: Option<(u32, u32)>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(NSENTER);
    cmd.arg(format!("--net={}", netns.display()));
    if let Some((uid, gid)) = user {
        cmd.arg(format!("--setgid={gid}"))
            .arg(format!("--setuid={uid}"));
    }
    cmd.arg("--").arg(program);
    cmd
}

fn ip(args: &[&str]) -> Result<()> {
    let mut cmd = Command::new(IP);
    cmd.args(args);
    process::run_checked("testbed", cmd, TOOL_TIMEOUT).map(|_| ())
}

/// Deletes namespaces named by a testbed process that no longer exists, when no process runs
/// in them any more (a server left running keeps its namespace).
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        let mut pids = Command::new(IP);
        pids.args(["netns", "pids", &name]);
        match process::run_checked("testbed", pids, TOOL_TIMEOUT) {
            Ok(out) if out.stdout.trim().is_empty() => {
                log::info!("deleting stale network namespace {name} (pid {owner} is gone)");
                let _ = ip(&["netns", "del", &name]);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_numbered_from_one_in_the_subnet() {
        assert_eq!(node_address(0), "10.77.0.1");
        assert_eq!(node_address(2), "10.77.0.3");
    }

    #[test]
    fn servers_enter_the_namespace_before_dropping_to_mysql() {
        let cmd = Network::server_command(Path::new("/run/netns/x"), 102, 105, "/usr/bin/setsid");
        assert_eq!(
            process::describe(&cmd),
            "/usr/bin/nsenter --net=/run/netns/x --setgid=105 --setuid=102 -- /usr/bin/setsid"
        );
    }
}
