//! Several daemon processes and a hostile world: replicas sharing a fleet, partitions from the
//! control database, SIGKILL soaks and flaky AWS. One test binary; each module is one former test
//! file.

#[path = "../support/mod.rs"]
mod support;

mod faults;
mod partitions;
mod replicas;
mod soak;
