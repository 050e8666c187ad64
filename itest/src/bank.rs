//! A bank-transfer workload: the oldest test of a replicated database.
//!
//! `bank.accounts` holds N accounts whose balances sum to a fixed total. Clients on every node
//! move random amounts between random accounts, each transfer one transaction:
//!
//! ```sql
//! START TRANSACTION;
//! UPDATE bank.accounts SET balance = balance - x WHERE id = a;
//! UPDATE bank.accounts SET balance = balance + x WHERE id = b;
//! INSERT INTO bank.transfers VALUES (<client-chosen unique id>, a, b, x, <client>);
//! COMMIT;
//! ```
//!
//! The statements run inside a stored procedure (`bank.transfer`) whose exit handler rolls
//! back and reports the error number as a row. That matters: a `mariadb` client session that
//! keeps going after an error (`--force`) would otherwise run the second `UPDATE` in
//! autocommit mode after the first failed, and corrupt the balance it is meant to check. A
//! transfer is **acknowledged** when the procedure printed `OK <id>`, i.e. after `COMMIT` returned
//! success; the client records the acknowledged id, the time and the node. Certification
//! conflicts and brute-force aborts (1213) are retried with the same id (the transaction
//! certainly did not commit); any other outcome (connection lost, node not primary, timeout)
//! is *unknown* and the client moves on to a new id, so an unknown transfer is never counted
//! as acknowledged and never duplicated.
//!
//! [`verify`] then checks on a node: the total balance is unchanged, every account's balance
//! equals its initial balance plus what the transfer log says came in minus what went out
//! (each transfer was atomic), and every acknowledged transfer is there.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use trireme_testbed::{Node, TestbedError};

/// The schema and the starting balances.
#[derive(Debug, Clone, Copy)]
pub struct Bank {
    /// Number of accounts (ids 1..=accounts).
    pub accounts: u32,
    /// Starting balance of each account.
    pub initial: i64,
}

impl Bank {
    /// The invariant: the sum of all balances.
    pub fn total(&self) -> i64 {
        i64::from(self.accounts) * self.initial
    }

    /// Creates `bank.accounts`, `bank.transfers` and the `bank.transfer` procedure on `node`
    /// (they replicate). Drops an older `bank` schema first.
    pub fn create(&self, node: &Node) -> Result<(), TestbedError> {
        let values: Vec<String> = (1..=self.accounts)
            .map(|id| format!("({id}, {})", self.initial))
            .collect();
        node.exec(&format!(
            "DROP DATABASE IF EXISTS bank; CREATE DATABASE bank; \
             CREATE TABLE bank.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL); \
             CREATE TABLE bank.transfers (id BIGINT PRIMARY KEY, src INT NOT NULL, \
               dst INT NOT NULL, amount INT NOT NULL, client INT NOT NULL); \
             INSERT INTO bank.accounts VALUES {};",
            values.join(", ")
        ))?;
        node.exec(
            "DELIMITER //\n\
             CREATE PROCEDURE bank.transfer(p_id BIGINT, p_src INT, p_dst INT, p_amount INT, \
               p_client INT)\n\
             BEGIN\n\
               DECLARE EXIT HANDLER FOR SQLEXCEPTION\n\
               BEGIN\n\
                 GET DIAGNOSTICS CONDITION 1 @bank_errno = MYSQL_ERRNO;\n\
                 ROLLBACK;\n\
                 SELECT CONCAT('ERR ', p_id, ' ', @bank_errno);\n\
               END;\n\
               ROLLBACK;\n\
               START TRANSACTION;\n\
               UPDATE bank.accounts SET balance = balance - p_amount WHERE id = p_src;\n\
               UPDATE bank.accounts SET balance = balance + p_amount WHERE id = p_dst;\n\
               INSERT INTO bank.transfers VALUES (p_id, p_src, p_dst, p_amount, p_client);\n\
               COMMIT;\n\
               SELECT CONCAT('OK ', p_id);\n\
             END//\n\
             DELIMITER ;\n",
        )
    }
}

/// One acknowledged transfer.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    /// The transfer's id.
    pub id: i64,
    /// When the client saw `OK`, in seconds since the workload's epoch.
    pub t: f64,
    /// The node the client talks to.
    pub node: usize,
}

/// Counters of one workload run.
#[derive(Debug, Clone, Default)]
pub struct Outcomes {
    /// Acknowledged transfers.
    pub acked: u64,
    /// 1213 answers (retried).
    pub conflicts: u64,
    /// Transfers whose fate is unknown (the client moved on to a new id).
    pub unknown: u64,
    /// Errors by MariaDB error number (`0`: no number: timeout or client died).
    pub errors: BTreeMap<u32, u64>,
    /// The first few answers that carried no error number, verbatim (for the report).
    pub odd_answers: Vec<String>,
}

/// Where one client connects.
#[derive(Debug, Clone)]
pub struct ClientTarget {
    /// Index of the node.
    pub node: usize,
    /// The node's Unix socket.
    pub socket: PathBuf,
}

/// A running workload: one thread per client.
pub struct Workload {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<ClientLog>>,
    epoch: Instant,
}

struct ClientLog {
    acks: Vec<Ack>,
    outcomes: Outcomes,
}

/// What a finished workload reports.
#[derive(Debug, Clone, Default)]
pub struct WorkloadResult {
    /// Every acknowledged transfer, sorted by time.
    pub acks: Vec<Ack>,
    /// Counters, all clients together.
    pub outcomes: Outcomes,
}

/// How long one transfer may take before the client gives up on its session. Longer than a
/// SIGSTOP scenario's freeze, so a thawed node's clients carry on where they were.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(45);
/// Pause after an error, so a client of a node that refuses everything does not spin.
const BACKOFF: Duration = Duration::from_millis(100);

impl Workload {
    /// Starts one client per target. `run` makes ids unique across runs (ids are
    /// `(run * 1000 + client) * 10^9 + sequence`); `epoch` is time zero of the acks.
    pub fn start(
        bank: Bank,
        targets: &[ClientTarget],
        run: u32,
        seed: u64,
        epoch: Instant,
    ) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = targets
            .iter()
            .enumerate()
            .map(|(c, target)| {
                let target = target.clone();
                let stop = stop.clone();
                let client_no = i64::from(run) * 1000 + c as i64;
                let seed = seed ^ (client_no as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                thread::spawn(move || client(bank, target, client_no, seed, stop, epoch))
            })
            .collect();
        Workload {
            stop,
            clients,
            epoch,
        }
    }

    /// Seconds since the epoch (the time base of [`Ack::t`]).
    pub fn now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    /// Stops the clients (each finishes its transfer in flight) and returns what they saw.
    pub fn stop(self) -> WorkloadResult {
        self.stop.store(true, Ordering::Relaxed);
        let mut result = WorkloadResult::default();
        for c in self.clients {
            let log = c.join().expect("a bank client panicked");
            result.acks.extend(log.acks);
            let o = &mut result.outcomes;
            o.acked += log.outcomes.acked;
            o.conflicts += log.outcomes.conflicts;
            o.unknown += log.outcomes.unknown;
            for (k, v) in log.outcomes.errors {
                *o.errors.entry(k).or_default() += v;
            }
            if o.odd_answers.len() < 5 {
                o.odd_answers.extend(log.outcomes.odd_answers);
            }
        }
        result.acks.sort_by(|a, b| a.t.total_cmp(&b.t));
        result
    }
}

/// What one call of the procedure came back with.
enum Answer {
    Ok,
    /// An error number (from the procedure's handler or from the client).
    Error(u32),
    /// The session is unusable: connection lost, client gone, or no answer in time. The text
    /// is what was seen when there was no error number.
    Broken(u32, String),
}

fn client(
    bank: Bank,
    target: ClientTarget,
    client_no: i64,
    seed: u64,
    stop: Arc<AtomicBool>,
    epoch: Instant,
) -> ClientLog {
    let mut rng = Rng(seed | 1);
    let mut log = ClientLog {
        acks: Vec::new(),
        outcomes: Outcomes::default(),
    };
    let mut session: Option<BankSession> = None;
    let mut seq: i64 = 0;
    let mut pending: Option<(i64, u32, u32, u32)> = None;
    while !stop.load(Ordering::Relaxed) {
        let s = match session.as_mut() {
            Some(s) => s,
            None => match BankSession::open(&target.socket) {
                Ok(s) => session.insert(s),
                Err(_) => {
                    thread::sleep(BACKOFF * 2);
                    continue;
                }
            },
        };
        let (id, src, dst, amount) = *pending.get_or_insert_with(|| {
            seq += 1;
            let src = rng.below(bank.accounts) + 1;
            let dst = (src + rng.below(bank.accounts - 1)) % bank.accounts + 1;
            (
                client_no * 1_000_000_000 + seq,
                src,
                dst,
                rng.below(100) + 1,
            )
        });
        let call = format!("CALL bank.transfer({id}, {src}, {dst}, {amount}, {client_no});");
        match s.call(id, &call) {
            Answer::Ok => {
                log.outcomes.acked += 1;
                log.acks.push(Ack {
                    id,
                    t: epoch.elapsed().as_secs_f64(),
                    node: target.node,
                });
                pending = None;
            }
            Answer::Error(1213) => {
                // Certification conflict or brute-force abort: rolled back, retry the same id.
                log.outcomes.conflicts += 1;
            }
            Answer::Error(code) => {
                *log.outcomes.errors.entry(code).or_default() += 1;
                log.outcomes.unknown += 1;
                pending = None;
                thread::sleep(BACKOFF);
            }
            Answer::Broken(code, seen) => {
                *log.outcomes.errors.entry(code).or_default() += 1;
                if code == 0 && log.outcomes.odd_answers.len() < 3 {
                    log.outcomes.odd_answers.push(seen);
                }
                log.outcomes.unknown += 1;
                pending = None;
                session = None;
                thread::sleep(BACKOFF);
            }
        }
    }
    log
}

/// A `mariadb` client process fed one `CALL` at a time. Every call produces exactly one line:
/// on stdout (`OK` or `ERR <n>` from the procedure) or on stderr (`ERROR <n> ...` from the
/// client, e.g. when the node refuses the `CALL` itself with 1047). Both pipes are read by
/// threads into one channel, so a call waits on one receiver with a deadline.
struct BankSession {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Line>,
}

enum Line {
    Out(String),
    Err(String),
}

impl BankSession {
    fn open(socket: &Path) -> std::io::Result<BankSession> {
        let mut child = Command::new("/usr/bin/mariadb")
            .args([
                "--no-defaults",
                "--protocol=socket",
                &format!("--socket={}", socket.display()),
                "--user=root",
                "--batch",
                "--skip-column-names",
                "--unbuffered",
                "--force",
                "--skip-reconnect",
                // One line per error: no echo of the failed statement between dashes.
                "--skip-print-query-on-error",
                "--connect-timeout=5",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        let (tx, lines) = mpsc::channel();
        forward(
            child.stdout.take().expect("piped stdout"),
            tx.clone(),
            Line::Out,
        );
        forward(child.stderr.take().expect("piped stderr"), tx, Line::Err);
        Ok(BankSession {
            child,
            stdin,
            lines,
        })
    }

    /// Sends the `CALL` of transfer `id` and waits for its answer: `OK <id>` or
    /// `ERR <id> <errno>` from the procedure, or `ERROR <errno> ...` from the client when the
    /// `CALL` itself was refused. An `OK` is only taken for this id; anything unexpected ends
    /// the session (the answer is then unknown), so an answer can never be credited to the
    /// wrong transfer.
    fn call(&mut self, id: i64, call: &str) -> Answer {
        if let Err(e) = writeln!(self.stdin, "{call}") {
            return Answer::Broken(0, format!("client stdin: {e}"));
        }
        let ok = format!("OK {id}");
        let err = format!("ERR {id} ");
        match self.lines.recv_timeout(REQUEST_TIMEOUT) {
            Ok(Line::Out(l)) if l.trim() == ok => Answer::Ok,
            Ok(Line::Out(l)) => match l.trim().strip_prefix(&err).map(str::parse) {
                Some(Ok(code)) => Answer::Error(code),
                _ => Answer::Broken(0, format!("stdout: {l}")),
            },
            Ok(Line::Err(l)) => match trireme_testbed::sql::error_code(&l) {
                // Client-side errors (2002 cannot connect, 2006 gone away, 2013 lost
                // connection): this session is finished.
                Some(code) if code >= 2000 => Answer::Broken(code, l),
                Some(code) => Answer::Error(code),
                None => Answer::Broken(0, format!("stderr: {l}")),
            },
            Err(RecvTimeoutError::Timeout) => {
                Answer::Broken(0, format!("no answer within {REQUEST_TIMEOUT:?}"))
            }
            Err(RecvTimeoutError::Disconnected) => Answer::Broken(0, "client exited".into()),
        }
    }
}

impl Drop for BankSession {
    fn drop(&mut self) {
        // Our own child, killed through its handle (its exact PID).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward<R: Read + Send + 'static>(pipe: R, tx: mpsc::Sender<Line>, wrap: fn(String) -> Line) {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(wrap(line)).is_err() {
                break;
            }
        }
    });
}

/// xorshift64*: enough randomness for picking accounts, and replayable from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n.max(1))) as u32
    }
}

/// Checks the bank on `node` (after a causal wait): the total balance, each account against
/// the transfer log, and the presence of every acknowledged transfer. Returns one line per
/// violation (empty when all hold).
pub fn verify(bank: &Bank, node: &Node, acked: &[Ack]) -> Result<Vec<String>, TestbedError> {
    let mut bad = Vec::new();
    let name = node.name();
    let total: i64 = node
        .sql("SET SESSION wsrep_sync_wait=15; SELECT COALESCE(SUM(balance), 0) FROM bank.accounts")?
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.parse().ok())
        .unwrap_or(i64::MIN);
    if total != bank.total() {
        bad.push(format!(
            "{name}: total balance {total}, expected {}",
            bank.total()
        ));
    }
    let drift = node.sql(&format!(
        "SET SESSION wsrep_sync_wait=15; \
         SELECT a.id, a.balance - ({} \
           + COALESCE((SELECT SUM(amount) FROM bank.transfers t WHERE t.dst = a.id), 0) \
           - COALESCE((SELECT SUM(amount) FROM bank.transfers t WHERE t.src = a.id), 0)) AS d \
         FROM bank.accounts a HAVING d <> 0",
        bank.initial
    ))?;
    for row in drift {
        bad.push(format!(
            "{name}: account {} differs from its transfer log by {}",
            row.first().map_or("?", String::as_str),
            row.get(1).map_or("?", String::as_str)
        ));
    }
    let present: HashSet<i64> = node
        .sql("SET SESSION wsrep_sync_wait=15; SELECT id FROM bank.transfers")?
        .iter()
        .filter_map(|r| r.first().and_then(|v| v.parse().ok()))
        .collect();
    let missing: Vec<i64> = acked
        .iter()
        .map(|a| a.id)
        .filter(|id| !present.contains(id))
        .collect();
    if !missing.is_empty() {
        bad.push(format!(
            "{name}: {} acknowledged transfer(s) missing, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        ));
    }
    Ok(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_stays_in_range_and_replays_from_its_seed() {
        let mut a = Rng(42);
        let mut b = Rng(42);
        for _ in 0..1000 {
            let x = a.below(10);
            assert!(x < 10);
            assert_eq!(x, b.below(10));
        }
    }

    #[test]
    fn the_total_is_accounts_times_the_initial_balance() {
        let bank = Bank {
            accounts: 10,
            initial: 1000,
        };
        assert_eq!(bank.total(), 10_000);
    }
}
