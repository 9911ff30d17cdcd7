//! Several replicas: three `tenantd serve` processes on one control database share 60 tenants;
//! one is killed (SIGKILL) halfway. All tenants end ready, and none was provisioned twice: one
//! instance each, and no job created its instance twice. And only one of them polls the
//! instances at a time.

use crate::support;

use std::collections::HashMap;
use std::time::Duration;

use support::fleet::*;
use support::stack::*;
use support::wait_for;
use tenantd::queue::JobState;
use tenantd::tenants::{self, TenantStatus};

const TENANTS: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_sixty_tenants_and_survive_losing_one() {
    let stack = Stack::new().await;
    let prefix = run_prefix("rep");
    let base = test_env(&stack.db, &[]);
    // Each replica takes a third of the fleet's RDS budget.
    let share = [
        ("TENANTD_RDS_RATE", "150"),
        ("TENANTD_RDS_RATE_SHARE", "0.33"),
    ];
    let mut replicas: Vec<_> = ["rep-a", "rep-b", "rep-c"]
        .into_iter()
        .map(|id| spawn_serve(&daemon_env(&base, id, &share)))
        .collect();
    let tenants = provision_many(&stack, &prefix, TENANTS, 5).await;

    wait_for(
        "half of the tenants ready",
        Duration::from_secs(240),
        || async {
            let ready: i64 =
                sqlx::query_scalar("SELECT count(*) FROM tenants WHERE status = 'ready'")
                    .fetch_one(stack.pool())
                    .await
                    .unwrap();
            (ready as usize >= TENANTS / 2).then_some(())
        },
    )
    .await;
    kill9(&mut replicas[0]).await;
    settled(&stack, Duration::from_secs(240)).await;
    for r in &mut replicas[1..] {
        kill9(r).await;
    }

    let ids: Vec<String> = tenants.into_iter().map(|(t, _)| t).collect();
    assert_exactly_provisioned(&stack, &prefix, &ids).await;
    // Each job ran its create step to success once, and all three replicas did work.
    let twice: Vec<(String, i64)> = sqlx::query_as(
        "SELECT j.tenant_id, count(*) FROM job_history h JOIN jobs j ON j.id = h.job_id
         WHERE h.step IN ('credentials', 'instance') AND h.outcome = 'advanced'
         GROUP BY j.tenant_id, h.step HAVING count(*) > 1",
    )
    .fetch_all(stack.pool())
    .await
    .unwrap();
    assert!(twice.is_empty(), "created twice: {twice:?}");
    let workers: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT worker) FROM job_history WHERE worker LIKE 'rep-%'",
    )
    .fetch_one(stack.pool())
    .await
    .unwrap();
    assert_eq!(workers, 3, "every replica took part");
}

/// The value of an unlabelled metric, or the sum of a labelled one's series matching `filter`;
/// `None` while the replica does not answer yet.
async fn try_metric(port: u16, name: &str, filter: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .and_then(|r| r.error_for_status())
        .ok()?
        .text()
        .await
        .ok()?;
    Some(metric_in(&text, name, filter))
}

async fn metric(port: u16, name: &str, filter: &str) -> f64 {
    try_metric(port, name, filter)
        .await
        .expect("the replica answers GET /metrics")
}

fn metric_in(text: &str, name: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|l| {
            (l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
                && l.contains(filter)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn describes(port: u16) -> f64 {
    metric(
        port,
        "tenantd_aws_calls_total",
        "operation=\"DescribeDBInstances\"",
    )
    .await
}

/// Waits until every live replica reports a working poller, exactly one of them as its own;
/// returns that one's worker id.
async fn poller_elected(ports: &HashMap<&'static str, u16>) -> &'static str {
    wait_for(
        "one poller, known to every replica",
        Duration::from_secs(30),
        || async {
            let mut leaders = Vec::new();
            for (id, port) in ports {
                if try_metric(*port, "tenantd_instance_poller_active", "").await? != 1.0 {
                    return None;
                }
                if try_metric(*port, "tenantd_maintenance_leader", "").await? == 1.0 {
                    leaders.push(*id);
                }
            }
            (leaders.len() == 1).then(|| leaders[0])
        },
    )
    .await
}

/// Provisions six tenants under `prefix` and waits for all to be ready; meanwhile only `poller`
/// among the replicas made DescribeDBInstances calls. Returns the tenants.
async fn six_ready_described_only_by(
    stack: &Stack,
    prefix: &str,
    ports: &HashMap<&'static str, u16>,
    poller: &str,
) -> Vec<String> {
    let mut before = HashMap::new();
    for (id, port) in ports {
        before.insert(*id, describes(*port).await);
    }
    let tenants: Vec<String> = provision_many(stack, prefix, 6, 5)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    let statuses = settled(stack, Duration::from_secs(120)).await;
    assert!(
        statuses.values().all(|s| *s == TenantStatus::Ready),
        "{statuses:?}"
    );
    for (id, port) in ports {
        let calls = describes(*port).await - before[id];
        if *id == poller {
            assert!(calls > 0.0, "the poller {id} made no describe call");
        } else {
            assert_eq!(calls, 0.0, "{id} is not the poller but described instances");
        }
    }
    tenants
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_polls_for_all_and_another_takes_over_when_it_dies() {
    let stack = Stack::new().await;
    let prefix = run_prefix("pol");
    let base = test_env(&stack.db, &[]);
    let mut ports: HashMap<&'static str, u16> = HashMap::new();
    let mut replicas = HashMap::new();
    for id in ["pol-a", "pol-b", "pol-c"] {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let env = daemon_env(&base, id, &[("TENANTD_LISTEN", listen.as_str())]);
        replicas.insert(id, spawn_serve(&env));
        ports.insert(id, port);
    }
    let leader = poller_elected(&ports).await;

    // Six tenants: their waits are looked after by the leader alone; the others never describe.
    let first = six_ready_described_only_by(&stack, &format!("{prefix}-a"), &ports, leader).await;

    // The poller dies; another replica takes over and finishes six more the same way.
    kill9(replicas.get_mut(leader).unwrap()).await;
    ports.remove(leader);
    let heir = poller_elected(&ports).await;
    assert_ne!(heir, leader);
    // The heir records its rounds once its first one ends (the dead poller's last one is what
    // the table holds until then).
    wait_for(
        "the heir's first poll round",
        Duration::from_secs(30),
        || async {
            let recorded: String = sqlx::query_scalar("SELECT leader FROM instance_poller")
                .fetch_one(stack.pool())
                .await
                .unwrap();
            (recorded == heir).then_some(())
        },
    )
    .await;
    let second = six_ready_described_only_by(&stack, &format!("{prefix}-b"), &ports, heir).await;
    let mut all = first;
    all.extend(second);
    assert_exactly_provisioned(&stack, &prefix, &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_tenant_deprovisioned_as_soon_as_it_is_ready_is_deleted() {
    let stack = Stack::new().await;
    let prefix = run_prefix("dep");
    let base = test_env(&stack.db, &[]);
    // A slow poller: what it saw of the instance while it was created (no deletion protection
    // yet) is still its latest round when the deprovisioning starts.
    let env = daemon_env(&base, "dep", &[("TENANTD_RDS_POLL_INTERVAL", "10s")]);
    let mut daemon = spawn_serve(&env);
    let tenant = format!("{prefix}-0");
    let job = stack.provision(&tenant, "enterprise").await;
    let job = stack.finished(job, Duration::from_secs(120)).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let (_, deprovision, _) = tenants::request_deprovision(
        stack.pool(),
        &tenantd::config::Tiers::defaults(),
        &tenant,
        tenantd::tenants::Deletion::KEEP_SNAPSHOT,
        5,
    )
    .await
    .unwrap();
    let deprovision = stack
        .finished(deprovision.id, Duration::from_secs(120))
        .await;
    assert_eq!(
        deprovision.state,
        JobState::Succeeded,
        "{:?}",
        deprovision.error
    );
    assert!(stack.instance(&format!("saas-{tenant}")).await.is_none());
    kill9(&mut daemon).await;
}
