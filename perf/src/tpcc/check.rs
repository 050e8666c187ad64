//! The consistency conditions of clause 3.3.2 that can be checked on a database at rest,
//! as SQL. Each query returns the rows (or the count) that violate its condition; a correct
//! database returns nothing for every one of them, before and after any number of
//! transactions. Run after a benchmark on every node, they check the transactions' logic and
//! the replication underneath them.

use mysql::prelude::Queryable;
use mysql::Conn;

/// (number in clause 3.3.2, what it says, a query returning one row per violation).
pub const CONDITIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "W_YTD = sum(D_YTD)",
        "SELECT w_id FROM warehouse w \
         WHERE w_ytd <> (SELECT SUM(d_ytd) FROM district WHERE d_w_id = w.w_id)",
    ),
    (
        2,
        "D_NEXT_O_ID - 1 = max(O_ID) = max(NO_O_ID)",
        "SELECT d_w_id, d_id FROM district d \
         WHERE d_next_o_id - 1 <> (SELECT MAX(o_id) FROM orders \
                                   WHERE o_w_id = d.d_w_id AND o_d_id = d.d_id) \
            OR d_next_o_id - 1 <> (SELECT MAX(no_o_id) FROM new_order \
                                   WHERE no_w_id = d.d_w_id AND no_d_id = d.d_id)",
    ),
    (
        3,
        "max(NO_O_ID) - min(NO_O_ID) + 1 = rows in NEW-ORDER, per district",
        "SELECT no_w_id, no_d_id FROM new_order GROUP BY no_w_id, no_d_id \
         HAVING MAX(no_o_id) - MIN(no_o_id) + 1 <> COUNT(*)",
    ),
    (
        4,
        "sum(O_OL_CNT) = rows in ORDER-LINE, per district",
        "SELECT a.o_w_id, a.o_d_id FROM \
           (SELECT o_w_id, o_d_id, SUM(o_ol_cnt) s FROM orders GROUP BY o_w_id, o_d_id) a \
           LEFT JOIN (SELECT ol_w_id, ol_d_id, COUNT(*) c FROM order_line \
                      GROUP BY ol_w_id, ol_d_id) b \
           ON a.o_w_id = b.ol_w_id AND a.o_d_id = b.ol_d_id \
         WHERE b.c IS NULL OR a.s <> b.c",
    ),
    (
        5,
        "O_CARRIER_ID is null exactly for the orders in NEW-ORDER",
        "SELECT o_w_id, o_d_id, o_id FROM orders \
           LEFT JOIN new_order ON no_w_id = o_w_id AND no_d_id = o_d_id AND no_o_id = o_id \
         WHERE (o_carrier_id IS NULL) <> (no_o_id IS NOT NULL)",
    ),
    (
        6,
        "O_OL_CNT = rows in ORDER-LINE, per order",
        "SELECT o_w_id, o_d_id, o_id FROM orders o \
           LEFT JOIN (SELECT ol_w_id, ol_d_id, ol_o_id, COUNT(*) c FROM order_line \
                      GROUP BY ol_w_id, ol_d_id, ol_o_id) l \
           ON l.ol_w_id = o.o_w_id AND l.ol_d_id = o.o_d_id AND l.ol_o_id = o.o_id \
         WHERE l.c IS NULL OR l.c <> o.o_ol_cnt",
    ),
    (
        7,
        "OL_DELIVERY_D is null exactly when O_CARRIER_ID is",
        "SELECT ol_w_id, ol_d_id, ol_o_id, ol_number FROM order_line \
           JOIN orders ON o_w_id = ol_w_id AND o_d_id = ol_d_id AND o_id = ol_o_id \
         WHERE (ol_delivery_d IS NULL) <> (o_carrier_id IS NULL)",
    ),
    (
        8,
        "W_YTD = sum(H_AMOUNT)",
        "SELECT w_id FROM warehouse w \
         WHERE w_ytd <> (SELECT SUM(h_amount) FROM history WHERE h_w_id = w.w_id)",
    ),
    (
        9,
        "D_YTD = sum(H_AMOUNT)",
        "SELECT d_w_id, d_id FROM district d \
         WHERE d_ytd <> (SELECT SUM(h_amount) FROM history \
                         WHERE h_w_id = d.d_w_id AND h_d_id = d.d_id)",
    ),
    (
        10,
        "C_BALANCE = sum(delivered OL_AMOUNT) - sum(H_AMOUNT)",
        "SELECT c.c_w_id, c.c_d_id, c.c_id FROM customer c \
           LEFT JOIN (SELECT o_w_id, o_d_id, o_c_id, SUM(ol_amount) s FROM orders \
                        JOIN order_line ON ol_w_id = o_w_id AND ol_d_id = o_d_id AND ol_o_id = o_id \
                      WHERE ol_delivery_d IS NOT NULL GROUP BY o_w_id, o_d_id, o_c_id) ol \
             ON ol.o_w_id = c.c_w_id AND ol.o_d_id = c.c_d_id AND ol.o_c_id = c.c_id \
           LEFT JOIN (SELECT h_c_w_id, h_c_d_id, h_c_id, SUM(h_amount) s FROM history \
                      GROUP BY h_c_w_id, h_c_d_id, h_c_id) h \
             ON h.h_c_w_id = c.c_w_id AND h.h_c_d_id = c.c_d_id AND h.h_c_id = c.c_id \
         WHERE c.c_balance <> COALESCE(ol.s, 0) - COALESCE(h.s, 0)",
    ),
    (
        12,
        "C_BALANCE + C_YTD_PAYMENT = sum(delivered OL_AMOUNT)",
        "SELECT c.c_w_id, c.c_d_id, c.c_id FROM customer c \
           LEFT JOIN (SELECT o_w_id, o_d_id, o_c_id, SUM(ol_amount) s FROM orders \
                        JOIN order_line ON ol_w_id = o_w_id AND ol_d_id = o_d_id AND ol_o_id = o_id \
                      WHERE ol_delivery_d IS NOT NULL GROUP BY o_w_id, o_d_id, o_c_id) ol \
             ON ol.o_w_id = c.c_w_id AND ol.o_d_id = c.c_d_id AND ol.o_c_id = c.c_id \
         WHERE c.c_balance + c.c_ytd_payment <> COALESCE(ol.s, 0)",
    ),
];

/// The conditions that read only the small tables or one index range per district: seconds
/// at full scale, cheap enough after every run. The others scan ORDER-LINE (tens of seconds
/// per node on a busy 2-vCPU box at full scale).
pub const QUICK: &[u32] = &[1, 2, 3, 5, 8, 9];

/// Checks every condition on `c` (which must be in the TPC-C database). Returns one line per
/// violated condition: its number, what it says and how many rows break it (with the first
/// few keys).
pub fn violations(c: &mut Conn) -> mysql::Result<Vec<String>> {
    violations_of(c, &CONDITIONS.iter().map(|x| x.0).collect::<Vec<_>>())
}

/// [`violations`] for the conditions numbered in `which` only.
pub fn violations_of(c: &mut Conn, which: &[u32]) -> mysql::Result<Vec<String>> {
    let mut out = Vec::new();
    for (n, what, q) in CONDITIONS.iter().filter(|x| which.contains(&x.0)) {
        let rows: Vec<mysql::Row> = c.query(*q)?;
        if !rows.is_empty() {
            let keys: Vec<String> = rows
                .iter()
                .take(3)
                .map(|r| {
                    let cols: Vec<String> = (0..r.len())
                        .map(|i| {
                            r.get::<Option<String>, _>(i)
                                .flatten()
                                .unwrap_or_else(|| "NULL".into())
                        })
                        .collect();
                    format!("({})", cols.join(","))
                })
                .collect();
            out.push(format!(
                "condition {n} ({what}): {} violation(s), e.g. {}",
                rows.len(),
                keys.join(" ")
            ));
        }
    }
    Ok(out)
}
