//! What the worker measures as it goes: how long each step took and how it ended. The API's
//! `/metrics` renders these with the figures it reads at scrape time (jobs, queue, AWS calls).
//! Kept in one process-wide registry so the worker needs no handle to record a step.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

struct StepMetrics {
    registry: Registry,
    duration: HistogramVec,
    outcomes: IntCounterVec,
    poller_leader: IntGauge,
    poller_active: IntGauge,
    poll_rounds: IntCounter,
}

static STEPS: LazyLock<StepMetrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let duration = HistogramVec::new(
        HistogramOpts::new(
            "tenantd_step_duration_seconds",
            "How long one step took, from its start to its recorded transition.",
        )
        .buckets(vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
        ]),
        &["kind", "step"],
    )
    .expect("valid histogram");
    let outcomes = IntCounterVec::new(
        Opts::new(
            "tenantd_step_outcomes_total",
            "Steps recorded, by job kind, step and outcome (advanced, waiting, retrying, ...).",
        ),
        &["kind", "step", "outcome"],
    )
    .expect("valid counter");
    let poller_leader = IntGauge::new(
        "tenantd_instance_poller_leader",
        "1 while this process is the one polling the instances for all processes.",
    )
    .expect("valid gauge");
    let poller_active = IntGauge::new(
        "tenantd_instance_poller_active",
        "1 while a poller (this process or another) finished a round recently, so that wait \
         steps here leave the looking to it.",
    )
    .expect("valid gauge");
    let poll_rounds = IntCounter::new(
        "tenantd_instance_poll_rounds_total",
        "Instance poll rounds this process completed.",
    )
    .expect("valid counter");
    registry
        .register(Box::new(duration.clone()))
        .expect("registered once");
    registry
        .register(Box::new(outcomes.clone()))
        .expect("registered once");
    for gauge in [&poller_leader, &poller_active] {
        registry
            .register(Box::new(gauge.clone()))
            .expect("registered once");
    }
    registry
        .register(Box::new(poll_rounds.clone()))
        .expect("registered once");
    StepMetrics {
        registry,
        duration,
        outcomes,
        poller_leader,
        poller_active,
        poll_rounds,
    }
});

/// The instance poller's state in this process, after each election.
pub fn record_poller(leader: bool, active: bool) {
    STEPS.poller_leader.set(leader.into());
    STEPS.poller_active.set(active.into());
}

/// One instance poll round completed here.
pub fn record_poll_round() {
    STEPS.poll_rounds.inc();
}

/// Records one step of a `kind` job: `step` ran for `took` and ended with `outcome`.
pub fn record_step(kind: &str, step: &str, outcome: &str, took: Duration) {
    STEPS
        .duration
        .with_label_values(&[kind, step])
        .observe(took.as_secs_f64());
    STEPS
        .outcomes
        .with_label_values(&[kind, step, outcome])
        .inc();
}

/// The registry holding the step metrics.
pub fn registry() -> &'static Registry {
    &STEPS.registry
}
