//! The interface between the worker and the workflows it runs.
//!
//! A [`Workflow`] is typed: its steps are an enum, its arguments and its durable data are serde
//! structs, read once when a step runs; a step returns `Result<Transition, StepError>`. The
//! worker sees every workflow through one object-safe [`Runner`] that speaks the queue's terms
//! (step names, JSON): [`Typed`] translates, and the [`Registry`] holds the runners by kind.
//!
//! Steps are short and idempotent: a step may run again after a crash, and must then reach
//! the same result.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::error::StepError;
use super::step::{InstanceWait, Step, StepNames, Transition};
use crate::queue::{Job, Lease};
use crate::tenant_id::TenantId;

/// What a step gets to work with: the job, its arguments and its data, read once.
pub struct StepContext<'a, A, D> {
    pub job: &'a Job,
    /// The arguments the job was enqueued with.
    pub args: A,
    /// The job's durable data as the earlier steps left it. What a step changes here is
    /// written back with its transition (only when it succeeds; never secrets).
    pub data: D,
    /// The control database, for writes fenced by [`crate::queue::fenced`].
    pub db: &'a PgPool,
    pub lease: Lease,
    /// Cancelled when the lease is lost or the process must stop at once; a long step should
    /// give up when it fires (its result would be rejected anyway).
    pub abort: CancellationToken,
}

impl<'a, A, D> StepContext<'a, A, D> {
    /// The tenant the job is for. A tenant workflow's job without one fails: it cannot know
    /// whose resources to touch.
    pub fn tenant(&self) -> Result<&'a TenantId, StepError> {
        match self.job.tenant_id.as_ref() {
            Some(t) if !t.is_empty() => Ok(t),
            _ => Err(StepError::fail(
                "no_tenant",
                format!(
                    "job {} of kind {} names no tenant",
                    self.job.id, self.job.kind
                ),
            )),
        }
    }
}

/// A state machine the worker can run.
#[async_trait]
pub trait Workflow: Send + Sync + 'static {
    /// The job kind (`jobs.kind`).
    const KIND: &'static str;
    type Step: Step;
    type Args: Serialize + DeserializeOwned + Send + Sync;
    /// Read from the job's `data` (keys it does not name are kept, untouched) and merged back.
    type Data: Serialize + DeserializeOwned + Default + Send + Sync;

    /// The step a new job starts at.
    fn first_step() -> Self::Step;

    /// Runs one step once.
    async fn run(
        &self,
        step: Self::Step,
        cx: &mut StepContext<'_, Self::Args, Self::Data>,
    ) -> Result<Transition<Self::Step>, StepError>;
}

/// One run of a step as the worker sees it: the step's own outcome (the [`Transition`] it asked
/// for, its steps named as the queue stores them, or its [`StepError`]) and the patch of the
/// job's data it made, written with a transition and dropped with an error.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRun {
    pub outcome: Result<Transition<&'static str>, StepError>,
    pub data: Option<Value>,
}

impl StepRun {
    /// A run that failed before (or instead of) the step: nothing of the data changed.
    pub fn failed(error: StepError) -> Self {
        StepRun {
            outcome: Err(error),
            data: None,
        }
    }
}

/// A workflow as the worker sees it.
#[async_trait]
pub trait Runner: Send + Sync + 'static {
    fn kind(&self) -> &'static str;

    /// The name of the step a new job starts at.
    fn first_step(&self) -> &'static str;

    /// The steps that wait for an instance, and for which states.
    fn waits(&self) -> Vec<(&'static str, InstanceWait)>;

    /// Where a job goes when `step` fails for good (see [`Step::compensation`]); `None` for a
    /// step this release does not know.
    fn compensation(&self, step: &str) -> Option<&'static str>;

    /// Runs the job's current step once.
    async fn run_step(&self, job: &Job, db: &PgPool, abort: CancellationToken) -> StepRun;
}

/// The [`Runner`] of a typed workflow.
pub struct Typed<W>(pub W);

#[async_trait]
impl<W: Workflow> Runner for Typed<W> {
    fn kind(&self) -> &'static str {
        W::KIND
    }

    fn first_step(&self) -> &'static str {
        W::first_step().name()
    }

    fn waits(&self) -> Vec<(&'static str, InstanceWait)> {
        W::Step::ALL
            .iter()
            .filter_map(|s| s.waits_for().map(|w| (s.name(), w)))
            .collect()
    }

    fn compensation(&self, step: &str) -> Option<&'static str> {
        W::Step::parse(step)?.compensation().map(StepNames::name)
    }

    async fn run_step(&self, job: &Job, db: &PgPool, abort: CancellationToken) -> StepRun {
        let Some(step) = W::Step::parse(&job.step) else {
            let known: Vec<&str> = W::Step::ALL.iter().map(|s| s.name()).collect();
            return StepRun::failed(StepError::fail(
                "unknown_step",
                format!(
                    "{} has no step {:?} in this release (its steps: {})",
                    W::KIND,
                    job.step,
                    known.join(", ")
                ),
            ));
        };
        let args: W::Args = match serde_json::from_value(job.args.0.clone()) {
            Ok(args) => args,
            Err(e) => {
                return StepRun::failed(StepError::fail(
                    "bad_args",
                    format!("the job's arguments: {e}"),
                ));
            }
        };
        let data: W::Data = match serde_json::from_value(job.data.0.clone()) {
            Ok(data) => data,
            Err(e) => {
                return StepRun::failed(StepError::fail(
                    "bad_data",
                    format!("the job's data: {e}"),
                ));
            }
        };
        let mut cx = StepContext {
            job,
            args,
            data,
            db,
            lease: job.lease(),
            abort,
        };
        let result = self.0.run(step, &mut cx).await;
        let patch = || match serde_json::to_value(&cx.data) {
            Ok(after) => changed(&job.data.0, &after),
            Err(e) => {
                tracing::error!(error = %e, "the job's data does not serialize");
                None
            }
        };
        match result {
            Ok(transition) => StepRun {
                outcome: Ok(transition.map(|step| step.name())),
                data: patch(),
            },
            Err(e) => StepRun::failed(e),
        }
    }
}

/// The keys of `after` whose values differ from `before`'s (a patch for `jsonb ||`); `None`
/// when nothing changed. A key `before` lacks counts as null, so unset fields are not written.
fn changed(before: &Value, after: &Value) -> Option<Value> {
    let Value::Object(after) = after else {
        return None;
    };
    let patch: serde_json::Map<String, Value> = after
        .iter()
        .filter(|(k, v)| before.get(k.as_str()).unwrap_or(&Value::Null) != *v)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// The workflows a worker knows, by kind.
#[derive(Clone, Default)]
pub struct Registry {
    runners: HashMap<&'static str, Arc<dyn Runner>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register<W: Workflow>(mut self, workflow: W) -> Self {
        self.runners.insert(W::KIND, Arc::new(Typed(workflow)));
        self
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Runner>> {
        self.runners.get(kind)
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.runners.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }

    /// Every (kind, step) that waits for an instance, with the states it waits for.
    pub fn instance_waits(&self) -> Vec<(&'static str, &'static str, InstanceWait)> {
        let mut waits: Vec<_> = self
            .runners
            .values()
            .flat_map(|r| {
                let kind = r.kind();
                r.waits().into_iter().map(move |(step, w)| (kind, step, w))
            })
            .collect();
        waits.sort_by_key(|(kind, step, _)| (*kind, *step));
        waits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_changed_keys_are_written_back() {
        let before = json!({ "a": 1, "b": "x", "keep": true });
        assert_eq!(changed(&before, &json!({ "a": 1, "b": "x" })), None);
        assert_eq!(
            changed(&before, &json!({ "a": 2, "b": "x", "c": null })),
            Some(json!({ "a": 2 }))
        );
        assert_eq!(
            changed(&before, &json!({ "a": 1, "b": null })),
            Some(json!({ "b": null })),
            "a field set back to none is cleared"
        );
    }
}
