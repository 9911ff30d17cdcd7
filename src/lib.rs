//! tenantd: gives every tenant of a SaaS product its own PostgreSQL database on AWS RDS, and takes
//! it away again, driven by a durable job queue in a control PostgreSQL.

pub mod api;
pub mod app;
pub mod cli;
pub mod cloud;
pub mod config;
pub mod db;
pub mod metrics;
pub mod queue;
pub mod telemetry;
pub mod tenant_db;
pub mod tenants;
pub mod tier;
pub mod worker;
pub mod workflow;
