//! The small `before`/`after` projections of the audit (agents.md 5.8).

use serde_json::{Map, Value, json};

/// Keys kept in the state's small projections of `before`/`after` (agents.md 5.8), besides the body's keys.
pub(crate) const PROJECTION_KEYS: [&str; 16] = [
    "id",
    "name",
    "nickname",
    "status",
    "isActive",
    "currentPlaylistId",
    "updatedAt",
    "expiresAt",
    "lastHeartbeat",
    "commandId",
    "devicesTargeted",
    "devicesOnline",
    "devicesQueued",
    "devicesDelivered",
    "devicesFailed",
    "itemCount",
];

/// A small projection of an entity (agents.md 5.8): the fixed `PROJECTION_KEYS` (`id`, label, `status`,
/// `updatedAt`, `devices*` counters, …) plus the `extra` keys (the fields the mutation changes); a kept playlist
/// `items` array keeps only each item's `contentId` and `order`; strings are capped at 200 characters
/// ([`crate::model::label`]). A non-object is returned as is.
pub fn project(v: &Value, extra: &[&str]) -> Value {
    match v {
        Value::Object(m) => {
            let mut o = Map::new();
            for (k, x) in m {
                if PROJECTION_KEYS.contains(&k.as_str()) || extra.contains(&k.as_str()) {
                    let x = if k == "items" {
                        // Playlist items: ids and order only.
                        Value::Array(
                            x.as_array()
                                .map(|a| {
                                    a.iter()
                                        .map(|i| json!({"contentId": i.get("contentId"), "order": i.get("order")}))
                                        .collect()
                                })
                                .unwrap_or_default(),
                        )
                    } else if let Value::String(t) = x {
                        // API text (a 2 MB name) is capped like every label (agents.md 2.2, 5.8).
                        Value::String(crate::model::label(t).into_owned())
                    } else {
                        x.clone()
                    };
                    o.insert(k.clone(), x);
                }
            }
            Value::Object(o)
        }
        other => other.clone(),
    }
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
