//! Job retention against a real control PostgreSQL: the maintenance leader's pruner deletes
//! finished jobs older than the retention with their history, keeps each tenant's latest job and
//! every unfinished one, and the history stays append-only for everything else.

use crate::support;

use std::time::Duration;

use sqlx::PgPool;
use support::{fresh_db, insert_tenant, wait_for, worker_settings};
use tenantd::maintenance::{Election, Maintenance, Pruner};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A job of `tenant` created `age_min` minutes ago, in `state` (finished a minute after it
/// was created when final), with two history rows.
async fn job(pool: &PgPool, tenant: &str, state: &str, age_min: i32) -> Uuid {
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO jobs (id, kind, tenant_id, state, step, max_attempts, error, created_at,
             finished_at)
         VALUES (gen_random_uuid(), 'provision', $1, $2::job_state, 'credentials', 3,
                 CASE WHEN $2 IN ('failed', 'cancelled') THEN 'it broke' END,
                 now() - make_interval(mins => $3),
                 CASE WHEN $2 IN ('succeeded', 'failed', 'cancelled')
                      THEN now() - make_interval(mins => $3 - 1) END)
         RETURNING id",
    )
    .bind(tenant)
    .bind(state)
    .bind(age_min)
    .fetch_one(pool)
    .await
    .unwrap();
    for outcome in ["enqueued", "advanced"] {
        sqlx::query(
            "INSERT INTO job_history (job_id, step, attempt, outcome) VALUES ($1, 'credentials', 0, $2)",
        )
        .bind(id)
        .bind(outcome)
        .execute(pool)
        .await
        .unwrap();
    }
    id
}

async fn exists(pool: &PgPool, id: Uuid) -> (bool, i64) {
    let job: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM jobs WHERE id = $1)")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
    let history: i64 = sqlx::query_scalar("SELECT count(*) FROM job_history WHERE job_id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
    (job, history)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_finished_jobs_go_with_their_history_and_the_rest_stays_append_only() {
    let db = fresh_db().await;
    let pool = &db.pool;
    for t in ["acme", "beta", "gamma"] {
        insert_tenant(pool, t).await;
    }
    const DAYS_2: i32 = 2 * 24 * 60;
    let acme_old = job(pool, "acme", "succeeded", DAYS_2 + 10).await;
    let acme_latest = job(pool, "acme", "failed", DAYS_2).await;
    let beta_old = job(pool, "beta", "cancelled", DAYS_2).await;
    let beta_recent = job(pool, "beta", "succeeded", 5).await;
    let gamma_waiting = job(pool, "gamma", "waiting", DAYS_2 + 20).await;
    // Jobs without a tenant follow the retention too.
    let loose: Uuid = sqlx::query_scalar(
        "INSERT INTO jobs (id, kind, state, step, max_attempts, created_at, finished_at)
         VALUES (gen_random_uuid(), 'noop', 'succeeded', 'run', 1, now() - interval '3 days',
                 now() - interval '3 days') RETURNING id",
    )
    .fetch_one(pool)
    .await
    .unwrap();

    let stop = CancellationToken::new();
    let election = Election::of(&worker_settings("pruner-test"));
    let maintenance = Maintenance::new(pool.clone(), "pruner-test", election)
        .with(Pruner::new(pool.clone(), Some(Duration::from_secs(86400))))
        .spawn(stop.clone());
    wait_for("the old jobs to go", Duration::from_secs(30), || async {
        let gone = [acme_old, beta_old, loose];
        let mut all = true;
        for id in gone {
            all &= exists(pool, id).await == (false, 0);
        }
        all.then_some(())
    })
    .await;
    stop.cancel();
    maintenance.await.unwrap();
    // The latest job of each tenant, the recent one and the unfinished one stay, with history.
    for id in [acme_latest, beta_recent, gamma_waiting] {
        assert_eq!(exists(pool, id).await, (true, 2), "{id}");
    }
    let metrics = tenantd::metrics::render(None).unwrap();
    assert!(
        metrics.lines().any(|l| l == "tenantd_pruned_jobs_total 3"),
        "{metrics}"
    );

    // Everything else stays append-only: an ordinary delete or update is refused, also with
    // the pruning setting switched on by hand.
    let mut conn = pool.acquire().await.unwrap();
    for statement in [
        format!("DELETE FROM job_history WHERE job_id = '{acme_latest}'"),
        "UPDATE job_history SET step = 'x'".to_string(),
        format!("DELETE FROM jobs WHERE id = '{beta_recent}'"),
        "SELECT set_config('tenantd.pruning', 'on', false)".to_string(),
        format!("DELETE FROM job_history WHERE job_id = '{acme_latest}'"),
        format!("DELETE FROM jobs WHERE id = '{gamma_waiting}'"),
    ] {
        let result = sqlx::query(&statement).execute(&mut *conn).await;
        if statement.starts_with("SELECT") {
            result.unwrap();
            continue;
        }
        let err = result.expect_err(&statement).to_string();
        assert!(
            err.contains("append-only")
                || err.contains("prune_jobs")
                || err.contains("has not finished"),
            "{statement}: {err}"
        );
    }
    for id in [acme_latest, beta_recent, gamma_waiting] {
        assert_eq!(exists(pool, id).await, (true, 2), "{id}");
    }
}
