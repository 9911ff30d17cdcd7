//! A workflow with no side effects: optionally works for a while inside its first step (holding
//! its lease, heartbeating), optionally waits once durably, and finishes; or, for the tests of
//! crash recovery, aborts its process. It shows the queue at work without AWS; the queue's tests
//! and benchmark run it (the HTTP API cannot enqueue it).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::{StepContext, Transition, Workflow};

pub struct Demo;

#[async_trait]
impl Workflow for Demo {
    fn kind(&self) -> &'static str {
        "demo"
    }

    fn first_step(&self) -> &'static str {
        "start"
    }

    async fn run_step(&self, cx: &StepContext<'_>) -> Transition {
        // A step with a fatal bug: it takes its whole process down, every time.
        if cx.job.args.0["abort_process"] == json!(true) {
            std::process::abort();
        }
        let wait_ms = cx.job.args.0["wait_ms"].as_u64().unwrap_or(0);
        let busy_ms = cx.job.args.0["busy_ms"].as_u64().unwrap_or(0);
        // Busy only on a first attempt, so a job interrupted mid-step finishes when rescued.
        if cx.job.step == "start" && busy_ms > 0 && cx.job.attempt == 0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(busy_ms)) => {}
                _ = cx.abort.cancelled() => return Transition::retry("aborted"),
            }
        }
        match cx.job.step.as_str() {
            "start" if wait_ms == 0 => Transition::done(),
            "start" => Transition::next("wait").with_data(json!({ "waited": false })),
            "wait" if cx.job.data.0["waited"] == json!(false) => {
                Transition::wait(Duration::from_millis(wait_ms))
                    .with_data(json!({ "waited": true }))
            }
            "wait" => Transition::done(),
            other => Transition::fail(format!("demo has no step {other}")),
        }
    }
}
