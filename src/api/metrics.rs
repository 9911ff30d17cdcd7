//! `GET /metrics` in the Prometheus text format: the worker's step metrics, plus jobs by kind and
//! state, queue depth and the oldest runnable job's wait read from the control database at scrape
//! time (cheap aggregates), and AWS calls by service, operation and result.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus::{Encoder, Gauge, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::AppState;
use super::error::ApiError;

/// The Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn internal(e: prometheus::Error) -> ApiError {
    ApiError::Internal(format!("metrics: {e}"))
}

pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let scrape = Registry::new();

    let jobs = IntGaugeVec::new(
        Opts::new(
            "tenantd_jobs",
            "Jobs in the control database by kind and state.",
        ),
        &["kind", "state"],
    )
    .map_err(internal)?;
    let counts: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT kind, state::text, count(*) FROM jobs GROUP BY kind, state ORDER BY kind, state",
    )
    .fetch_all(&state.db)
    .await?;
    for (kind, job_state, n) in counts {
        jobs.with_label_values(&[kind.as_str(), job_state.as_str()])
            .set(n);
    }

    let depth = IntGauge::new(
        "tenantd_queue_depth",
        "Jobs runnable now (queued, or waiting with run_at passed) and not yet claimed.",
    )
    .map_err(internal)?;
    let oldest = Gauge::new(
        "tenantd_queue_oldest_waiting_seconds",
        "How long the longest-waiting runnable job has been due; 0 when none is.",
    )
    .map_err(internal)?;
    let (n, age): (i64, Option<f64>) = sqlx::query_as(
        "SELECT count(*), EXTRACT(EPOCH FROM now() - min(run_at))::float8 FROM jobs
         WHERE state IN ('queued', 'waiting') AND run_at <= now()",
    )
    .fetch_one(&state.db)
    .await?;
    depth.set(n);
    oldest.set(age.unwrap_or(0.0).max(0.0));

    let aws = IntCounterVec::new(
        Opts::new(
            "tenantd_aws_calls_total",
            "AWS calls by service, operation and result (ok, or how the call failed).",
        ),
        &["service", "operation", "result"],
    )
    .map_err(internal)?;
    if let Some(cloud) = &state.cloud {
        for ((service, operation, result), n) in cloud.calls() {
            aws.with_label_values(&[service, operation, result])
                .inc_by(n);
        }
    }

    for collector in [
        Box::new(jobs) as Box<dyn prometheus::core::Collector>,
        Box::new(depth),
        Box::new(oldest),
        Box::new(aws),
    ] {
        scrape.register(collector).map_err(internal)?;
    }
    let mut families = crate::metrics::registry().gather();
    families.extend(scrape.gather());
    let mut body = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&families, &mut body)
        .map_err(internal)?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], body))
}
