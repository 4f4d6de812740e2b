//! Fixtures shared by the unit tests of this folder: schedules and displays as the API sends them.

use crate::agents::entities::{FromItem, Records};
use crate::model::parse_ts;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub(super) fn at(s: &str) -> DateTime<Utc> {
    parse_ts(s).unwrap()
}

pub(super) fn sched(
    id: &str,
    prio: i64,
    start: &str,
    end: Option<&str>,
    days: &[i64],
    st: Option<i64>,
    et: Option<i64>,
) -> Value {
    json!({"id": id, "name": format!("S {id}"), "priority": prio, "isActive": true, "startDate": start,
           "endDate": end, "daysOfWeek": days, "startTime": st, "endTime": et, "playlistId": "p1",
           "displayId": "d1", "displayGroupId": null})
}

pub(super) fn records<T: FromItem>(v: &[Value]) -> Vec<T> {
    Records::from_values(v)
}

pub(super) const ALL: &[i64] = &[0, 1, 2, 3, 4, 5, 6];

pub(super) fn display(id: &str, tz: &str, disabled: bool) -> Value {
    json!({"id": id, "nickname": format!("Screen {id}"), "timezone": tz, "isDisabled": disabled,
           "currentPlaylistId": null})
}
