//! Fixtures shared by the unit tests of this folder: a configuration from pairs, a fixed clock, a state with runs.

use crate::config::{Config, Source};
use crate::model::{OpsState, parse_ts};
use chrono::{DateTime, Utc};
use serde_json::Value;

pub(super) fn cfg(pairs: &[(&str, &str)]) -> Config {
    let d = std::env::temp_dir();
    Config::from_source(Source::from_pairs(pairs.iter().copied()), &d).unwrap()
}

pub(super) fn t0() -> DateTime<Utc> {
    parse_ts("2026-08-22T10:00:00.000Z").unwrap()
}

pub(super) fn state_with_runs(runs: &[(&str, Value)]) -> OpsState {
    let mut st = OpsState::empty(t0());
    for (k, v) in runs {
        st.last_run.insert(k.to_string(), v.clone());
    }
    st
}
