//! The `vizora-ops` command line (design/README.md §1): `run`, `status`, `sandbox`, `demo`, `config check`, `deploy`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use vizora_ops::config::Config;
use vizora_ops::model::AgentName;
use vizora_ops::runner::{self, RunOptions, Wiring};

#[derive(Parser)]
#[command(
    name = "vizora-ops",
    version,
    about = "Autonomous operations agents for the Vizora digital-signage platform"
)]
struct Cli {
    /// Optional TOML configuration file (keys are the environment variable names); wins over OPS_CONFIG_FILE.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one agent once and exit with its code (0 clear, 1 findings remain, 2 could not run).
    Run {
        /// health-guardian, content-lifecycle, fleet-manager, schedule-doctor, ops-reporter or db-maintainer.
        agent: String,
        /// Read everything, change nothing, list what a real run would change.
        #[arg(long)]
        dry_run: bool,
        /// Print one JSON object (the AgentResult plus exitCode); log lines go to stderr.
        #[arg(long)]
        json: bool,
    },
    /// Current system status, open incidents, last runs and the remediations of the last 24 h.
    Status {
        /// Print the state file's JSON plus computedStatus.
        #[arg(long)]
        json: bool,
    },
    /// Serve a local Vizora stand-in (API on PORT, web on PORT+1, realtime on PORT+2) with fault injection.
    Sandbox {
        /// Tenant fixture (default: the built-in demo tenant).
        #[arg(long)]
        fixture: Option<PathBuf>,
        /// API port; default 0 = three free consecutive high ports, printed at start (3000 is Vizora's own).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Turn the production per-IP throttling off.
        #[arg(long)]
        no_throttle: bool,
    },
    /// The built-in demo: a sandbox tenant with seeded faults, every agent once, nothing real contacted.
    Demo {
        /// Working directory of the demo (state and audit files are left there).
        #[arg(long, default_value = "vizora-ops-demo")]
        dir: PathBuf,
        /// Run every agent a second time and show that it changes nothing.
        #[arg(long)]
        second_pass: bool,
        /// Also print the agents' log lines.
        #[arg(long)]
        verbose: bool,
    },
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Print ready-to-use deployment files for pm2, systemd or k8s.
    Deploy {
        /// pm2, systemd or k8s.
        target: String,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Validate the configuration and print it with secrets masked.
    Check,
}

fn load_config(path: Option<&std::path::Path>) -> Result<Arc<Config>, ExitCode> {
    match Config::load(path) {
        Ok(c) => Ok(Arc::new(c)),
        Err(e) => {
            vizora_ops::errln!("{e}");
            Err(ExitCode::from(2))
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run {
            agent,
            dry_run,
            json,
        } => {
            if json {
                vizora_ops::logging::log_to_stderr(true);
            }
            // `--json` promises exactly one JSON object on stdout, also when the run cannot start (agents.md 1.5).
            let early_exit = |msg: String| {
                vizora_ops::errln!("{msg}");
                if json {
                    let v = serde_json::json!({
                        "agent": agent,
                        "exitCode": 2,
                        "error": vizora_ops::redact::redact_str(&msg),
                    });
                    vizora_ops::logging::out_raw(
                        serde_json::to_string_pretty(&v).unwrap_or_default(),
                    );
                }
                ExitCode::from(2)
            };
            let agent = match AgentName::parse(&agent) {
                Ok(a) => a,
                Err(e) => return early_exit(format!("configuration error: {e}")),
            };
            let cfg = match Config::load(cli.config.as_deref()) {
                Ok(c) => Arc::new(c),
                Err(e) => return early_exit(e.to_string()),
            };
            vizora_ops::logging::set_format(cfg.log_format);
            for (k, from) in cfg.source.unread() {
                vizora_ops::logging::warn(
                    "config",
                    format!("{k} ({from}) is set but not used by this configuration (misspelt?)"),
                );
            }
            let report =
                runner::run_agent(cfg, agent, RunOptions { dry_run }, Wiring::default()).await;
            if json {
                vizora_ops::logging::out_raw(
                    serde_json::to_string_pretty(&report.to_json()).unwrap_or_default(),
                );
            } else {
                for line in &report.report {
                    vizora_ops::outln!("  {line}");
                }
            }
            ExitCode::from(report.exit_code as u8)
        }
        Cmd::Status { json } => {
            if json {
                // stdout carries the JSON document only.
                vizora_ops::logging::log_to_stderr(true);
            }
            let cfg = match load_config(cli.config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            vizora_ops::logging::set_format(cfg.log_format);
            ExitCode::from(vizora_ops::cli::print_status(&cfg, json))
        }
        Cmd::Sandbox {
            fixture,
            port,
            no_throttle,
        } => match vizora_ops::sandbox::run_standalone(fixture, port, !no_throttle).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                vizora_ops::errln!("sandbox: {e:#}");
                ExitCode::from(2)
            }
        },
        Cmd::Demo {
            dir,
            second_pass,
            verbose,
        } => {
            if cli.config.is_some() {
                vizora_ops::errln!(
                    "note: the demo ignores --config (and .env and every real credential): it runs against its own sandbox"
                );
            }
            match vizora_ops::demo::run_demo(&dir, second_pass, verbose).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    vizora_ops::errln!("demo failed: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Config {
            cmd: ConfigCmd::Check,
        } => config_check(cli.config.as_deref()),
        Cmd::Deploy { target } => match vizora_ops::cli::deploy_files(&target) {
            Ok(text) => {
                vizora_ops::logging::write_stdout(text.as_bytes());
                ExitCode::SUCCESS
            }
            Err(e) => {
                vizora_ops::errln!("{e}");
                ExitCode::from(2)
            }
        },
    }
}

/// `vizora-ops config check` (agents.md 8): every problem in one pass, then what each agent can do with what is set.
/// Exit 2 on any configuration error (also those a run only meets later: process names, backup locations); missing
/// API credentials are a warning, exit 0, because health-guardian, db-maintainer and ops-reporter run without them,
/// but the headline then says that the agents that need the API login cannot run.
fn config_check(config_file: Option<&std::path::Path>) -> ExitCode {
    let check = Config::check(config_file);
    let cfg = &check.config;
    for e in &check.errors {
        vizora_ops::errln!(
            "configuration error: {}",
            vizora_ops::config::mask_userinfo(e)
        );
    }
    let missing = cfg.missing_credentials();
    if !check.errors.is_empty() {
        vizora_ops::errln!(
            "configuration invalid: {} error{} (every one is listed above); `run` exits 2 until they are fixed, \
             except for process names and backup locations, which leave the rest of the agent running",
            check.errors.len(),
            if check.errors.len() == 1 { "" } else { "s" }
        );
    } else if missing.is_empty() {
        vizora_ops::outln!("configuration OK");
    } else {
        vizora_ops::outln!(
            "configuration valid but INCOMPLETE: {} not set (or VALIDATOR_EMAIL/VALIDATOR_PASSWORD) — nothing that \
             needs the API login can run: content-lifecycle, fleet-manager and schedule-doctor exit 2, ops-reporter \
             skips the dashboard push",
            missing.join(" and ")
        );
    }
    vizora_ops::outln!("agents:");
    for (agent, can_run, notes) in cfg.agent_readiness() {
        let verdict = match (can_run, notes.is_empty()) {
            (false, _) => "CANNOT RUN",
            (true, true) => "can run",
            (true, false) => "can run, limited",
        };
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(": {}", notes.join("; "))
        };
        vizora_ops::outln!("  {:<18} {verdict}{notes}", agent.as_str());
    }
    for (k, from) in cfg.source.unread() {
        vizora_ops::outln!(
            "  warning: {k} ({from}) is set but not used by this configuration (misspelt? see design/agents.md §8)"
        );
    }
    if cfg.alert.slack_webhook_url.is_none()
        && (cfg.alert.smtp_host.is_none() || cfg.alert.recipients.is_empty())
    {
        vizora_ops::outln!(
            "  warning: no alert channel is configured (SLACK_WEBHOOK_URL, or SMTP_HOST with OPS_ALERT_EMAIL)"
        );
    }
    if check.errors.is_empty() {
        for (k, v) in cfg.describe() {
            vizora_ops::outln!("  {k:<40} {v}");
        }
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
