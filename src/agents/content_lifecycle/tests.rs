use super::detail_cache::{DetailCache, ThumbnailCheck};
use super::table::{ContentTable, TableOptions};
use super::*;
use crate::model::ts;
use chrono::{Duration as ChronoDuration, TimeZone};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 26, 13, 42, 17).unwrap()
}
fn days_ago(d: f64) -> String {
    ts(now() - ChronoDuration::seconds((d * 86_400.0) as i64))
}
fn item(id: &str, kind: &str, status: &str, created_days_ago: f64) -> Value {
    json!({"id": id, "name": format!("Item {id}"), "type": kind, "status": status,
            "createdAt": days_ago(created_days_ago), "updatedAt": "u-".to_string() + id,
            "thumbnail": "minio://org/thumbs/x.jpg", "fileSize": 1000})
}
fn detail(id: &str, extra: Value) -> Value {
    let mut d = json!({"id": id, "status": "active", "updatedAt": "u-".to_string() + id,
            "expiresAt": null, "replacementContentId": null, "isGlobal": false, "playlistItems": []});
    for (k, v) in extra.as_object().unwrap() {
        d[k] = v.clone();
    }
    d
}
fn cache_with(entries: &[(&str, Value)]) -> DetailCache {
    let mut c = DetailCache::default();
    for (id, extra) in entries {
        c.store_detail(id, &detail(id, extra.clone()), now())
            .unwrap();
    }
    c
}
/// The compact table of `items`, linked to `cache` (thumbnail URLs kept, as with S3 configured).
fn table(items: &[Value], cache: &DetailCache) -> ContentTable {
    let opts = TableOptions {
        s3_configured: true,
        ..TableOptions::default()
    };
    ContentTable::from_items(items, opts, Some(cache))
}
fn ids(t: &ContentTable, rows: &[u32]) -> Vec<String> {
    rows.iter().map(|r| t.id(*r).to_string()).collect()
}

#[test]
fn cached_thumbnail_urls_never_hold_credentials_but_still_match_the_same_url() {
    let secret = "https://admin:s3cr3tpw@cdn.example/t.jpg?token=tok_SECRET_123&w=200";
    let kept = cached_url_form(secret);
    assert!(
        !kept.contains("s3cr3tpw") && !kept.contains("tok_SECRET_123"),
        "{kept}"
    );
    assert!(kept.contains("cdn.example/t.jpg"), "{kept}");
    assert_eq!(
        cached_url_form(secret),
        kept,
        "the same listed URL maps to the same kept form"
    );
    let plain = "https://cdn.example/thumbs/a.jpg";
    assert_eq!(cached_url_form(plain), plain);
    assert!(matches!(
        cached_url_form(plain),
        std::borrow::Cow::Borrowed(_)
    ));
}

#[test]
fn expired_needs_a_fresh_entry_and_expiry_not_after_now() {
    let content = vec![
        item("exp", "image", "active", 50.0),
        item("future", "image", "active", 50.0),
        item("nocache", "image", "active", 50.0),
        item("archived", "image", "archived", 50.0),
        item("bad", "image", "active", 50.0),
        item("exactly", "image", "active", 50.0),
    ];
    let cache = cache_with(&[
        (
            "exp",
            json!({"expiresAt": ts(now() - ChronoDuration::minutes(12)), "replacementContentId": "r1"}),
        ),
        (
            "future",
            json!({"expiresAt": ts(now() + ChronoDuration::days(5))}),
        ),
        ("archived", json!({"expiresAt": days_ago(3.0)})),
        ("bad", json!({"expiresAt": "next tuesday"})),
        ("exactly", json!({"expiresAt": ts(now())})),
    ]);
    let t = table(&content, &cache);
    let scan = detect_expired(&t, &cache, now());
    let found: Vec<&str> = scan.findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(found, vec!["exp", "exactly"]);
    assert_eq!(scan.findings[0].replacement.as_deref(), Some("r1"));
    assert_eq!(scan.findings[0].name, "Item exp");
    assert_eq!(scan.findings[0].file_size, 1000);
    assert_eq!(
        scan.findings[0].expires_at,
        ts(now() - ChronoDuration::minutes(12))
    );
    assert_eq!(ids(&t, &scan.unexamined), vec!["nocache", "bad"]);
}

#[test]
fn stale_cache_entry_makes_expiry_unexamined() {
    let content = vec![item("a", "image", "active", 50.0)];
    let mut cache = cache_with(&[("a", json!({"expiresAt": days_ago(1.0)}))]);
    let mut e = cache.get("a").unwrap();
    e.updated_at = "older".into();
    cache.store("a", e);
    let t = table(&content, &cache);
    let scan = detect_expired(&t, &cache, now());
    assert!(scan.findings.is_empty());
    assert_eq!(ids(&t, &scan.unexamined), vec!["a"]);
}

#[test]
fn confirm_expired_drops_moved_or_inactive_items_with_evidence() {
    let past = days_ago(0.1);
    assert!(confirm_expired(&detail("a", json!({"expiresAt": past})), now()).is_ok());
    let e = confirm_expired(&detail("a", json!({"expiresAt": days_ago(-3.0)})), now()).unwrap_err();
    assert!(e.contains("moved forward"), "{e}");
    let e = confirm_expired(
        &detail("a", json!({"status": "expired", "expiresAt": past})),
        now(),
    )
    .unwrap_err();
    assert!(e.contains("status=expired"), "{e}");
    assert!(confirm_expired(&detail("a", json!({})), now()).is_err());
}

#[test]
fn replacement_is_deliverable_only_when_active_and_not_expired() {
    assert!(is_deliverable(&detail("r", json!({})), now()));
    assert!(is_deliverable(
        &detail("r", json!({"expiresAt": days_ago(-10.0)})),
        now()
    ));
    assert!(!is_deliverable(
        &detail("r", json!({"status": "archived"})),
        now()
    ));
    assert!(!is_deliverable(
        &detail("r", json!({"expiresAt": days_ago(1.0)})),
        now()
    ));
    assert!(!is_deliverable(
        &detail("r", json!({"expiresAt": "garbage"})),
        now()
    ));
}

#[test]
fn repoint_body_keeps_the_whole_list_in_order_and_omits_null_durations() {
    let pl = json!({"id": "p", "items": [
        {"id": "i2", "contentId": "exp", "order": 2, "duration": null},
        {"id": "i0", "contentId": "a", "order": 0, "duration": 15},
        {"id": "i1", "contentId": "b", "order": 1, "duration": null},
        {"id": "i3", "contentId": "exp", "order": 3, "duration": 20},
    ]});
    let body = repoint_body(&pl, "exp", "rep").unwrap().unwrap();
    assert_eq!(
        body,
        json!({"items": [
            {"contentId": "a", "order": 0, "duration": 15},
            {"contentId": "b", "order": 1},
            {"contentId": "rep", "order": 2},
            {"contentId": "rep", "order": 3, "duration": 20},
        ]})
    );
    assert_eq!(playlist_contains(&body, "exp"), Some(false));
    // Nothing to do when the item is gone from the playlist.
    assert_eq!(repoint_body(&pl, "zzz", "rep").unwrap(), None);
    // A list we cannot rebuild completely is refused.
    assert!(repoint_body(&json!({"id": "p"}), "exp", "rep").is_err());
    assert!(
        repoint_body(
            &json!({"items": [{"contentId": "exp", "order": 0}, {"order": 1}]}),
            "exp",
            "rep"
        )
        .is_err()
    );
}

#[test]
fn playlists_of_a_detail_are_distinct_and_ordered() {
    let d = json!({"playlistItems": [
            {"playlistId": "p1"}, {"playlist": {"id": "p2"}}, {"playlistId": "p1"}]});
    assert_eq!(playlists_of(&d), vec!["p1", "p2"]);
    assert!(playlists_of(&json!({})).is_empty());
}

fn orphan_fixture() -> (Vec<Value>, Vec<Value>, DetailCache) {
    let content = vec![
        item("orphan-old", "image", "active", 200.0),
        item("orphan-new", "video", "active", 31.0),
        item("near-29", "image", "active", 29.0),
        item("in-playlist", "image", "active", 300.0),
        item("in-zone", "image", "active", 300.0),
        item("replacement-target", "image", "active", 45.0),
        item("global", "image", "active", 300.0),
        item("archived", "image", "archived", 300.0),
        item("layout", "layout", "active", 300.0),
        item("dead-layout", "layout", "archived", 300.0),
        item("dead-zone", "image", "active", 300.0),
        item("points", "image", "active", 2.0),
    ];
    let playlists = vec![
        json!({"id": "p1", "items": [{"contentId": "in-playlist"}, {"contentId": "layout"},
            {"contentId": "points"}]}),
    ];
    let cache = cache_with(&[
        ("orphan-old", json!({})),
        ("orphan-new", json!({})),
        ("near-29", json!({})),
        ("in-playlist", json!({})),
        ("in-zone", json!({})),
        ("replacement-target", json!({})),
        ("global", json!({"isGlobal": true})),
        (
            "layout",
            json!({"metadata": {"zones": [{"contentId": "in-zone"}, {"contentId": null}]}}),
        ),
        ("dead-zone", json!({})),
        (
            "points",
            json!({"expiresAt": days_ago(-30.0), "replacementContentId": "replacement-target"}),
        ),
    ]);
    // The archived layout's zones are not references (it is not listed fresh: no entry needed).
    (content, playlists, cache)
}

#[test]
fn orphan_candidates_respect_every_exclusion_and_sort_oldest_first() {
    let (content, playlists, cache) = orphan_fixture();
    let t = table(&content, &cache);
    let h = harvest_references(&t, PlaylistRefs::from_items(&playlists), &cache);
    assert!(h.complete(), "{:?}", h.gaps);
    let c = unreferenced_candidates(&t, &h, &cache, now(), 30, &HashSet::new());
    let rows: Vec<u32> = c.iter().map(|c| c.row).collect();
    // dead-zone is only referenced by an archived layout: it is an orphan.
    assert_eq!(
        ids(&t, &rows),
        vec!["dead-zone", "orphan-old", "orphan-new"]
    );
    let m = c[1].materialize(&t);
    assert_eq!(
        (
            m.id.as_str(),
            m.name.as_str(),
            m.kind.as_str(),
            m.updated_at.as_str()
        ),
        ("orphan-old", "Item orphan-old", "image", "u-orphan-old")
    );
    assert_eq!(ts(m.created_at), days_ago(200.0));
    assert_eq!(m.file_size, 1000);
    // Storage relief uses a lower minimum age: the 29-day item joins, the 2-day one does not.
    let c7 = unreferenced_candidates(&t, &h, &cache, now(), 7, &HashSet::new());
    assert!(c7.iter().any(|c| t.id(c.row) == "near-29"));
    assert!(!c7.iter().any(|c| t.id(c.row) == "points"));
    // Excluded ids (handled this run) are skipped.
    let ex: HashSet<String> = ["orphan-old".to_string()].into();
    let c = unreferenced_candidates(&t, &h, &cache, now(), 30, &ex);
    assert!(!c.iter().any(|c| t.id(c.row) == "orphan-old"));
}

#[test]
fn harvest_is_incomplete_without_layout_or_active_details_or_playlist_items() {
    let (content, playlists, mut cache) = orphan_fixture();
    assert!(cache.remove("layout"));
    let t = table(&content, &cache);
    let h = harvest_references(&t, PlaylistRefs::from_items(&playlists), &cache);
    assert!(!h.complete());
    assert!(h.reason().contains("layout"), "{}", h.reason());
    let (content, playlists, mut cache) = orphan_fixture();
    assert!(cache.remove("points"));
    let t = table(&content, &cache);
    let h = harvest_references(&t, PlaylistRefs::from_items(&playlists), &cache);
    assert!(h.reason().contains("replacement"), "{}", h.reason());
    let (content, _, cache) = orphan_fixture();
    let t = table(&content, &cache);
    let h = harvest_references(
        &t,
        PlaylistRefs::from_items(&[json!({"id": "p", "itemCount": 3})]),
        &cache,
    );
    assert!(h.reason().contains("items array"), "{}", h.reason());
    // An active item without a string id can never have a fresh entry.
    let (mut content, playlists, cache) = orphan_fixture();
    content.push(json!({"id": 7, "type": "image", "status": "active"}));
    let t = table(&content, &cache);
    let h = harvest_references(&t, PlaylistRefs::from_items(&playlists), &cache);
    assert!(h.reason().contains("1 active item(s)"), "{}", h.reason());
}

#[test]
fn orphan_confirm_needs_active_unreferenced_non_global_unchanged() {
    assert!(confirm_orphan(&detail("a", json!({})), "u-a").is_ok());
    for (extra, want) in [
        (json!({"status": "archived"}), "status=archived"),
        (
            json!({"playlistItems": [{"playlistId": "p"}]}),
            "referenced",
        ),
        (json!({"isGlobal": true}), "global"),
        (json!({"updatedAt": "later"}), "changed"),
        (json!({"playlistItems": null}), "unknown"),
    ] {
        let e = confirm_orphan(&detail("a", extra), "u-a").unwrap_err();
        assert!(e.contains(want), "{e} should contain {want}");
    }
}

/// An owned copy of a [`ThumbCheck`] (the check borrows a table local to [`thumb_of`]).
#[derive(Debug, PartialEq)]
enum Owned {
    Missing,
    Cached { ok: bool, detail: Option<String> },
    Http(String),
    S3(String),
    NotExamined,
}

/// The thumbnail check of one listed item (its table built with `cache`).
fn thumb_of(it: &Value, cache: &DetailCache, recheck_hours: u64, s3: bool) -> Option<Owned> {
    let t = table(std::slice::from_ref(it), cache);
    let r = t.rows().next()?;
    let c = thumbnail_check(&t, r, cache.fresh(&t, r), now(), recheck_hours, s3);
    c.map(|c| match c {
        ThumbCheck::Missing => Owned::Missing,
        ThumbCheck::Cached { ok, detail } => Owned::Cached {
            ok,
            detail: detail.map(String::from),
        },
        ThumbCheck::Http(u) => Owned::Http(u.to_string()),
        ThumbCheck::S3(k) => Owned::S3(k.to_string()),
        ThumbCheck::NotExamined(_) => Owned::NotExamined,
    })
}

#[test]
fn thumbnail_rules_probe_only_what_can_be_probed() {
    let none = DetailCache::default();
    let mut it = item("a", "image", "active", 3.0);
    it["thumbnail"] = Value::Null;
    assert_eq!(thumb_of(&it, &none, 24, false), Some(Owned::Missing));
    it["thumbnail"] = json!("   ");
    assert_eq!(thumb_of(&it, &none, 24, false), Some(Owned::Missing));
    it["thumbnail"] = json!(42);
    assert_eq!(thumb_of(&it, &none, 24, false), Some(Owned::NotExamined));
    it["thumbnail"] = json!("minio://org/t.jpg");
    assert_eq!(thumb_of(&it, &none, 24, false), Some(Owned::NotExamined));
    assert_eq!(
        thumb_of(&it, &none, 24, true),
        Some(Owned::S3("org/t.jpg".into()))
    );
    // Not kept by a walk without S3 (no cached probe): still not examined, never probed.
    let t = ContentTable::from_items(
        std::slice::from_ref(&it),
        TableOptions::default(),
        Some(&none),
    );
    assert!(matches!(
        thumbnail_check(&t, 0, None, now(), 24, false),
        Some(ThumbCheck::NotExamined(_))
    ));
    it["thumbnail"] = json!("https://cdn.test/t.jpg");
    assert_eq!(
        thumb_of(&it, &none, 24, false),
        Some(Owned::Http("https://cdn.test/t.jpg".into()))
    );
    it["thumbnail"] = json!("HTTP://cdn.test/t.jpg");
    assert_eq!(
        thumb_of(&it, &none, 24, false),
        Some(Owned::Http("HTTP://cdn.test/t.jpg".into()))
    );
    it["thumbnail"] = json!("ftp://cdn.test/t.jpg");
    assert_eq!(thumb_of(&it, &none, 24, true), Some(Owned::NotExamined));
    it["thumbnail"] = json!("https://cdn.test/t.jpg");
    let mut cache = cache_with(&[("a", json!({"updatedAt": "u-a"}))]);
    cache.set_thumbnail(
        "a",
        ThumbnailCheck {
            url: "https://cdn.test/t.jpg".into(),
            ok: false,
            checked_at: ts(now() - ChronoDuration::hours(2)),
            detail: Some("HEAD answered 404".into()),
        },
    );
    assert_eq!(
        thumb_of(&it, &cache, 24, false),
        Some(Owned::Cached {
            ok: false,
            detail: Some("HEAD answered 404".into())
        })
    );
    // A cached probe of an unknown URL form is reused too (the walk keeps the URL of items with a probe).
    let mut ftp = it.clone();
    ftp["thumbnail"] = json!("ftp://cdn.test/t.jpg");
    let mut c2 = cache.clone();
    c2.set_thumbnail(
        "a",
        ThumbnailCheck {
            url: "ftp://cdn.test/t.jpg".into(),
            ok: true,
            checked_at: ts(now() - ChronoDuration::hours(2)),
            detail: None,
        },
    );
    let t = ContentTable::from_items(
        std::slice::from_ref(&ftp),
        TableOptions::default(),
        Some(&c2),
    );
    assert!(matches!(
        thumbnail_check(&t, 0, c2.fresh(&t, 0), now(), 24, false),
        Some(ThumbCheck::Cached { ok: true, .. })
    ));
    // Older than the recheck interval, or another URL → probe again.
    assert!(matches!(
        thumb_of(&it, &cache, 1, false),
        Some(Owned::Http(_))
    ));
    it["thumbnail"] = json!("https://cdn.test/other.jpg");
    assert!(matches!(
        thumb_of(&it, &cache, 24, false),
        Some(Owned::Http(_))
    ));
    // Not image/video, or not active → no check.
    let mut pdf = item("p", "pdf", "active", 3.0);
    pdf["thumbnail"] = Value::Null;
    assert_eq!(thumb_of(&pdf, &none, 24, false), None);
    let mut arch = item("x", "video", "archived", 3.0);
    arch["thumbnail"] = Value::Null;
    assert_eq!(thumb_of(&arch, &none, 24, false), None);
}

#[test]
fn oversized_is_strictly_above_the_limit() {
    let max = 100 * 1_048_576;
    let none = DetailCache::default();
    let verdict = |it: &Value| size_verdict(&table(std::slice::from_ref(it), &none), 0, max);
    let mut it = item("a", "video", "active", 3.0);
    it["fileSize"] = json!(max);
    assert_eq!(verdict(&it), SizeVerdict::Ok);
    it["fileSize"] = json!(max + 1);
    assert_eq!(verdict(&it), SizeVerdict::Oversized(max + 1));
    it["fileSize"] = Value::Null;
    assert_eq!(verdict(&it), SizeVerdict::Ok);
    it.as_object_mut().unwrap().remove("fileSize");
    assert_eq!(verdict(&it), SizeVerdict::Ok);
    it["fileSize"] = json!("big");
    assert_eq!(verdict(&it), SizeVerdict::Unparseable);
    it["fileSize"] = json!(-5);
    assert_eq!(verdict(&it), SizeVerdict::Unparseable);
}

#[test]
fn storage_thresholds_are_strict_and_zero_quota_has_no_verdict() {
    let v = |u: u64, q: i64| json!({"usedBytes": u, "quotaBytes": q});
    assert!(matches!(
        storage_verdict(&v(80, 100), 80.0, 90.0),
        StorageVerdict::Ok { .. }
    ));
    assert!(matches!(
        storage_verdict(&v(81, 100), 80.0, 90.0),
        StorageVerdict::Warning { .. }
    ));
    assert!(matches!(
        storage_verdict(&v(90, 100), 80.0, 90.0),
        StorageVerdict::Warning { .. }
    ));
    assert!(matches!(
        storage_verdict(&v(91, 100), 80.0, 90.0),
        StorageVerdict::Critical { .. }
    ));
    assert!(matches!(
        storage_verdict(&v(5, 0), 80.0, 90.0),
        StorageVerdict::NoVerdict(_)
    ));
    assert!(matches!(
        storage_verdict(&json!({"usedBytes": "x"}), 80.0, 90.0),
        StorageVerdict::NoVerdict(_)
    ));
    // Storage archiving stops once projected usage is under the critical threshold.
    assert!(storage_still_critical(95, 4, 100, 90.0));
    assert!(!storage_still_critical(95, 6, 100, 90.0));
}
