//! The `tenantd` binary: parse the command line, read settings, start logging, run. The client
//! commands (`tenants`, `jobs`) go straight to the HTTP client and need no daemon settings.

use clap::{Parser, Subcommand};
use tenantd::cli::{self, ClientArgs, JobsCommand, TenantsCommand};
use tenantd::config::{LogFormat, Settings};
use tenantd::{app, db, telemetry};

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
        daemon => daemon,
    };
    let mut settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tenantd: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if cli.log_json {
        settings.log_format = LogFormat::Json;
    }
    telemetry::init(settings.log_format);
    let result = match command {
        Command::Serve => app::serve(settings, app::shutdown_on_signals()).await,
        Command::Worker => app::work(settings, app::shutdown_on_signals()).await,
        Command::Migrate => {
            async {
                let pool = db::connect(&settings.database_url, 2).await?;
                db::migrate(&pool).await?;
                tracing::info!("control schema is up to date");
                Ok(())
            }
            .await
        }
        Command::Tenants { .. } | Command::Jobs { .. } => unreachable!("handled above"),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "tenantd stopped");
            eprintln!("tenantd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
