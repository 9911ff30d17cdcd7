//! What this process measures as it goes, in one process-wide registry: how each step took and
//! ended, the AWS calls made, and the maintenance leader's state. `/metrics` renders these, and
//! (on the maintenance leader only) the fleet-wide figures it reads from the control database.
//! Recording needs no handle, so any layer can record without knowing who exports.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

struct Metrics {
    registry: Registry,
    step_duration: HistogramVec,
    step_outcomes: IntCounterVec,
    aws_calls: IntCounterVec,
    leader: IntGauge,
    poller_active: IntGauge,
    poll_rounds: IntCounter,
    maintenance_rounds: IntCounterVec,
    drift_tenants: IntGaugeVec,
    reconcile_rounds: IntCounter,
    reconcile_round_seconds: prometheus::Histogram,
    reconcile_round_calls: IntGaugeVec,
    pruned_jobs: IntCounter,
    rollout_tenants: IntGaugeVec,
    tenant_migration_seconds: HistogramVec,
    pool_standbys: IntGaugeVec,
    pool_claims: IntCounterVec,
    steps_abandoned: IntCounterVec,
    fleet_reads: IntCounter,
    is_leader: AtomicBool,
}

fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .expect("each metric is registered once");
    c
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let step_duration = register(
        &registry,
        HistogramVec::new(
            HistogramOpts::new(
                "tenantd_step_duration_seconds",
                "How long one step took, from its start to its recorded transition.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            ]),
            &["kind", "step"],
        )
        .expect("valid histogram"),
    );
    let step_outcomes = register(
        &registry,
        IntCounterVec::new(
            Opts::new(
                "tenantd_step_outcomes_total",
                "Steps recorded by this process, by job kind, step, outcome (advanced, waiting, \
                 retrying, ...) and error class (empty when the step did not fail).",
            ),
            &["kind", "step", "outcome", "error_class"],
        )
        .expect("valid counter"),
    );
    let aws_calls = register(
        &registry,
        IntCounterVec::new(
            Opts::new(
                "tenantd_aws_calls_total",
                "AWS calls made by this process, by service, operation and result (ok, or how \
                 the call failed).",
            ),
            &["service", "operation", "result"],
        )
        .expect("valid counter"),
    );
    let leader = register(
        &registry,
        IntGauge::new(
            "tenantd_maintenance_leader",
            "1 while this process is the maintenance leader: it polls the instances, rescues \
             expired leases and exports the fleet-wide gauges for all processes.",
        )
        .expect("valid gauge"),
    );
    let poller_active = register(
        &registry,
        IntGauge::new(
            "tenantd_instance_poller_active",
            "1 while an instance poller (this process or another) finished a round recently, so \
             that wait steps here leave the looking to it.",
        )
        .expect("valid gauge"),
    );
    let poll_rounds = register(
        &registry,
        IntCounter::new(
            "tenantd_instance_poll_rounds_total",
            "Instance poll rounds this process completed.",
        )
        .expect("valid counter"),
    );
    let maintenance_rounds = register(
        &registry,
        IntCounterVec::new(
            Opts::new(
                "tenantd_maintenance_rounds_total",
                "Rounds of each maintenance service this process ran as the leader, by result.",
            ),
            &["service", "result"],
        )
        .expect("valid counter"),
    );
    let drift_tenants = register(
        &registry,
        IntGaugeVec::new(
            Opts::new(
                "tenantd_drift_tenants",
                "Tenants whose last reconcile round found this field different from the desired \
                 state (alarms and tags grouped as `alarm` and `tag`; reconciler only).",
            ),
            &["field"],
        )
        .expect("valid gauge"),
    );
    let reconcile_rounds = register(
        &registry,
        IntCounter::new(
            "tenantd_reconcile_rounds_total",
            "Reconcile rounds this process completed.",
        )
        .expect("valid counter"),
    );
    let reconcile_round_seconds = register(
        &registry,
        prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "tenantd_reconcile_round_seconds",
                "How long a reconcile round took.",
            )
            .buckets(vec![
                0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
            ]),
        )
        .expect("valid histogram"),
    );
    let reconcile_round_calls = register(
        &registry,
        IntGaugeVec::new(
            Opts::new(
                "tenantd_reconcile_round_aws_calls",
                "AWS calls the last reconcile round made, by service.",
            ),
            &["service"],
        )
        .expect("valid gauge"),
    );
    let pool_standbys = register(
        &registry,
        IntGaugeVec::new(
            Opts::new(
                "tenantd_pool_standbys",
                "Warm-pool standbys by tier and state (creating, available, retiring), as the \
                 pool keeper last counted them (maintenance leader only).",
            ),
            &["tier", "state"],
        )
        .expect("valid gauge"),
    );
    let steps_abandoned = register(
        &registry,
        IntCounterVec::new(
            Opts::new(
                "tenantd_steps_abandoned_total",
                "Steps this process dropped unfinished because it no longer held their job's \
                 lease: lost (another worker holds it) or unrenewed (it could not be renewed \
                 before it expired, less TENANTD_LEASE_MARGIN).",
            ),
            &["reason"],
        )
        .expect("valid counter"),
    );
    let pool_claims = register(
        &registry,
        IntCounterVec::new(
            Opts::new(
                "tenantd_pool_claims_total",
                "New tenants by tier and what the warm pool gave them: claimed (a standby), \
                 empty (none available: the cold path), ready or failed (how a claim ended).",
            ),
            &["tier", "result"],
        )
        .expect("valid counter"),
    );
    let fleet_reads = register(
        &registry,
        IntCounter::new(
            "tenantd_fleet_gauge_reads_total",
            "Reads of the fleet-wide gauges from the control database (at most one per \
             TENANTD_FLEET_GAUGES_INTERVAL, however often /metrics is scraped).",
        )
        .expect("valid counter"),
    );
    let pruned_jobs = register(
        &registry,
        IntCounter::new(
            "tenantd_pruned_jobs_total",
            "Finished jobs this process deleted (with their history) once older than the \
             retention.",
        )
        .expect("valid counter"),
    );
    let rollout_tenants = register(
        &registry,
        IntGaugeVec::new(
            Opts::new(
                "tenantd_rollout_tenants",
                "Tenants of the running (or paused, or last) schema rollout by state: pending, \
                 migrating, succeeded, failed, skipped (maintenance leader only).",
            ),
            &["state"],
        )
        .expect("valid gauge"),
    );
    let tenant_migration_seconds = register(
        &registry,
        HistogramVec::new(
            HistogramOpts::new(
                "tenantd_tenant_migration_seconds",
                "How long migrating one tenant database took (connecting, the migrations and \
                 their bookkeeping), by result (ok or failed).",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
            ]),
            &["result"],
        )
        .expect("valid histogram"),
    );
    Metrics {
        registry,
        fleet_reads,
        pool_standbys,
        pool_claims,
        steps_abandoned,
        pruned_jobs,
        rollout_tenants,
        tenant_migration_seconds,
        drift_tenants,
        reconcile_rounds,
        reconcile_round_seconds,
        reconcile_round_calls,
        step_duration,
        step_outcomes,
        aws_calls,
        leader,
        poller_active,
        poll_rounds,
        maintenance_rounds,
        is_leader: AtomicBool::new(false),
    }
});

/// Records one step of a `kind` job: `step` ran for `took` and ended with `outcome` (and, when
/// it failed, an error of `error_class`).
pub fn record_step(
    kind: &str,
    step: &str,
    outcome: &str,
    error_class: Option<&str>,
    took: Duration,
) {
    METRICS
        .step_duration
        .with_label_values(&[kind, step])
        .observe(took.as_secs_f64());
    METRICS
        .step_outcomes
        .with_label_values(&[kind, step, outcome, error_class.unwrap_or("")])
        .inc();
}

/// One AWS call ended with `result` (`ok`, or the failure's label).
pub fn record_aws_call(service: &str, operation: &str, result: &str) {
    METRICS
        .aws_calls
        .with_label_values(&[service, operation, result])
        .inc();
}

/// Whether this process leads maintenance now, and whether an instance poller (here or in
/// another process) is at work.
pub fn record_leadership(leader: bool) {
    METRICS.is_leader.store(leader, Ordering::Relaxed);
    METRICS.leader.set(leader.into());
}

pub fn record_poller(active: bool) {
    METRICS.poller_active.set(active.into());
}

/// One instance poll round completed here.
pub fn record_poll_round() {
    METRICS.poll_rounds.inc();
}

/// A step was dropped unfinished: its lease was `lost` or `unrenewed`.
pub fn record_step_abandoned(reason: &str) {
    METRICS.steps_abandoned.with_label_values(&[reason]).inc();
}

/// One round of a maintenance service ended: `ok`, `error`, or `stopped` (dropped unfinished
/// because this process stopped leading).
pub fn record_maintenance_round(service: &str, result: &str) {
    METRICS
        .maintenance_rounds
        .with_label_values(&[service, result])
        .inc();
}

/// The fleet-wide gauges were read from the control database.
pub fn record_fleet_read() {
    METRICS.fleet_reads.inc();
}

/// Old finished jobs were deleted.
pub fn record_pruned_jobs(n: u64) {
    METRICS.pruned_jobs.inc_by(n);
}

/// One tenant database was migrated (or failed to be) in `took`.
pub fn record_tenant_migration(took: Duration, ok: bool) {
    METRICS
        .tenant_migration_seconds
        .with_label_values(&[if ok { "ok" } else { "failed" }])
        .observe(took.as_secs_f64());
}

/// The tenants of the current rollout by state (`state` → count).
pub fn record_rollout_tenants(counts: &[(&str, i64)]) {
    for (state, n) in counts {
        METRICS.rollout_tenants.with_label_values(&[state]).set(*n);
    }
}

/// The warm pool as the keeper counted it: (tier, state, standbys).
pub fn record_pool_standbys(figures: &[(String, &'static str, i64)]) {
    METRICS.pool_standbys.reset();
    for (tier, state, n) in figures {
        METRICS
            .pool_standbys
            .with_label_values(&[tier.as_str(), state])
            .set(*n);
    }
}

/// A new tenant of `tier` and the warm pool: `claimed`, `empty`, `ready` or `failed`.
pub fn record_pool_claim(tier: &str, result: &str) {
    METRICS.pool_claims.with_label_values(&[tier, result]).inc();
}

/// One reconcile round ended: how long it took, its AWS calls by service, and how many
/// tenants had drift in each field.
pub fn record_reconcile_round(
    took: Duration,
    calls: &[(&str, u32)],
    drift: &std::collections::BTreeMap<String, i64>,
) {
    METRICS.reconcile_rounds.inc();
    METRICS.reconcile_round_seconds.observe(took.as_secs_f64());
    for (service, n) in calls {
        METRICS
            .reconcile_round_calls
            .with_label_values(&[service])
            .set(i64::from(*n));
    }
    METRICS.drift_tenants.reset();
    for (field, n) in drift {
        METRICS
            .drift_tenants
            .with_label_values(&[field.as_str()])
            .set(*n);
    }
}

/// Whether this process is the maintenance leader (the one that exports fleet-wide gauges).
pub fn is_leader() -> bool {
    METRICS.is_leader.load(Ordering::Relaxed)
}

/// Fleet-wide figures read from the control database, exported by the leader only, so that
/// summing over replicas counts them once.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    /// Jobs by kind and state.
    pub jobs: Vec<(String, &'static str, i64)>,
    pub queue_depth: i64,
    pub oldest_waiting: Duration,
}

/// The Prometheus text exposition of this process's metrics, plus `fleet` when given.
pub fn render(fleet: Option<&Fleet>) -> Result<String, prometheus::Error> {
    let mut families = METRICS.registry.gather();
    if let Some(fleet) = fleet {
        let scrape = Registry::new();
        let jobs = register(
            &scrape,
            IntGaugeVec::new(
                Opts::new(
                    "tenantd_jobs",
                    "Jobs in the control database by kind and state (maintenance leader only).",
                ),
                &["kind", "state"],
            )?,
        );
        for (kind, state, n) in &fleet.jobs {
            jobs.with_label_values(&[kind.as_str(), state]).set(*n);
        }
        let depth = register(
            &scrape,
            IntGauge::new(
                "tenantd_queue_depth",
                "Jobs runnable now (queued, or waiting with run_at passed) and not yet claimed \
                 (maintenance leader only).",
            )?,
        );
        depth.set(fleet.queue_depth);
        let oldest = register(
            &scrape,
            Gauge::new(
                "tenantd_queue_oldest_waiting_seconds",
                "How long the longest-waiting runnable job has been due; 0 when none is \
                 (maintenance leader only).",
            )?,
        );
        oldest.set(fleet.oldest_waiting.as_secs_f64());
        families.extend(scrape.gather());
    }
    let mut body = String::new();
    prometheus::TextEncoder::new().encode_utf8(&families, &mut body)?;
    Ok(body)
}

/// This process's AWS calls so far, per service: (service, calls, of which failed).
pub fn aws_calls_by_service() -> Vec<(String, u64, u64)> {
    let mut by_service: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for family in prometheus::core::Collector::collect(&METRICS.aws_calls) {
        for m in family.get_metric() {
            let label = |name: &str| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map(|l| l.value().to_string())
                    .unwrap_or_default()
            };
            let n = m.get_counter().get_value() as u64;
            let entry = by_service.entry(label("service")).or_default();
            entry.0 += n;
            if label("result") != "ok" {
                entry.1 += n;
            }
        }
    }
    by_service
        .into_iter()
        .map(|(service, (calls, failed))| (service, calls, failed))
        .collect()
}

/// Whether an instance poller (this process or another) finished a round recently.
pub fn poller_active() -> bool {
    METRICS.poller_active.get() == 1
}
