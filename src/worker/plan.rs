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
