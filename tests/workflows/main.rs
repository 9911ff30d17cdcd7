//! The workflows against the local stack (LocalStack with the local RDS, real PostgreSQL):
//! provisioning, day two, crashes mid-step, ownership, quotas, the IAM policy and rolling
//! upgrades. One test binary; each module is one former test file.

#[path = "../support/mod.rs"]
mod support;

mod crash;
mod day_two;
mod day_two_crash;
mod engine_upgrade;
mod engine_upgrade_crash;
mod iam;
mod ownership;
mod provision;
mod quota;
mod upgrade;
