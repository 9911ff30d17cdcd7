//! A process cut off from the control database, by a proxy that lets nothing through (nothing
//! fails, everything hangs), on the local stack:
//! - a worker whose step waits on a slow AWS answer drops the step before its lease expires;
//!   another worker takes the job over after the expiry, and AWS saw the two runs one after the
//!   other, never at once; the tenant ends with one instance;
//! - the maintenance leader stops leading within a lease and drops the round it was in; another
//!   replica takes over within three leases; once the partition heals the old leader writes
//!   nothing, and the warm pool holds exactly the standbys wanted;
//! - a leader's write in a term that is over is refused, and a new term waits for the writes of
//!   the one before to end.

use crate::support;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use support::db_proxy::DbProxy;
use support::fleet::{free_port, kill9};
use support::proxy::{FaultProxy, Recorded};
use support::stack::*;
use support::{fresh_db, wait_for, worker_settings};
use tenantd::cloud::Cloud;
use tenantd::maintenance::{Election, FenceError, Maintenance, RoundError, Service, Term, term};
use tenantd::queue::JobState;
use tenantd::tenants::TenantStatus;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The lease of every process here: short, so that expiries come quickly.
const LEASE: Duration = Duration::from_secs(3);
const LEASE_S: &str = "3s";

/// Starts `tenantd worker` with `env` (killed when dropped); its log goes to the test's output.
fn spawn_worker(env: &HashMap<String, String>) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .arg("worker")
        .envs(env)
        .env("RUST_LOG", "warn,tenantd::maintenance=info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start tenantd worker")
}

/// The sum of the samples of `name` whose labels contain `filter`, from a process's
/// `/metrics`; `None` while it does not answer (quickly).
async fn metric(port: u16, name: &str, filter: &str) -> Option<f64> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(250))
        .build()
        .unwrap();
    let text = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let samples: Vec<f64> = text
        .lines()
        .filter(|l| {
            (l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
                && l.contains(filter)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    Some(samples.iter().sum())
}

/// When the job's lease expires; it must be A's.
async fn lease_of(stack: &Stack, job: uuid::Uuid) -> chrono::DateTime<chrono::Utc> {
    let job = stack.job(job).await;
    assert_eq!(job.lease_owner.as_deref(), Some("lease-a"), "{job:?}");
    job.lease_expires_at.expect("a running job has a lease")
}

/// The calls of `operation` in a proxy's log, in order of arrival.
fn calls(proxy: &FaultProxy, operation: &str) -> Vec<Recorded> {
    proxy
        .recorded()
        .into_iter()
        .filter(|r| r.operation == operation)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_cut_off_from_the_database_drops_its_step_before_another_takes_the_job() {
    let stack = Stack::new().await;
    let db_proxy = DbProxy::start(&stack.db.url).await;
    let aws_a = FaultProxy::start(&stack_endpoint()).await;
    let aws_b = FaultProxy::start(&stack_endpoint()).await;
    // A's CreateDBInstance takes effect at once, but its answer takes an hour: A's step waits.
    aws_a.hold_answer("CreateDBInstance", 1, Duration::from_secs(3600));

    // Worker A runs in this process, without maintenance (B leads), its control database
    // behind the proxy.
    let env_a = test_env(
        &stack.db,
        &[
            ("TENANTD_DATABASE_URL", db_proxy.url.as_str()),
            ("TENANTD_WORKER_ID", "lease-a"),
            ("TENANTD_LEASE", LEASE_S),
        ],
    );
    let settings_a = settings(&env_a);
    let pool_a = tenantd::db::connect(&settings_a.database_url, 16)
        .await
        .unwrap();
    let cloud_a = Cloud::from_sdk_config(&sdk_config(Some(&aws_a.url)).await);
    let (registry_a, _) = tenantd::app::workflows(&settings_a, cloud_a);
    let stop_a = CancellationToken::new();
    let worker_a = tokio::spawn(tenantd::worker::run(
        pool_a,
        registry_a,
        settings_a.worker.clone(),
        stop_a.clone(),
    ));

    let tenant = tenant_id("lease");
    let job = stack.provision(&tenant, "starter").await;
    wait_for(
        "A's step to wait on CreateDBInstance",
        Duration::from_secs(60),
        || async { (aws_a.seen("CreateDBInstance") == 1).then_some(()) },
    )
    .await;

    // Worker B, a process with its own AWS log, leads maintenance: its rescuer watches A's
    // lease, and leaves the job alone while A renews it.
    let port_b = free_port();
    let listen_b = format!("127.0.0.1:{port_b}");
    let env_b = test_env(
        &stack.db,
        &[
            ("AWS_ENDPOINT_URL", aws_b.url.as_str()),
            ("TENANTD_WORKER_ID", "lease-b"),
            ("TENANTD_LEASE", LEASE_S),
            ("TENANTD_METRICS_LISTEN", listen_b.as_str()),
        ],
    );
    let mut worker_b = spawn_worker(&env_b);
    wait_for("B to lead", Duration::from_secs(60), || async {
        let (_, leader) = term::current(stack.pool()).await.unwrap();
        (leader.as_deref() == Some("lease-b")).then_some(())
    })
    .await;
    let first = lease_of(&stack, job).await;
    let renewed = wait_for("A to renew its lease", LEASE * 2, || async {
        let now = lease_of(&stack, job).await;
        (now > first).then_some(now)
    })
    .await;
    wait_for("A to renew its lease again", LEASE * 2, || async {
        (lease_of(&stack, job).await > renewed).then_some(())
    })
    .await;
    assert_eq!(
        stack.job(job).await.rescues,
        0,
        "the rescuer took the job from a worker renewing its lease"
    );

    // A is cut off from the database while its step still waits. B takes the job over once
    // the lease has expired, runs the step again, and finishes it.
    let cut = db_proxy.partition();
    let done = stack.finished(job, Duration::from_secs(180)).await;
    let history = tenantd::queue::history(stack.pool(), job).await.unwrap();
    assert_eq!(done.state, JobState::Succeeded, "{history:#?}");
    let b_creates = calls(&aws_b, "CreateDBInstance");
    assert_eq!(b_creates.len(), 1, "B ran the step once");
    // The two runs, as AWS saw them: every call of A's had ended before B's run began.
    for call in aws_a.recorded() {
        match call.ended {
            Some((ended, _)) if ended < b_creates[0].arrived => {}
            _ => panic!(
                "A's {} was still in flight when B's run began",
                call.operation
            ),
        }
    }
    // A gave its step up, unanswered, before its lease ran out.
    let (gave_up, answered) = calls(&aws_a, "CreateDBInstance")[0].ended.unwrap();
    assert!(!answered, "A's call was answered: its answer was held");
    eprintln!(
        "lease {LEASE:?}: A gave its step up {:?} after the cut; B's run began {:?} after it",
        gave_up - cut,
        b_creates[0].arrived - cut
    );
    assert!(
        gave_up - cut < LEASE,
        "A gave its step up {:?} after it was cut off: not within its lease",
        gave_up - cut
    );
    assert_eq!(
        aws_a.seen("CreateDBInstance"),
        1,
        "A did not run the step again"
    );
    let rescued: Vec<_> = history
        .iter()
        .filter(|h| h.outcome.as_str() == "rescued")
        .collect();
    assert_eq!(rescued.len(), 1, "{history:#?}");
    assert_eq!(rescued[0].step, "instance");
    assert_eq!(
        rescued[0].error.as_deref(),
        Some("lease expired during the step")
    );
    let instance_runs: Vec<_> = history
        .iter()
        .filter(|h| h.step == "instance" && h.outcome.as_str() == "advanced")
        .map(|h| h.worker.clone().unwrap_or_default())
        .collect();
    assert_eq!(instance_runs, ["lease-b"], "{history:#?}");
    let abandoned = tenantd::metrics::render(None).unwrap();
    assert!(
        abandoned
            .lines()
            .any(|l| l == r#"tenantd_steps_abandoned_total{reason="unrenewed"} 1"#),
        "{abandoned}"
    );

    db_proxy.heal();
    stop_a.cancel();
    worker_a.await.unwrap().unwrap();
    kill9(&mut worker_b).await;
    assert_eq!(stack.tenant(&tenant).await.status, TenantStatus::Ready);
    let instance = stack.tenant(&tenant).await.db_instance_id.unwrap();
    assert_eq!(stack.instances_named(&instance).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_stops_another_takes_over_and_the_pool_keeps_the_wanted_standbys() {
    let stack = Stack::new().await;
    let run = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let instance_prefix = format!("lp{run}-");
    let pool_secrets = format!("lp{run}/pool/");
    let db_proxy = DbProxy::start(&stack.db.url).await;
    let aws_a = FaultProxy::start(&stack_endpoint()).await;
    // A's first pool keeper round asks for the account's quotas, and waits for the answer.
    aws_a.delay("DescribeAccountAttributes", 1, LEASE * 4);
    let common = [
        ("TENANTD_WARM_POOL", "starter=2"),
        ("TENANTD_INSTANCE_PREFIX", instance_prefix.as_str()),
        ("TENANTD_POOL_SECRET_PREFIX", pool_secrets.as_str()),
        ("TENANTD_LEASE", LEASE_S),
    ];
    let replica = |id: &str, port: u16, extra: &[(&str, &str)]| {
        let listen = format!("127.0.0.1:{port}");
        let mut vars: Vec<(&str, &str)> = common.to_vec();
        vars.extend_from_slice(extra);
        let mut env = test_env(&stack.db, &vars);
        env.insert("TENANTD_WORKER_ID".into(), id.into());
        env.insert("TENANTD_METRICS_LISTEN".into(), listen);
        spawn_worker(&env)
    };

    // A leads, through the proxy; its pool keeper waits on AWS.
    let port_a = free_port();
    let mut a = replica(
        "leader-a",
        port_a,
        &[
            ("TENANTD_DATABASE_URL", db_proxy.url.as_str()),
            ("AWS_ENDPOINT_URL", aws_a.url.as_str()),
        ],
    );
    let epoch_a = wait_for("A to lead", Duration::from_secs(60), || async {
        let (epoch, leader) = term::current(stack.pool()).await.unwrap();
        (leader.as_deref() == Some("leader-a")).then_some(epoch)
    })
    .await;
    wait_for(
        "A's pool keeper to wait on AWS",
        Duration::from_secs(30),
        || async { (aws_a.seen("DescribeAccountAttributes") == 1).then_some(()) },
    )
    .await;
    // B follows.
    let port_b = free_port();
    let mut b = replica("leader-b", port_b, &[]);
    wait_for("B to run", Duration::from_secs(60), || async {
        (metric(port_b, "tenantd_maintenance_leader", "").await? == 0.0).then_some(())
    })
    .await;

    // A is cut off from the database.
    let cut = db_proxy.partition();
    wait_for("A to stop leading", LEASE, || async {
        (metric(port_a, "tenantd_maintenance_leader", "").await? == 0.0).then_some(())
    })
    .await;
    let stopped_after = cut.elapsed();
    // The round A was in was dropped: its call given up, the round counted as stopped.
    let (_, answered) = wait_for("A's round to be dropped", LEASE, || async {
        calls(&aws_a, "DescribeAccountAttributes")[0].ended
    })
    .await;
    assert!(!answered);
    let stopped = metric(
        port_a,
        "tenantd_maintenance_rounds_total",
        r#"result="stopped",service="pool_keeper""#,
    )
    .await
    .unwrap();
    assert_eq!(stopped, 1.0);
    let epoch_b = wait_for("B to take over", LEASE * 3, || async {
        let (epoch, leader) = term::current(stack.pool()).await.unwrap();
        (leader.as_deref() == Some("leader-b")).then_some(epoch)
    })
    .await;
    let taken_over_after = cut.elapsed();
    assert!(taken_over_after < LEASE * 3, "{taken_over_after:?}");
    eprintln!(
        "lease {LEASE:?}: A stopped leading {stopped_after:?} after the cut, \
         B took over {taken_over_after:?} after it"
    );
    assert!(epoch_b > epoch_a);
    // B's keeper starts the standbys while A is still cut off; then the partition heals, after
    // the answer A's round waited for would have come.
    wait_for("B to start two standbys", LEASE * 3, || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pool_standbys")
            .fetch_one(stack.pool())
            .await
            .unwrap();
        (n == 2).then_some(())
    })
    .await;
    let asked = calls(&aws_a, "DescribeAccountAttributes")[0].arrived;
    wait_for("the time A's answer would have come", LEASE * 5, || async {
        (asked.elapsed() > LEASE * 4).then_some(())
    })
    .await;
    db_proxy.heal();

    // The standbys become available (A's worker may build them too), and several rounds of
    // B's keeper later the pool holds exactly them.
    wait_for(
        "two available standbys",
        Duration::from_secs(120),
        || async {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pool_standbys WHERE state = 'available'")
                    .fetch_one(stack.pool())
                    .await
                    .unwrap();
            (n == 2).then_some(())
        },
    )
    .await;
    let rounds = |port| async move {
        metric(
            port,
            "tenantd_maintenance_rounds_total",
            r#"result="ok",service="pool_keeper""#,
        )
        .await
    };
    let before = rounds(port_b).await.unwrap();
    wait_for(
        "three more keeper rounds",
        Duration::from_secs(30),
        || async { (rounds(port_b).await? >= before + 3.0).then_some(()) },
    )
    .await;
    let rows: Vec<(String, String, Option<i64>)> =
        sqlx::query_as("SELECT id, state::text, leader_epoch FROM pool_standbys ORDER BY id")
            .fetch_all(stack.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (id, state, epoch) in &rows {
        assert_eq!(state, "available", "{id}");
        assert_eq!(*epoch, Some(epoch_b), "{id} was not started by B's term");
    }
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'standby'")
        .fetch_one(stack.pool())
        .await
        .unwrap();
    assert_eq!(jobs, 2, "one creation per standby, nothing else");
    let instances = support::fleet::instances_with_prefix(&stack, &instance_prefix).await;
    let ids: Vec<String> = rows.iter().map(|(id, ..)| id.clone()).collect();
    assert_eq!(instances, ids);
    // A never led again, nor wrote as a leader: B's term goes on, and A's keeper ran no round.
    let (epoch, leader) = term::current(stack.pool()).await.unwrap();
    assert_eq!((epoch, leader.as_deref()), (epoch_b, Some("leader-b")));
    assert_eq!(
        metric(port_a, "tenantd_maintenance_leader", "").await,
        Some(0.0)
    );
    assert_eq!(
        metric(
            port_a,
            "tenantd_maintenance_rounds_total",
            r#"result="ok",service="pool_keeper""#
        )
        .await,
        Some(0.0)
    );

    // Empty the pool again: a replica with no pool retires the standbys.
    kill9(&mut a).await;
    kill9(&mut b).await;
    let mut sweeper = replica("sweeper", free_port(), &[("TENANTD_WARM_POOL", "")]);
    wait_for("the pool to be empty", Duration::from_secs(120), || async {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pool_standbys")
            .fetch_one(stack.pool())
            .await
            .unwrap();
        (left == 0).then_some(())
    })
    .await;
    kill9(&mut sweeper).await;
    assert!(
        support::fleet::instances_with_prefix(&stack, &instance_prefix)
            .await
            .is_empty()
    );
}

/// Hands each term it leads in to the test, and writes nothing.
struct Witness(mpsc::UnboundedSender<Term>);

#[async_trait]
impl Service for Witness {
    fn name(&self) -> &'static str {
        "witness"
    }

    fn every(&self) -> Duration {
        Duration::from_millis(100)
    }

    async fn lead(&self, term: &Term) -> Result<(), RoundError> {
        let _ = self.0.send(term.clone());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_a_term_that_is_over_is_refused_and_a_new_term_waits_for_the_last_writes() {
    let db = fresh_db().await;
    let (terms, mut seen) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let election = Election::of(&worker_settings("fence"));
    let maintenance = Maintenance::new(db.pool.clone(), "fence", election)
        .with(Witness(terms))
        .spawn(stop.clone());
    let ours = seen.recv().await.unwrap();
    let (epoch, leader) = term::current(&db.pool).await.unwrap();
    assert_eq!((ours.epoch(), leader.as_deref()), (epoch, Some("fence")));

    // While a fenced write is open, a new term cannot begin: it waits for the write to end.
    let mut write = ours.fence(&db.pool).await.unwrap();
    sqlx::query("INSERT INTO instance_poller (leader, round_at) VALUES ('fence', now())")
        .execute(&mut *write)
        .await
        .unwrap();
    let mut other = db.pool.acquire().await.unwrap();
    sqlx::query("SET lock_timeout = '200ms'")
        .execute(&mut *other)
        .await
        .unwrap();
    let blocked = sqlx::query("UPDATE maintenance_leadership SET epoch = epoch + 1")
        .execute(&mut *other)
        .await
        .unwrap_err();
    assert_eq!(
        blocked
            .as_database_error()
            .and_then(|e| e.code())
            .as_deref(),
        Some("55P03"),
        "{blocked}"
    );
    write.commit().await.unwrap();

    // Another process begins a term (here: by hand, as its election would): the old term's
    // writes are refused from now on, before they change anything.
    sqlx::query("UPDATE maintenance_leadership SET epoch = epoch + 1, leader = 'other'")
        .execute(&mut *other)
        .await
        .unwrap();
    match ours.fence(&db.pool).await {
        Err(FenceError::Deposed { ours, current }) => {
            assert_eq!((ours, current), (epoch, epoch + 1));
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a deposed term's write went on"),
    }
    stop.cancel();
    maintenance.await.unwrap();
    // A term that ended here refuses writes without asking the database.
    assert!(ours.lost().is_cancelled());
    assert!(matches!(
        ours.fence(&db.pool).await,
        Err(FenceError::Lost(e)) if e == epoch
    ));
}
