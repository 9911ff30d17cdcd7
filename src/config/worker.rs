//! How one worker process runs jobs: its name, concurrency, leases, polling, shutdown and the
//! backoff of retried steps.

use std::time::Duration;

use rand::Rng;

use super::env::{ConfigError, Env};

/// How one worker process behaves.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Names this process in leases and history rows.
    pub id: String,
    /// Steps running at once in this process.
    pub concurrency: usize,
    /// Claimed jobs that may wait in this process for a free slot. A larger prefetch makes
    /// claims larger (fewer round trips for short steps) but holds jobs other processes could
    /// run; the default equals the concurrency.
    pub prefetch: usize,
    /// How long a claim holds a job without a heartbeat.
    pub lease: Duration,
    /// A step whose lease this process could not renew is abandoned this long before the lease
    /// would expire (counted from when the last renewal was sent), so that it has stopped
    /// before the rescuer may hand its job to another worker. The maintenance leader keeps its
    /// leadership by the same rule.
    pub lease_margin: Duration,
    /// How long the maintenance leader waits for the control database to confirm its lock;
    /// a confirmation that does not come in time ends its leadership at once.
    pub leader_ping_timeout: Duration,
    /// Longest time between two claim attempts when no notification arrives.
    pub poll_interval: Duration,
    /// How long running steps may take to finish after a shutdown signal.
    pub shutdown_timeout: Duration,
    pub retry: RetryPolicy,
}

/// Backoff of retried steps: `base * 2^(attempt-1)`, capped at `max`, with "equal jitter"
/// (the delay is uniformly drawn from its upper half) so that retries of many jobs spread out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// Delay before attempt number `attempt` (1 = the first retry).
    pub fn delay(&self, attempt: i32, rng: &mut impl Rng) -> Duration {
        let exp = attempt.saturating_sub(1).clamp(0, 30) as u32;
        let full = self.base.saturating_mul(1u32 << exp.min(20)).min(self.max);
        let half = full / 2;
        half + full.saturating_sub(half).mul_f64(rng.random::<f64>())
    }
}

impl WorkerSettings {
    pub fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let concurrency = env.integer("TENANTD_CONCURRENCY", 16, 1..=1024)? as usize;
        let prefetch = env.integer("TENANTD_PREFETCH", concurrency as i64, 0..=100_000)? as usize;
        let lease = env.duration(
            "TENANTD_LEASE",
            Duration::from_secs(30),
            Duration::from_millis(300),
            Duration::from_secs(3600),
        )?;
        let lease_margin =
            env.duration("TENANTD_LEASE_MARGIN", lease / 5, Duration::ZERO, lease / 2)?;
        let leader_ping_timeout = env.duration(
            "TENANTD_LEADER_PING_TIMEOUT",
            (lease / 2).min(Duration::from_secs(10)),
            Duration::from_millis(10),
            lease,
        )?;
        let poll_interval = env.duration(
            "TENANTD_POLL_INTERVAL",
            Duration::from_secs(1),
            Duration::from_millis(10),
            Duration::from_secs(300),
        )?;
        let shutdown_timeout = env.duration(
            "TENANTD_SHUTDOWN_TIMEOUT",
            Duration::from_secs(25),
            Duration::ZERO,
            Duration::from_secs(3600),
        )?;
        let retry_base = env.duration(
            "TENANTD_RETRY_BASE",
            Duration::from_secs(2),
            Duration::from_millis(1),
            Duration::from_secs(3600),
        )?;
        let retry_max = env.duration(
            "TENANTD_RETRY_MAX",
            Duration::from_secs(300),
            Duration::from_millis(1),
            Duration::from_secs(24 * 3600),
        )?;
        if retry_max < retry_base {
            return Err(ConfigError::Invalid {
                name: "TENANTD_RETRY_MAX",
                problem: "must not be shorter than TENANTD_RETRY_BASE".into(),
            });
        }
        let id = env
            .optional("TENANTD_WORKER_ID")
            .unwrap_or_else(default_worker_id);
        Ok(WorkerSettings {
            id,
            concurrency,
            prefetch,
            lease,
            lease_margin,
            leader_ping_timeout,
            poll_interval,
            shutdown_timeout,
            retry: RetryPolicy {
                base: retry_base,
                max: retry_max,
            },
        })
    }
}

/// `<hostname>-<pid>`: unique among the processes sharing one control database.
fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "tenantd".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let policy = RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
        };
        let mut rng = StdRng::seed_from_u64(7);
        for (attempt, full) in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (30, 10)] {
            for _ in 0..50 {
                let d = policy.delay(attempt, &mut rng);
                let full = Duration::from_secs(full);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
    }
}
