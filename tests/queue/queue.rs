//! The job queue against a real PostgreSQL: exactly-once execution under concurrency, leases and
//! fencing, waits, retries, idempotent enqueue, graceful shutdown and SIGKILL recovery.

use crate::support;

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use support::*;
use tenantd::queue::{self, Completion, JobState, NewJob};
use tenantd::worker;
use tenantd::workflow::{Registry, Step, StepContext, StepError, Transition, Workflow};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

tenantd::steps! {
    /// The one step of the single-step test workflows.
    enum Work {
        Work = "work",
    }
}

impl Step for Work {
    fn compensation(self) -> Option<Self> {
        None
    }
}

/// The context of a test workflow without arguments or data.
type Cx<'a> = StepContext<'a, serde_json::Value, serde_json::Value>;

/// Two steps, each writing one row per execution, so a duplicate or a lost step shows.
struct Tally;

tenantd::steps! {
    enum TallyStep {
        One = "one",
        Two = "two",
    }
}

impl Step for TallyStep {
    fn compensation(self) -> Option<Self> {
        None
    }
}

#[async_trait]
impl Workflow for Tally {
    const KIND: &'static str = "tally";
    type Step = TallyStep;
    type Args = serde_json::Value;
    type Data = serde_json::Value;

    fn first_step() -> TallyStep {
        TallyStep::One
    }

    async fn run(
        &self,
        step: TallyStep,
        cx: &mut Cx<'_>,
    ) -> Result<Transition<TallyStep>, StepError> {
        sqlx::query("INSERT INTO tally (job_id, step) VALUES ($1, $2)")
            .bind(cx.job.id)
            .bind(&cx.job.step)
            .execute(cx.db)
            .await
            .expect("tally");
        Ok(match step {
            TallyStep::One => Transition::Next(TallyStep::Two),
            TallyStep::Two => Transition::Done,
        })
    }
}

async fn job_state(pool: &PgPool, id: Uuid) -> JobState {
    queue::get_job(pool, id).await.unwrap().unwrap().state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_workers_run_every_step_of_two_thousand_jobs_exactly_once() {
    let db = fresh_db().await;
    sqlx::query("CREATE TABLE tally (job_id uuid NOT NULL, step text NOT NULL)")
        .execute(&db.pool)
        .await
        .unwrap();
    let jobs: Vec<NewJob> = (0..2000).map(|_| NewJob::new("tally", "one", 3)).collect();
    let ids = queue::enqueue_batch(&db.pool, &jobs).await.unwrap();
    assert_eq!(ids.len(), 2000);

    let stop = CancellationToken::new();
    let mut workers = Vec::new();
    for n in 0..4 {
        let pool = db.pool.clone();
        let stop = stop.clone();
        workers.push(tokio::spawn(worker::run(
            pool,
            Registry::new().register(Tally),
            worker_settings(&format!("w{n}")),
            stop,
        )));
    }
    wait_for("all jobs to succeed", Duration::from_secs(120), || async {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        (done == 2000).then_some(())
    })
    .await;
    stop.cancel();
    for w in workers {
        w.await.unwrap().unwrap();
    }

    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT (job_id, step)) FROM tally")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(distinct, 4000, "every step of every job ran");
    assert_eq!(rows, 4000, "no step ran twice");
    let workers_used: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT worker) FROM job_history WHERE outcome = 'succeeded'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(
        workers_used >= 2,
        "the work was shared, got {workers_used} worker(s)"
    );
}

fn completion(lease: queue::Lease, worker: &str) -> Completion {
    Completion {
        lease,
        state: JobState::Succeeded,
        step: "start".into(),
        run_at: None,
        attempt: 0,
        data: Some(json!({ "by": worker })),
        error: None,
        history_step: "start".into(),
        history_attempt: 0,
        outcome: queue::Outcome::Succeeded,
        error_class: None,
        history_error: None,
        note: None,
        started_at: Utc::now(),
        worker: worker.into(),
    }
}

#[tokio::test]
async fn a_worker_that_stops_heartbeating_loses_its_job_and_its_late_write_is_rejected() {
    let db = fresh_db().await;
    let kinds = vec!["demo".to_string()];
    let job = queue::enqueue(
        &mut db.pool.acquire().await.unwrap(),
        NewJob::new("demo", "start", 3),
    )
    .await
    .unwrap()
    .into_job();

    let lease = Duration::from_millis(400);
    let a = queue::claim(&db.pool, "a", &kinds, 10, lease, true)
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    let a_lease = a[0].lease();
    // While a's lease holds, nobody else gets the job and the rescuer leaves it alone.
    assert!(
        queue::claim(&db.pool, "b", &kinds, 10, lease, true)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(queue::rescue_expired(&db.pool, 10).await.unwrap(), 0);

    // a goes silent; once the lease has expired the rescuer returns the job and b claims it.
    let b = wait_for(
        "the lease to expire and b to claim",
        Duration::from_secs(10),
        || async {
            queue::rescue_expired(&db.pool, 10).await.unwrap();
            let b = queue::claim(&db.pool, "b", &kinds, 10, Duration::from_secs(30), true)
                .await
                .unwrap();
            (!b.is_empty()).then_some(b)
        },
    )
    .await;
    let b_lease = b[0].lease();
    assert_eq!(b_lease.job_id, job.id);
    assert_ne!(
        b_lease.token, a_lease.token,
        "every claim gets a new fencing token"
    );
    assert_eq!(b[0].attempt, 1, "the interrupted attempt counts");

    // a wakes up and tries to write: rejected, for completions, heartbeats and fenced writes.
    let applied = queue::complete_batch(&db.pool, &[completion(a_lease, "a")])
        .await
        .unwrap();
    assert!(applied.is_empty(), "a's late completion must be rejected");
    assert!(
        queue::heartbeat(&db.pool, &[(a_lease, None)], lease)
            .await
            .unwrap()
            .is_empty()
    );
    let mut conn = db.pool.acquire().await.unwrap();
    assert!(matches!(
        queue::fenced(&mut conn, a_lease).await,
        Err(queue::QueueError::LeaseLost(_))
    ));
    drop(conn);
    assert_eq!(job_state(&db.pool, job.id).await, JobState::Running);

    // b's write goes through.
    let applied = queue::complete_batch(&db.pool, &[completion(b_lease, "b")])
        .await
        .unwrap();
    assert_eq!(applied, vec![job.id]);
    let done = queue::get_job(&db.pool, job.id).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.data.0["by"], "b");
    let outcomes: Vec<String> = queue::history(&db.pool, job.id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.outcome.as_str().to_string())
        .collect();
    assert_eq!(outcomes, ["enqueued", "rescued", "succeeded"]);
}

/// Waits three times, then fails on every attempt.
struct Flaky;

#[async_trait]
impl Workflow for Flaky {
    const KIND: &'static str = "flaky";
    type Step = Work;
    type Args = serde_json::Value;
    type Data = serde_json::Value;

    fn first_step() -> Work {
        Work::Work
    }

    async fn run(&self, _: Work, cx: &mut Cx<'_>) -> Result<Transition<Work>, StepError> {
        let waits = cx.data["waits"].as_u64().unwrap_or(0);
        if waits < 3 {
            cx.data["waits"] = json!(waits + 1);
            Ok(Transition::Wait(Duration::from_millis(20)))
        } else {
            Err(StepError::retry(
                "test",
                format!("transient failure {}", cx.job.attempt + 1),
            ))
        }
    }
}

#[tokio::test]
async fn waiting_consumes_no_attempt_and_retries_back_off_until_max_attempts() {
    let db = fresh_db().await;
    let job = queue::enqueue(
        &mut db.pool.acquire().await.unwrap(),
        NewJob::new("flaky", "work", 4),
    )
    .await
    .unwrap()
    .into_job();
    let stop = CancellationToken::new();
    let settings = worker_settings("w");
    let retry = settings.retry;
    let w = tokio::spawn(worker::run(
        db.pool.clone(),
        Registry::new().register(Flaky),
        settings,
        stop.clone(),
    ));
    wait_for("the job to fail", Duration::from_secs(30), || async {
        (job_state(&db.pool, job.id).await == JobState::Failed).then_some(())
    })
    .await;
    stop.cancel();
    w.await.unwrap().unwrap();

    let history = queue::history(&db.pool, job.id).await.unwrap();
    let rows: Vec<(&str, i32)> = history
        .iter()
        .map(|h| (h.outcome.as_str(), h.attempt))
        .collect();
    assert_eq!(
        rows,
        [
            ("enqueued", 0),
            ("waiting", 0),
            ("waiting", 0),
            ("waiting", 0),
            ("retrying", 0),
            ("retrying", 1),
            ("retrying", 2),
            ("failed", 3),
        ],
        "waits keep attempt 0; three retries, then the fourth attempt fails for good"
    );
    // Each retry started no earlier than half its backoff (equal jitter) after the previous
    // attempt ended, and the backoff doubles.
    let attempts: Vec<(DateTime<Utc>, DateTime<Utc>)> = history
        .iter()
        .filter(|h| h.outcome == "retrying" || h.outcome == "failed")
        .map(|h| (h.started_at.unwrap(), h.at))
        .collect();
    for (n, pair) in attempts.windows(2).enumerate() {
        let gap = (pair[1].0 - pair[0].1).to_std().unwrap();
        let full = retry.base * 2u32.pow(n as u32);
        assert!(
            gap >= full / 2,
            "retry {} came after {gap:?}, backoff is {full:?}",
            n + 1
        );
    }
    let failed = queue::get_job(&db.pool, job.id).await.unwrap().unwrap();
    assert_eq!(failed.attempt, 4);
    assert!(failed.error.unwrap().contains("gave up after 4 attempts"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_enqueues_for_one_tenant_yield_one_job() {
    let db = fresh_db().await;
    insert_tenant(&db.pool, "acme").await;
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let pool = db.pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = pool.begin().await.unwrap();
            let enqueued = queue::enqueue(&mut tx, NewJob::new("demo", "start", 3).tenant("acme"))
                .await
                .unwrap();
            tx.commit().await.unwrap();
            enqueued
        }));
    }
    let mut ids = Vec::new();
    let mut created = 0;
    for t in tasks {
        let e = t.await.unwrap();
        if matches!(e, queue::Enqueued::Created(_)) {
            created += 1;
        }
        ids.push(e.job().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every caller got the same job");
    assert_eq!(created, 1);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE tenant_id = 'acme'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);

    // An enqueue inside a transaction that rolls back leaves nothing behind.
    insert_tenant(&db.pool, "globex").await;
    let mut tx = db.pool.begin().await.unwrap();
    queue::enqueue(&mut tx, NewJob::new("demo", "start", 3).tenant("globex"))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        queue::active_job(&db.pool, "globex")
            .await
            .unwrap()
            .is_none()
    );
}

/// Records each start; the first start of a job blocks until aborted, later ones finish.
struct Stubborn;

#[async_trait]
impl Workflow for Stubborn {
    const KIND: &'static str = "stubborn";
    type Step = Work;
    type Args = serde_json::Value;
    type Data = serde_json::Value;

    fn first_step() -> Work {
        Work::Work
    }

    async fn run(&self, _: Work, cx: &mut Cx<'_>) -> Result<Transition<Work>, StepError> {
        let starts: i64 = sqlx::query_scalar(
            "WITH s AS (INSERT INTO starts (job_id) VALUES ($1)) \
             SELECT count(*) FROM starts WHERE job_id = $1",
        )
        .bind(cx.job.id)
        .fetch_one(cx.db)
        .await
        .unwrap();
        if starts == 0 {
            cx.abort.cancelled().await;
            return Err(StepError::retry("aborted", "aborted"));
        }
        if let Some(ms) = cx.args["quick_ms"].as_u64() {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Ok(Transition::Done)
    }
}

#[tokio::test]
async fn graceful_shutdown_lets_short_steps_finish_releases_the_rest_and_a_restart_resumes() {
    let db = fresh_db().await;
    sqlx::query("CREATE TABLE starts (job_id uuid NOT NULL)")
        .execute(&db.pool)
        .await
        .unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    let stuck = queue::enqueue(&mut conn, NewJob::new("stubborn", "work", 3))
        .await
        .unwrap()
        .into_job();
    // A step already started once finishes in 300 ms: within the shutdown deadline.
    let quick = queue::enqueue(
        &mut conn,
        NewJob::new("stubborn", "work", 3).args(json!({ "quick_ms": 300 })),
    )
    .await
    .unwrap()
    .into_job();
    sqlx::query("INSERT INTO starts (job_id) VALUES ($1)")
        .bind(quick.id)
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);

    let mut settings = worker_settings("first");
    settings.shutdown_timeout = Duration::from_millis(1500);
    let stop = CancellationToken::new();
    let w = tokio::spawn(worker::run(
        db.pool.clone(),
        Registry::new().register(Stubborn),
        settings,
        stop.clone(),
    ));
    wait_for("both jobs to run", Duration::from_secs(10), || async {
        let running: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'running'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        (running == 2).then_some(())
    })
    .await;
    stop.cancel();
    w.await.unwrap().unwrap();

    assert_eq!(job_state(&db.pool, quick.id).await, JobState::Succeeded);
    let released = queue::get_job(&db.pool, stuck.id).await.unwrap().unwrap();
    assert_eq!(
        released.state,
        JobState::Queued,
        "the stuck job was handed back"
    );
    assert_eq!(released.attempt, 0, "a release consumes no attempt");
    assert!(released.lease_owner.is_none());
    let last = queue::history(&db.pool, stuck.id)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (last.outcome.as_str(), last.worker.as_deref()),
        ("released", Some("first"))
    );

    let stop = CancellationToken::new();
    let w = tokio::spawn(worker::run(
        db.pool.clone(),
        Registry::new().register(Stubborn),
        worker_settings("second"),
        stop.clone(),
    ));
    wait_for(
        "the restarted worker to finish the job",
        Duration::from_secs(10),
        || async { (job_state(&db.pool, stuck.id).await == JobState::Succeeded).then_some(()) },
    )
    .await;
    stop.cancel();
    w.await.unwrap().unwrap();
}

#[tokio::test]
async fn cancelling_a_waiting_job_ends_it_cancelled_and_finished_jobs_refuse() {
    let db = fresh_db().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let job = queue::enqueue(
        &mut conn,
        NewJob::new("demo", "start", 3).args(json!({ "wait_ms": 600000 })),
    )
    .await
    .unwrap()
    .into_job();
    let stop = CancellationToken::new();
    let w = tokio::spawn(worker::run(
        db.pool.clone(),
        Registry::new().register(support::demo::Demo),
        worker_settings("w"),
        stop.clone(),
    ));
    wait_for("the job to wait", Duration::from_secs(10), || async {
        (job_state(&db.pool, job.id).await == JobState::Waiting).then_some(())
    })
    .await;
    let cancelled = queue::cancel(&mut conn, job.id).await.unwrap();
    assert!(cancelled.cancel_requested);
    wait_for(
        "the job to end cancelled",
        Duration::from_secs(10),
        || async { (job_state(&db.pool, job.id).await == JobState::Cancelled).then_some(()) },
    )
    .await;
    // Asking again is a no-op; a job that already ended cannot be cancelled.
    let again = queue::cancel(&mut conn, job.id).await.unwrap();
    assert_eq!(again.state, JobState::Cancelled);
    let quick = queue::enqueue(&mut conn, NewJob::new("demo", "start", 3))
        .await
        .unwrap()
        .into_job();
    wait_for(
        "the quick job to succeed",
        Duration::from_secs(10),
        || async { (job_state(&db.pool, quick.id).await == JobState::Succeeded).then_some(()) },
    )
    .await;
    assert!(matches!(
        queue::cancel(&mut conn, quick.id).await,
        Err(queue::QueueError::WrongState { .. })
    ));
    assert!(matches!(
        queue::cancel(&mut conn, Uuid::new_v4()).await,
        Err(queue::QueueError::NotFound(_))
    ));
    stop.cancel();
    w.await.unwrap().unwrap();
}

/// Starts a worker process of the demo workflow (`examples/demo_worker.rs`) on the test
/// database with a 1 s lease (killed when dropped).
fn spawn_worker_process(db: &TestDb, id: &str, env: &[(&str, &str)]) -> tokio::process::Child {
    tokio::process::Command::new(demo_worker_binary())
        .env("TENANTD_DATABASE_URL", &db.url)
        .env("TENANTD_WORKER_ID", id)
        .env("TENANTD_LEASE", "1s")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start tenantd worker")
}

#[tokio::test]
async fn a_worker_process_killed_mid_step_loses_its_jobs_to_another_after_lease_expiry() {
    let db = fresh_db().await;
    let job = queue::enqueue(
        &mut db.pool.acquire().await.unwrap(),
        NewJob::new("demo", "start", 3).args(json!({ "busy_ms": 600000 })),
    )
    .await
    .unwrap()
    .into_job();

    let mut victim = spawn_worker_process(&db, "victim", &[]);
    wait_for(
        "the victim to start the job's step",
        Duration::from_secs(20),
        || async {
            let j = queue::get_job(&db.pool, job.id).await.unwrap().unwrap();
            (j.lease_owner.as_deref() == Some("victim") && j.step_started_at.is_some())
                .then_some(())
        },
    )
    .await;
    // SIGKILL: no chance to release anything.
    victim.start_kill().unwrap();
    victim.wait().await.unwrap();
    assert_eq!(job_state(&db.pool, job.id).await, JobState::Running);

    let mut settings = worker_settings("heir");
    settings.lease = Duration::from_secs(1);
    let (stop, heir) = spawn_worker(
        &db.pool,
        Registry::new().register(support::demo::Demo),
        settings,
    );
    wait_for(
        "the heir to finish the job",
        Duration::from_secs(20),
        || async { (job_state(&db.pool, job.id).await == JobState::Succeeded).then_some(()) },
    )
    .await;
    stop.cancel();
    heir.await.unwrap();
    let outcomes: Vec<(String, Option<String>)> = queue::history(&db.pool, job.id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| (h.outcome.as_str().to_string(), h.worker))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("enqueued".to_string(), None),
            ("rescued".to_string(), None),
            ("succeeded".to_string(), Some("heir".to_string())),
        ]
    );
}

#[tokio::test]
async fn a_sigkill_charges_an_attempt_only_to_the_step_that_had_started() {
    let db = fresh_db().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..4 {
        let job = NewJob::new("demo", "start", 3).args(json!({ "busy_ms": 600000 }));
        ids.push(queue::enqueue(&mut conn, job).await.unwrap().into_job().id);
    }
    // One slot and room for three more claimed jobs: one step runs, three wait for the slot.
    let mut victim = spawn_worker_process(
        &db,
        "victim",
        &[("TENANTD_CONCURRENCY", "1"), ("TENANTD_PREFETCH", "3")],
    );
    let started: Uuid = wait_for(
        "the victim to hold all four jobs and start one",
        Duration::from_secs(20),
        || async {
            let held: Vec<(Uuid, bool)> = sqlx::query_as(
                "SELECT id, step_started_at IS NOT NULL FROM jobs WHERE lease_owner = 'victim'",
            )
            .fetch_all(&db.pool)
            .await
            .unwrap();
            let running: Vec<Uuid> = held.iter().filter(|(_, s)| *s).map(|(id, _)| *id).collect();
            (held.len() == 4 && running.len() == 1).then(|| running[0])
        },
    )
    .await;
    victim.start_kill().unwrap();
    victim.wait().await.unwrap();

    wait_for(
        "the rescuer to return all four",
        Duration::from_secs(20),
        || async {
            queue::rescue_expired(&db.pool, 10).await.unwrap();
            let queued: i64 =
                sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'queued'")
                    .fetch_one(&db.pool)
                    .await
                    .unwrap();
            (queued == 4).then_some(())
        },
    )
    .await;
    for id in ids {
        let job = queue::get_job(&db.pool, id).await.unwrap().unwrap();
        let rescued = queue::history(&db.pool, id)
            .await
            .unwrap()
            .into_iter()
            .find(|h| h.outcome == "rescued")
            .expect("a rescued row");
        if id == started {
            assert_eq!(job.attempt, 1, "the interrupted step is charged");
            assert_eq!(
                rescued.error.as_deref(),
                Some("lease expired during the step")
            );
        } else {
            assert_eq!(job.attempt, 0, "a job that never got a slot is not charged");
            assert_eq!(
                rescued.error.as_deref(),
                Some("lease expired before the step started")
            );
        }
        assert!(job.step_started_at.is_none());
    }
}

#[tokio::test]
async fn a_job_that_has_begun_is_claimed_before_older_new_jobs() {
    let db = fresh_db().await;
    let kinds = vec!["demo".to_string()];
    let mut conn = db.pool.acquire().await.unwrap();
    let first = queue::enqueue(&mut conn, NewJob::new("demo", "start", 3))
        .await
        .unwrap()
        .into_job();
    let lease = Duration::from_secs(30);
    let claimed = queue::claim(&db.pool, "w", &kinds, 1, lease, true)
        .await
        .unwrap();
    assert_eq!(claimed[0].id, first.id);
    assert!(!claimed[0].begun);
    // A burst of new jobs arrives while the first one runs its step...
    for _ in 0..5 {
        queue::enqueue(&mut conn, NewJob::new("demo", "start", 3))
            .await
            .unwrap();
    }
    // ...which ends in a wait that is due at once, so it is the newest runnable job.
    let mut waiting = completion(claimed[0].lease(), "w");
    waiting.state = JobState::Waiting;
    waiting.step = "wait".into();
    waiting.run_at = Some(Utc::now());
    waiting.outcome = queue::Outcome::Waiting;
    assert_eq!(
        queue::complete_batch(&db.pool, &[waiting]).await.unwrap(),
        vec![first.id]
    );
    let next = queue::claim(&db.pool, "w", &kinds, 1, lease, true)
        .await
        .unwrap();
    assert_eq!(next[0].id, first.id, "the begun job goes first");
    assert!(next[0].begun);
    let rest = queue::claim(&db.pool, "w", &kinds, 10, lease, true)
        .await
        .unwrap();
    assert_eq!(rest.len(), 5);
    assert!(rest.iter().all(|j| !j.begun));
}

#[tokio::test]
async fn a_step_that_kills_its_worker_every_time_ends_failed_after_its_attempts() {
    let db = fresh_db().await;
    let job = queue::enqueue(
        &mut db.pool.acquire().await.unwrap(),
        NewJob::new("demo", "start", 2).args(json!({ "abort_process": true })),
    )
    .await
    .unwrap()
    .into_job();
    // Each worker process dies in the step; the rescuer returns the job, the next one claims it.
    let mut runs = 0;
    while job_state(&db.pool, job.id).await != JobState::Failed {
        runs += 1;
        assert!(
            runs <= 4,
            "the job was still not failed after {runs} crashed workers"
        );
        let mut worker = spawn_worker_process(&db, &format!("doomed-{runs}"), &[]);
        let failed = async {
            wait_for("the job to fail", Duration::from_secs(20), || async {
                (job_state(&db.pool, job.id).await == JobState::Failed).then_some(())
            })
            .await
        };
        tokio::select! {
            status = worker.wait() => {
                assert!(!status.unwrap().success(), "the worker should have died in the step");
            }
            // The last worker fails the job at its claim, without running the step, and lives.
            () = failed => break,
        }
        wait_for("the rescue", Duration::from_secs(20), || async {
            queue::rescue_expired(&db.pool, 10).await.unwrap();
            (job_state(&db.pool, job.id).await == JobState::Queued).then_some(())
        })
        .await;
    }
    let done = queue::get_job(&db.pool, job.id).await.unwrap().unwrap();
    assert_eq!(
        done.error.as_deref(),
        Some("step start was interrupted 2 times")
    );
    assert_eq!(done.rescues, 2);
}

#[tokio::test]
async fn the_control_schema_refuses_impossible_rows() {
    let db = fresh_db().await;
    let bad = [
        // running without a lease
        "INSERT INTO jobs (id, kind, step, state, max_attempts) \
         VALUES (gen_random_uuid(), 'demo', 'start', 'running', 3)",
        // finished without finished_at
        "INSERT INTO jobs (id, kind, step, state, max_attempts) \
         VALUES (gen_random_uuid(), 'demo', 'start', 'succeeded', 3)",
        // failed without a cause
        "INSERT INTO jobs (id, kind, step, state, max_attempts, finished_at) \
         VALUES (gen_random_uuid(), 'demo', 'start', 'failed', 3, now())",
        // a step started on a job nobody holds
        "INSERT INTO jobs (id, kind, step, max_attempts, step_started_at) \
         VALUES (gen_random_uuid(), 'demo', 'start', 3, now())",
        // more attempts than allowed
        "INSERT INTO jobs (id, kind, step, attempt, max_attempts) \
         VALUES (gen_random_uuid(), 'demo', 'start', 5, 3)",
        // a tenant id RDS could not use
        "INSERT INTO tenants (id, tier, status) VALUES ('bad--id', 'starter', 'provisioning')",
        "INSERT INTO tenants (id, tier, status) VALUES ('ready', 'starter', 'ready')",
    ];
    for sql in bad {
        assert!(
            sqlx::query(sql).execute(&db.pool).await.is_err(),
            "accepted: {sql}"
        );
    }
    let job = queue::enqueue(
        &mut db.pool.acquire().await.unwrap(),
        NewJob::new("demo", "start", 3),
    )
    .await
    .unwrap()
    .into_job();
    let tamper = sqlx::query("UPDATE job_history SET outcome = 'succeeded' WHERE job_id = $1")
        .bind(job.id)
        .execute(&db.pool)
        .await;
    assert!(tamper.is_err(), "history is append-only");
}

/// Panics on its first attempt.
struct Panicky;

#[async_trait]
impl Workflow for Panicky {
    const KIND: &'static str = "panicky";
    type Step = Work;
    type Args = serde_json::Value;
    type Data = serde_json::Value;

    fn first_step() -> Work {
        Work::Work
    }

    async fn run(&self, _: Work, cx: &mut Cx<'_>) -> Result<Transition<Work>, StepError> {
        if cx.job.attempt == 0 {
            panic!("a bug in a step");
        }
        Ok(Transition::Done)
    }
}

#[tokio::test]
async fn a_panicking_step_counts_as_a_failed_attempt_and_the_job_goes_on() {
    let db = fresh_db().await;
    let job = queue::enqueue(
        &mut db.pool.acquire().await.unwrap(),
        NewJob::new("panicky", "work", 3),
    )
    .await
    .unwrap()
    .into_job();
    let stop = CancellationToken::new();
    let w = tokio::spawn(worker::run(
        db.pool.clone(),
        Registry::new().register(Panicky),
        worker_settings("w"),
        stop.clone(),
    ));
    wait_for("the job to succeed", Duration::from_secs(20), || async {
        (job_state(&db.pool, job.id).await == JobState::Succeeded).then_some(())
    })
    .await;
    stop.cancel();
    w.await.unwrap().unwrap();
    let history = queue::history(&db.pool, job.id).await.unwrap();
    let rows: Vec<(&str, Option<&str>)> = history
        .iter()
        .map(|h| (h.outcome.as_str(), h.error.as_deref()))
        .collect();
    assert_eq!(
        rows,
        [
            ("enqueued", None),
            ("retrying", Some("the step panicked")),
            ("succeeded", None)
        ]
    );
}
