//! Lifecycle events against a real control PostgreSQL: ids in commit order under concurrent
//! writers, retention, the `/v1/events` page and stream on a real HTTP server, and the events
//! of a scripted tenant lifecycle on the local stack. One test binary; one module per area.

#[path = "../support/mod.rs"]
mod support;

mod lifecycle;
mod outbox;
mod requests;
mod stream;
mod wait;
