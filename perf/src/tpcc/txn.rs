//! The five TPC-C transactions (clauses 2.4 to 2.8) as SQL over one connection. Inputs are
//! drawn as the specification says; there is no keying or think time (as in DBT2 runs
//! without them, every terminal submits its next transaction at once).

use mysql::prelude::Queryable;
use mysql::{Conn, Row};

use super::rand::{last_name, Rng, C_ID, C_LAST_RUN, C_OL_I_ID};
use super::schema::Scale;

/// The transaction types, in the order of the standard mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TxnType {
    NewOrder,
    Payment,
    OrderStatus,
    Delivery,
    StockLevel,
}

impl TxnType {
    pub const ALL: [TxnType; 5] = [
        TxnType::NewOrder,
        TxnType::Payment,
        TxnType::OrderStatus,
        TxnType::Delivery,
        TxnType::StockLevel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TxnType::NewOrder => "new_order",
            TxnType::Payment => "payment",
            TxnType::OrderStatus => "order_status",
            TxnType::Delivery => "delivery",
            TxnType::StockLevel => "stock_level",
        }
    }

    /// The standard mix (clause 5.2.3): 45 % New-Order, 43 % Payment, 4 % each of the others
    /// (the minimum percentages of the three light types, the rest New-Order and Payment).
    pub fn pick(r: &mut Rng) -> TxnType {
        match r.range(1, 100) {
            1..=45 => TxnType::NewOrder,
            46..=88 => TxnType::Payment,
            89..=92 => TxnType::OrderStatus,
            93..=96 => TxnType::Delivery,
            _ => TxnType::StockLevel,
        }
    }
}

/// How a transaction ended when no error occurred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    /// A New-Order with an unused item number, rolled back as the specification requires (1 %).
    RolledBack,
}

/// The inputs of one terminal: its home warehouse and the scale.
#[derive(Debug, Clone, Copy)]
pub struct Terminal {
    pub w_id: u32,
    pub scale: Scale,
}

/// One new-order line's input.
#[derive(Debug, Clone, Copy)]
struct Line {
    i_id: u64,
    supply_w_id: u64,
    quantity: u64,
}

/// A customer chosen by number (40 %) or by last name (60 %) (clauses 2.5.1.2, 2.6.1.2).
enum CustomerKey {
    Id(u64),
    Last(String),
}

impl Terminal {
    fn other_warehouse(&self, r: &mut Rng) -> u64 {
        let w = u64::from(self.w_id);
        let n = u64::from(self.scale.warehouses);
        if n == 1 {
            return w;
        }
        let mut o = r.range(1, n - 1);
        if o >= w {
            o += 1;
        }
        o
    }

    fn customer_id(&self, r: &mut Rng) -> u64 {
        r.nurand(1023, 1, u64::from(self.scale.customers), C_ID)
    }

    fn customer_key(&self, r: &mut Rng) -> CustomerKey {
        if r.range(1, 100) <= 60 {
            CustomerKey::Last(last_name(r.nurand(
                255,
                0,
                self.scale.last_name_max(),
                C_LAST_RUN,
            )))
        } else {
            CustomerKey::Id(self.customer_id(r))
        }
    }

    /// Runs one transaction of type `t` with fresh inputs. An error leaves the transaction
    /// rolled back (the caller decides whether to retry with the same type).
    pub fn run(&self, c: &mut Conn, t: TxnType, r: &mut Rng) -> mysql::Result<Outcome> {
        let res = match t {
            TxnType::NewOrder => self.new_order(c, r),
            TxnType::Payment => self.payment(c, r).map(|_| Outcome::Committed),
            TxnType::OrderStatus => self.order_status(c, r).map(|_| Outcome::Committed),
            TxnType::Delivery => self.delivery(c, r).map(|_| Outcome::Committed),
            TxnType::StockLevel => self.stock_level(c, r).map(|_| Outcome::Committed),
        };
        if res.is_err() {
            // The server has usually rolled back already (deadlock, certification failure);
            // a broken connection fails here too, which the caller notices on the next call.
            let _ = c.query_drop("ROLLBACK");
        }
        res
    }

    /// Clause 2.4.
    fn new_order(&self, c: &mut Conn, r: &mut Rng) -> mysql::Result<Outcome> {
        let s = self.scale;
        let w = u64::from(self.w_id);
        let d = r.range(1, u64::from(s.districts));
        let cid = self.customer_id(r);
        let ol_cnt = r.range(5, 15);
        let rollback = r.range(1, 100) == 1;
        let mut lines: Vec<Line> = (0..ol_cnt)
            .map(|k| Line {
                i_id: if rollback && k == ol_cnt - 1 {
                    u64::from(s.items) + 1 // unused: the transaction must roll back
                } else {
                    r.nurand(8191, 1, u64::from(s.items), C_OL_I_ID)
                },
                supply_w_id: if r.range(1, 100) == 1 {
                    self.other_warehouse(r)
                } else {
                    w
                },
                quantity: r.range(1, 10),
            })
            .collect();
        let all_local = u8::from(lines.iter().all(|l| l.supply_w_id == w));
        // Stock rows are locked in key order, so two New-Orders cannot deadlock on them.
        lines.sort_by_key(|l| (l.supply_w_id, l.i_id));

        c.query_drop("BEGIN")?;
        let _w_tax: Option<String> =
            c.exec_first("SELECT w_tax FROM warehouse WHERE w_id = ?", (w,))?;
        let (_d_tax, o_id): (String, u64) = c
            .exec_first(
                "SELECT d_tax, d_next_o_id FROM district WHERE d_w_id = ? AND d_id = ? FOR UPDATE",
                (w, d),
            )?
            .ok_or_else(|| missing("district", w, d))?;
        c.exec_drop(
            "UPDATE district SET d_next_o_id = d_next_o_id + 1 WHERE d_w_id = ? AND d_id = ?",
            (w, d),
        )?;
        let _cust: Option<Row> = c.exec_first(
            "SELECT c_discount, c_last, c_credit FROM customer \
             WHERE c_w_id = ? AND c_d_id = ? AND c_id = ?",
            (w, d, cid),
        )?;
        c.exec_drop(
            "INSERT INTO orders (o_id, o_d_id, o_w_id, o_c_id, o_entry_d, o_carrier_id, \
             o_ol_cnt, o_all_local) VALUES (?, ?, ?, ?, NOW(), NULL, ?, ?)",
            (o_id, d, w, cid, ol_cnt, all_local),
        )?;
        c.exec_drop(
            "INSERT INTO new_order (no_o_id, no_d_id, no_w_id) VALUES (?, ?, ?)",
            (o_id, d, w),
        )?;
        for (n, l) in lines.iter().enumerate() {
            let item: Option<(String, String, String)> = c.exec_first(
                "SELECT i_price, i_name, i_data FROM item WHERE i_id = ?",
                (l.i_id,),
            )?;
            let Some((price, _name, _data)) = item else {
                c.query_drop("ROLLBACK")?;
                return Ok(Outcome::RolledBack);
            };
            let dist_col = format!("s_dist_{d:02}");
            let (qty, dist, _sdata): (i64, String, String) = c
                .exec_first(
                    format!(
                        "SELECT s_quantity, {dist_col}, s_data FROM stock \
                         WHERE s_i_id = ? AND s_w_id = ? FOR UPDATE"
                    ),
                    (l.i_id, l.supply_w_id),
                )?
                .ok_or_else(|| missing("stock", l.supply_w_id, l.i_id))?;
            let q = l.quantity as i64;
            let new_qty = if qty - q >= 10 { qty - q } else { qty - q + 91 };
            c.exec_drop(
                "UPDATE stock SET s_quantity = ?, s_ytd = s_ytd + ?, \
                 s_order_cnt = s_order_cnt + 1, s_remote_cnt = s_remote_cnt + ? \
                 WHERE s_i_id = ? AND s_w_id = ?",
                (
                    new_qty,
                    q,
                    u8::from(l.supply_w_id != w),
                    l.i_id,
                    l.supply_w_id,
                ),
            )?;
            let amount = price.parse::<f64>().unwrap_or(0.0) * l.quantity as f64;
            c.exec_drop(
                "INSERT INTO order_line (ol_o_id, ol_d_id, ol_w_id, ol_number, ol_i_id, \
                 ol_supply_w_id, ol_delivery_d, ol_quantity, ol_amount, ol_dist_info) \
                 VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
                (
                    o_id,
                    d,
                    w,
                    n + 1,
                    l.i_id,
                    l.supply_w_id,
                    l.quantity,
                    format!("{amount:.2}"),
                    dist,
                ),
            )?;
        }
        commit(c)?;
        Ok(Outcome::Committed)
    }

    /// The customer id for `key` in (w, d): by last name, the one in the middle of those
    /// sharing it, ordered by first name (clause 2.5.2.2).
    fn find_customer(
        c: &mut Conn,
        w: u64,
        d: u64,
        key: &CustomerKey,
    ) -> mysql::Result<Option<u64>> {
        match key {
            CustomerKey::Id(id) => Ok(Some(*id)),
            CustomerKey::Last(name) => {
                let ids: Vec<u64> = c.exec(
                    "SELECT c_id FROM customer WHERE c_w_id = ? AND c_d_id = ? AND c_last = ? \
                     ORDER BY c_first",
                    (w, d, name),
                )?;
                Ok(ids.get(ids.len().div_ceil(2).saturating_sub(1)).copied())
            }
        }
    }

    /// Clause 2.5.
    fn payment(&self, c: &mut Conn, r: &mut Rng) -> mysql::Result<()> {
        let s = self.scale;
        let w = u64::from(self.w_id);
        let d = r.range(1, u64::from(s.districts));
        let (cw, cd) = if r.range(1, 100) <= 85 || s.warehouses == 1 {
            (w, d)
        } else {
            (self.other_warehouse(r), r.range(1, u64::from(s.districts)))
        };
        let key = self.customer_key(r);
        let amount = format!("{:.2}", r.range(100, 500_000) as f64 / 100.0);

        c.query_drop("BEGIN")?;
        c.exec_drop(
            "UPDATE warehouse SET w_ytd = w_ytd + ? WHERE w_id = ?",
            (&amount, w),
        )?;
        let w_name: String = c
            .exec_first::<Row, _, _>(
                "SELECT w_name, w_street_1, w_street_2, w_city, w_state, w_zip \
                 FROM warehouse WHERE w_id = ?",
                (w,),
            )?
            .and_then(|row| row.get::<String, _>(0))
            .ok_or_else(|| missing("warehouse", w, 0))?;
        c.exec_drop(
            "UPDATE district SET d_ytd = d_ytd + ? WHERE d_w_id = ? AND d_id = ?",
            (&amount, w, d),
        )?;
        let d_name: String = c
            .exec_first::<Row, _, _>(
                "SELECT d_name, d_street_1, d_street_2, d_city, d_state, d_zip \
                 FROM district WHERE d_w_id = ? AND d_id = ?",
                (w, d),
            )?
            .and_then(|row| row.get::<String, _>(0))
            .ok_or_else(|| missing("district", w, d))?;
        let Some(cid) = Self::find_customer(c, cw, cd, &key)? else {
            // Cannot happen on a correctly loaded database: every name in range is used.
            c.query_drop("ROLLBACK")?;
            return Err(missing("customer by name", cw, cd));
        };
        let credit: String = c
            .exec_first::<Row, _, _>(
                "SELECT c_credit, c_first, c_middle, c_last, c_street_1, c_street_2, c_city, \
                 c_state, c_zip, c_phone, c_since, c_credit_lim, c_discount, c_balance \
                 FROM customer WHERE c_w_id = ? AND c_d_id = ? AND c_id = ? FOR UPDATE",
                (cw, cd, cid),
            )?
            .and_then(|row| row.get::<String, _>(0))
            .ok_or_else(|| missing("customer", cw, cid))?;
        if credit == "BC" {
            let data: String = c
                .exec_first(
                    "SELECT c_data FROM customer WHERE c_w_id = ? AND c_d_id = ? AND c_id = ? \
                     FOR UPDATE",
                    (cw, cd, cid),
                )?
                .unwrap_or_default();
            let mut new_data = format!("{cid} {cd} {cw} {d} {w} {amount} | {data}");
            new_data.truncate(500);
            c.exec_drop(
                "UPDATE customer SET c_balance = c_balance - ?, c_ytd_payment = c_ytd_payment + ?, \
                 c_payment_cnt = c_payment_cnt + 1, c_data = ? \
                 WHERE c_w_id = ? AND c_d_id = ? AND c_id = ?",
                (&amount, &amount, new_data, cw, cd, cid),
            )?;
        } else {
            c.exec_drop(
                "UPDATE customer SET c_balance = c_balance - ?, c_ytd_payment = c_ytd_payment + ?, \
                 c_payment_cnt = c_payment_cnt + 1 WHERE c_w_id = ? AND c_d_id = ? AND c_id = ?",
                (&amount, &amount, cw, cd, cid),
            )?;
        }
        let mut h_data = format!("{w_name}    {d_name}");
        h_data.truncate(24);
        c.exec_drop(
            "INSERT INTO history (h_c_id, h_c_d_id, h_c_w_id, h_d_id, h_w_id, h_date, h_amount, \
             h_data) VALUES (?, ?, ?, ?, ?, NOW(), ?, ?)",
            (cid, cd, cw, d, w, &amount, h_data),
        )?;
        commit(c)
    }

    /// Clause 2.6 (read only).
    fn order_status(&self, c: &mut Conn, r: &mut Rng) -> mysql::Result<()> {
        let w = u64::from(self.w_id);
        let d = r.range(1, u64::from(self.scale.districts));
        let key = self.customer_key(r);
        c.query_drop("BEGIN")?;
        if let Some(cid) = Self::find_customer(c, w, d, &key)? {
            let _cust: Option<Row> = c.exec_first(
                "SELECT c_balance, c_first, c_middle, c_last FROM customer \
                 WHERE c_w_id = ? AND c_d_id = ? AND c_id = ?",
                (w, d, cid),
            )?;
            let last: Option<Row> = c.exec_first(
                "SELECT o_id, o_entry_d, o_carrier_id FROM orders \
                 WHERE o_w_id = ? AND o_d_id = ? AND o_c_id = ? ORDER BY o_id DESC LIMIT 1",
                (w, d, cid),
            )?;
            if let Some(o_id) = last.and_then(|row| row.get::<u64, _>(0)) {
                let _lines: Vec<Row> = c.exec(
                    "SELECT ol_i_id, ol_supply_w_id, ol_quantity, ol_amount, ol_delivery_d \
                     FROM order_line WHERE ol_w_id = ? AND ol_d_id = ? AND ol_o_id = ?",
                    (w, d, o_id),
                )?;
            }
        }
        commit(c)
    }

    /// Clause 2.7, executed at once for the ten districts in one transaction (as DBT2 does).
    fn delivery(&self, c: &mut Conn, r: &mut Rng) -> mysql::Result<()> {
        let w = u64::from(self.w_id);
        let carrier = r.range(1, 10);
        c.query_drop("BEGIN")?;
        for d in 1..=u64::from(self.scale.districts) {
            let no: Option<u64> = c.exec_first(
                "SELECT no_o_id FROM new_order WHERE no_w_id = ? AND no_d_id = ? \
                 ORDER BY no_o_id LIMIT 1 FOR UPDATE",
                (w, d),
            )?;
            let Some(o_id) = no else { continue };
            c.exec_drop(
                "DELETE FROM new_order WHERE no_w_id = ? AND no_d_id = ? AND no_o_id = ?",
                (w, d, o_id),
            )?;
            let cid: u64 = c
                .exec_first(
                    // A locking read: under REPEATABLE READ a plain one would read the snapshot
                    // taken at an earlier district, which may predate this New-Order.
                    "SELECT o_c_id FROM orders WHERE o_w_id = ? AND o_d_id = ? AND o_id = ? \
                     FOR UPDATE",
                    (w, d, o_id),
                )?
                .ok_or_else(|| missing("order", w, o_id))?;
            c.exec_drop(
                "UPDATE orders SET o_carrier_id = ? WHERE o_w_id = ? AND o_d_id = ? AND o_id = ?",
                (carrier, w, d, o_id),
            )?;
            c.exec_drop(
                "UPDATE order_line SET ol_delivery_d = NOW() \
                 WHERE ol_w_id = ? AND ol_d_id = ? AND ol_o_id = ?",
                (w, d, o_id),
            )?;
            let total: Option<String> = c
                .exec_first::<Option<String>, _, _>(
                    "SELECT SUM(ol_amount) FROM order_line \
                     WHERE ol_w_id = ? AND ol_d_id = ? AND ol_o_id = ? FOR UPDATE",
                    (w, d, o_id),
                )?
                .flatten();
            c.exec_drop(
                "UPDATE customer SET c_balance = c_balance + ?, c_delivery_cnt = c_delivery_cnt + 1 \
                 WHERE c_w_id = ? AND c_d_id = ? AND c_id = ?",
                (total.unwrap_or_else(|| "0".into()), w, d, cid),
            )?;
        }
        commit(c)
    }

    /// Clause 2.8 (read only).
    fn stock_level(&self, c: &mut Conn, r: &mut Rng) -> mysql::Result<()> {
        let w = u64::from(self.w_id);
        let d = r.range(1, u64::from(self.scale.districts));
        let threshold = r.range(10, 20);
        c.query_drop("BEGIN")?;
        let next: u64 = c
            .exec_first(
                "SELECT d_next_o_id FROM district WHERE d_w_id = ? AND d_id = ?",
                (w, d),
            )?
            .ok_or_else(|| missing("district", w, d))?;
        let _low: Option<u64> = c.exec_first(
            "SELECT COUNT(DISTINCT s_i_id) FROM order_line JOIN stock \
             ON s_i_id = ol_i_id AND s_w_id = ol_w_id \
             WHERE ol_w_id = ? AND ol_d_id = ? AND ol_o_id < ? AND ol_o_id >= ? \
             AND s_quantity < ?",
            (w, d, next, next.saturating_sub(20), threshold),
        )?;
        commit(c)
    }
}

/// Server error code reported for a transaction the server ended without telling the client
/// (see [`commit`]); not a MariaDB code.
pub const SILENTLY_ENDED: u16 = 9999;

/// Commits, after checking that the transaction begun with BEGIN is still open. A transaction
/// that was brute-force aborted must fail its next statement with 1213; if the server ended
/// it without an error, the statements that followed ran in autocommit mode, each committed
/// alone, and COMMIT would report success for a transaction that partly happened. That is
/// counted as its own error instead of a success (the partial effects cannot be undone).
fn commit(c: &mut Conn) -> mysql::Result<()> {
    let open: Option<u8> = c.query_first("SELECT @@in_transaction")?;
    if open != Some(1) {
        return Err(mysql::Error::MySqlError(mysql::MySqlError {
            state: "HY000".into(),
            code: SILENTLY_ENDED,
            message: "TPC-C: the transaction had ended before COMMIT without an error to the \
                      client (statements after that ran in autocommit mode)"
                .into(),
        }));
    }
    c.query_drop("COMMIT")
}

/// A row the loaded database must have is missing: reported as a driver-side error so that
/// it counts as a failure of the transaction (never silently as success).
fn missing(what: &str, a: u64, b: u64) -> mysql::Error {
    mysql::Error::MySqlError(mysql::MySqlError {
        state: "HY000".into(),
        code: 0,
        message: format!("TPC-C: no {what} row for ({a}, {b})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_follows_the_standard_percentages() {
        let mut r = Rng::new(1);
        let mut n = [0u32; 5];
        for _ in 0..100_000 {
            n[TxnType::pick(&mut r) as usize] += 1;
        }
        let pct = |i: usize| f64::from(n[i]) / 1000.0;
        assert!((pct(0) - 45.0).abs() < 1.0, "{n:?}");
        assert!((pct(1) - 43.0).abs() < 1.0, "{n:?}");
        for i in 2..5 {
            assert!((pct(i) - 4.0).abs() < 0.5, "{n:?}");
        }
    }

    #[test]
    fn another_warehouse_is_never_the_home_one() {
        let t = Terminal {
            w_id: 2,
            scale: Scale::small(3),
        };
        let mut r = Rng::new(3);
        for _ in 0..1000 {
            let o = t.other_warehouse(&mut r);
            assert!(o != 2 && (1..=3).contains(&o));
        }
        let single = Terminal {
            w_id: 1,
            scale: Scale::small(1),
        };
        assert_eq!(single.other_warehouse(&mut r), 1);
    }
}
