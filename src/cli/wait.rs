//! `--wait`: follow a job until it ends. On a terminal, a spinner with the current step and the
//! elapsed time; otherwise one plain line per change, so logs of scripted runs stay readable.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::client::{Client, ClientError};
use super::output::attempt;
use crate::tenant_id::TenantId;
use crate::wire::jobs::{JobDetail, StepView};
use crate::wire::jobs::{JobState, Outcome};
use crate::wire::tenants::TenantStatus;
use crate::wire::tenants::TenantView;

/// Where progress goes: stdout for text output, stderr when stdout carries JSON.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Stdout,
    Stderr,
}

/// How a followed job ended.
pub enum Ended {
    /// The job succeeded and the tenant reached the status asked for.
    Reached(TenantView),
    /// The job failed or was cancelled, or the tenant ended elsewhere; with the cause.
    Failed(TenantView, String),
}

enum Progress {
    Bar(ProgressBar),
    Lines(Target, Instant),
}

impl Progress {
    fn new(target: Target) -> Self {
        let tty = match target {
            Target::Stdout => std::io::stdout().is_terminal(),
            Target::Stderr => std::io::stderr().is_terminal(),
        };
        if !tty {
            return Progress::Lines(target, Instant::now());
        }
        let draw = match target {
            Target::Stdout => ProgressDrawTarget::stdout(),
            Target::Stderr => ProgressDrawTarget::stderr(),
        };
        let bar = ProgressBar::with_draw_target(None, draw);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress::Bar(bar)
    }

    fn show(&self, message: String) {
        match self {
            Progress::Bar(bar) => bar.set_message(message),
            Progress::Lines(target, started) => {
                let line = format!("[{:>5}s] {message}", started.elapsed().as_secs());
                let _ = match target {
                    Target::Stdout => writeln!(std::io::stdout(), "{line}"),
                    Target::Stderr => writeln!(std::io::stderr(), "{line}"),
                };
            }
        }
    }

    /// A line that stays: printed above the spinner on a terminal, as a plain line otherwise.
    fn record(&self, message: String) {
        match self {
            Progress::Bar(bar) => bar.println(message),
            Progress::Lines(..) => self.show(message),
        }
    }

    fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// One recorded step of the job's history.
fn recorded(tenant: &str, kind: &str, step: &StepView, max_attempts: i32) -> String {
    let mut s = format!("{kind} {tenant}: {} {}", step.step, step.outcome.as_str());
    if matches!(step.outcome, Outcome::Retrying | Outcome::Failed) {
        s.push_str(&format!(" ({})", attempt(step.attempt, max_attempts)));
    }
    if let Some(started) = step.started_at {
        let ms = (step.finished_at - started).num_milliseconds().max(0);
        s.push_str(&format!(" in {ms} ms"));
    }
    if let Some(e) = &step.error {
        s.push_str(&format!(": {e}"));
    }
    s
}

fn describe(tenant: &str, job: &JobDetail) -> String {
    let j = &job.job;
    let mut s = format!("{} {tenant}: {} step {}", j.kind, j.state.as_str(), j.step);
    if j.attempt > 0 {
        s.push_str(&format!(" ({})", attempt(j.attempt, j.max_attempts)));
    }
    if j.cancel_requested {
        s.push_str(", cancel requested");
    }
    if let Some(e) = &j.error {
        s.push_str(&format!(", rolling back after: {e}"));
    }
    s
}

/// How long `--wait` lets a quiet stream be before it looks anyway, in polls.
const QUIET_POLLS: u32 = 10;

/// Follows `job_id` until it ends, then reads the tenant: it looks again at every event about
/// the tenant (the stream of `/v1/events`), and when none came for `QUIET_POLLS` intervals;
/// without a stream (it broke, or the API has none), every `interval`.
pub async fn follow(
    client: &Client,
    tenant: &TenantId,
    job_id: &str,
    goal: TenantStatus,
    interval: Duration,
    target: Target,
) -> Result<Ended, ClientError> {
    let progress = Progress::new(target);
    // Opened before the first look: what happens after it, the stream tells.
    let mut news = client.tenant_events(tenant).await;
    let mut last = String::new();
    let mut recorded_rows = 0;
    let job = loop {
        let job = match client.get_job(job_id).await {
            Ok(job) => job,
            Err(e) => {
                progress.finish();
                return Err(e);
            }
        };
        // Every step the job recorded since the last look, so quick steps are not missed.
        for step in job.history.iter().skip(recorded_rows) {
            if step.outcome != Outcome::Enqueued {
                progress.record(recorded(tenant, &job.job.kind, step, job.job.max_attempts));
            }
        }
        recorded_rows = job.history.len();
        let line = describe(tenant, &job);
        if line != last && job.job.state.is_active() {
            progress.show(line.clone());
            last = line;
        }
        if !job.job.state.is_active() {
            break job;
        }
        match news.as_mut() {
            Some(stream) => match tokio::time::timeout(interval * QUIET_POLLS, stream.next()).await
            {
                Ok(Some(_)) | Err(_) => {}
                Ok(None) => {
                    tracing::debug!("the event stream ended; polling");
                    news = None;
                }
            },
            None => tokio::time::sleep(interval).await,
        }
    };
    progress.finish();
    let t = client.get_tenant(tenant).await?;
    let j = &job.job;
    if j.state == JobState::Succeeded && t.status == goal {
        return Ok(Ended::Reached(t));
    }
    let cause = j
        .error
        .clone()
        .or_else(|| t.error.clone())
        .unwrap_or_else(|| format!("the job ended {}", j.state.as_str()));
    let cause = format!(
        "{} {tenant} {}: {cause}",
        j.kind,
        match j.state {
            JobState::Cancelled => "was cancelled",
            _ => "failed",
        }
    );
    Ok(Ended::Failed(t, cause))
}
