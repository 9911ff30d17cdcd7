//! tenantd: gives every tenant of a SaaS product its own PostgreSQL database on AWS RDS, and takes
//! it away again, driven by a durable job queue in a control PostgreSQL.
//!
//! # Layers
//!
//! The modules in layers, lowest first. A module imports only modules of lower layers: never
//! one of its own layer, never a higher one. This list is the one statement of the order:
//! `tests/source/layers.rs` checks every import against it, and that the README's Layout table lists
//! the same layers in the same order.
//!
//! 1. `config`, `tenant_id`: the settings tree; a tenant's id, checked once where it comes in.
//!    Neither imports anything of the crate.
//! 2. `metrics`, `telemetry`, `db`: process-wide metrics, logging, the control database's pool
//!    and schema.
//! 3. `cloud`, `tenant_db`, `queue`: AWS calls; a tenant's database; every statement about the
//!    job queue's tables.
//! 4. `store`: every statement about the other tables (a tenant's row keeps some of what AWS
//!    describes of its instance, in the AWS layer's types).
//! 5. `audit`: a request's audit trail, written with its change.
//! 6. `workflow`: typed steps, the workflows the worker runs.
//! 7. `tenants`: the requests that start a tenant's workflows.
//! 8. `rollouts`: the requests that create and steer schema rollouts, and the conductor's round.
//! 9. `wire`: the HTTP API's request and response bodies, one file per group of routes as in
//!    `api/`; the server and the CLI share them.
//! 10. `worker`, `maintenance`, `api`: the worker loop, the leader's services, the HTTP API.
//! 11. `ui`, `cli`: the console (beside the API), the command-line client.
//! 12. `app`: wiring.
//! 13. `main`: the binary.

pub mod api;
pub mod app;
pub mod audit;
pub mod cli;
pub mod cloud;
pub mod config;
pub mod db;
pub mod maintenance;
pub mod metrics;
pub mod queue;
pub mod rollouts;
pub mod store;
pub mod telemetry;
pub mod tenant_db;
pub mod tenant_id;
pub mod tenants;
pub mod ui;
pub mod wire;
pub mod worker;
pub mod workflow;
