//! The initial database (clause 4.3.3), loaded with multi-row INSERTs of a few hundred rows,
//! several tables at once on a few connections. Every row is written through node 0 and
//! replicates like any other write; the load ends when every node has applied it.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use mysql::Conn;

use super::rand::{last_name, Rng, C_LAST_LOAD};
use super::schema::{Scale, TABLES};
use crate::db::{self, Endpoint};
use crate::error::PerfError;

/// Rows per INSERT statement.
const BATCH: usize = 400;

/// Accumulates rows of one table into multi-row INSERTs.
struct Inserter<'c> {
    conn: &'c mut Conn,
    head: String,
    sql: String,
    rows: usize,
}

impl<'c> Inserter<'c> {
    fn new(conn: &'c mut Conn, table: &str) -> Self {
        Inserter {
            conn,
            head: format!("INSERT INTO {table} VALUES "),
            sql: String::new(),
            rows: 0,
        }
    }

    /// Adds one row (`values` is the text between the parentheses; the loader only writes
    /// numbers, NULL, NOW() and alphanumeric strings, so nothing needs escaping).
    fn row(&mut self, values: &str) -> mysql::Result<()> {
        if self.rows == 0 {
            self.sql.clear();
            self.sql.push_str(&self.head);
        } else {
            self.sql.push(',');
        }
        let _ = write!(self.sql, "({values})");
        self.rows += 1;
        if self.rows >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> mysql::Result<()> {
        if self.rows > 0 {
            self.conn.query_drop(&self.sql)?;
            self.rows = 0;
        }
        Ok(())
    }
}

/// Creates database `db` (dropping an old one) and loads it at `scale` through `ep`, on up to
/// `connections` connections. Returns the load time.
pub fn load(
    ep: &Endpoint,
    db: &str,
    scale: Scale,
    connections: usize,
    seed: u64,
) -> Result<Duration, PerfError> {
    let t0 = Instant::now();
    let mut c = ep.connect(None)?;
    c.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))?;
    c.query_drop(format!("CREATE DATABASE `{db}`"))?;
    c.select_db(db)?;
    for t in TABLES {
        c.query_drop(*t)?;
    }
    drop(c);
    let mut tasks: Vec<Task> = vec![Task::Items];
    for w in 1..=scale.warehouses {
        tasks.push(Task::Warehouse(w));
        tasks.push(Task::Stock(w));
        tasks.push(Task::Customers(w));
        tasks.push(Task::Orders(w));
    }
    let queue = Mutex::new(tasks.into_iter().enumerate().collect::<Vec<_>>());
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..connections.max(1) {
            s.spawn(|| {
                let mut conn = match ep.connect(Some(db)) {
                    Ok(c) => c,
                    Err(e) => {
                        errors
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(e.to_string());
                        return;
                    }
                };
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                    let Some((i, task)) = next else { break };
                    let mut rng = Rng::new(seed ^ (i as u64).wrapping_mul(0x9E37_79B9));
                    if let Err(e) = task.run(&mut conn, scale, &mut rng) {
                        errors
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(format!("{task:?}: {e}"));
                        return;
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    if !errors.is_empty() {
        return Err(PerfError::Run(format!(
            "TPC-C load failed: {}",
            errors.join("; ")
        )));
    }
    Ok(t0.elapsed())
}

/// Waits until every node has the loaded data.
pub fn wait_applied(endpoints: &[Endpoint]) -> Result<(), PerfError> {
    db::wait_converged(endpoints, Duration::from_secs(900)).map_err(PerfError::Run)
}

#[derive(Debug, Clone, Copy)]
enum Task {
    Items,
    Warehouse(u32),
    Stock(u32),
    Customers(u32),
    Orders(u32),
}

impl Task {
    fn run(self, c: &mut Conn, s: Scale, r: &mut Rng) -> mysql::Result<()> {
        match self {
            Task::Items => {
                let mut ins = Inserter::new(c, "item");
                for i in 1..=s.items {
                    let v = format!(
                        "{i},{},'{}',{:.2},'{}'",
                        r.range(1, 10_000),
                        r.astring(14, 24),
                        r.range(100, 10_000) as f64 / 100.0,
                        r.data_with_original()
                    );
                    ins.row(&v)?;
                }
                ins.flush()
            }
            Task::Warehouse(w) => {
                let d_ytd = f64::from(s.customers) * 10.0;
                let w_ytd = d_ytd * f64::from(s.districts);
                let addr = |r: &mut Rng| {
                    format!(
                        "'{}','{}','{}','{}','{}'",
                        r.astring(10, 20),
                        r.astring(10, 20),
                        r.astring(10, 20),
                        r.astring(2, 2),
                        r.zip()
                    )
                };
                let v = format!(
                    "{w},'{}',{},{:.4},{w_ytd:.2}",
                    r.astring(6, 10),
                    addr(r),
                    r.range(0, 2000) as f64 / 10_000.0
                );
                c.query_drop(format!("INSERT INTO warehouse VALUES ({v})"))?;
                let mut ins = Inserter::new(c, "district");
                for d in 1..=s.districts {
                    let v = format!(
                        "{d},{w},'{}',{},{:.4},{d_ytd:.2},{}",
                        r.astring(6, 10),
                        addr(r),
                        r.range(0, 2000) as f64 / 10_000.0,
                        s.orders + 1
                    );
                    ins.row(&v)?;
                }
                ins.flush()
            }
            Task::Stock(w) => {
                let mut ins = Inserter::new(c, "stock");
                for i in 1..=s.items {
                    let mut v = format!("{i},{w},{}", r.range(10, 100));
                    for _ in 0..10 {
                        let _ = write!(v, ",'{}'", r.astring(24, 24));
                    }
                    let _ = write!(v, ",0,0,0,'{}'", r.data_with_original());
                    ins.row(&v)?;
                }
                ins.flush()
            }
            Task::Customers(w) => {
                let mut ins = Inserter::new(c, "customer");
                let mut hist = Vec::new();
                for d in 1..=s.districts {
                    for cid in 1..=s.customers {
                        let name = if cid <= 1000 {
                            last_name(u64::from(cid) - 1)
                        } else {
                            last_name(r.nurand(255, 0, 999, C_LAST_LOAD))
                        };
                        let credit = if r.range(1, 10) == 1 { "BC" } else { "GC" };
                        let v = format!(
                            "{cid},{d},{w},'{}','OE','{name}','{}','{}','{}','{}','{}','{}',NOW(),\
                             '{credit}',50000.00,{:.4},-10.00,10.00,1,0,'{}'",
                            r.astring(8, 16),
                            r.astring(10, 20),
                            r.astring(10, 20),
                            r.astring(10, 20),
                            r.astring(2, 2),
                            r.zip(),
                            r.nstring(16),
                            r.range(0, 5000) as f64 / 10_000.0,
                            r.astring(300, 500)
                        );
                        ins.row(&v)?;
                        hist.push(format!(
                            "NULL,{cid},{d},{w},{d},{w},NOW(),10.00,'{}'",
                            r.astring(12, 24)
                        ));
                    }
                }
                ins.flush()?;
                let mut ins = Inserter::new(c, "history");
                for v in hist {
                    ins.row(&v)?;
                }
                ins.flush()
            }
            Task::Orders(w) => {
                let first_new = s.first_new_order();
                let mut orders = Vec::new();
                let mut lines = Vec::new();
                let mut news = Vec::new();
                for d in 1..=s.districts {
                    // O_C_ID is a random permutation of the customers (clause 4.3.3.1).
                    let mut perm: Vec<u32> = (1..=s.customers).collect();
                    for i in (1..perm.len()).rev() {
                        perm.swap(i, r.range(0, i as u64) as usize);
                    }
                    for o in 1..=s.orders {
                        let delivered = o < first_new;
                        let ol_cnt = r.range(5, 15);
                        let carrier = if delivered {
                            r.range(1, 10).to_string()
                        } else {
                            "NULL".into()
                        };
                        let cust = perm[((o - 1) % s.customers) as usize];
                        orders.push(format!("{o},{d},{w},{cust},NOW(),{carrier},{ol_cnt},1"));
                        for n in 1..=ol_cnt {
                            let (when, amount) = if delivered {
                                ("NOW()", "0.00".to_string())
                            } else {
                                ("NULL", format!("{:.2}", r.range(1, 999_999) as f64 / 100.0))
                            };
                            lines.push(format!(
                                "{o},{d},{w},{n},{},{w},{when},5,{amount},'{}'",
                                r.range(1, u64::from(s.items)),
                                r.astring(24, 24)
                            ));
                        }
                        if !delivered {
                            news.push(format!("{o},{d},{w}"));
                        }
                    }
                }
                for (table, rows) in [
                    ("orders", orders),
                    ("order_line", lines),
                    ("new_order", news),
                ] {
                    let mut ins = Inserter::new(c, table);
                    for v in rows {
                        ins.row(&v)?;
                    }
                    ins.flush()?;
                }
                Ok(())
            }
        }
    }
}
