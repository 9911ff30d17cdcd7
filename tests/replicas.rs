//! Several replicas: three `tenantd serve` processes on one control database share 60 tenants;
//! one is killed (SIGKILL) halfway. All tenants end ready, and none was provisioned twice: one
//! instance each, and no job created its instance twice.

mod support;

use std::time::Duration;

use support::fleet::*;
use support::stack::*;
use support::wait_for;

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
