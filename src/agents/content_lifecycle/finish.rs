//! The end of a run (agents.md 6.2 step 6): refused-id warnings, contract drift (3.2: critical, exit 2 with a full
//! write, resolved when the route answers again), fix notifications (7.6), stats and the detail cache write after
//! the state write (6.2.1).

use super::detail_cache::CacheFile;
use super::{Run, SLUG_ARCHIVE, SLUG_PATCH_PLAYLISTS, T_DRIFT};
use crate::agents::WriteMode;
use crate::agents::{InlineAlert, InlineKind};
use crate::model::{Incident, Severity};
use serde_json::{Value, json};

impl Run<'_> {
    pub(super) async fn finish(&mut self, cache_file: &CacheFile) {
        for (what, (n, first)) in std::mem::take(&mut self.bad_ids) {
            self.ctx.warn(format!(
                "{n} {what} id(s) from the API are not plain ids (e.g. \"{first}\"): never requested; those items \
                 are skipped this run"
            ));
        }
        // Contract drift (3.2): critical, exit 2 with a full write.
        let mut slugs: Vec<(&'static str, String)> =
            self.drift.iter().map(|(k, v)| (*k, v.clone())).collect();
        slugs.sort();
        for (slug, err) in &slugs {
            let inc = self.incident(
                T_DRIFT,
                Severity::Critical,
                "api",
                slug,
                format!("The API answered {err}: the route is missing (API contract drift)"),
                "Check the Vizora API version against vizora-ops; the route is not called again this run and \
                 affected items stay open",
            );
            self.out
                .note(format!("API contract drift on {slug}: {err}"));
            let opened = !self.priors.get(&inc.id).is_some_and(|p| p.is_active());
            if opened {
                let stamps = self
                    .ctx
                    .effects()
                    .alert(InlineAlert {
                        agent: self.ctx.agent,
                        kind: InlineKind::Critical,
                        summary: format!("API contract drift on {slug}"),
                        items: vec![err.clone()],
                        refs: vec![inc.clone()],
                    })
                    .await;
                self.out.alert_stamps.extend(stamps);
            }
            self.out.raise(inc);
        }
        // A route that succeeded this run resolves its prior drift incident; an uncalled route is not examined.
        self.out.cover(T_DRIFT);
        for slug in [SLUG_ARCHIVE, SLUG_PATCH_PLAYLISTS] {
            if self.drift.contains_key(slug) {
                continue;
            }
            let id = self.id(T_DRIFT, slug);
            if self.route_ok.contains(slug) {
                self.out
                    .resolve_suffix
                    .insert(id, " — the route answered again this run".into());
            } else {
                self.out.unexamined.insert(id);
            }
        }

        // Fix notifications (7.6), one per kind.
        self.notify_fixed(
            "expired",
            self.fixed_expired.clone(),
            self.planned_expired.clone(),
        )
        .await;
        self.notify_fixed(
            "orphaned",
            self.fixed_orphans.clone(),
            self.planned_orphans.clone(),
        )
        .await;
        if !self.storage_archived.is_empty() {
            let items = self.storage_archived.clone();
            let stamps = self
                .ctx
                .effects()
                .alert(InlineAlert {
                    agent: self.ctx.agent,
                    kind: InlineKind::Fixed,
                    summary: format!(
                        "Auto-archived {} unreferenced content item(s) to relieve storage",
                        items.len()
                    ),
                    items,
                    refs: Vec::new(),
                })
                .await;
            self.out.alert_stamps.extend(stamps);
        }

        self.stats.insert(
            "archived".into(),
            json!({
                "expired": self.fixed_expired.len(),
                "orphaned": self.fixed_orphans.len(),
                "storage": self.storage_archived.len(),
            }),
        );
        // Items archived this run no longer need a detail entry.
        for id in self.archived.keys() {
            self.cache.remove(id);
        }
        self.stats
            .insert("cacheEntries".into(), json!(self.cache.len()));
        self.out.stats = Some(Value::Object(self.stats.clone()));

        if let Some(e) = &self.abort {
            let mode = if self.mutated {
                WriteMode::Partial
            } else {
                WriteMode::None
            };
            self.out.fail(format!("run aborted: {e}"), mode);
        } else if !slugs.is_empty() {
            let names: Vec<&str> = slugs.iter().map(|(s, _)| *s).collect();
            self.out.fail(
                format!("API contract drift: {}", names.join(", ")),
                WriteMode::Full,
            );
        }

        // The cache is written after the state write, by the runtime (6.2.1): never in a dry run, never when the
        // state write did not happen or failed.
        if !self.ctx.effects().is_dry_run() && self.out.write != WriteMode::None {
            let cache = std::mem::take(&mut self.cache);
            let file = cache_file.clone();
            self.out.after_write = Some(Box::new(move || {
                file.save(&cache)
                    .map_err(|e| format!("content cache not written: {e}"))
            }));
        }
    }

    pub(super) async fn notify_fixed(
        &mut self,
        what: &str,
        fixed: Vec<(String, Incident)>,
        planned: Vec<String>,
    ) {
        let (summary, items, refs) = if self.ctx.effects().is_dry_run() {
            if planned.is_empty() {
                return;
            }
            (
                format!("Auto-archived {} {what} content item(s)", planned.len()),
                planned,
                Vec::new(),
            )
        } else {
            if fixed.is_empty() {
                return;
            }
            let items: Vec<String> = fixed
                .iter()
                .map(|(name, i)| format!("\"{name}\" ({})", i.target_id))
                .collect();
            (
                format!("Auto-archived {} {what} content item(s)", fixed.len()),
                items,
                fixed.into_iter().map(|(_, i)| i).collect(),
            )
        };
        let stamps = self
            .ctx
            .effects()
            .alert(InlineAlert {
                agent: self.ctx.agent,
                kind: InlineKind::Fixed,
                summary,
                items,
                refs,
            })
            .await;
        self.out.alert_stamps.extend(stamps);
    }
}
