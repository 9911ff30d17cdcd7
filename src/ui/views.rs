//! What the console's pages show, shaped from the records: status badges that read without
//! colour (an icon and a word), durations for people, and a job's timeline drawn to scale.

use chrono::{DateTime, Duration, Utc};

use crate::audit::Asker;
use crate::queue::{HistoryEntry, Job, JobState, Outcome};
use crate::tenants::{Tenant, TenantStatus};
use crate::workflow::{Deprovision, Provision, Workflow};

/// A status as a badge: its word, an icon that carries it without colour, and a CSS class.
#[derive(Debug, Clone)]
pub struct Badge {
    pub word: &'static str,
    pub icon: &'static str,
    pub class: &'static str,
}

pub fn tenant_badge(status: TenantStatus) -> Badge {
    let (icon, class) = match status {
        TenantStatus::Ready => ("✓", "ok"),
        TenantStatus::Provisioning | TenantStatus::Deprovisioning => ("↻", "busy"),
        TenantStatus::Failed => ("✕", "bad"),
        TenantStatus::Deleted => ("–", "off"),
        TenantStatus::Suspended => ("❚❚", "off"),
        TenantStatus::Lost => ("?", "bad"),
        TenantStatus::Degraded => ("!", "warn"),
        TenantStatus::Detached => ("⛓", "warn"),
    };
    Badge {
        word: status.as_str(),
        icon,
        class,
    }
}

pub fn job_badge(state: JobState) -> Badge {
    let (icon, class) = match state {
        JobState::Queued => ("○", "busy"),
        JobState::Running => ("▶", "busy"),
        JobState::Waiting => ("⧗", "busy"),
        JobState::Succeeded => ("✓", "ok"),
        JobState::Failed => ("✕", "bad"),
        JobState::Cancelled => ("⊘", "off"),
    };
    Badge {
        word: state.as_str(),
        icon,
        class,
    }
}

/// A duration as people read it: `850ms`, `3.2s`, `4m 10s`, `2h 5m`, `3d 4h`.
pub fn human(d: Duration) -> String {
    let ms = d.num_milliseconds().max(0);
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m {}s", ms / 60_000, (ms / 1000) % 60),
        3_600_000..86_400_000 => format!("{}h {}m", ms / 3_600_000, (ms / 60_000) % 60),
        _ => format!("{}d {}h", ms / 86_400_000, (ms / 3_600_000) % 24),
    }
}

/// A moment as `2026-12-06 18:31:38 UTC`.
pub fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// How long ago, for lists.
pub fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!("{} ago", human(now - at))
}

/// One row of a tenant list.
pub struct TenantRow {
    pub id: String,
    pub tier: String,
    pub badge: Badge,
    pub job: Option<JobLine>,
    pub updated: String,
    pub drifted: bool,
    /// Engine version and CA, `—` when not known.
    pub engine: String,
    pub ca: String,
}

impl TenantRow {
    pub fn new(t: &Tenant, job: Option<&Job>, now: DateTime<Utc>) -> Self {
        TenantRow {
            id: t.id.clone(),
            tier: t.tier.clone(),
            badge: tenant_badge(t.status),
            job: job.map(|j| JobLine::new(j, now)),
            updated: ago(t.updated_at, now),
            drifted: t.drift.as_ref().is_some_and(|d| !d.0.is_empty()),
            engine: or_dash(t.engine_version.clone()),
            ca: or_dash(t.ca_certificate.clone()),
        }
    }
}

/// A job in one line: for lists.
pub struct JobLine {
    pub id: String,
    pub kind: String,
    pub tenant: Option<String>,
    pub badge: Badge,
    pub step: String,
    pub attempt: String,
    pub created: String,
    pub error: Option<String>,
    pub retryable: bool,
    pub cancellable: bool,
}

impl JobLine {
    pub fn new(j: &Job, now: DateTime<Utc>) -> Self {
        JobLine {
            id: j.id.to_string(),
            kind: j.kind.clone(),
            tenant: j.tenant_id.as_deref().map(str::to_owned),
            badge: job_badge(j.state),
            step: j.step.clone(),
            attempt: format!("{}/{}", j.attempt, j.max_attempts),
            created: ago(j.created_at, now),
            error: j.error.clone(),
            retryable: retry_offered(j),
            cancellable: cancel_offered(j),
        }
    }
}

/// Whether the console offers to retry the job (the server decides for good).
fn retry_offered(j: &Job) -> bool {
    j.state == JobState::Failed && (j.kind == Provision::KIND || j.kind == Deprovision::KIND)
}

/// Whether the console offers to cancel the job: queued or waiting (a running one finishes its
/// step first; the API refuses it).
fn cancel_offered(j: &Job) -> bool {
    matches!(j.state, JobState::Queued | JobState::Waiting) && !j.cancel_requested
}

/// One drawn piece of a timeline: a step attempt, or the time between (queued or waiting).
pub struct Segment {
    /// Percent of the job's span, as CSS wants it.
    pub left: String,
    pub width: String,
    pub class: String,
    pub title: String,
}

/// One row of a job's step table.
pub struct StepRow {
    pub step: String,
    pub attempt: i32,
    pub outcome: &'static str,
    pub class: &'static str,
    pub took: String,
    pub at: String,
    pub error: Option<String>,
    pub note: Option<String>,
}

/// A job with its history, drawn to scale.
pub struct Timeline {
    pub job: JobLine,
    pub span: String,
    pub segments: Vec<Segment>,
    pub steps: Vec<StepRow>,
    /// Runs of waiting or retrying that are not drawn one by one.
    pub waits: usize,
    pub retries: usize,
    /// Who asked for the job (`tenantd` itself when no request did: a repair, a rollout's
    /// migration, a standby).
    pub asked: String,
    /// Who asked to cancel it.
    pub cancel_asked: Option<String>,
}

fn outcome_class(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Advanced | Outcome::Succeeded => "ok",
        Outcome::Waiting | Outcome::Enqueued => "busy",
        Outcome::Retrying | Outcome::Rescued | Outcome::Released => "warn",
        Outcome::Failed | Outcome::Compensating => "bad",
        Outcome::Cancelled | Outcome::CancelRequested => "off",
    }
}

fn pct(part: Duration, whole: Duration) -> f64 {
    (part.num_milliseconds() as f64 / whole.num_milliseconds().max(1) as f64 * 100.0)
        .clamp(0.0, 100.0)
}

impl Timeline {
    /// `history` is the job's, oldest first.
    pub fn new(job: &Job, history: &[HistoryEntry], now: DateTime<Utc>) -> Self {
        let start = job.created_at;
        let end = job.finished_at.unwrap_or(now).max(start);
        let whole = end - start;
        let mut segments = Vec::new();
        let mut piece = |from: DateTime<Utc>, to: DateTime<Utc>, class: &str, title: String| {
            let (from, to) = (from.clamp(start, end), to.clamp(start, end));
            let left = pct(from - start, whole);
            let width = pct(to - from, whole).max(0.6).min(100.0 - left);
            segments.push(Segment {
                left: format!("{left:.2}"),
                width: format!("{width:.2}"),
                class: class.to_string(),
                title,
            });
        };
        let mut steps = Vec::new();
        let mut last = start;
        let (mut waits, mut retries) = (0, 0);
        for h in history {
            let began = h.started_at.unwrap_or(last).max(last).min(h.at);
            if began > last {
                piece(
                    last,
                    began,
                    "gap",
                    format!("queued or waiting {}", human(began - last)),
                );
            }
            match h.outcome {
                Outcome::Waiting => waits += 1,
                Outcome::Retrying => retries += 1,
                _ => {}
            }
            if h.started_at.is_some() {
                piece(
                    began,
                    h.at,
                    outcome_class(h.outcome),
                    format!(
                        "{} #{}: {} after {}",
                        h.step,
                        h.attempt,
                        h.outcome.as_str(),
                        human(h.at - began)
                    ),
                );
            }
            steps.push(StepRow {
                step: h.step.clone(),
                attempt: h.attempt,
                outcome: h.outcome.as_str(),
                class: outcome_class(h.outcome),
                took: h.started_at.map(|s| human(h.at - s)).unwrap_or_default(),
                at: when(h.at),
                error: h.error.clone(),
                note: h.note.clone(),
            });
            last = h.at.max(last);
        }
        if job.finished_at.is_none() && end > last {
            let class = if job.state == JobState::Running {
                "run"
            } else {
                "gap"
            };
            piece(
                last,
                end,
                class,
                format!(
                    "{} at {} for {}",
                    job.state.as_str(),
                    job.step,
                    human(end - last)
                ),
            );
        }
        Timeline {
            job: JobLine::new(job, now),
            span: human(whole),
            segments,
            steps,
            waits,
            retries,
            asked: "tenantd itself".to_string(),
            cancel_asked: None,
        }
    }

    /// Who asked for the job and for its cancel, from the audit trail.
    pub fn asked_by(mut self, askers: &[&Asker]) -> Self {
        let who = |a: &Asker| {
            format!(
                "{} ({}) through the {} at {}",
                a.token_name.as_deref().unwrap_or("an unknown caller"),
                a.role.as_deref().unwrap_or("no role"),
                match a.channel.as_str() {
                    "api" => "API",
                    "cli" => "CLI",
                    other => other,
                },
                when(a.at)
            )
        };
        if let Some(a) = askers.iter().find(|a| !a.cancel) {
            self.asked = who(a);
        }
        self.cancel_asked = askers.iter().find(|a| a.cancel).map(|a| who(a));
        self
    }
}

/// A tenant's details, for its page.
pub struct TenantDetail {
    pub id: String,
    pub tier: String,
    pub pending_tier: Option<String>,
    pub badge: Badge,
    pub status: &'static str,
    pub instance: String,
    pub endpoint: String,
    pub engine_version: String,
    pub secret_arn: String,
    pub schema_version: String,
    pub storage: String,
    pub error: Option<String>,
    pub note: Option<String>,
    pub drift: Vec<(String, String, String)>,
    /// RDS's pending maintenance: (action, when it applies, description); `None`: not read.
    pub maintenance: Option<Vec<(String, String, String)>>,
    pub checked: String,
    pub created: String,
    pub updated: String,
}

fn or_dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "—".to_string())
}

impl TenantDetail {
    pub fn new(t: &Tenant) -> Self {
        TenantDetail {
            id: t.id.clone(),
            tier: t.tier.clone(),
            pending_tier: t.pending_tier.clone(),
            badge: tenant_badge(t.status),
            status: t.status.as_str(),
            instance: or_dash(t.db_instance_id.clone()),
            endpoint: or_dash(
                t.endpoint_host
                    .as_ref()
                    .map(|h| format!("{h}:{}", t.endpoint_port.unwrap_or(5432))),
            ),
            engine_version: or_dash(t.engine_version.clone()),
            secret_arn: or_dash(t.secret_arn.clone()),
            schema_version: or_dash(t.schema_version.map(|v| v.to_string())),
            storage: or_dash(t.storage_gib.map(|g| format!("{g} GiB"))),
            error: t.error.clone(),
            note: t.note.clone(),
            drift: t
                .drift
                .as_ref()
                .map(|d| {
                    d.0.iter()
                        .map(|x| (x.field.clone(), x.expected.clone(), x.actual.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            maintenance: t.pending_maintenance.as_ref().map(|p| {
                p.0.iter()
                    .map(|a| {
                        let at = match (&a.current_apply, &a.opt_in_status) {
                            (Some(at), Some(opt)) => format!("{} ({opt})", when(*at)),
                            (Some(at), None) => when(*at),
                            (None, _) => match a.forced_apply.or(a.auto_applied_after) {
                                Some(at) => format!("not before {}", when(at)),
                                None => "when opted in".to_string(),
                            },
                        };
                        (
                            a.action.clone(),
                            at,
                            a.description.clone().unwrap_or_default(),
                        )
                    })
                    .collect()
            }),
            checked: t
                .checked_at
                .map(when)
                .unwrap_or_else(|| "never".to_string()),
            created: when(t.created_at),
            updated: when(t.updated_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::milliseconds(850)), "850ms");
        assert_eq!(human(Duration::milliseconds(3_240)), "3.2s");
        assert_eq!(human(Duration::seconds(250)), "4m 10s");
        assert_eq!(human(Duration::minutes(125)), "2h 5m");
        assert_eq!(human(Duration::hours(76)), "3d 4h");
        assert_eq!(human(Duration::milliseconds(-5)), "0ms");
    }

    #[test]
    fn every_status_has_an_icon_and_a_word() {
        for s in [
            TenantStatus::Provisioning,
            TenantStatus::Ready,
            TenantStatus::Failed,
            TenantStatus::Deprovisioning,
            TenantStatus::Deleted,
            TenantStatus::Suspended,
            TenantStatus::Lost,
            TenantStatus::Degraded,
            TenantStatus::Detached,
        ] {
            let b = tenant_badge(s);
            assert!(!b.icon.is_empty() && b.word == s.as_str());
        }
        for s in JobState::ALL {
            assert!(!job_badge(s).icon.is_empty());
        }
    }
}
