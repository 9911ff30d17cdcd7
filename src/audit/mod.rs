//! The audit trail: one row in `audit_events` per request that changes something, from the
//! API, the console and the CLI, written in the same transaction as the change, and one per
//! refused request. A request carries its [`Trail`] (who asked, from where, what about); the
//! functions that make a change write it with the change ([`commit`]); whatever else a request
//! came to is written once it is answered ([`Trail::finish`]).

mod trail;

pub use crate::store::audit::{
    Asker, AuditFilter, Channel, Entry, Event, askers, insert, page, prune,
};
pub use trail::{Trail, commit, commit_with};
