//! 6.4.1 fallback playlist: which playlist a display without content gets (agents.md 6.4.1). The pure resolution
//! ([`resolve_fallback`]) and, for the run, the direct read that confirms a "does not exist" verdict and the
//! `fallback_playlist_invalid` incident.

use super::{AGENT, CompleteInputs, PLAYLISTS, Run};
use crate::agents::common::{self, s};
use crate::agents::entities::PlaylistSummary;
use crate::model::{Severity, incident_id};
use crate::vizora::ApiError;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashSet;

/// Where the fallback playlist id came from (agents.md 6.4.1, in precedence order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackSource {
    /// The organisation's `settings.opsFallbackPlaylistId`.
    OrgSettings,
    /// The organisation's playlist with `isDefault: true`.
    DefaultPlaylist,
    /// `OPS_FALLBACK_PLAYLIST_ID`.
    Env,
}

impl FallbackSource {
    /// Human name of the source, used in messages.
    pub fn describe(self) -> &'static str {
        match self {
            FallbackSource::OrgSettings => "organization settings.opsFallbackPlaylistId",
            FallbackSource::DefaultPlaylist => "the organization's isDefault playlist",
            FallbackSource::Env => "OPS_FALLBACK_PLAYLIST_ID",
        }
    }
}

/// The fallback playlist verdict of a run (agents.md 6.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// Nothing configured anywhere.
    Unconfigured,
    /// Cannot be decided (organisation read failed, or the playlist's item count is unknown): assignments and the
    /// `fallback_playlist_invalid` verdict are not examined. The string says why.
    Unknown(String),
    /// Configured, but missing from the playlist set or empty: `fallback_playlist_invalid`, no assignment.
    Invalid {
        /// The configured playlist id (a non-string setting: its JSON text).
        id: String,
        /// Where the id was configured.
        source: FallbackSource,
        /// Why it is unusable (not a string, not in the organisation's playlists, 0 items).
        reason: String,
    },
    /// Usable: in the playlist set with `itemCount` > 0.
    Valid {
        /// The playlist id.
        id: String,
        /// The playlist's `name` (the id when it has none).
        name: String,
        /// Where the id was configured.
        source: FallbackSource,
    },
}

/// Resolves the fallback playlist (agents.md 6.4.1), first match: `org.settings.opsFallbackPlaylistId` (`org` is
/// `None` when the organisation read failed → [`Fallback::Unknown`]); the playlist with `isDefault: true` (several →
/// latest `updatedAt`, reported in the returned warnings); `env_id` (`OPS_FALLBACK_PLAYLIST_ID`). The chosen id must
/// name a playlist of `playlists` (a complete walk) with `itemCount` > 0. A non-string setting is invalid, an empty
/// string is unset.
pub fn resolve_fallback(
    org: Option<&Value>,
    playlists: &[PlaylistSummary],
    env_id: Option<&str>,
) -> (Fallback, Vec<String>) {
    let mut warnings = Vec::new();
    let Some(org) = org else {
        return (
            Fallback::Unknown("the organization could not be read".into()),
            warnings,
        );
    };
    let chosen: Option<(String, FallbackSource)> = match org
        .get("settings")
        .and_then(|st| st.get("opsFallbackPlaylistId"))
    {
        Some(Value::String(id)) if !id.trim().is_empty() => {
            Some((id.trim().to_string(), FallbackSource::OrgSettings))
        }
        None | Some(Value::Null) | Some(Value::String(_)) => None,
        Some(other) => {
            return (
                Fallback::Invalid {
                    id: other.to_string(),
                    source: FallbackSource::OrgSettings,
                    reason: format!("settings.opsFallbackPlaylistId is not a string ({other})"),
                },
                warnings,
            );
        }
    };
    let chosen = chosen.or_else(|| {
        let org_id = common::s(org, "id");
        let mut defaults: Vec<(&PlaylistSummary, Option<DateTime<Utc>>)> = playlists
            .iter()
            .filter_map(|p| p.default.as_deref().map(|d| (p, d)))
            .filter(|(_, d)| match (org_id, d.organization_id.as_deref()) {
                (Some(o), Some(po)) => o == po,
                _ => true,
            })
            .map(|(p, d)| (p, d.updated_at))
            .collect();
        if defaults.len() > 1 {
            warnings.push(format!(
                "{} playlists are marked isDefault; using the most recently updated one",
                defaults.len()
            ));
        }
        defaults.sort_by_key(|(_, updated)| *updated);
        defaults
            .last()
            .map(|(p, _)| (p.id.to_string(), FallbackSource::DefaultPlaylist))
    });
    let chosen = chosen.or_else(|| {
        env_id
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| (e.to_string(), FallbackSource::Env))
    });
    let Some((id, source)) = chosen else {
        return (Fallback::Unconfigured, warnings);
    };
    let Some(p) = playlists.iter().find(|p| *p.id == *id) else {
        return (
            Fallback::Invalid {
                reason: format!("playlist {id} does not exist in the organization"),
                id,
                source,
            },
            warnings,
        );
    };
    let name = p.name.as_deref().unwrap_or(&id).to_string();
    match p.item_count {
        Some(0) => (
            Fallback::Invalid {
                reason: format!("playlist \"{name}\" ({id}) has 0 items"),
                id,
                source,
            },
            warnings,
        ),
        Some(_) => (Fallback::Valid { id, name, source }, warnings),
        None => (
            Fallback::Unknown(format!(
                "the item count of fallback playlist \"{name}\" ({id}) is unknown"
            )),
            warnings,
        ),
    }
}

/// 6.4.1 for the run: resolves the fallback playlist, confirms a "does not exist" verdict with one direct read
/// (a list can lie, agents.md 6.0), raises `fallback_playlist_invalid` or marks it unexamined, and records the
/// usable fallback in the stats.
pub(super) async fn resolve_for_run(
    r: &mut Run<'_>,
    inp: &CompleteInputs<'_>,
    unexamined: &mut HashSet<String>,
    stats: &mut Value,
) -> Fallback {
    let ctx = r.ctx;
    let (mut fallback, warnings) = resolve_fallback(
        inp.obs.org.as_ref(),
        &inp.obs.playlists.items,
        ctx.cfg.entity.fallback_playlist_id.as_deref(),
    );
    for w in warnings {
        ctx.warn(w);
    }
    // "Does not exist" rests on absence from the playlists list, which can lie (agents.md 6.0): one direct read.
    if let Fallback::Invalid { id, source, .. } = &fallback
        && inp.sets.playlist(id).is_none()
        && common::path_safe_id(id)
    {
        let (id, source) = (id.clone(), *source);
        match r.api.get(&format!("{PLAYLISTS}/{id}")).await {
            Err(ApiError::NotFound { .. }) => {}
            Ok(v) => {
                let name = s(&v, "name").unwrap_or(&id).to_string();
                let items = v.get("itemCount").and_then(Value::as_u64).or_else(|| {
                    v.get("items")
                        .and_then(Value::as_array)
                        .map(|a| a.len() as u64)
                });
                ctx.warn(format!(
                    "fallback playlist \"{name}\" ({id}) is missing from {PLAYLISTS} but a direct read finds it; \
                     the list is not trusted for it"
                ));
                fallback = match items {
                    Some(0) => Fallback::Invalid {
                        reason: format!("playlist \"{name}\" ({id}) has 0 items"),
                        id,
                        source,
                    },
                    Some(_) => Fallback::Valid { id, name, source },
                    None => Fallback::Unknown(format!(
                        "the item count of fallback playlist \"{name}\" ({id}) is unknown"
                    )),
                };
            }
            Err(e) => {
                if e.is_fatal() {
                    r.abort(&e);
                }
                fallback = Fallback::Unknown(format!(
                    "the fallback playlist {id} is missing from the list and its direct read failed: {e}"
                ));
            }
        }
    }
    match (&fallback, inp.org_id) {
        (Fallback::Invalid { id, source, reason }, Some(org_id)) => {
            let inc = ctx.incident(
                "fallback_playlist_invalid",
                Severity::Warning,
                "organization",
                org_id,
                format!("The fallback playlist {id} (from {}) is unusable: {reason}", source.describe()),
                "Point settings.opsFallbackPlaylistId (or OPS_FALLBACK_PLAYLIST_ID) at an existing playlist with \
                 content; displays without content get no fallback until then",
            );
            r.note(format!(
                "{}: {}",
                crate::model::kind_label(&inc.kind),
                inc.message
            ));
            r.o.raise(inc);
        }
        (Fallback::Unknown(why), Some(org_id)) => {
            ctx.warn(format!(
                "fallback playlist unknown: {why}; assignments not examined"
            ));
            unexamined.insert(incident_id(AGENT, "fallback_playlist_invalid", org_id));
        }
        _ => {}
    }
    if let (Value::Object(m), Fallback::Valid { id, name, .. }) = (stats, &fallback) {
        m.insert("fallbackPlaylist".into(), json!(name));
        m.insert("fallbackPlaylistId".into(), json!(id));
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::schedule_doctor::test_support::records;
    use serde_json::json;

    fn fb(org: Option<&Value>, pl: &[Value], env: Option<&str>) -> (Fallback, Vec<String>) {
        resolve_fallback(org, &records::<PlaylistSummary>(pl), env)
    }

    fn playlists() -> Vec<Value> {
        vec![
            json!({"id":"pA","name":"Evergreen","itemCount":4,"isDefault":false,"updatedAt":"2026-08-01T00:00:00Z"}),
            json!({"id":"pE","name":"Empty","itemCount":0,"isDefault":false}),
            json!({"id":"pD1","name":"Old default","itemCount":2,"isDefault":true,"updatedAt":"2026-01-01T00:00:00Z"}),
            json!({"id":"pD2","name":"New default","itemCount":2,"isDefault":true,"updatedAt":"2026-06-01T00:00:00Z"}),
            json!({"id":"pN","name":"No count"}),
        ]
    }

    #[test]
    fn fallback_prefers_org_setting_then_latest_default_then_env() {
        let pl = playlists();
        let org = json!({"id":"o","settings":{"opsFallbackPlaylistId":"pA"}});
        let (f, w) = fb(Some(&org), &pl, Some("pE"));
        assert_eq!(
            f,
            Fallback::Valid {
                id: "pA".into(),
                name: "Evergreen".into(),
                source: FallbackSource::OrgSettings
            }
        );
        assert!(w.is_empty());
        let org = json!({"id":"o","settings":{}});
        let (f, w) = fb(Some(&org), &pl, Some("pA"));
        assert!(
            matches!(f, Fallback::Valid{ref id, source: FallbackSource::DefaultPlaylist, ..} if id == "pD2")
        );
        assert_eq!(w.len(), 1, "several defaults warn");
        let no_defaults: Vec<Value> = pl
            .iter()
            .filter(|p| p["isDefault"] != true)
            .cloned()
            .collect();
        let (f, _) = fb(Some(&json!({"settings":null})), &no_defaults, Some("pA"));
        assert!(matches!(
            f,
            Fallback::Valid {
                source: FallbackSource::Env,
                ..
            }
        ));
        let (f, _) = fb(Some(&json!({})), &no_defaults, None);
        assert_eq!(f, Fallback::Unconfigured);
    }

    #[test]
    fn fallback_missing_empty_malformed_or_unreadable_is_invalid_or_unknown() {
        let pl = playlists();
        let missing = json!({"settings":{"opsFallbackPlaylistId":"gone"}});
        assert!(
            matches!(fb(Some(&missing), &pl, None).0, Fallback::Invalid{ref id, ..} if id == "gone")
        );
        let empty = json!({"settings":{"opsFallbackPlaylistId":"pE"}});
        assert!(
            matches!(fb(Some(&empty), &pl, Some("pA")).0, Fallback::Invalid{ref reason, ..} if reason.contains("0 items"))
        );
        let bad = json!({"settings":{"opsFallbackPlaylistId":17}});
        assert!(matches!(
            fb(Some(&bad), &pl, None).0,
            Fallback::Invalid { .. }
        ));
        let nocount = json!({"settings":{"opsFallbackPlaylistId":"pN"}});
        assert!(matches!(
            fb(Some(&nocount), &pl, None).0,
            Fallback::Unknown(_)
        ));
        assert!(matches!(fb(None, &pl, Some("pA")).0, Fallback::Unknown(_)));
    }
}
