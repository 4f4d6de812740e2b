//! Invalid `_ccnew` leftovers of interrupted `REINDEX … CONCURRENTLY` (agents.md 6.6.3): `reindex-invalid-leftover`.
//! Reported with the manual `DROP INDEX CONCURRENTLY` to run; never dropped automatically.

use super::report::Part;
use crate::agents::AgentContext;
use crate::maint::postgres;
use crate::maint::quote_ident;
use crate::model::Severity;
use serde_json::Value;

/// One warning `reindex-invalid-leftover` per invalid `_ccnew` index (6.6.3), naming the configured index it
/// belongs to; the names are added to the `invalidLeftovers` stats. Reported, never dropped.
pub(super) fn report_leftovers(
    ctx: &AgentContext,
    schema: &str,
    leftovers: &[String],
    p: &mut Part,
) {
    let db = &ctx.cfg.db;
    let mut listed = Vec::new();
    for l in leftovers {
        let owner = db
            .reindex_indexes
            .iter()
            .find(|i| postgres::leftover_for(i, std::slice::from_ref(l)).is_some());
        let of = owner.map(|i| format!(" of \"{i}\"")).unwrap_or_default();
        p.note(format!(
            "index \"{l}\": INVALID leftover of an interrupted REINDEX CONCURRENTLY{of} — reported, not dropped"
        ));
        p.incidents.push(ctx.incident(
            "reindex-invalid-leftover",
            Severity::Warning,
            "database",
            l,
            format!(
                "invalid index \"{l}\" in schema \"{schema}\" is the leftover of an interrupted REINDEX \
                 CONCURRENTLY{of}; it costs write time and disk, is never dropped automatically, and its index is \
                 not reindexed while it exists"
            ),
            format!(
                "make sure no REINDEX is running (pg_stat_progress_create_index), then drop it by hand: DROP INDEX \
                 CONCURRENTLY {}.{}; the next run rebuilds the original index",
                quote_ident(schema),
                quote_ident(l)
            ),
        ));
        listed.push(l.clone());
    }
    if !listed.is_empty() {
        let prev = p
            .stats
            .get("invalidLeftovers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut all = prev;
        all.extend(listed.into_iter().map(Value::String));
        p.stat("invalidLeftovers", Value::Array(all));
    }
}
