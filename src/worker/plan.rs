//! From a step's [`Transition`] to the job's next row: pure rules, tested without a database.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

use crate::queue::{Completion, Job, JobState};
use crate::workflow::Transition;

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

/// The planned record of one step, and whether the same worker goes on with the job.
#[derive(Debug, Clone)]
pub struct Planned {
    pub completion: Completion,
    /// `Some(step)` when the job stays leased and the worker runs `step` next.
    pub continue_with: Option<String>,
}

/// Everything [`plan`] needs besides the job and the transition.
pub struct PlanInput<'a> {
    pub worker: &'a str,
    pub started_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub retry: RetryPolicy,
    /// False while shutting down: a job that would go on is handed back to the queue instead.
    pub keep_going: bool,
    /// The workflow's compensation for a failed step.
    pub compensation: &'a (dyn Fn(&str) -> Option<&'static str> + Sync),
}

/// Decides the job's next state from what its current step returned.
pub fn plan(
    job: &Job,
    transition: Transition,
    input: &PlanInput<'_>,
    rng: &mut impl Rng,
) -> Planned {
    let mut completion = Completion {
        lease: job.lease(),
        state: JobState::Running,
        step: job.step.clone(),
        run_at: None,
        attempt: job.attempt,
        data: None,
        error: None,
        history_step: job.step.clone(),
        history_attempt: job.attempt,
        outcome: "advanced",
        history_error: None,
        started_at: input.started_at,
        worker: input.worker.to_string(),
    };
    let mut continue_with = None;
    let go_on = |completion: &mut Completion, step: String| -> Option<String> {
        completion.step = step.clone();
        completion.attempt = 0;
        if input.keep_going {
            completion.state = JobState::Running;
            Some(step)
        } else {
            completion.state = JobState::Queued;
            completion.run_at = Some(input.now);
            None
        }
    };
    match transition {
        Transition::Next { step, data } => {
            completion.data = data;
            continue_with = go_on(&mut completion, step);
        }
        Transition::Done { data } => {
            completion.data = data;
            completion.state = final_state(job);
            completion.outcome = completion.state.as_str();
            if completion.state == JobState::Cancelled && job.error.is_none() {
                completion.error = Some("cancelled".into());
            }
        }
        Transition::Wait { after, data } => {
            completion.data = data;
            completion.state = JobState::Waiting;
            completion.run_at = Some(input.now + after);
            completion.outcome = "waiting";
        }
        Transition::Retry { error } if job.attempt + 1 < job.max_attempts => {
            let attempt = job.attempt + 1;
            completion.state = JobState::Waiting;
            completion.attempt = attempt;
            completion.run_at = Some(input.now + input.retry.delay(attempt, rng));
            completion.outcome = "retrying";
            completion.history_error = Some(error);
        }
        Transition::Retry { error } => {
            let error = format!("{error} (gave up after {} attempts)", job.max_attempts);
            completion.attempt = job.max_attempts;
            continue_with = fail(job, error, input, &mut completion, go_on);
        }
        Transition::Fail { error } => {
            continue_with = fail(job, error, input, &mut completion, go_on);
        }
    }
    Planned {
        completion,
        continue_with,
    }
}

fn fail(
    job: &Job,
    error: String,
    input: &PlanInput<'_>,
    completion: &mut Completion,
    go_on: impl Fn(&mut Completion, String) -> Option<String>,
) -> Option<String> {
    completion.outcome = "failed";
    completion.history_error = Some(error.clone());
    completion.error = Some(match &job.error {
        // Already compensating: keep the original cause first.
        Some(cause) => format!("{cause}; then {} failed: {error}", job.step),
        None => error,
    });
    match (input.compensation)(&job.step) {
        Some(next) if next != job.step => {
            completion.outcome = if job.error.is_none() {
                "compensating"
            } else {
                "failed"
            };
            go_on(completion, next.to_string())
        }
        _ => {
            completion.state = final_state_failed(job);
            None
        }
    }
}

/// How a job that has run its last step ends.
fn final_state(job: &Job) -> JobState {
    if job.cancel_requested {
        JobState::Cancelled
    } else if job.error.is_some() {
        JobState::Failed
    } else {
        JobState::Succeeded
    }
}

fn final_state_failed(job: &Job) -> JobState {
    if job.cancel_requested {
        JobState::Cancelled
    } else {
        JobState::Failed
    }
}

/// What the worker does with a job it just claimed, before running any step.
pub fn on_claim(job: &Job) -> Option<Transition> {
    if job.cancel_requested && job.error.is_none() {
        return Some(Transition::fail("cancelled"));
    }
    if job.attempt >= job.max_attempts {
        return Some(Transition::fail(format!(
            "step {} was interrupted {} times",
            job.step, job.attempt
        )));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::json;
    use sqlx::types::Json;
    use uuid::Uuid;

    fn job(step: &str, attempt: i32) -> Job {
        let now = Utc::now();
        Job {
            id: Uuid::nil(),
            kind: "provision".into(),
            tenant_id: Some("acme".into()),
            state: JobState::Running,
            step: step.into(),
            args: Json(json!({})),
            data: Json(json!({})),
            priority: 0,
            run_at: now,
            attempt,
            max_attempts: 3,
            lease_owner: Some("w".into()),
            lease_expires_at: Some(now),
            lease_token: 7,
            cancel_requested: false,
            error: None,
            begun: true,
            step_started_at: Some(now),
            rescues: 0,
            created_at: now,
            updated_at: now,
            finished_at: None,
        }
    }

    fn compensation(step: &str) -> Option<&'static str> {
        match step {
            "create" | "wait" => Some("undo"),
            _ => None,
        }
    }

    fn run(job: &Job, t: Transition, keep_going: bool) -> Planned {
        let now = Utc::now();
        let input = PlanInput {
            worker: "w",
            started_at: now,
            now,
            retry: RetryPolicy {
                base: Duration::from_secs(1),
                max: Duration::from_secs(10),
            },
            keep_going,
            compensation: &compensation,
        };
        plan(job, t, &input, &mut StdRng::seed_from_u64(1))
    }

    #[test]
    fn next_keeps_the_lease_and_resets_attempts() {
        let p = run(&job("create", 2), Transition::next("wait"), true);
        assert_eq!(p.continue_with.as_deref(), Some("wait"));
        assert_eq!(p.completion.state, JobState::Running);
        assert_eq!(
            (p.completion.step.as_str(), p.completion.attempt),
            ("wait", 0)
        );
        assert_eq!(p.completion.history_step, "create");
    }

    #[test]
    fn next_while_shutting_down_hands_the_job_back() {
        let p = run(&job("create", 0), Transition::next("wait"), false);
        assert_eq!(p.continue_with, None);
        assert_eq!(p.completion.state, JobState::Queued);
    }

    #[test]
    fn wait_reschedules_without_consuming_an_attempt() {
        let p = run(
            &job("wait", 1),
            Transition::wait(Duration::from_secs(30)),
            true,
        );
        assert_eq!(p.completion.state, JobState::Waiting);
        assert_eq!(p.completion.attempt, 1);
        let delay = p.completion.run_at.unwrap() - Utc::now();
        assert!(delay.num_seconds() >= 29 && delay.num_seconds() <= 30);
    }

    #[test]
    fn retry_consumes_an_attempt_and_then_fails_into_compensation() {
        let p = run(&job("create", 0), Transition::retry("throttled"), true);
        assert_eq!(
            (p.completion.state, p.completion.attempt),
            (JobState::Waiting, 1)
        );
        assert_eq!(p.completion.outcome, "retrying");
        let p = run(&job("create", 2), Transition::retry("throttled"), true);
        assert_eq!(p.continue_with.as_deref(), Some("undo"));
        assert_eq!(p.completion.outcome, "compensating");
        assert!(
            p.completion
                .error
                .unwrap()
                .contains("gave up after 3 attempts")
        );
    }

    #[test]
    fn a_failure_without_compensation_ends_the_job() {
        let p = run(&job("migrate", 0), Transition::fail("bad"), true);
        assert_eq!(p.completion.state, JobState::Failed);
        assert_eq!(p.continue_with, None);
    }

    #[test]
    fn a_finished_compensation_ends_failed_and_keeps_the_cause() {
        let mut j = job("undo", 0);
        j.error = Some("instance failed".into());
        let p = run(&j, Transition::done(), true);
        assert_eq!(p.completion.state, JobState::Failed);
        assert_eq!(p.completion.error, None, "the cause stays as recorded");
        let p = run(&j, Transition::fail("still broken"), true);
        assert_eq!(p.completion.state, JobState::Failed);
        assert_eq!(
            p.completion.error.as_deref(),
            Some("instance failed; then undo failed: still broken")
        );
    }

    #[test]
    fn a_cancelled_job_compensates_and_ends_cancelled() {
        let mut j = job("wait", 0);
        j.cancel_requested = true;
        let t = on_claim(&j).expect("cancel is handled before the step");
        let p = run(&j, t, true);
        assert_eq!(p.continue_with.as_deref(), Some("undo"));
        j.step = "undo".into();
        j.error = Some("cancelled".into());
        assert_eq!(on_claim(&j), None, "compensation runs despite the request");
        assert_eq!(
            run(&j, Transition::done(), true).completion.state,
            JobState::Cancelled
        );
    }

    #[test]
    fn an_exhausted_job_fails_without_running_its_step() {
        assert!(matches!(
            on_claim(&job("create", 3)),
            Some(Transition::Fail { .. })
        ));
        assert_eq!(on_claim(&job("create", 2)), None);
    }

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
