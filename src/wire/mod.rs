//! The HTTP API's request and response bodies, one file per group of routes as in `api/`: what
//! the server answers and the CLI reads, in one place, with their OpenAPI schemas derived from
//! these types (so the published document states every rule the server enforces).

pub mod audit;
pub mod error;
pub mod events;
pub mod jobs;
pub mod pool;
pub mod reports;
pub mod rollouts;
pub mod tenants;

/// Default page size of the lists.
pub const DEFAULT_PAGE: i64 = 50;
/// Largest page size of the lists.
pub const MAX_PAGE: i64 = 1000;
