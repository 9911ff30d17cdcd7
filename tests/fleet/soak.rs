//! Crash soak: 30 tenants of mixed tiers while the daemon (`tenantd serve`, the real binary) is
//! killed with SIGKILL at random moments, again and again, and started again each time. At the
//! end every tenant is ready with exactly one instance, one secret and two alarms, and nothing
//! else exists under the run's prefix.

use crate::support;

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::fleet::*;
use support::stack::*;

const TENANTS: usize = 30;
const KILLS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_tenants_end_ready_and_unique_through_a_dozen_sigkills() {
    let stack = Stack::new().await;
    let prefix = run_prefix("soak");
    let base = test_env(&stack.db, &[]);
    let env = daemon_env(&base, "soak", &[]);
    // A kill charges an attempt only to the steps that had started, not to jobs the daemon had
    // only claimed: the daemon's default 8 attempts per step outlast the 12 kills.
    let tenants = provision_many(&stack, &prefix, TENANTS, 8).await;

    // A fixed seed: the kill schedule is the same on every run.
    let mut rng = StdRng::seed_from_u64(0x50a4);
    let mut daemon = spawn_serve(&env);
    for _ in 0..KILLS {
        let alive = Duration::from_millis(rng.random_range(500..3000));
        tokio::time::sleep(alive).await;
        kill9(&mut daemon).await;
        daemon = spawn_serve(&env);
    }
    settled(&stack, Duration::from_secs(240)).await;
    kill9(&mut daemon).await;

    let ids: Vec<String> = tenants.into_iter().map(|(t, _)| t).collect();
    assert_exactly_provisioned(&stack, &prefix, &ids).await;
    // The kills landed in the middle of work: some job was taken over after a lost lease.
    let rescued: i64 =
        sqlx::query_scalar("SELECT count(*) FROM job_history WHERE outcome = 'rescued'")
            .fetch_one(stack.pool())
            .await
            .unwrap();
    assert!(rescued > 0, "no kill interrupted a running step");
    let most: i32 = sqlx::query_scalar("SELECT max(rescues) FROM jobs")
        .fetch_one(stack.pool())
        .await
        .unwrap();
    let charged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM job_history
         WHERE outcome = 'rescued' AND error = 'lease expired during the step'",
    )
    .fetch_one(stack.pool())
    .await
    .unwrap();
    eprintln!(
        "rescued {rescued} times in all ({charged} charged an attempt), one job at most {most} times"
    );
    // A kill rescues each job it held at most once: no job was rescued more often than the
    // daemon was killed.
    assert!(
        most as usize <= KILLS,
        "a job was rescued {most} times for {KILLS} kills"
    );
    // Some interrupted steps had started, and only those were charged an attempt.
    assert!(charged >= 1 && charged <= rescued, "{charged} of {rescued}");
    // No step ran out of attempts through the kills.
    let exhausted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM job_history WHERE error_class = 'interrupted'")
            .fetch_one(stack.pool())
            .await
            .unwrap();
    assert_eq!(exhausted, 0);
}
