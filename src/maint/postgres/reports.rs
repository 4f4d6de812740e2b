//! The results of VACUUM and REINDEX (6.6.2, 6.6.3) and the leftover matching.

use super::*;
use serde::Serialize;
use std::time::Duration;

/// Result of one `VACUUM (ANALYZE)` (6.6.2). Sizes in bytes (`pg_total_relation_size`: heap, TOAST and indexes),
/// duration in milliseconds; statistics fields are `None` when they could not be read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableVacuumReport {
    /// Physical table name.
    pub table: String,
    /// The VACUUM statement (for the audit line's `statement`).
    pub statement: String,
    /// Every statement sent for this table, in order (SET, catalog reads, VACUUM).
    pub statements: Vec<String>,
    /// Duration of the VACUUM statement alone, ms.
    pub duration_ms: u64,
    /// `n_dead_tup` before (may lag other sessions' last writes by a few seconds; module docs).
    pub dead_tuples_before: Option<i64>,
    /// `n_dead_tup` after.
    pub dead_tuples_after: Option<i64>,
    /// Total relation size before, bytes.
    pub size_before_bytes: Option<i64>,
    /// Total relation size after, bytes.
    pub size_after_bytes: Option<i64>,
    /// Redacted error when the VACUUM failed (`None` on success).
    pub error: Option<String>,
    /// SQLSTATE of the failure (`55P03` = lock timeout).
    pub sqlstate: Option<String>,
}

impl TableVacuumReport {
    /// Whether the VACUUM succeeded.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
    /// Whether it failed because the lock was not obtained within `lock_timeout`.
    pub fn is_lock_timeout(&self) -> bool {
        self.sqlstate.as_deref() == Some(SQLSTATE_LOCK_TIMEOUT)
    }
}

/// Result of one `REINDEX INDEX CONCURRENTLY` (6.6.3). Sizes in bytes (`pg_relation_size` of the index); the
/// `pgstatindex` figures (percent) are present only with the `pgstattuple` extension and a B-tree index.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexReindexReport {
    /// Index name.
    pub index: String,
    /// The table the index belongs to, when known.
    pub table: Option<String>,
    /// The REINDEX statement (for the audit line's `statement`).
    pub statement: String,
    /// Every statement sent for this index, in order.
    pub statements: Vec<String>,
    /// Duration of the REINDEX statement, ms.
    pub duration_ms: u64,
    /// Index size before, bytes.
    pub size_before_bytes: Option<i64>,
    /// Index size after, bytes.
    pub size_after_bytes: Option<i64>,
    /// `pgstatindex.avg_leaf_density` before, percent.
    pub avg_leaf_density_before: Option<f64>,
    /// `pgstatindex.avg_leaf_density` after, percent.
    pub avg_leaf_density_after: Option<f64>,
    /// `pgstatindex.leaf_fragmentation` before, percent.
    pub leaf_fragmentation_before: Option<f64>,
    /// `pgstatindex.leaf_fragmentation` after, percent.
    pub leaf_fragmentation_after: Option<f64>,
    /// Redacted error when the REINDEX failed.
    pub error: Option<String>,
    /// SQLSTATE of the failure.
    pub sqlstate: Option<String>,
}

impl IndexReindexReport {
    /// Whether the REINDEX succeeded.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Result of one `REINDEX TABLE CONCURRENTLY` (6.6.3, `OPS_REINDEX_TABLES`). Sizes in bytes (`pg_indexes_size`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableReindexReport {
    /// Physical table name.
    pub table: String,
    /// The REINDEX statement.
    pub statement: String,
    /// Every statement sent, in order.
    pub statements: Vec<String>,
    /// Duration of the REINDEX statement, ms.
    pub duration_ms: u64,
    /// Summed size of the table's indexes before, bytes.
    pub indexes_size_before_bytes: Option<i64>,
    /// Summed size of the table's indexes after, bytes.
    pub indexes_size_after_bytes: Option<i64>,
    /// Redacted error when the REINDEX failed.
    pub error: Option<String>,
    /// SQLSTATE of the failure.
    pub sqlstate: Option<String>,
}

impl TableReindexReport {
    /// Whether the REINDEX succeeded.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Finds the invalid `_ccnew` leftover that belongs to `index`, if any: `<index>_ccnew`, `<index>_ccnew<N>`, or the
/// 63-byte truncated form PostgreSQL generates for long names.
pub fn leftover_for<'a>(index: &str, leftovers: &'a [String]) -> Option<&'a str> {
    leftovers.iter().map(String::as_str).find(|l| {
        let Some(pos) = l.rfind("_ccnew") else {
            return false;
        };
        let (base, suffix) = (&l[..pos], &l[pos + "_ccnew".len()..]);
        if !suffix.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
        base == index || (l.len() == 63 && !base.is_empty() && index.starts_with(base))
    })
}

/// Splits `names` (in their order) into those present in the catalog result and those missing.
pub(crate) fn split_present(names: &[String], found: &[String]) -> (Vec<String>, Vec<String>) {
    let mut present = Vec::new();
    let mut missing = Vec::new();
    for n in names {
        if found.iter().any(|f| f == n) {
            present.push(n.clone());
        } else {
            missing.push(n.clone());
        }
    }
    (present, missing)
}

pub(crate) fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}
