//! The `tenantd` binary: parse the command line, read settings, start logging, run. The client
//! commands (`tenants`, `jobs`) go straight to the HTTP client and need no daemon settings.

use clap::{Parser, Subcommand};
use tenantd::cli::audit::AuditArgs;
use tenantd::cli::{self, ClientArgs, JobsCommand, RolloutsCommand, TenantsCommand};
use tenantd::config::{self, ConfigError, Env, LogFormat, Settings};
use tenantd::{app, telemetry};

#[derive(Parser)]
#[command(
    name = "tenantd",
    version,
    about = "One RDS PostgreSQL database per SaaS tenant"
)]
struct Cli {
    /// Log JSON lines instead of text (same as TENANTD_LOG_FORMAT=json).
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and the worker.
    Serve,
    /// Run the worker alone.
    Worker,
    /// Apply the control database schema and exit.
    Migrate,
    /// Ask a running daemon for tenants' databases, look at them, take them away.
    Tenants {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// Look at a running daemon's jobs.
    Jobs {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Bring a new tenant-schema version to the fleet, canary first, and follow it.
    Rollouts {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: RolloutsCommand,
    },
    /// Show a running daemon's warm pool: standbys per tier.
    Pool {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show who asked for what, from where, and how it ended (needs an admin token).
    Audit {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        query: AuditArgs,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        Command::Tenants { client, command } => {
            return cli::run(client, cli::Request::Tenants(command)).await;
        }
        Command::Jobs { client, command } => {
            return cli::run(client, cli::Request::Jobs(command)).await;
        }
        Command::Rollouts { client, command } => {
            return cli::run(client, cli::Request::Rollouts(command)).await;
        }
        Command::Pool { client } => {
            return cli::run(client, cli::Request::Pool).await;
        }
        Command::Audit { client, query } => {
            return cli::run(client, cli::Request::Audit(query)).await;
        }
        daemon => daemon,
    };
    let env = Env(|name| std::env::var(name).ok());
    if let Command::Migrate = command {
        // Only the database URL: migrating needs no provisioning settings.
        let url = match config::database_url(&env) {
            Ok(url) => url,
            Err(e) => return config_error(e),
        };
        let format = config::log_format(&env).unwrap_or(LogFormat::Text);
        telemetry::init(if cli.log_json {
            LogFormat::Json
        } else {
            format
        });
        return finish(app::migrate(&url).await);
    }
    let mut settings = match Settings::load(&env) {
        Ok(s) => s,
        Err(e) => return config_error(e),
    };
    if let Command::Serve = command
        && let Err(e) = settings.require_api_tokens()
    {
        return config_error(e);
    }
    if cli.log_json {
        settings.log_format = LogFormat::Json;
    }
    telemetry::init(settings.log_format);
    let result = match command {
        Command::Serve => app::serve(settings, app::shutdown_on_signals()).await,
        Command::Worker => app::work(settings, app::shutdown_on_signals()).await,
        Command::Migrate
        | Command::Tenants { .. }
        | Command::Jobs { .. }
        | Command::Rollouts { .. }
        | Command::Pool { .. }
        | Command::Audit { .. } => {
            unreachable!("handled above")
        }
    };
    finish(result)
}

/// A bad setting: named, exit code 2.
fn config_error(e: ConfigError) -> std::process::ExitCode {
    eprintln!("tenantd: configuration error: {e}");
    std::process::ExitCode::from(2)
}

fn finish(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // A setting found wrong only once AWS could be asked (the engine version).
        Err(e) if e.downcast_ref::<ConfigError>().is_some() => {
            tracing::error!(error = %e, "tenantd stopped: configuration error");
            config_error(e.downcast::<ConfigError>().expect("checked above"))
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "tenantd stopped");
            eprintln!("tenantd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
