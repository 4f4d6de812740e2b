//! `vizora-ops demo` (design/README.md §1): written next.
use std::path::Path;

/// Runs the demo in `dir`.
pub async fn run_demo(_dir: &Path, _second_pass: bool, _verbose: bool) -> anyhow::Result<()> {
    anyhow::bail!("the demo is not wired yet")
}
