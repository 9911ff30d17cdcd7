//! The webhook tables: subscriptions (`subscriptions.rs`), their deliveries and the delivery
//! log (`deliveries.rs`), and where a stream of every event such as the EventBridge bus stands
//! (`sinks.rs`).

pub mod deliveries;
pub mod sinks;
pub mod subscriptions;
