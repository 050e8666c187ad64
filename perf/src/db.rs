//! SQL connections to the nodes under test, over TCP with a password user: the same path
//! for local clusters (127.0.0.1 and each node's port) and for a user's remote hosts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};

/// The user the harness creates on local clusters.
pub const LOCAL_USER: &str = "trireme_perf";
/// Its password (local clusters listen on 127.0.0.1 only).
pub const LOCAL_PASSWORD: &str = "trireme_perf";

/// One node's SQL address and credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `node0`, ... (or `host:port` for remote hosts).
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
}

impl Endpoint {
    /// Connects (TCP, no socket switch, generous timeouts: a stalled cluster must end in an
    /// error, never hang the harness), optionally into `db`.
    pub fn connect(&self, db: Option<&str>) -> mysql::Result<Conn> {
        let opts = OptsBuilder::new()
            .ip_or_hostname(Some(self.host.clone()))
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(Some(self.password.clone()))
            .db_name(db.map(str::to_string))
            // The driver would otherwise switch a loopback connection to the Unix socket.
            .prefer_socket(false)
            .tcp_nodelay(true)
            .tcp_connect_timeout(Some(Duration::from_secs(10)))
            .read_timeout(Some(Duration::from_secs(120)))
            .write_timeout(Some(Duration::from_secs(120)))
            .stmt_cache_size(64);
        Conn::new(opts)
    }
}

/// Parses `--hosts h1:3306,h2:3306` (IPv6 as `[::1]:3306`).
pub fn parse_hosts(list: &str, user: &str, password: &str) -> Result<Vec<Endpoint>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|hp| {
            let (host, port) = hp
                .rsplit_once(':')
                .ok_or_else(|| format!("host {hp:?} has no :port"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| format!("host {hp:?}: bad port {port:?}"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(format!("host {hp:?} has no host part"));
            }
            Ok(Endpoint {
                name: hp.to_string(),
                host: host.to_string(),
                port,
                user: user.to_string(),
                password: password.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|v| {
            if v.is_empty() {
                Err("--hosts lists no host".into())
            } else {
                Ok(v)
            }
        })
}

/// The server error number of `e`, if the server sent one.
pub fn error_code(e: &mysql::Error) -> Option<u16> {
    match e {
        mysql::Error::MySqlError(m) => Some(m.code),
        _ => None,
    }
}

/// Whether `e` is a conflict the client should retry: deadlock / certification failure
/// (1213), lock wait timeout (1205), record changed (1020).
pub fn is_retryable(e: &mysql::Error) -> bool {
    matches!(error_code(e), Some(1213 | 1205 | 1020))
}

/// `SHOW GLOBAL STATUS` (optionally `LIKE pattern`) as a map.
pub fn global_status(
    conn: &mut Conn,
    like: Option<&str>,
) -> mysql::Result<BTreeMap<String, String>> {
    let q = match like {
        Some(p) => format!("SHOW GLOBAL STATUS LIKE '{}'", p.replace('\'', "''")),
        None => "SHOW GLOBAL STATUS".into(),
    };
    let rows: Vec<(String, Option<String>)> = conn.query(q)?;
    Ok(rows
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.unwrap_or_default()))
        .collect())
}

/// One server variable (`@@name`) as text.
pub fn variable(conn: &mut Conn, name: &str) -> mysql::Result<Option<String>> {
    let v: Option<Option<String>> = conn.query_first(format!("SELECT @@{name}"))?;
    Ok(v.flatten())
}

/// Waits until every node has applied everything (equal `wsrep_last_committed`, empty receive
/// queues), so that one run's backlog does not slow the next one. Standalone servers (no
/// wsrep) return at once. A receive queue that stays non-zero while `wsrep_last_committed` is
/// equal and unchanged on every node for 2 s is reported (a provider counting something it
/// will never apply) and accepted. Fails after `timeout`.
pub fn wait_converged(endpoints: &[Endpoint], timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    let mut stable_since: Option<(Instant, Vec<String>)> = None;
    loop {
        let mut seen = Vec::new();
        let mut queues = Vec::new();
        let mut queues_empty = true;
        let mut reachable = true;
        for ep in endpoints {
            match ep
                .connect(None)
                .and_then(|mut c| global_status(&mut c, Some("wsrep_%")))
            {
                Ok(st) => {
                    let lc = st.get("wsrep_last_committed").cloned().unwrap_or_default();
                    let q = st
                        .get("wsrep_local_recv_queue")
                        .cloned()
                        .unwrap_or_else(|| "0".into());
                    if !(q == "0" || q.is_empty()) {
                        queues_empty = false;
                        queues.push(format!("{}: wsrep_local_recv_queue={q}", ep.name));
                    }
                    seen.push(lc);
                }
                Err(e) => {
                    reachable = false;
                    seen.push(format!("{}: {e}", ep.name));
                }
            }
        }
        let all_equal = reachable && seen.windows(2).all(|w| w[0] == w[1]);
        if all_equal && queues_empty {
            return Ok(());
        }
        if all_equal {
            match &stable_since {
                Some((t, s)) if *s == seen && t.elapsed() >= Duration::from_secs(2) => {
                    log::warn!(
                        "every node has committed {} but {} (nothing is left to apply)",
                        seen.first().map(String::as_str).unwrap_or("?"),
                        queues.join(", ")
                    );
                    return Ok(());
                }
                Some((_, s)) if *s == seen => {}
                _ => stable_since = Some((Instant::now(), seen.clone())),
            }
        } else {
            stable_since = None;
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "nodes did not converge within {timeout:?}: wsrep_last_committed {}; {}",
                seen.join(", "),
                queues.join(", ")
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_with_ports_and_ipv6() {
        let v = parse_hosts("10.0.0.1:3306, db2:3307,[::1]:3308", "u", "p").unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!((v[0].host.as_str(), v[0].port), ("10.0.0.1", 3306));
        assert_eq!((v[1].host.as_str(), v[1].port), ("db2", 3307));
        assert_eq!((v[2].host.as_str(), v[2].port), ("::1", 3308));
        assert_eq!(v[2].name, "[::1]:3308");
        assert_eq!(v[0].user, "u");
        assert!(parse_hosts("nohost", "u", "p").is_err());
        assert!(parse_hosts("h:notaport", "u", "p").is_err());
        assert!(parse_hosts(":3306", "u", "p").is_err());
        assert!(parse_hosts("", "u", "p").is_err());
    }
}
