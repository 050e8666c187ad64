//! Data consistency: a per-table fingerprint that must be identical on every node of a
//! quiesced cluster.
//!
//! Each user table (every base table outside the system schemas) gets three numbers: its row
//! count, a row digest, and MariaDB's `CHECKSUM TABLE`. The digest hashes every row with
//! `CRC32(CONCAT_WS('#', ISNULL(c1), CAST(c1 AS BINARY), ...))` over all columns and folds the
//! hashes with both `BIT_XOR` and `SUM`, which is independent of scan order (nodes may store
//! rows in different physical order) while `SUM` catches the pairs of equal rows that `XOR`
//! alone would cancel. `ISNULL` keeps `(NULL, 'a')` apart from `('a', NULL)`, and the binary
//! cast avoids collation clashes between columns.
//!
//! The queries run after `SET SESSION wsrep_sync_wait=15`, so the node first catches up with
//! everything committed anywhere in the cluster before it is read. The fingerprint is only
//! meaningful when no writes are in flight: run it after the workload has stopped.

use std::collections::BTreeMap;

use crate::error::{Result, TestbedError};
use crate::node::Node;
use crate::sql::{quote_ident, quote_str};

/// Schemas that are the server's own business, not replicated user data.
const SYSTEM_SCHEMAS: [&str; 4] = ["mysql", "information_schema", "performance_schema", "sys"];

/// The fingerprint of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableChecksum {
    /// `COUNT(*)`.
    pub rows: u64,
    /// `<BIT_XOR of row CRCs>-<SUM of row CRCs>`.
    pub digest: String,
    /// `CHECKSUM TABLE` (`NULL` if the engine cannot compute one).
    pub checksum: String,
}

/// Fingerprints every user table of `node`, keyed by `schema.table`.
pub fn checksum_all(node: &Node) -> Result<BTreeMap<String, TableChecksum>> {
    let excluded: Vec<String> = SYSTEM_SCHEMAS.iter().map(|s| quote_str(s)).collect();
    let rows = node.sql(&format!(
        "SET SESSION wsrep_sync_wait=15; \
         SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME \
         FROM information_schema.COLUMNS c JOIN information_schema.TABLES t \
           ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
         WHERE t.TABLE_TYPE = 'BASE TABLE' AND c.TABLE_SCHEMA NOT IN ({}) \
         ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION",
        excluded.join(",")
    ))?;
    let mut tables: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in rows {
        if let [schema, table, column] = r.as_slice() {
            tables
                .entry((schema.clone(), table.clone()))
                .or_default()
                .push(column.clone());
        }
    }
    tables
        .into_iter()
        .map(|((schema, table), columns)| {
            let sum = checksum_table(node, &schema, &table, &columns)?;
            Ok((format!("{schema}.{table}"), sum))
        })
        .collect()
}

/// Fingerprints one table given its columns (in ordinal order).
pub fn checksum_table(
    node: &Node,
    schema: &str,
    table: &str,
    columns: &[String],
) -> Result<TableChecksum> {
    let full = format!("{}.{}", quote_ident(schema), quote_ident(table));
    let parts: Vec<String> = columns
        .iter()
        .map(|c| {
            let q = quote_ident(c);
            format!("ISNULL({q}), CAST({q} AS BINARY)")
        })
        .collect();
    // The digest query comes first: it is what triggers the causal wait.
    let query = format!(
        "SET SESSION wsrep_sync_wait=15; \
         SELECT COUNT(*), COALESCE(BIT_XOR(h), 0), COALESCE(SUM(h), 0) \
         FROM (SELECT CRC32(CONCAT_WS('#', {})) AS h FROM {full}) AS digest_rows; \
         CHECKSUM TABLE {full}",
        parts.join(", ")
    );
    let rows = node.sql(&query)?;
    let bad = |detail: String| TestbedError::Parse {
        node: node.name().into(),
        what: format!("checksum of {full}"),
        detail,
    };
    match rows.as_slice() {
        [digest, check] if digest.len() == 3 && check.len() == 2 => Ok(TableChecksum {
            rows: digest[0]
                .parse()
                .map_err(|_| bad(format!("row count {:?}", digest[0])))?,
            digest: format!("{}-{}", digest[1], digest[2]),
            checksum: check[1].clone(),
        }),
        other => Err(bad(format!("unexpected rows {other:?}"))),
    }
}

/// The differences between two nodes' fingerprints, one line each; empty when they agree.
pub fn differences(
    a_name: &str,
    a: &BTreeMap<String, TableChecksum>,
    b_name: &str,
    b: &BTreeMap<String, TableChecksum>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (t, ca) in a {
        match b.get(t) {
            None => out.push(format!("{t}: on {a_name}, missing on {b_name}")),
            Some(cb) if cb != ca => out.push(format!("{t}: {a_name} {ca:?} != {b_name} {cb:?}")),
            Some(_) => {}
        }
    }
    for t in b.keys().filter(|t| !a.contains_key(*t)) {
        out.push(format!("{t}: on {b_name}, missing on {a_name}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(rows: u64, digest: &str) -> TableChecksum {
        TableChecksum {
            rows,
            digest: digest.into(),
            checksum: "1".into(),
        }
    }

    #[test]
    fn differences_name_the_table_and_both_nodes() {
        let a = BTreeMap::from([
            ("d.t".to_string(), sum(1, "x")),
            ("d.only_a".into(), sum(0, "0-0")),
        ]);
        let b = BTreeMap::from([
            ("d.t".to_string(), sum(2, "y")),
            ("d.only_b".into(), sum(0, "0-0")),
        ]);
        let d = differences("node0", &a, "node1", &b);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d.iter().any(|l| l.starts_with("d.t: node0")));
        assert!(d
            .iter()
            .any(|l| l.contains("d.only_a: on node0, missing on node1")));
        assert!(d
            .iter()
            .any(|l| l.contains("d.only_b: on node1, missing on node0")));
        assert!(differences("a", &a, "b", &a).is_empty());
    }
}
