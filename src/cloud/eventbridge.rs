//! EventBridge: PutEvents, up to 10 entries a call, answering which entries failed (a call can
//! succeed with some of its entries refused).

use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{Cloud, CloudError};

/// One entry for PutEvents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusEntry {
    pub source: String,
    pub detail_type: String,
    /// JSON.
    pub detail: String,
    pub time: chrono::DateTime<chrono::Utc>,
}

/// Entries per PutEvents call, as AWS allows.
pub const MAX_ENTRIES: usize = 10;

impl Cloud {
    /// Puts `entries` (at most [`MAX_ENTRIES`]) on `bus`; returns, for each entry in order,
    /// `None` when accepted or the error code EventBridge gave it.
    pub async fn put_events(
        &self,
        bus: &str,
        entries: &[BusEntry],
    ) -> Result<Vec<Option<String>>, CloudError> {
        assert!(
            entries.len() <= MAX_ENTRIES,
            "PutEvents takes at most 10 entries"
        );
        let built = entries
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(bus)
                    .source(&e.source)
                    .detail_type(&e.detail_type)
                    .detail(&e.detail)
                    .time(aws_sdk_eventbridge::primitives::DateTime::from_secs(
                        e.time.timestamp(),
                    ))
                    .build()
            })
            .collect();
        let request = self
            .eventbridge
            .put_events()
            .set_entries(Some(built))
            .send();
        let out = self.call("events", "PutEvents", request).await?;
        let mut answers: Vec<Option<String>> = out
            .entries()
            .iter()
            .map(|r| {
                r.error_code()
                    .map(|c| format!("{c}: {}", r.error_message().unwrap_or_default()))
            })
            .collect();
        // An answer without one result per entry: count the missing ones as failed.
        answers.resize(entries.len(), Some("no result for the entry".into()));
        Ok(answers)
    }
}
