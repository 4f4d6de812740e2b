//! vizora-ops: autonomous operations for the Vizora digital-signage platform.
//!
//! Six agents (health-guardian, content-lifecycle, fleet-manager, schedule-doctor, ops-reporter, db-maintainer) each
//! run Authenticate → Detect → Remediate → Verify → Log over small traits, wired to real implementations in
//! [`runner`]. The specification is `design/agents.md` (copied rules are cited by section).

#![warn(missing_docs)]

pub mod agents;
pub mod alert;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod effects;
pub mod logging;
pub mod maint;
pub mod model;
pub mod procman;
pub mod redact;
pub mod runner;
pub mod runtime;
pub mod sandbox;
pub mod state;
pub mod store;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod vizora;
