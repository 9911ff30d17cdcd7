//! Rendering what the API answered: aligned text for people, JSON (`--output json`) for scripts.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::wire::jobs::{JobDetail, JobPage, JobView};
use crate::wire::pool::PoolView;
use crate::wire::rollouts::{RolloutPage, RolloutStage, RolloutView};
use crate::wire::tenants::{Page, TenantView};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn json(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).expect("API types serialize")
}

pub(super) fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(super) fn or_dash(v: Option<&str>) -> &str {
    v.unwrap_or("-")
}

/// Columns padded to their widest cell.
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let mut text = String::new();
        for (cell, w) in cells.iter().zip(&widths) {
            let _ = write!(text, "{cell:<w$}  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for row in rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// Attempts as people count them: the first try is attempt 1 (the API counts failures, from 0).
pub fn attempt(used: i32, max: i32) -> String {
    format!("attempt {} of {max}", used + 1)
}

fn job_line(job: &JobView) -> String {
    let mut s = format!("{} {} {}", job.kind, job.state.as_str(), job.id);
    if job.state.is_active() {
        let _ = write!(
            s,
            " (step {}, {})",
            job.step,
            attempt(job.attempt, job.max_attempts)
        );
    }
    s
}

/// The warm pool: one line per tier.
pub fn pool(p: &PoolView) -> String {
    if p.tiers.is_empty() {
        return "no warm pool (TENANTD_WARM_POOL is empty)\n".into();
    }
    let mut out = format!(
        "{:<12} {:>6} {:>9} {:>8} {:>8}  {}\n",
        "TIER", "WANTED", "AVAILABLE", "CREATING", "RETIRING", "OLDEST"
    );
    for t in &p.tiers {
        let oldest = t
            .oldest_age_s
            .map(|s| {
                humantime::format_duration(std::time::Duration::from_secs(s as u64)).to_string()
            })
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:<12} {:>6} {:>9} {:>8} {:>8}  {oldest}",
            t.tier, t.wanted, t.available, t.creating, t.retiring
        );
    }
    out
}

pub fn tenant(t: &TenantView) -> String {
    let endpoint = t
        .endpoint
        .as_ref()
        .map(|e| format!("{}:{}", e.host, e.port));
    let mut out = String::new();
    for (key, value) in [
        ("id", t.id.clone()),
        ("tier", t.tier.clone()),
        ("status", format!("{:?}", t.status).to_lowercase()),
        ("db instance", or_dash(t.db_instance_id.as_deref()).into()),
        (
            "from pool",
            if t.from_pool { "yes" } else { "no" }.to_string(),
        ),
        ("endpoint", or_dash(endpoint.as_deref()).into()),
        ("secret", or_dash(t.secret_arn.as_deref()).into()),
        ("postgres", or_dash(t.engine_version.as_deref()).into()),
        (
            "schema",
            t.schema_version
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        ("pending tier", or_dash(t.pending_tier.as_deref()).into()),
        (
            "storage",
            t.storage_gib
                .map(|g| format!("{g} GiB"))
                .unwrap_or_else(|| "-".into()),
        ),
        ("note", or_dash(t.note.as_deref()).into()),
        (
            "drift",
            match &t.drift {
                None => "-".into(),
                Some(d) if d.is_empty() => "none".into(),
                Some(d) => d
                    .iter()
                    .map(|d| format!("{} (expected {}, actual {})", d.field, d.expected, d.actual))
                    .collect::<Vec<_>>()
                    .join("; "),
            },
        ),
        (
            "maintenance",
            match &t.pending_maintenance {
                None => "-".into(),
                Some(p) if p.is_empty() => "none pending".into(),
                Some(p) => p
                    .iter()
                    .map(|a| match &a.current_apply {
                        Some(at) => format!("{} at {}", a.action, time(at)),
                        None => a.action.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            },
        ),
        (
            "checked",
            t.checked_at
                .as_ref()
                .map(time)
                .unwrap_or_else(|| "-".into()),
        ),
        ("error", or_dash(t.error.as_deref()).into()),
        ("created", time(&t.created_at)),
        ("updated", time(&t.updated_at)),
        ("job", t.job.as_ref().map(job_line).unwrap_or("-".into())),
    ] {
        let _ = writeln!(out, "{key:<12} {value}");
    }
    out
}

pub fn page(p: &Page) -> String {
    let rows: Vec<Vec<String>> = p
        .tenants
        .iter()
        .map(|t| {
            vec![
                t.id.clone(),
                t.tier.clone(),
                format!("{:?}", t.status).to_lowercase(),
                t.job
                    .as_ref()
                    .map(|j| format!("{} {}", j.kind, j.state.as_str()))
                    .unwrap_or("-".into()),
                time(&t.updated_at),
            ]
        })
        .collect();
    let mut out = table(&["ID", "TIER", "STATUS", "JOB", "UPDATED"], &rows);
    if let Some(cursor) = &p.next_cursor {
        let _ = writeln!(out, "more: --cursor {cursor}");
    }
    out
}

pub fn job_page(p: &JobPage) -> String {
    let rows: Vec<Vec<String>> = p
        .jobs
        .iter()
        .map(|j| {
            vec![
                j.id.to_string(),
                j.kind.clone(),
                or_dash(j.tenant_id.as_deref()).into(),
                j.state.as_str().to_string(),
                j.step.clone(),
                time(&j.created_at),
            ]
        })
        .collect();
    let mut out = table(&["ID", "KIND", "TENANT", "STATE", "STEP", "CREATED"], &rows);
    if let Some(cursor) = &p.next_cursor {
        let _ = writeln!(out, "more: --cursor {cursor}");
    }
    out
}

pub fn job(j: &JobDetail) -> String {
    let v = &j.job;
    let mut out = String::new();
    for (key, value) in [
        ("id", v.id.to_string()),
        ("kind", v.kind.clone()),
        ("tenant", or_dash(v.tenant_id.as_deref()).into()),
        ("state", v.state.as_str().into()),
        (
            "step",
            format!("{} ({})", v.step, attempt(v.attempt, v.max_attempts)),
        ),
        ("error", or_dash(v.error.as_deref()).into()),
        ("result", or_dash(v.result.as_deref()).into()),
        ("created", time(&v.created_at)),
        (
            "finished",
            v.finished_at.as_ref().map(time).unwrap_or("-".into()),
        ),
    ] {
        let _ = writeln!(out, "{key:<9} {value}");
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = j
        .history
        .iter()
        .map(|h| {
            let took = h
                .started_at
                .map(|s| format!("{}ms", (h.finished_at - s).num_milliseconds()))
                .unwrap_or_else(|| "-".into());
            vec![
                time(&h.finished_at),
                h.step.clone(),
                (h.attempt + 1).to_string(),
                h.outcome.as_str().to_string(),
                took,
                match (&h.error, &h.note) {
                    (Some(e), _) => e.clone(),
                    (None, Some(n)) => format!("note: {n}"),
                    (None, None) => "-".into(),
                },
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "FINISHED",
            "STEP",
            "ATTEMPT",
            "OUTCOME",
            "TOOK",
            "ERROR / NOTE",
        ],
        &rows,
    ));
    out
}

/// `done/total` of a stage (done: succeeded, failed or skipped), with what is not done yet.
pub fn stage_progress(s: &RolloutStage) -> String {
    let c = &s.counts;
    let total = c.pending + c.migrating + c.succeeded + c.failed + c.skipped;
    let done = c.succeeded + c.failed + c.skipped;
    let mut out = format!("{}: {done}/{total}", s.name);
    for (n, what) in [
        (c.migrating, "migrating"),
        (c.failed, "failed"),
        (c.skipped, "skipped"),
    ] {
        if n > 0 {
            let _ = write!(out, ", {n} {what}");
        }
    }
    out
}

/// A rollout's target as shown: `20270101000001`, `17`, `rds-ca-rsa4096-g1`.
fn target_text(t: &crate::wire::rollouts::Target) -> String {
    match t {
        crate::wire::rollouts::Target::Version(v) => v.to_string(),
        crate::wire::rollouts::Target::Named(s) => s.clone(),
    }
}

pub fn rollout(r: &RolloutView) -> String {
    let mut out = format!(
        "rollout {}  {}  {} to {}{}\n",
        r.id,
        r.state.as_str(),
        r.kind,
        target_text(&r.target_version),
        r.apply
            .as_deref()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "canary {}, concurrency {}, max failures {}; created {}{}",
        r.canary,
        r.concurrency,
        r.max_failures,
        time(&r.created_at),
        r.finished_at
            .map(|t| format!(", finished {}", time(&t)))
            .unwrap_or_default()
    );
    if let Some(reason) = &r.reason {
        let _ = writeln!(out, "reason: {reason}");
    }
    let rows: Vec<Vec<String>> = r
        .stages
        .iter()
        .map(|s| {
            let c = &s.counts;
            vec![
                s.name.clone(),
                c.pending.to_string(),
                c.migrating.to_string(),
                c.succeeded.to_string(),
                c.failed.to_string(),
                c.skipped.to_string(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "STAGE",
            "PENDING",
            "MIGRATING",
            "SUCCEEDED",
            "FAILED",
            "SKIPPED",
        ],
        &rows,
    ));
    for f in &r.failures {
        let _ = writeln!(
            out,
            "failed: {} ({}): {}",
            f.tenant_id,
            f.stage,
            or_dash(f.error.as_deref())
        );
    }
    out
}

pub fn rollout_page(p: &RolloutPage) -> String {
    let rows: Vec<Vec<String>> = p
        .rollouts
        .iter()
        .map(|r| {
            let t = &r.totals;
            vec![
                r.id.to_string(),
                r.state.as_str().to_string(),
                format!("{} {}", r.kind, target_text(&r.target_version)),
                format!(
                    "{}/{}",
                    t.succeeded + t.failed + t.skipped,
                    t.pending + t.migrating + t.succeeded + t.failed + t.skipped
                ),
                t.failed.to_string(),
                time(&r.created_at),
            ]
        })
        .collect();
    let mut out = table(
        &["ID", "STATE", "TARGET", "DONE", "FAILED", "CREATED"],
        &rows,
    );
    if let Some(next) = &p.next_cursor {
        let _ = writeln!(out, "more: --cursor {next}");
    }
    out
}
