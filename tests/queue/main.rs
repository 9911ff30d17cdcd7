//! The job queue, the worker and the tenant requests against a real control PostgreSQL, and a
//! worker-only process. One test binary; each module is one former test file.

#[path = "../support/mod.rs"]
mod support;

mod queue;
mod tenants;
mod worker_process;
