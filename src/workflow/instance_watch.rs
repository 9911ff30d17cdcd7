//! How a wait step learns about its instance. One instance poller (the maintenance leader's)
//! describes every waited-for instance in batches and wakes the jobs whose instance reached a
//! state their step acts on, handing each what it saw ([`PollerSeen`], in the job's data). A
//! step acts on what it was handed for its own step; while a poller runs and has handed it
//! nothing, it waits (durably, at no AWS cost); without a poller, it describes its instance
//! itself.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cloud::rds::InstanceInfo;
use crate::cloud::{Cloud, CloudError};

/// How old what the poller handed a woken job may be for its step to act on it. Jobs woken in
/// a burst may queue for a while; an instance's endpoint does not change, and a step that finds
/// the instance busy after all retries.
const HANDED_MAX_AGE: Duration = Duration::from_secs(60);

/// What the poller saw, handed to a job it woke (`poller_seen` in the job's data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollerSeen {
    /// The step the job waited at when it was woken: only that step may act on it.
    pub step: String,
    pub at: DateTime<Utc>,
    /// `None`: the instance did not exist.
    pub instance: Option<InstanceInfo>,
}

/// What a wait step learns from [`InstanceWatch::look`].
#[derive(Debug)]
pub enum Look {
    /// The instance as recently seen (`None`: it does not exist).
    Seen(Option<Box<InstanceInfo>>),
    /// The poller runs and has not seen the instance in a state to act on yet: it wakes the job
    /// when it has.
    Later,
}

/// Whether a poller is at work: when this process last finished a round, and when the poller
/// of another process did, as far as this process learnt.
#[derive(Debug, Default)]
pub struct PollerHealth(Mutex<Rounds>);

#[derive(Debug, Default)]
struct Rounds {
    here: Option<Instant>,
    elsewhere: Option<Instant>,
}

impl PollerHealth {
    /// This process finished a poll round.
    pub fn round_done(&self) {
        self.0.lock().unwrap().here = Some(Instant::now());
    }

    /// Another process is the poller; its last round ended `age` ago.
    pub fn polled_elsewhere(&self, age: Duration) {
        let mut rounds = self.0.lock().unwrap();
        rounds.elsewhere = Instant::now().checked_sub(age);
        rounds.here = None;
    }

    /// Whether a round succeeded within `max_age`, here or in another process.
    pub fn active(&self, max_age: Duration) -> bool {
        let rounds = self.0.lock().unwrap();
        [rounds.here, rounds.elsewhere]
            .into_iter()
            .flatten()
            .any(|at| at.elapsed() <= max_age)
    }
}

/// The pace of waiting for instances.
#[derive(Debug, Clone, Copy)]
pub struct WaitPace {
    /// How often the poller describes the waited-for instances; zero: no poller.
    pub poll_interval: Duration,
    /// First and longest pause between two looks of a step's own.
    pub base: Duration,
    pub max: Duration,
}

/// Looking at instances for wait steps: through the poller when it runs, else directly.
/// Cheap to clone.
#[derive(Clone)]
pub struct InstanceWatch {
    cloud: Cloud,
    pace: WaitPace,
    health: Arc<PollerHealth>,
}

impl InstanceWatch {
    pub fn new(cloud: Cloud, pace: WaitPace) -> Self {
        InstanceWatch {
            cloud,
            pace,
            health: Arc::default(),
        }
    }

    /// Shared with the poller, which records its rounds there.
    pub fn health(&self) -> &Arc<PollerHealth> {
        &self.health
    }

    pub fn poll_interval(&self) -> Duration {
        self.pace.poll_interval
    }

    /// How old an observation may be for a wait step to trust it.
    fn fresh(&self) -> Duration {
        self.pace.poll_interval * 2 + Duration::from_secs(1)
    }

    /// Whether a poller (here or in another process) is running and succeeding.
    pub fn poller_active(&self) -> bool {
        !self.pace.poll_interval.is_zero() && self.health.active(self.fresh())
    }

    /// The instance, for a wait step at `step`: what the poller handed the job (`seen`) when
    /// fresh and for this step; else (when `may_wait`, a poller runs and has handed the job
    /// nothing for this step) [`Look::Later`]; else one DescribeDBInstances. A "does not exist"
    /// from the poller is confirmed by a describe of its own (it may predate the create).
    /// Nothing seen for another step is used: the instance may have changed since (a later
    /// step of the same tenant may have switched on deletion protection).
    pub async fn look(
        &self,
        seen: Option<&PollerSeen>,
        step: &str,
        id: &str,
        may_wait: bool,
    ) -> Result<Look, CloudError> {
        let handed = seen.filter(|s| s.step == step);
        if let Some(s) = handed {
            let max_age = chrono::Duration::from_std(HANDED_MAX_AGE).unwrap_or_default();
            if let Some(info) = &s.instance
                && info.identifier == id
                && Utc::now() - s.at <= max_age
            {
                return Ok(Look::Seen(Some(Box::new(info.clone()))));
            }
        }
        if handed.is_none() && may_wait && self.poller_active() {
            return Ok(Look::Later);
        }
        Ok(Look::Seen(
            self.cloud.describe_db_instance(id).await?.map(Box::new),
        ))
    }

    /// The pause of a wait step that looks again later, counting this look in `polls` (the
    /// job's count of looks so far): long when the poller will wake the job, growing from the
    /// base otherwise.
    pub fn next_pause(&self, polls: &mut u64) -> Duration {
        let pause = self.pause(*polls);
        *polls += 1;
        pause
    }

    /// The pause of a wait step whose instance is not there yet: long when the poller will
    /// wake the job, growing from the base otherwise (`polls`: looks so far).
    pub fn pause(&self, polls: u64) -> Duration {
        if self.poller_active() {
            self.pace.max
        } else {
            self.pace
                .base
                .mul_f64(1.5f64.powi(polls.min(30) as i32))
                .min(self.pace.max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poller_counts_as_active_for_a_while_after_its_last_round() {
        let p = PollerHealth::default();
        assert!(!p.active(Duration::from_secs(60)));
        p.round_done();
        assert!(p.active(Duration::from_secs(60)));
        assert!(!p.active(Duration::ZERO));
        p.polled_elsewhere(Duration::from_secs(30));
        assert!(p.active(Duration::from_secs(60)));
        assert!(!p.active(Duration::from_secs(10)));
    }
}
