//! A workflow with no side effects, for the queue's tests and benchmark: optionally works for a
//! while inside its first step (holding its lease, heartbeating), optionally waits once durably,
//! and finishes; or, for the tests of crash recovery, aborts its process. It exists only in
//! tests and examples: the `tenantd` binary cannot run it.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tenantd::workflow::{Step, StepContext, StepError, Transition, Workflow};

pub struct Demo;

tenantd::steps! {
    pub enum DemoStep {
        Start = "start",
        Wait = "wait",
    }
}

impl Step for DemoStep {
    fn compensation(self) -> Option<Self> {
        None
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DemoArgs {
    /// Wait this long (durably) before finishing.
    pub wait_ms: u64,
    /// Work this long inside the first step, on its first attempt.
    pub busy_ms: u64,
    /// A step with a fatal bug: it takes its whole process down, every time.
    pub abort_process: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DemoData {
    pub waited: Option<bool>,
}

#[async_trait]
impl Workflow for Demo {
    const KIND: &'static str = "demo";
    type Step = DemoStep;
    type Args = DemoArgs;
    type Data = DemoData;

    fn first_step() -> DemoStep {
        DemoStep::Start
    }

    async fn run(
        &self,
        step: DemoStep,
        cx: &mut StepContext<'_, DemoArgs, DemoData>,
    ) -> Result<Transition<DemoStep>, StepError> {
        if cx.args.abort_process {
            std::process::abort();
        }
        // Busy only on a first attempt, so a job interrupted mid-step finishes when rescued.
        if step == DemoStep::Start && cx.args.busy_ms > 0 && cx.job.attempt == 0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(cx.args.busy_ms)) => {}
                _ = cx.abort.cancelled() => return Err(StepError::retry("aborted", "aborted")),
            }
        }
        Ok(match step {
            DemoStep::Start if cx.args.wait_ms == 0 => Transition::Done,
            DemoStep::Start => {
                cx.data.waited = Some(false);
                Transition::Next(DemoStep::Wait)
            }
            DemoStep::Wait if cx.data.waited == Some(false) => {
                cx.data.waited = Some(true);
                Transition::Wait(Duration::from_millis(cx.args.wait_ms))
            }
            DemoStep::Wait => Transition::Done,
        })
    }
}
