//! From a step's outcome ([`StepRun`]: its transition or its error) to the job's next row: pure
//! rules, tested without a database.

use chrono::{DateTime, Utc};
use rand::Rng;

use crate::config::RetryPolicy;
use crate::queue::{Completion, Job, JobState, Outcome};
use crate::workflow::StepRun;
use crate::workflow::error::StepError;
use crate::workflow::step::Transition;

/// The settled record of one step, and whether the same worker goes on with the job.
#[derive(Debug, Clone)]
pub struct Settled {
    pub completion: Completion,
    /// `Some(step)` when the job stays leased and the worker runs `step` next.
    pub continue_with: Option<String>,
}

/// Everything [`settle`] needs besides the job and the transition.
pub struct SettleInput<'a> {
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
pub fn settle(job: &Job, run: StepRun, input: &SettleInput<'_>, rng: &mut impl Rng) -> Settled {
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
        outcome: Outcome::Advanced,
        history_error: None,
        error_class: None,
        note: None,
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
    match run.outcome {
        Ok(Transition::Next(step)) => {
            completion.data = run.data;
            continue_with = go_on(&mut completion, step.to_string());
        }
        Ok(Transition::Noted { next, note }) => {
            completion.data = run.data;
            completion.note = Some(note);
            continue_with = go_on(&mut completion, next.to_string());
        }
        Ok(Transition::Done) => {
            completion.data = run.data;
            completion.state = final_state(job);
            completion.outcome = Outcome::of_final(completion.state);
            if completion.state == JobState::Cancelled && job.error.is_none() {
                completion.error = Some("cancelled".into());
            }
        }
        Ok(Transition::Wait(after)) => wait(&mut completion, input, after, run.data),
        Ok(Transition::WaitFor {
            after,
            class,
            reason,
        }) => {
            wait(&mut completion, input, after, run.data);
            completion.error_class = Some(class);
            completion.history_error = Some(reason);
        }
        Err(StepError {
            class,
            retry: true,
            message,
        }) if job.attempt + 1 < job.max_attempts => {
            let attempt = job.attempt + 1;
            completion.state = JobState::Waiting;
            completion.attempt = attempt;
            completion.run_at = Some(input.now + input.retry.delay(attempt, rng));
            completion.outcome = Outcome::Retrying;
            completion.history_error = Some(message);
            completion.error_class = Some(class);
        }
        Err(StepError {
            class,
            retry: true,
            message,
        }) => {
            let error = format!("{message} (gave up after {} attempts)", job.max_attempts);
            completion.attempt = job.max_attempts;
            completion.error_class = Some(class);
            continue_with = fail(job, error, input, &mut completion, go_on);
        }
        Err(StepError { class, message, .. }) => {
            completion.error_class = Some(class);
            continue_with = fail(job, message, input, &mut completion, go_on);
        }
    }
    Settled {
        completion,
        continue_with,
    }
}

/// The same step again after `after`, no attempt used.
fn wait(
    completion: &mut Completion,
    input: &SettleInput<'_>,
    after: std::time::Duration,
    data: Option<serde_json::Value>,
) {
    completion.data = data;
    completion.state = JobState::Waiting;
    completion.run_at = Some(input.now + after);
    completion.outcome = Outcome::Waiting;
}

fn fail(
    job: &Job,
    error: String,
    input: &SettleInput<'_>,
    completion: &mut Completion,
    go_on: impl Fn(&mut Completion, String) -> Option<String>,
) -> Option<String> {
    completion.outcome = Outcome::Failed;
    completion.history_error = Some(error.clone());
    completion.error = Some(match &job.error {
        // Already compensating: keep the original cause first.
        Some(cause) => format!("{cause}; then {} failed: {error}", job.step),
        None => error,
    });
    match (input.compensation)(&job.step) {
        Some(next) if next != job.step => {
            completion.outcome = if job.error.is_none() {
                Outcome::Compensating
            } else {
                Outcome::Failed
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
pub fn on_claim(job: &Job) -> Option<StepError> {
    if job.cancel_requested && job.error.is_none() {
        return Some(StepError::fail("cancelled", "cancelled"));
    }
    if job.attempt >= job.max_attempts {
        return Some(StepError::fail(
            "interrupted",
            format!("step {} was interrupted {} times", job.step, job.attempt),
        ));
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
    use std::time::Duration;
    use uuid::Uuid;

    fn job(step: &str, attempt: i32) -> Job {
        let now = Utc::now();
        Job {
            id: Uuid::nil(),
            kind: "provision".into(),
            tenant_id: Some(crate::tenant_id::TenantId::recorded("acme")),
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

    fn ran(outcome: Result<Transition<&'static str>, StepError>) -> StepRun {
        StepRun {
            outcome,
            data: None,
        }
    }

    fn next(step: &'static str) -> StepRun {
        ran(Ok(Transition::Next(step)))
    }

    fn done() -> StepRun {
        ran(Ok(Transition::Done))
    }

    fn run(job: &Job, t: StepRun, keep_going: bool) -> Settled {
        let now = Utc::now();
        let input = SettleInput {
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
        settle(job, t, &input, &mut StdRng::seed_from_u64(1))
    }

    #[test]
    fn next_keeps_the_lease_and_resets_attempts() {
        let p = run(&job("create", 2), next("wait"), true);
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
        let p = run(&job("create", 0), next("wait"), false);
        assert_eq!(p.continue_with, None);
        assert_eq!(p.completion.state, JobState::Queued);
    }

    #[test]
    fn wait_reschedules_without_consuming_an_attempt() {
        let p = run(
            &job("wait", 1),
            ran(Ok(Transition::Wait(Duration::from_secs(30)))),
            true,
        );
        assert_eq!(p.completion.state, JobState::Waiting);
        assert_eq!(p.completion.attempt, 1);
        let delay = p.completion.run_at.unwrap() - Utc::now();
        assert!(delay.num_seconds() >= 29 && delay.num_seconds() <= 30);
    }

    #[test]
    fn retry_consumes_an_attempt_and_then_fails_into_compensation() {
        let p = run(
            &job("create", 0),
            StepRun::failed(StepError::retry("throttled", "throttled")),
            true,
        );
        assert_eq!(
            (p.completion.state, p.completion.attempt),
            (JobState::Waiting, 1)
        );
        assert_eq!(p.completion.outcome, Outcome::Retrying);
        assert_eq!(p.completion.error_class, Some("throttled"));
        let p = run(
            &job("create", 2),
            StepRun::failed(StepError::retry("throttled", "throttled")),
            true,
        );
        assert_eq!(p.continue_with.as_deref(), Some("undo"));
        assert_eq!(p.completion.outcome, Outcome::Compensating);
        assert!(
            p.completion
                .error
                .unwrap()
                .contains("gave up after 3 attempts")
        );
    }

    #[test]
    fn a_failure_without_compensation_ends_the_job() {
        let p = run(
            &job("migrate", 0),
            StepRun::failed(StepError::fail("test", "bad")),
            true,
        );
        assert_eq!(p.completion.state, JobState::Failed);
        assert_eq!(p.continue_with, None);
    }

    #[test]
    fn a_finished_compensation_ends_failed_and_keeps_the_cause() {
        let mut j = job("undo", 0);
        j.error = Some("instance failed".into());
        let p = run(&j, done(), true);
        assert_eq!(p.completion.state, JobState::Failed);
        assert_eq!(p.completion.error, None, "the cause stays as recorded");
        let p = run(
            &j,
            StepRun::failed(StepError::fail("test", "still broken")),
            true,
        );
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
        let p = run(&j, StepRun::failed(t), true);
        assert_eq!(p.continue_with.as_deref(), Some("undo"));
        j.step = "undo".into();
        j.error = Some("cancelled".into());
        assert_eq!(on_claim(&j), None, "compensation runs despite the request");
        assert_eq!(run(&j, done(), true).completion.state, JobState::Cancelled);
    }

    #[test]
    fn an_exhausted_job_fails_without_running_its_step() {
        assert!(matches!(
            on_claim(&job("create", 3)),
            Some(StepError { retry: false, .. })
        ));
        assert_eq!(on_claim(&job("create", 2)), None);
    }
}
