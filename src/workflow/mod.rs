//! The step interface between the worker and the workflows it runs.
//!
//! A workflow is a named state machine of steps. The worker claims a job, calls the workflow for
//! the job's current step, and records the returned [`Transition`] before anything else happens.
//! Steps are short and idempotent: a step may run again after a crash, and must then reach the
//! same result.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

mod configure;
pub mod demo;
pub mod deprovision;
pub mod poller;
pub mod provision;
mod rollback;
pub mod tenancy;

pub use deprovision::Deprovision;
pub use provision::Provision;
pub use tenancy::Tenancy;

use crate::queue::{Job, Lease};

/// What a step asks the queue to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// Go on with `step` at once (the same worker keeps the lease).
    Next { step: String, data: Option<Value> },
    /// The workflow is finished.
    Done { data: Option<Value> },
    /// Run the same step again after `after`; the worker is released meanwhile and no attempt
    /// is consumed (waiting for RDS is not a failure).
    Wait {
        after: Duration,
        data: Option<Value>,
    },
    /// A failure that may pass: run the step again after a backoff. Consumes an attempt; when
    /// none are left, this becomes [`Transition::Fail`].
    Retry { error: String },
    /// A failure that will not pass: hand over to the workflow's compensation.
    Fail { error: String },
}

impl Transition {
    pub fn next(step: impl Into<String>) -> Self {
        Transition::Next {
            step: step.into(),
            data: None,
        }
    }

    pub fn done() -> Self {
        Transition::Done { data: None }
    }

    pub fn wait(after: Duration) -> Self {
        Transition::Wait { after, data: None }
    }

    pub fn retry(error: impl std::fmt::Display) -> Self {
        Transition::Retry {
            error: error.to_string(),
        }
    }

    pub fn fail(error: impl std::fmt::Display) -> Self {
        Transition::Fail {
            error: error.to_string(),
        }
    }

    /// Attaches values (never secrets) to merge into the job's durable `data`.
    pub fn with_data(mut self, value: Value) -> Self {
        match &mut self {
            Transition::Next { data, .. }
            | Transition::Done { data }
            | Transition::Wait { data, .. } => *data = Some(value),
            Transition::Retry { .. } | Transition::Fail { .. } => {}
        }
        self
    }
}

/// What a step gets to work with.
pub struct StepContext<'a> {
    pub job: &'a Job,
    /// The control database, for writes fenced by [`crate::queue::fenced`].
    pub db: &'a PgPool,
    pub lease: Lease,
    /// Cancelled when the lease is lost or the process must stop at once; a long step should
    /// give up when it fires (its result would be rejected anyway).
    pub abort: CancellationToken,
}

/// A state machine the worker can run.
#[async_trait]
pub trait Workflow: Send + Sync + 'static {
    /// The job kind this workflow runs (`jobs.kind`).
    fn kind(&self) -> &'static str;

    /// The step a new job starts at.
    fn first_step(&self) -> &'static str;

    /// Runs the job's current step once.
    async fn run_step(&self, cx: &StepContext<'_>) -> Transition;

    /// Where to go when `step` fails for good: the first compensation step, or `None` to end
    /// the job `failed` (or `cancelled`) right there. Called with compensation steps too: a
    /// compensation that fails for good normally has nowhere further to go.
    fn compensation(&self, _step: &str) -> Option<&'static str> {
        None
    }
}

/// The workflows a worker knows, by kind.
#[derive(Clone, Default)]
pub struct Registry {
    workflows: HashMap<&'static str, Arc<dyn Workflow>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(mut self, workflow: impl Workflow) -> Self {
        self.workflows.insert(workflow.kind(), Arc::new(workflow));
        self
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Workflow>> {
        self.workflows.get(kind)
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.workflows.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }
}
