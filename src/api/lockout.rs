//! Per-address limits on failed authentication, for the API and the console's sign-in alike:
//! an address gets `TENANTD_AUTH_FAILURES_PER_MINUTE` failures a minute (a burst of that many,
//! then one more each 60/n s), then 429 with `Retry-After` until it has some again. Successful
//! requests neither count nor are refused. The same limits keep refusals from flooding the
//! audit trail: every refusal an address is allowed is recorded, then one a minute while it is
//! blocked, and no more than a fleet-wide budget a minute from all addresses together.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Addresses remembered before the forgotten ones are dropped.
const TRACKED: usize = 10_000;

/// What a failed authentication comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answer 401.
    Refused { record: bool },
    /// Answer 429: the address has used its failures for now.
    Blocked { retry_after: Duration, record: bool },
}

/// Cheap to clone; every clone counts into the same limits.
#[derive(Clone)]
pub struct Lockout(Arc<Limits>);

struct Limits {
    failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Audit rows about a blocked address.
    blocked_rows: DefaultKeyedRateLimiter<IpAddr>,
    /// Audit rows about failures from all addresses.
    rows: DefaultDirectRateLimiter,
    clock: DefaultClock,
}

impl Lockout {
    /// `per_minute` failures a minute per address.
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).expect("at least one");
        let fleet = NonZeroU32::new(per_minute.saturating_mul(10).max(100)).expect("positive");
        Lockout(Arc::new(Limits {
            failures: RateLimiter::keyed(Quota::per_minute(n)),
            blocked_rows: RateLimiter::keyed(Quota::per_minute(NonZeroU32::MIN)),
            rows: RateLimiter::direct(Quota::per_minute(fleet)),
            clock: DefaultClock::default(),
        }))
    }

    /// Counts a failed authentication from `address`.
    pub fn failed(&self, address: IpAddr) -> Verdict {
        let limits = &self.0;
        if limits.failures.len() > TRACKED {
            limits.failures.retain_recent();
            limits.blocked_rows.retain_recent();
        }
        match limits.failures.check_key(&address) {
            Ok(()) => Verdict::Refused {
                record: limits.rows.check().is_ok(),
            },
            Err(not_until) => {
                let wait = not_until.wait_time_from(limits.clock.now());
                Verdict::Blocked {
                    // Whole seconds, rounded up: a client that waits that long gets through.
                    retry_after: Duration::from_secs(wait.as_secs() + 1),
                    record: limits.blocked_rows.check_key(&address).is_ok()
                        && limits.rows.check().is_ok(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_failures_then_waits_and_others_are_not_affected() {
        let lockout = Lockout::new(3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(lockout.failed(a), Verdict::Refused { record: true });
        }
        let Verdict::Blocked {
            retry_after,
            record,
        } = lockout.failed(a)
        else {
            panic!("a fourth failure within the minute is blocked");
        };
        assert!(record, "the first refusal of a blocked address is recorded");
        assert!((1..=21).contains(&retry_after.as_secs()), "{retry_after:?}");
        assert!(matches!(
            lockout.failed(a),
            Verdict::Blocked { record: false, .. }
        ));
        assert_eq!(lockout.failed(b), Verdict::Refused { record: true });
    }
}
