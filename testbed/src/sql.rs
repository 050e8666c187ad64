//! SQL through the `mariadb` command-line client.
//!
//! One client process per call, `--batch --skip-column-names`, over the node's Unix socket as
//! `root` (whom `mariadb-install-db` authenticates by `unix_socket`, so the testbed, running as
//! root, needs no password). A process per query costs a few milliseconds, which is nothing next
//! to what the tests wait for, and it keeps the crate free of a MySQL driver.
//!
//! `--no-defaults` keeps `/etc/mysql` (whose `[client]` points at the system server's socket)
//! out of the picture. Several statements may be sent in one call (`;`-separated): they share
//! one session, which is how `SET SESSION wsrep_sync_wait=...` applies to the query after it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::{Result, TestbedError};
use crate::process::run_captured;

/// The `mariadb` client binary.
pub const MARIADB_CLIENT: &str = "/usr/bin/mariadb";

/// Where and how to send SQL to one node.
#[derive(Debug, Clone)]
pub struct SqlClient {
    /// The node name used in errors.
    pub node: String,
    /// The node's Unix socket.
    pub socket: PathBuf,
    /// How long one client invocation may run.
    pub timeout: Duration,
}

impl SqlClient {
    /// A client for `node` over `socket`.
    pub fn new(node: impl Into<String>, socket: impl Into<PathBuf>, timeout: Duration) -> Self {
        SqlClient {
            node: node.into(),
            socket: socket.into(),
            timeout,
        }
    }

    /// Runs `query` (one or more `;`-separated statements in one session) and returns every
    /// result row of every statement, in order. SQL `NULL` reads as the string `NULL`.
    pub fn query(&self, query: &str) -> Result<Vec<Vec<String>>> {
        let out = run_captured(
            &self.node,
            client_command(&self.socket, query),
            self.timeout,
        )
        .map_err(|e| match e {
            // A client killed for overstaying is most useful reported as an SQL failure.
            TestbedError::CommandTimeout {
                timeout, stderr, ..
            } => TestbedError::Sql {
                node: self.node.clone(),
                query: query.to_string(),
                code: None,
                stderr: format!("client killed after {timeout:?} {stderr}"),
            },
            other => other,
        })?;
        if !out.status.success() {
            let stderr = out.stderr.trim().to_string();
            return Err(TestbedError::Sql {
                node: self.node.clone(),
                query: query.to_string(),
                code: error_code(&stderr),
                stderr,
            });
        }
        Ok(parse_batch(&out.stdout))
    }
}

fn client_command(socket: &Path, query: &str) -> Command {
    let mut cmd = Command::new(MARIADB_CLIENT);
    cmd.arg("--no-defaults")
        .arg("--protocol=socket")
        .arg(format!("--socket={}", socket.display()))
        .arg("--user=root")
        .arg("--batch")
        .arg("--skip-column-names")
        // The error text is enough; the echoed query would only repeat what we report.
        .arg("--skip-print-query-on-error")
        .arg("--connect-timeout=10")
        .arg("-e")
        .arg(query);
    cmd
}

/// Splits `--batch --skip-column-names` output into rows of unescaped fields.
pub fn parse_batch(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(|line| line.split('\t').map(unescape).collect())
        .collect()
}

/// Undoes the client's batch-mode escaping (`\t`, `\n`, `\\`, `\0`): a value containing a tab
/// or a newline must not split a row.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// MariaDB's error number from a client message such as
/// `ERROR 1047 (08S01) at line 1: WSREP has not yet prepared node for application use`.
pub fn error_code(stderr: &str) -> Option<u32> {
    let rest = &stderr[stderr.find("ERROR ")? + "ERROR ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Quotes an identifier for MariaDB (backticks, doubled inside).
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Quotes a string literal for MariaDB.
pub fn quote_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_output_splits_rows_and_unescapes_fields() {
        let rows = parse_batch("1\ta\\tb\n2\tline\\nbreak\\\\x\nNULL\t\n");
        assert_eq!(
            rows,
            vec![
                vec!["1".to_string(), "a\tb".into()],
                vec!["2".to_string(), "line\nbreak\\x".into()],
                vec!["NULL".to_string(), String::new()],
            ]
        );
        assert!(parse_batch("").is_empty());
    }

    #[test]
    fn error_code_is_read_from_client_messages() {
        assert_eq!(
            error_code("ERROR 1047 (08S01) at line 1: WSREP has not yet prepared node"),
            Some(1047)
        );
        assert_eq!(
            error_code("ERROR 2002 (HY000): Can't connect to local server through socket"),
            Some(2002)
        );
        assert_eq!(error_code("something else"), None);
    }

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert_eq!(quote_str("it's \\"), "'it''s \\\\'");
    }
}
