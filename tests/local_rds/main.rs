//! The local stack's RDS (the emulator in `localstack/rds-provider`), driven only through the AWS
//! SDK and a PostgreSQL client the way tenantd drives RDS: it tests the emulator, not tenantd, so
//! it compiles only the helpers it needs. Run with `localstack/test --test local_rds`.

#[path = "../support/rds.rs"]
mod rds;
#[path = "../support/wait.rs"]
mod wait;

mod lifecycle;

mod bluegreen;
mod instances;
mod maintenance;
