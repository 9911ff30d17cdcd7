//! The workflows the worker runs, and what they are made of: typed steps ([`step`]), step
//! errors that know their class and disposition ([`error`]), the interface to the worker
//! ([`runner`]), what the tenant workflows share ([`aws`], [`removal`], [`instance_watch`]),
//! the tenant workflows themselves ([`provision`], [`deprovision`], [`reconcile`],
//! [`migrate`], [`attach`], the engine [`upgrade`], the in-place fleet changes [`fleet`]) and the
//! desired state of an instance ([`desired`], [`engine_version`]).

pub mod attach;
pub mod aws;
pub mod deprovision;
pub mod desired;
pub mod engine_version;
pub mod error;
pub mod fleet;
pub mod instance_watch;
pub mod migrate;
pub mod provision;
pub mod quota;
pub mod reconcile;
pub mod removal;
pub mod runner;
pub mod standby;
pub mod step;
pub mod upgrade;

pub use attach::Attach;
pub use aws::AwsContext;
pub use deprovision::Deprovision;
pub use error::StepError;
pub use fleet::FleetChange;
pub use migrate::Migrate;
pub use provision::Provision;
pub use reconcile::Reconcile;
pub use runner::{Registry, Runner, StepContext, StepRun, Workflow};
pub use standby::StandbyBuild;
pub use step::{InstanceWait, Step, StepNames, Transition};
pub use upgrade::{EngineUpgrade, RetireInstance};
