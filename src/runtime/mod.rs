//! The runtime (design/README.md §3 "runtime"): a long-lived [`Runtime`] (configuration, clock, HTTP client, the API
//! session, the rate budget, the stores as trait objects, the alert sink) and [`run_once`], the run lifecycle of
//! agents.md 1.3 for one [`Agent`]. The one-shot CLI (`crate::runner::run_agent`) is a `Runtime` used once.

pub mod agent;
pub mod run;

pub use agent::{Agent, ApiUse, registry};
pub use run::{RunOptions, RunReport, Runtime, Wiring, default_alert_sink, run_once};
