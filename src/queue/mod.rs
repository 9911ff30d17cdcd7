//! The durable job queue in the control PostgreSQL: enqueue, claim under a fenced lease,
//! heartbeat, rescue, record step outcomes, cancel, wake-ups, and every other statement about
//! `jobs` and `job_history` (the rest of the crate calls these functions, never SQL of its own).

mod complete;
mod enqueue;
mod job;
mod lease;
mod notify;
mod read;

pub use complete::{
    Batched, Batcher, Completer, Completion, Record, complete_batch, prune, write_records,
};
pub use enqueue::{Enqueued, NewJob, cancel, enqueue, enqueue_batch};
pub use job::{HistoryEntry, Job, JobState, Lease, Outcome, QueueError, merge_data};
pub use lease::{
    Beat, claim, fenced, heartbeat, mark_started, next_run_at, release, rescue_expired, wake,
};
pub use notify::{CHANNEL, listen};
pub use read::{
    FleetStats, JobFilter, RecentEnds, Waiting, active_job, failures_since_success, fleet_stats,
    get_job, histories, history, jobs_naming_standby, jobs_with_arg, latest_job, latest_jobs,
    list_jobs, marked, older_marked, recent_ends, tenants_with_active_jobs, waiting_at,
};
