//! The long-lived worker loop: claim jobs in batches, run their steps with bounded concurrency,
//! record every transition before the next step, heartbeat the leases, and drain on shutdown.
//! (Returning the jobs of dead workers is the maintenance leader's rescuer.)

mod lease;
mod outcomes;
mod settle;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

pub use settle::{SettleInput, Settled, on_claim, settle};

use crate::config::WorkerSettings;
use crate::queue::{self, Job, Lease, QueueError};
use crate::workflow::error::StepError;
use crate::workflow::{Registry, StepRun};
use lease::{Held, HeldJob, Terms, leases_of};
use outcomes::Completer;

/// Runs the worker until `shutdown` is cancelled, then drains: stops claiming, lets running steps
/// finish within the shutdown timeout, and hands back the leases of those that did not.
pub async fn run(
    pool: PgPool,
    registry: Registry,
    settings: WorkerSettings,
    shutdown: CancellationToken,
) -> Result<(), QueueError> {
    let registry = Arc::new(registry);
    let settings = Arc::new(settings);
    let kinds: Vec<String> = registry.kinds().iter().map(|k| k.to_string()).collect();
    let wake = Arc::new(Notify::new());
    let held: Held = Arc::default();
    let hard_stop = CancellationToken::new();
    let background = CancellationToken::new();

    queue::listen(pool.clone(), wake.clone(), background.clone()).await?;
    let completer = Completer::spawn(pool.clone(), (settings.concurrency * 4).max(1));
    let terms = Terms {
        lease: settings.lease,
        margin: settings.lease_margin,
    };
    // Heartbeats have two connections of their own: a worker whose pool is taken by its steps
    // and their outcomes still renews its leases (else it would drop its steps).
    let beat_pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(settings.lease)
        .connect_lazy_with(pool.connect_options().as_ref().clone());
    let heartbeats = tokio::spawn(lease::heartbeats(
        beat_pool.clone(),
        held.clone(),
        terms,
        background.clone(),
    ));
    let expiry = tokio::spawn(lease::expire_unrenewed(
        held.clone(),
        terms,
        background.clone(),
    ));

    // A job is held from its claim until its outcome is recorded. Up to `concurrency` run at
    // once; up to `prefetch` more wait, claimed, for a free slot, so that one claim brings in a
    // batch and the slots never idle while the next claim is in flight.
    let holds = Arc::new(Semaphore::new(settings.concurrency + settings.prefetch));
    let slots = Arc::new(Semaphore::new(settings.concurrency));
    let mut running = JoinSet::new();
    info!(worker = %settings.id, concurrency = settings.concurrency, "worker started");

    'claiming: loop {
        // Wait for room, then take all there is: one claim fills it.
        let first = tokio::select! {
            _ = shutdown.cancelled() => break 'claiming,
            permit = holds.clone().acquire_owned() => permit.expect("semaphore never closes"),
        };
        let mut permits = vec![first];
        while let Ok(p) = holds.clone().try_acquire_owned() {
            permits.push(p);
        }
        while running.try_join_next().is_some() {}

        // Jobs for the free slots are claimed as started, and get their slot at once; the rest
        // wait for one, claimed but not started.
        let mut ready_slots = Vec::new();
        while ready_slots.len() < permits.len() {
            match slots.clone().try_acquire_owned() {
                Ok(slot) => ready_slots.push(slot),
                Err(_) => break,
            }
        }
        // The leases run from the database's clock when the claim reaches it: later than this.
        let sent = tokio::time::Instant::now();
        let claimed = match claim(&pool, &settings, &kinds, permits.len(), ready_slots.len()).await
        {
            Ok(jobs) => jobs,
            Err(e) => {
                warn!(error = %e, "claim failed; retrying after the poll interval");
                drop(permits);
                drop(ready_slots);
                tokio::select! {
                    _ = shutdown.cancelled() => break 'claiming,
                    _ = tokio::time::sleep(settings.poll_interval) => continue 'claiming,
                }
            }
        };
        let full = claimed.len() == permits.len();
        tracing::trace!(asked = permits.len(), claimed = claimed.len(), "claimed");
        for job in claimed {
            let permit = permits.pop().expect("one permit per claimed job");
            let abort = hard_stop.child_token();
            let entry = HeldJob {
                token: job.lease_token,
                abort: abort.clone(),
                started_at: job.step_started_at,
                renewed: sent,
            };
            held.lock().unwrap().insert(job.id, entry);
            // The started ones come first in the claim's answer.
            let slot = match job.step_started_at {
                Some(_) => ready_slots.pop(),
                None => None,
            };
            let task = JobTask {
                slot,
                slots: slots.clone(),
                pool: pool.clone(),
                registry: registry.clone(),
                settings: settings.clone(),
                completer: completer.clone(),
                held: held.clone(),
                shutdown: shutdown.clone(),
                abort,
            };
            running.spawn(async move {
                task.run(job).await;
                drop(permit);
            });
        }
        drop(permits);
        drop(ready_slots);
        if full {
            continue;
        }
        // Nothing more to run now: sleep until notified, the next scheduled job, or the poll.
        let pause = match queue::next_run_at(&pool).await {
            Ok(Some(at)) => (at - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(settings.poll_interval),
            _ => settings.poll_interval,
        };
        if pause.is_zero() {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break 'claiming,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }

    info!(
        worker = %settings.id,
        running = running.len(),
        "shutting down: no new claims, waiting for running steps"
    );
    let drained = tokio::time::timeout(settings.shutdown_timeout, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        hard_stop.cancel();
        running.abort_all();
        warn!(worker = %settings.id, "shutdown deadline passed; abandoning unfinished steps");
    }
    // What is still held either never started (claimed, waiting for a slot) or did not finish.
    let leases: Vec<Lease> = leases_of(&held).into_iter().map(|(l, _)| l).collect();
    if !leases.is_empty() {
        let released = queue::release(&pool, &leases, &settings.id).await?;
        info!(worker = %settings.id, released, "handed unfinished jobs back to the queue");
    }
    background.cancel();
    let _ = heartbeats.await;
    let _ = expiry.await;
    // Not for longer than a lease: a connection may hang on a database out of reach.
    let _ = tokio::time::timeout(settings.lease, beat_pool.close()).await;
    info!(worker = %settings.id, "worker stopped");
    Ok(())
}

/// Claims up to `room` jobs: first as many as there are `free` slots, marked started, then
/// (if those were all taken) the rest, to wait for a slot. The started ones come first.
async fn claim(
    pool: &PgPool,
    settings: &WorkerSettings,
    kinds: &[String],
    room: usize,
    free: usize,
) -> Result<Vec<Job>, QueueError> {
    let (id, lease) = (&settings.id, settings.lease);
    let mut jobs = Vec::new();
    if free > 0 {
        jobs = queue::claim(pool, id, kinds, free, lease, true).await?;
        if jobs.len() < free {
            return Ok(jobs);
        }
    }
    if room > free {
        jobs.extend(queue::claim(pool, id, kinds, room - free, lease, false).await?);
    }
    Ok(jobs)
}

/// What a task running one job needs.
struct JobTask {
    /// The slot the job was claimed for, if it got one at its claim.
    slot: Option<OwnedSemaphorePermit>,
    slots: Arc<Semaphore>,
    pool: PgPool,
    registry: Arc<Registry>,
    settings: Arc<WorkerSettings>,
    completer: Completer,
    held: Held,
    shutdown: CancellationToken,
    abort: CancellationToken,
}

impl JobTask {
    async fn run(self, mut job: Job) {
        // Wait for a slot; a job still waiting at shutdown stays held, to be released.
        let _slot = match self.slot {
            Some(slot) => slot,
            None => tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return,
                _ = self.abort.cancelled() => {
                    // The lease was lost while waiting: nothing of ours to hand back.
                    self.held.lock().unwrap().remove(&job.id);
                    return;
                }
                slot = self.slots.clone().acquire_owned() => slot.expect("semaphore never closes"),
            },
        };
        // A job that waited for its slot: only a started step is charged an attempt if this
        // process dies. The next heartbeat records the start (no write of its own per job); a
        // job rescued before has it written before the step runs, so that a step that kills
        // its process is charged every time it runs.
        if job.step_started_at.is_none() {
            if job.rescues > 0 {
                let start = tokio::select! {
                    started = self.completer.start(job.lease()) => started,
                    _ = self.abort.cancelled() => {
                        self.held.lock().unwrap().remove(&job.id);
                        return;
                    }
                };
                match start {
                    Ok(true) => {}
                    Ok(false) => {
                        warn!(job.id = %job.id, "lease lost while waiting for a slot");
                        self.held.lock().unwrap().remove(&job.id);
                        return;
                    }
                    Err(e) => {
                        // Leave the job to the rescuer: its attempts are untouched.
                        warn!(job.id = %job.id, error = %e, "could not record the step's start");
                        self.held.lock().unwrap().remove(&job.id);
                        return;
                    }
                }
            }
            if let Some(entry) = self.held.lock().unwrap().get_mut(&job.id) {
                entry.started_at = Some(Utc::now());
            }
        }
        let Some(workflow) = self.registry.get(&job.kind).cloned() else {
            unreachable!("claims are limited to registered kinds");
        };
        let compensation = |step: &str| workflow.compensation(step);
        loop {
            let span = info_span!(
                "step",
                job.id = %job.id,
                job.kind = %job.kind,
                tenant.id = job.tenant_id.as_deref().unwrap_or(""),
                step = %job.step,
                attempt = job.attempt,
            );
            let started_at = Utc::now();
            let run = match on_claim(&job) {
                Some(refused) => StepRun::failed(refused),
                None => {
                    // A panicking step is a failed attempt, not a job held (and heartbeaten)
                    // for as long as the process lives.
                    let step = AssertUnwindSafe(
                        workflow
                            .run_step(&job, &self.pool, self.abort.clone())
                            .instrument(span.clone()),
                    )
                    .catch_unwind();
                    tokio::select! {
                        r = step => r.unwrap_or_else(|_| StepRun::failed(StepError::retry("panic", "the step panicked"))),
                        _ = self.abort.cancelled() => {
                            span.in_scope(|| warn!("step abandoned: lease lost or not renewed in time, or hard stop"));
                            break;
                        }
                    }
                }
            };
            let input = SettleInput {
                worker: &self.settings.id,
                started_at,
                now: Utc::now(),
                retry: self.settings.retry,
                keep_going: !self.shutdown.is_cancelled(),
                compensation: &compensation,
            };
            let settled = settle(&job, run, &input, &mut rand::rng());
            let took = (input.now - started_at).to_std().unwrap_or_default();
            let completion = settled.completion;
            let recorded = self
                .completer
                .complete(completion.clone())
                .instrument(span.clone())
                .await;
            let _entered = span.enter();
            match recorded {
                Ok(true) => {
                    crate::metrics::record_step(
                        &job.kind,
                        &completion.history_step,
                        completion.outcome.as_str(),
                        completion.error_class,
                        took,
                    );
                    info!(
                        outcome = completion.outcome.as_str(),
                        next = %completion.step,
                        state = completion.state.as_str(),
                        error = completion.history_error.as_deref().unwrap_or(""),
                        error_class = completion.error_class.unwrap_or(""),
                        "step recorded"
                    );
                }
                Ok(false) => {
                    warn!(
                        "lease lost before the outcome was recorded; another worker owns the job"
                    );
                    break;
                }
                Err(e) => {
                    // The lease runs out and the rescuer hands the job to a worker that can
                    // write; the step is idempotent, so running it again is safe.
                    warn!(error = %e, "could not record the step's outcome");
                    break;
                }
            }
            drop(_entered);
            let Some(next) = settled.continue_with else {
                break;
            };
            if self.abort.is_cancelled() {
                // The lease could not be renewed meanwhile: the next step is the rescuer's.
                break;
            }
            job.step = next;
            job.attempt = 0;
            if let Some(data) = &completion.data {
                queue::merge_data(&mut job.data.0, data);
            }
            if completion.error.is_some() {
                job.error = completion.error.clone();
            }
        }
        self.held.lock().unwrap().remove(&job.id);
    }
}
