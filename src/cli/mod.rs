//! The command-line client: `tenantd tenants ...`, `tenantd jobs ...`, `tenantd rollouts ...`,
//! `tenantd pool` and `tenantd audit` talk to a running daemon's HTTP API (`--url`, default `TENANTD_URL`; token
//! from `TENANTD_TOKEN`). They need no control database. API errors print as `tenantd: <code>: <message>` and exit non-zero.

pub mod audit;
pub mod client;
pub mod event_stream;
pub mod output;
pub mod rollout_wait;
pub mod wait;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use secrecy::SecretString;

use client::{Client, ClientError};
use output::Format;
use wait::{Ended, Target};

use crate::tenant_id::TenantId;
use crate::wire::rollouts::RolloutState;
use crate::wire::rollouts::{CreateRollout, RolloutView};
use crate::wire::tenants::{Apply, TenantStatus};

/// Where the API is and how to show its answers; shared by every client command.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Base URL of the tenantd API.
    #[arg(
        long,
        env = "TENANTD_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// Text for people, JSON for scripts.
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub output: Format,
    /// How often `--wait` asks for news.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, global = true, hide = true)]
    pub poll_interval: Duration,
}

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Provision a tenant's database (replaying it is harmless).
    Create {
        id: String,
        #[arg(long)]
        tier: String,
        /// Follow the provisioning until the tenant is ready (exit 0) or it fails (exit 1).
        #[arg(long)]
        wait: bool,
    },
    /// Show one tenant with its latest job.
    Get { id: String },
    /// List tenants, optionally of one status or below a schema version.
    List {
        #[arg(long)]
        status: Option<String>,
        /// Only tenants whose schema version is below this one.
        #[arg(long)]
        schema_version_below: Option<i64>,
        /// Only tenants on this engine version: a major (16) or an exact version (16.9).
        #[arg(long)]
        engine_version: Option<String>,
        /// Only tenants whose instance's certificate is issued by this CA.
        #[arg(long)]
        ca: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        /// `next_cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Deprovision a tenant's database (a final snapshot first, unless told otherwise).
    Delete {
        id: String,
        /// Take no final snapshot (a tier with deletion protection also needs --force).
        #[arg(long)]
        no_final_snapshot: bool,
        /// With --no-final-snapshot: go without one even on a tier with deletion protection.
        #[arg(long, requires = "no_final_snapshot")]
        force: bool,
        /// Follow the deprovisioning until the tenant is deleted (exit 0) or it fails (exit 1).
        #[arg(long)]
        wait: bool,
    },
    /// Move a ready tenant to another tier (storage only grows: a smaller tier keeps it).
    SetTier {
        id: String,
        tier: String,
        /// At once, or in the instance's next maintenance window.
        #[arg(long, value_enum, default_value = "immediately")]
        apply: ApplyArg,
        /// Follow the change until it is done (exit 0) or fails (exit 1; the tenant keeps its
        /// old tier).
        #[arg(long)]
        wait: bool,
    },
    /// Upgrade a ready tenant to a new PostgreSQL major (e.g. 17) by a Blue/Green deployment.
    Upgrade {
        id: String,
        /// The major to move to, e.g. 17.
        #[arg(long = "to")]
        target_version: String,
        /// Switch over at once, or in the tenant's maintenance window.
        #[arg(long, value_enum, default_value = "immediately")]
        apply: ApplyArg,
        /// Follow the upgrade until it is done (exit 0) or fails (exit 1; the tenant keeps its
        /// version).
        #[arg(long)]
        wait: bool,
    },
    /// Stop a ready tenant's instance (data and backups kept); the tenant becomes suspended.
    Suspend {
        id: String,
        /// Follow until the tenant is suspended (exit 0) or the suspend fails (exit 1).
        #[arg(long)]
        wait: bool,
    },
    /// Start a suspended tenant's instance again; the tenant becomes ready.
    Resume {
        id: String,
        /// Follow until the tenant is ready (exit 0) or the resume fails (exit 1).
        #[arg(long)]
        wait: bool,
    },
    /// Re-attach a detached tenant (its instance lost this deployment's ownership tags): the
    /// instance is proven the tenant's, then tagged again.
    Attach { id: String },
}

/// When a tier change or an engine upgrade's switchover takes effect (`--apply`).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ApplyArg {
    Immediately,
    MaintenanceWindow,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Show a job with its step history.
    Get { id: String },
    /// List jobs, newest first.
    List {
        /// queued, running, waiting, succeeded, failed or cancelled.
        #[arg(long)]
        state: Option<String>,
        /// provision, deprovision or reconcile.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        /// `next_cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Cancel a queued or waiting job (it compensates: a provisioning rolls back).
    Cancel { id: String },
    /// Retry a failed job whose tenant is failed, from its first step.
    Retry { id: String },
}

#[derive(Debug, Subcommand)]
pub enum RolloutsCommand {
    /// Start a rollout: canary first, then each stage, a few tenants at a time.
    Create {
        /// What moves: schema (default), engine_major, engine_minor, ca_certificate,
        /// maintenance.
        #[arg(long)]
        kind: Option<String>,
        /// The kind's target: a tenant-schema version (default: the newest in the daemon's
        /// directory), a major (17), a minor (16.9), a CA (rds-ca-rsa4096-g1), a maintenance
        /// action (system-update, ..., all).
        #[arg(long)]
        target: Option<String>,
        /// immediately or maintenance_window (engine and CA kinds); immediate or
        /// next-maintenance (maintenance).
        #[arg(long)]
        apply: Option<String>,
        /// Tenants migrated first, alone (default 1).
        #[arg(long)]
        canary: Option<i32>,
        /// Tenants migrated at once (default 4).
        #[arg(long)]
        concurrency: Option<i32>,
        /// Failed tenants tolerated before the rollout halts (default 0).
        #[arg(long)]
        max_failures: Option<i32>,
        /// Tiers in order, one stage each (e.g. starter,pro,enterprise; default: all in one).
        #[arg(long, value_delimiter = ',')]
        stages: Option<Vec<String>>,
        /// Only these tenants (comma-separated ids).
        #[arg(long, value_delimiter = ',')]
        tenants: Option<Vec<String>>,
        /// Follow it until it ends: exit 0 when it succeeds, 1 when it halts or is cancelled.
        #[arg(long)]
        wait: bool,
    },
    /// Show a rollout with its counts per stage and its failures.
    Get {
        id: String,
        /// Follow it until it ends (exit codes as for create --wait).
        #[arg(long)]
        wait: bool,
    },
    /// List rollouts, newest first.
    List {
        #[arg(long)]
        limit: Option<u32>,
        /// `next_cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Pause a running rollout (running migrations finish).
    Pause { id: String },
    /// Resume a paused or halted rollout (after a halt, the failed tenants go first).
    Resume { id: String },
    /// Cancel a rollout for good.
    Cancel { id: String },
}

/// What a client command asks for.
pub enum Request {
    Tenants(TenantsCommand),
    Jobs(JobsCommand),
    Rollouts(RolloutsCommand),
    /// The warm pool per tier.
    Pool,
    /// The audit trail.
    Audit(audit::AuditArgs),
}

fn fail(message: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("tenantd: {message}");
    ExitCode::from(code)
}

/// Runs a client command; prints what it got and returns the exit code.
pub async fn run(args: ClientArgs, request: Request) -> ExitCode {
    let Some(token) = std::env::var("TENANTD_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    else {
        return fail(
            "TENANTD_TOKEN is not set; set it to one of the daemon's API tokens",
            2,
        );
    };
    let client = match Client::new(&args.url, SecretString::from(token)) {
        Ok(c) => c,
        Err(e) => return fail(e, 2),
    };
    match execute(&client, &args, request).await {
        Ok(code) => code,
        Err(e @ ClientError::Usage(_)) => fail(e, 2),
        Err(e) => fail(e, 1),
    }
}

fn print(args: &ClientArgs, json: String, text: impl FnOnce() -> String) {
    match args.output {
        Format::Json => println!("{json}"),
        Format::Text => print!("{}", text()),
    }
}

async fn execute(
    client: &Client,
    args: &ClientArgs,
    request: Request,
) -> Result<ExitCode, ClientError> {
    let (id, job_id, goal) = match request {
        Request::Rollouts(command) => return rollouts(client, args, command).await,
        Request::Audit(query) => {
            audit::run(client, &query, args.output).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Request::Pool => {
            let pool = client.get_pool().await?;
            print(args, output::json(&pool), || output::pool(&pool));
            return Ok(ExitCode::SUCCESS);
        }
        Request::Jobs(JobsCommand::Get { id }) => {
            let job = client.get_job(&id).await?;
            print(args, output::json(&job), || output::job(&job));
            return Ok(ExitCode::SUCCESS);
        }
        Request::Jobs(JobsCommand::List {
            state,
            kind,
            tenant,
            limit,
            cursor,
        }) => {
            let page = client
                .list_jobs(
                    state.as_deref(),
                    kind.as_deref(),
                    tenant.as_deref(),
                    limit,
                    cursor.as_deref(),
                )
                .await?;
            print(args, output::json(&page), || output::job_page(&page));
            return Ok(ExitCode::SUCCESS);
        }
        Request::Jobs(JobsCommand::Cancel { id }) => {
            let job = client.cancel_job(&id).await?;
            print(args, output::json(&job), || {
                format!("cancel requested: {} {}\n", job.kind, job.id)
            });
            return Ok(ExitCode::SUCCESS);
        }
        Request::Jobs(JobsCommand::Retry { id }) => {
            let r = client.retry_job(&id).await?;
            let tenant = r.tenant.id.clone();
            print(args, output::json(&r), || {
                requested(
                    true,
                    &format!("{} retry", r.job.kind),
                    &tenant,
                    &r.job.id.to_string(),
                )
            });
            return Ok(ExitCode::SUCCESS);
        }
        Request::Tenants(TenantsCommand::Get { id }) => {
            let id = TenantId::parse(&id)?;
            let t = client.get_tenant(&id).await?;
            print(args, output::json(&t), || output::tenant(&t));
            return Ok(ExitCode::SUCCESS);
        }
        Request::Tenants(TenantsCommand::List {
            status,
            schema_version_below,
            engine_version,
            ca,
            limit,
            cursor,
        }) => {
            let page = client
                .list_tenants(
                    status.as_deref(),
                    schema_version_below,
                    engine_version.as_deref(),
                    ca.as_deref(),
                    limit,
                    cursor.as_deref(),
                )
                .await?;
            print(args, output::json(&page), || output::page(&page));
            return Ok(ExitCode::SUCCESS);
        }
        Request::Tenants(TenantsCommand::Create { id, tier, wait }) => {
            let id = TenantId::parse(&id)?;
            let (r, created) = client.create_tenant(&id, &tier).await?;
            if !wait {
                print(args, output::json(&r), || {
                    requested(created, "provision", &id, &r.job.id.to_string())
                });
                return Ok(ExitCode::SUCCESS);
            }
            (id, r.job.id, TenantStatus::Ready)
        }
        Request::Tenants(TenantsCommand::Delete {
            id,
            no_final_snapshot,
            force,
            wait,
        }) => {
            let id = TenantId::parse(&id)?;
            let (r, created) = client.delete_tenant(&id, !no_final_snapshot, force).await?;
            if !wait {
                print(args, output::json(&r), || {
                    requested(created, "deprovision", &id, &r.job.id.to_string())
                });
                return Ok(ExitCode::SUCCESS);
            }
            (id, r.job.id, TenantStatus::Deleted)
        }
        Request::Tenants(TenantsCommand::SetTier {
            id,
            tier,
            apply,
            wait,
        }) => {
            let id = TenantId::parse(&id)?;
            let apply = match apply {
                ApplyArg::Immediately => Apply::Immediately,
                ApplyArg::MaintenanceWindow => Apply::MaintenanceWindow,
            };
            let (r, created) = client.change_tier(&id, &tier, apply).await?;
            let Some(job) = r.job.as_ref().map(|j| j.id) else {
                print(args, output::json(&r), || {
                    format!("tenant {id} is on tier {tier} already: nothing to change\n")
                });
                return Ok(ExitCode::SUCCESS);
            };
            if !wait {
                print(args, output::json(&r), || {
                    requested(created, "tier change", &id, &job.to_string())
                });
                return Ok(ExitCode::SUCCESS);
            }
            (id, job, TenantStatus::Ready)
        }
        Request::Tenants(TenantsCommand::Upgrade {
            id,
            target_version,
            apply,
            wait,
        }) => {
            let id = TenantId::parse(&id)?;
            let apply = match apply {
                ApplyArg::Immediately => Apply::Immediately,
                ApplyArg::MaintenanceWindow => Apply::MaintenanceWindow,
            };
            let (r, created) = client.upgrade(&id, &target_version, apply).await?;
            if !wait {
                print(args, output::json(&r), || {
                    requested(created, "engine upgrade", &id, &r.job.id.to_string())
                });
                return Ok(ExitCode::SUCCESS);
            }
            (id, r.job.id, TenantStatus::Ready)
        }
        Request::Tenants(TenantsCommand::Suspend { id, wait }) => {
            let id = TenantId::parse(&id)?;
            let (r, created) = client.suspend(&id).await?;
            if !wait {
                print(args, output::json(&r), || {
                    requested(created, "suspend", &id, &r.job.id.to_string())
                });
                return Ok(ExitCode::SUCCESS);
            }
            (id, r.job.id, TenantStatus::Suspended)
        }
        Request::Tenants(TenantsCommand::Attach { id }) => {
            let id = TenantId::parse(&id)?;
            let (r, created) = client.attach(&id).await?;
            print(args, output::json(&r), || {
                requested(created, "re-attach", &id, &r.job.id.to_string())
            });
            return Ok(ExitCode::SUCCESS);
        }
        Request::Tenants(TenantsCommand::Resume { id, wait }) => {
            let id = TenantId::parse(&id)?;
            let (r, created) = client.resume(&id).await?;
            if !wait {
                print(args, output::json(&r), || {
                    requested(created, "resume", &id, &r.job.id.to_string())
                });
                return Ok(ExitCode::SUCCESS);
            }
            (id, r.job.id, TenantStatus::Ready)
        }
    };
    let target = match args.output {
        Format::Text => Target::Stdout,
        Format::Json => Target::Stderr,
    };
    let ended = wait::follow(
        client,
        &id,
        &job_id.to_string(),
        goal,
        args.poll_interval,
        target,
    )
    .await?;
    Ok(match ended {
        Ended::Reached(t) => {
            print(args, output::json(&t), || output::tenant(&t));
            ExitCode::SUCCESS
        }
        Ended::Failed(t, cause) => {
            print(args, output::json(&t), || output::tenant(&t));
            fail(cause, 1)
        }
    })
}

async fn rollouts(
    client: &Client,
    args: &ClientArgs,
    command: RolloutsCommand,
) -> Result<ExitCode, ClientError> {
    let show = |r: &RolloutView| print(args, output::json(r), || output::rollout(r));
    let (id, wait) = match command {
        RolloutsCommand::Create {
            kind,
            target,
            apply,
            canary,
            concurrency,
            max_failures,
            stages,
            tenants,
            wait,
        } => {
            // A schema rollout's target is a version number; the other kinds' are strings.
            let schema = matches!(kind.as_deref(), None | Some("schema"));
            let target_version = target.map(|t| match t.parse::<i64>() {
                Ok(v) if schema => crate::wire::rollouts::Target::Version(v),
                _ => crate::wire::rollouts::Target::Named(t),
            });
            let body = CreateRollout {
                kind,
                target_version,
                apply,
                canary,
                concurrency,
                max_failures,
                stages,
                tenants,
            };
            let r = client.create_rollout(&body).await?;
            if !wait {
                show(&r);
                return Ok(ExitCode::SUCCESS);
            }
            (r.id.to_string(), true)
        }
        RolloutsCommand::Get { id, wait } => (id, wait),
        RolloutsCommand::List { limit, cursor } => {
            let page = client.list_rollouts(limit, cursor.as_deref()).await?;
            print(args, output::json(&page), || output::rollout_page(&page));
            return Ok(ExitCode::SUCCESS);
        }
        RolloutsCommand::Pause { id } => {
            show(&client.steer_rollout(&id, "pause").await?);
            return Ok(ExitCode::SUCCESS);
        }
        RolloutsCommand::Resume { id } => {
            show(&client.steer_rollout(&id, "resume").await?);
            return Ok(ExitCode::SUCCESS);
        }
        RolloutsCommand::Cancel { id } => {
            show(&client.steer_rollout(&id, "cancel").await?);
            return Ok(ExitCode::SUCCESS);
        }
    };
    if !wait {
        show(&client.get_rollout(&id).await?);
        return Ok(ExitCode::SUCCESS);
    }
    let target = match args.output {
        Format::Text => Target::Stdout,
        Format::Json => Target::Stderr,
    };
    let r = rollout_wait::follow(client, &id, args.poll_interval, target).await?;
    show(&r);
    Ok(match r.state {
        RolloutState::Succeeded => ExitCode::SUCCESS,
        state => fail(
            format!(
                "rollout {} {}: {}",
                r.id,
                state.as_str(),
                r.reason.as_deref().unwrap_or("no reason recorded")
            ),
            1,
        ),
    })
}

/// The line a request without `--wait` prints.
fn requested(created: bool, kind: &str, id: &str, job: &str) -> String {
    let what = if created {
        "requested"
    } else {
        "already requested"
    };
    format!("{what}: {kind} {id}, job {job}\n")
}
