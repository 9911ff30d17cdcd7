//! tenantd: gives every tenant of a SaaS product its own PostgreSQL database on AWS RDS, and takes
//! it away again, driven by a durable job queue in a control PostgreSQL.
//!
//! Layers, each importing only those below it: `config` (settings, imports nothing of the
//! crate); `metrics`, `db`, `telemetry`, `audit` (the audit trail); `cloud` (AWS calls),
//! `tenant_db`, `queue` (all SQL on jobs); `tenants::record`, `pool` (the warm pool's standby records); `workflow` (typed
//! steps); `tenants::requests`, `model` (the API's bodies); `worker`, `maintenance`, `api`,
//! `ui` (the console, beside the API), `cli`; `app` (wiring) and `main`.

pub mod api;
pub mod app;
pub mod audit;
pub mod cli;
pub mod cloud;
pub mod config;
pub mod db;
pub mod maintenance;
pub mod metrics;
pub mod model;
pub mod pool;
pub mod queue;
pub mod rollouts;
pub mod telemetry;
pub mod tenant_db;
pub mod tenants;
pub mod ui;
pub mod worker;
pub mod workflow;
