use super::file::lock_path_for;
use super::*;
use crate::agents::content_lifecycle::refresh_plan;
use crate::agents::content_lifecycle::table::{ContentTable, TableOptions};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use serde_json::json;
use std::time::Duration;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 26, 13, 42, 17).unwrap()
}

fn item(id: &str, kind: &str, status: &str, created: &str, updated: &str) -> Value {
    json!({"id": id, "type": kind, "status": status, "createdAt": created, "updatedAt": updated})
}

fn table(items: &[Value], cache: &DetailCache) -> ContentTable {
    ContentTable::from_items(items, TableOptions::default(), Some(cache))
}

fn entry(updated: &str) -> CacheEntry {
    CacheEntry::from_detail(&json!({"updatedAt": updated, "status": "active"}), now()).unwrap()
}

#[test]
fn an_id_repeated_in_the_file_is_dropped_altogether() {
    let e = |zones: &str| {
        format!(
            r#"{{"updatedAt":"2026-08-01T00:00:00.000Z","fetchedAt":"2026-08-02T00:00:00.000Z","status":"active",
                "expiresAt":null,"replacementContentId":null,"isGlobal":false,"zoneContentIds":[{zones}]}}"#
        )
    };
    let doc = format!(
        r#"{{"version":1,"items":{{"lay":{},"ok":{},"lay":{},"lay":{}}}}}"#,
        e(r#""z1""#),
        e(""),
        e(""),
        e(r#""z2""#)
    );
    let (cache, dropped) = parse_cache(doc.as_bytes()).unwrap();
    assert!(!cache.contains("lay"), "which copy is right is unknown");
    assert!(cache.contains("ok"));
    assert_eq!(dropped, 3, "all three copies count as dropped");
}

#[test]
fn detail_projection_keeps_zones_replacement_and_global_flag() {
    let detail = json!({"id":"c1","updatedAt":"2026-08-01T00:00:00.000Z","status":"active",
            "expiresAt":"2026-09-01T00:00:00.000Z","replacementContentId":"c2","isGlobal":true,
            "metadata":{"zones":[{"contentId":"z1"},{"contentId":null},{"x":1},{"contentId":"z2"}]}});
    let e = CacheEntry::from_detail(&detail, now()).unwrap();
    assert_eq!(e.zone_content_ids, vec!["z1", "z2"]);
    assert_eq!(e.replacement_content_id.as_deref(), Some("c2"));
    assert_eq!(e.is_global, Some(true));
    assert_eq!(e.expires_at.as_deref(), Some("2026-09-01T00:00:00.000Z"));
    assert_eq!(e.fetched_at, "2026-08-26T13:42:17.000Z");
    // The compact store keeps exactly the same.
    let mut c = DetailCache::default();
    c.store_detail("c1", &detail, now()).unwrap();
    assert_eq!(c.get("c1").unwrap(), e);
    // A non-string expiresAt is kept as its JSON text.
    let e = CacheEntry::from_detail(
        &json!({"updatedAt":"x","status":"active","expiresAt": 12}),
        now(),
    )
    .unwrap();
    assert_eq!(e.expires_at.as_deref(), Some("12"));
}

#[test]
fn malformed_detail_fields_are_refused_not_guessed() {
    for bad in [
        json!({"status":"active"}),
        json!({"updatedAt":"x","status":"active","isGlobal":"yes"}),
        json!({"updatedAt":"x","status":"active","metadata":{"zones":{"a":1}}}),
        json!({"updatedAt":"x","status":"active","replacementContentId":5}),
        json!([1, 2]),
    ] {
        assert!(CacheEntry::from_detail(&bad, now()).is_err(), "{bad}");
        let mut c = DetailCache::default();
        assert!(c.store_detail("a", &bad, now()).is_err(), "{bad}");
        assert!(c.is_empty());
    }
}

#[test]
fn an_entry_is_fresh_only_for_the_same_updated_at() {
    let mut c = DetailCache::default();
    c.store("a", entry("2026-08-01T00:00:00.000Z"));
    c.store("b", entry("u-b"));
    let t = table(
        &[
            item(
                "a",
                "image",
                "active",
                "2026-01-01T00:00:00.000Z",
                "2026-08-01T00:00:00.000Z",
            ),
            item(
                "a",
                "image",
                "active",
                "2026-01-01T00:00:00.000Z",
                "2026-08-02T00:00:00.000Z",
            ),
            item("b", "image", "active", "x", "u-b"),
            json!({"id": "b", "type": "image", "status": "active"}),
            item("c", "image", "active", "x", "u-b"),
        ],
        &c,
    );
    let fresh: Vec<bool> = t.rows().map(|r| c.fresh(&t, r).is_some()).collect();
    assert_eq!(fresh, vec![true, false, true, false, false]);
}

#[test]
fn refresh_plan_reads_layouts_first_then_oldest_and_respects_the_limit() {
    let content = vec![
        item("new", "image", "active", "2026-08-01T00:00:00.000Z", "u"),
        item("old", "image", "active", "2025-01-01T00:00:00.000Z", "u"),
        item("lay", "layout", "draft", "2026-08-20T00:00:00.000Z", "u"),
        item(
            "deadlay",
            "layout",
            "archived",
            "2020-01-01T00:00:00.000Z",
            "u",
        ),
        item("arch", "image", "archived", "2020-01-01T00:00:00.000Z", "u"),
        item("fresh", "image", "active", "2019-01-01T00:00:00.000Z", "u"),
        item("bad", "image", "active", "yesterday", "u"),
    ];
    let mut cache = DetailCache::default();
    cache.store("fresh", entry("u"));
    let t = table(&content, &cache);
    let (rows, total) = refresh_plan(&t, &cache, 2);
    let ids: Vec<&str> = rows.iter().map(|r| t.id(*r)).collect();
    assert_eq!(ids, vec!["lay", "old"]);
    assert_eq!(total, 4);
    let (rows, _) = refresh_plan(&t, &cache, 10);
    let ids: Vec<&str> = rows.iter().map(|r| t.id(*r)).collect();
    assert_eq!(ids, vec!["lay", "old", "new", "bad"]);
}

#[test]
fn complete_scan_drops_unlisted_and_no_longer_needed_entries() {
    let mut cache = DetailCache::default();
    for id in ["keep", "gone", "archived"] {
        cache.store(id, entry("u"));
    }
    let content = vec![
        item("keep", "image", "active", "x", "u"),
        item("archived", "image", "archived", "x", "u"),
    ];
    let t = table(&content, &cache);
    assert_eq!(cache.retain_listed(&t), 2);
    assert_eq!(cache.ids().collect::<Vec<_>>(), vec!["keep"]);
    assert_eq!(cache.len(), 1);
}

#[test]
fn refreshed_entry_keeps_the_previous_thumbnail_probe() {
    let mut cache = DetailCache::default();
    let mut e = entry("u1");
    e.thumbnail = Some(ThumbnailCheck {
        url: "https://x.test/t.jpg".into(),
        ok: true,
        checked_at: "2026-08-26T00:00:00.000Z".into(),
        detail: None,
    });
    cache.store("a", e);
    cache.store("a", entry("u2"));
    assert_eq!(cache.get("a").unwrap().updated_at, "u2");
    assert!(cache.get("a").unwrap().thumbnail.unwrap().ok);
    cache
        .store_detail("a", &json!({"updatedAt": "u3", "status": "active"}), now())
        .unwrap();
    assert!(cache.get("a").unwrap().thumbnail.unwrap().ok);
    // A removed entry does not hand its probe to a later one.
    assert!(cache.remove("a"));
    cache.store("a", entry("u4"));
    assert!(cache.get("a").unwrap().thumbnail.is_none());
    assert_eq!(cache.len(), 1);
}

#[test]
fn save_then_load_round_trips_and_corrupt_file_is_quarantined_untouched() {
    let d = tempfile::tempdir().unwrap();
    let f = CacheFile::new(d.path().join(CACHE_FILE_NAME), Duration::from_millis(500));
    let mut cache = DetailCache::default();
    cache.store("a", entry("u"));
    let mut b = entry("2026-08-01T00:00:00.000Z");
    b.expires_at = Some("2026-09-01T00:00:00+02:00".into());
    b.replacement_content_id = Some("r \"quoted\"".into());
    b.is_global = Some(false);
    b.zone_content_ids = vec!["z1".into(), "z2".into()];
    b.thumbnail = Some(ThumbnailCheck {
        url: "https://x.test/t.jpg".into(),
        ok: false,
        checked_at: "2026-08-26T00:00:00.000Z".into(),
        detail: Some("HEAD answered 404".into()),
    });
    cache.store("b\u{e9}", b);
    f.save(&cache).unwrap();
    let loaded = f.load(false);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.cache, cache);
    assert!(!lock_path_for(f.path()).exists(), "lock released");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(f.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    // The file is the documented format.
    let v: Value = serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["items"]["b\u{e9}"]["zoneContentIds"], json!(["z1", "z2"]));
    assert_eq!(v["items"]["b\u{e9}"]["thumbnail"]["ok"], false);
    assert_eq!(v["items"]["a"]["expiresAt"], Value::Null);

    std::fs::write(f.path(), b"{not json").unwrap();
    // Dry run: reported, nothing moved.
    let dry = f.load(true);
    assert!(dry.cache.is_empty());
    assert!(f.path().exists());
    let loaded = f.load(false);
    assert!(loaded.cache.is_empty());
    assert!(
        loaded.errors[0].contains("quarantined as"),
        "{:?}",
        loaded.errors
    );
    assert!(!f.path().exists());
    let q: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".corrupt-"))
        .collect();
    assert_eq!(q.len(), 1);
    assert_eq!(std::fs::read(d.path().join(&q[0])).unwrap(), b"{not json");
}

#[test]
fn a_file_in_the_old_pretty_form_loads() {
    let old = serde_json::to_vec_pretty(&json!({"version": 1, "items": {
            "a": {"updatedAt": "u", "fetchedAt": "2026-08-26T13:42:17.000Z", "status": "active",
                  "expiresAt": null, "replacementContentId": null, "isGlobal": null, "zoneContentIds": []},
            "b": {"updatedAt": "2026-08-01T00:00:00.000Z", "fetchedAt": "f", "status": "archived",
                  "expiresAt": "2026-08-02T00:00:00.000Z", "replacementContentId": "r", "isGlobal": true,
                  "zoneContentIds": ["z"], "thumbnail": {"url": "minio://k", "ok": true,
                  "checkedAt": "2026-08-26T13:42:17.000Z"}, "future": {"x": 1}}
        }}))
        .unwrap();
    let (c, dropped) = parse_cache(&old).unwrap();
    assert_eq!(dropped, 0);
    let b = c.get("b").unwrap();
    assert_eq!(b.status, "archived");
    assert_eq!(b.expires_at.as_deref(), Some("2026-08-02T00:00:00.000Z"));
    assert_eq!(b.zone_content_ids, vec!["z"]);
    assert_eq!(b.thumbnail.unwrap().url, "minio://k");
    assert_eq!(c.get("a").unwrap().fetched_at, "2026-08-26T13:42:17.000Z");
    // Written again and re-read: the same entries.
    let (again, _) = parse_cache(&c.to_bytes()).unwrap();
    assert_eq!(again, c);
}

#[test]
fn wrong_version_is_corrupt_and_bad_entries_are_dropped() {
    assert!(parse_cache(br#"{"version":2,"items":{}}"#).is_err());
    assert!(parse_cache(br#"{"items":{}}"#).is_err());
    assert!(parse_cache(br#"{"version":1}"#).is_err());
    assert!(parse_cache(br#"{"version":1,"items":[]}"#).is_err());
    assert!(parse_cache(br#"{"version":1,"items":{}} x"#).is_err());
    assert_eq!(
        parse_cache(br#"[1]"#).unwrap_err(),
        "top level is not an object"
    );
    let (c, dropped) = parse_cache(
            br#"{"items":{"a":{"updatedAt":"u","fetchedAt":"f","status":"active","expiresAt":null,
            "replacementContentId":null,"isGlobal":null,"zoneContentIds":[]},"b":{"status":3},
            "c":[1,{"x":2}],"d":{"updatedAt":"u","fetchedAt":"f","status":"s","zoneContentIds":null},
            "e":{"updatedAt":"u","fetchedAt":"f","status":"s","isGlobal":"no"},
            "f":{"updatedAt":"u","fetchedAt":"f","status":"s","thumbnail":{"url":"x"}},
            "g":{"updatedAt":"u","updatedAt":"v","fetchedAt":"f","status":"s"},
            "h":{"updatedAt":"u","fetchedAt":"f","status":"s"}},"version":1}"#,
        )
        .unwrap();
    assert_eq!(dropped, 6);
    assert!(c.contains("a"));
    assert!(c.contains("h"), "optional fields may be missing");
    assert_eq!(c.len(), 2);
}
