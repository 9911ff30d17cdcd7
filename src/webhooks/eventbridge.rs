//! `TENANTD_EVENTBRIDGE_BUS`: every event also goes to an EventBridge bus, PutEvents in batches
//! of up to 10, in id order, with at most one event per tenant in a batch (a tenant's next
//! event waits for the previous one, as for webhooks). The cursor is a row of `event_sinks`
//! locked `FOR UPDATE SKIP LOCKED` by the process sending, and moved in the same transaction
//! after the bus accepted the batch: a process killed in between leaves the batch to be sent
//! again (at least once; the detail carries the event id). A batch partly refused moves the
//! cursor past the accepted prefix; the rest is retried with the webhooks' backoff for
//! `TENANTD_WEBHOOK_RETRY_FOR`, then given up (logged).
//!
//! Detail types follow AWS's SaaS Builder Toolkit where it has a name: `provisionSuccess`
//! (`tenantd.tenant.ready`), `provisionFailure` (`tenantd.tenant.failed`), `deprovisionSuccess`
//! (`tenantd.tenant.deleted`), `deprovisionFailure` (`tenantd.job.failed` of a deprovisioning);
//! every other event keeps its type (`tenantd.tenant.requested`, ...). The source is `tenantd`,
//! the detail the event's CloudEvents document.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::WebhookError;
use super::dispatch::pause;
use crate::cloud::Cloud;
use crate::cloud::eventbridge::{BusEntry, MAX_ENTRIES};
use crate::config::WebhookSettings;
use crate::store::events::{self, Event, EventFilter};
use crate::store::webhooks::sinks;
use crate::wire::events::CloudEvent;

/// The `event_sinks` row of the bus.
const SINK: &str = "eventbridge";
/// The `source` of every entry.
pub const SOURCE: &str = "tenantd";

/// The detail type of an event on the bus.
pub fn detail_type(event: &Event) -> String {
    match event.kind.as_str() {
        "tenantd.tenant.ready" => "provisionSuccess".into(),
        "tenantd.tenant.failed" => "provisionFailure".into(),
        "tenantd.tenant.deleted" => "deprovisionSuccess".into(),
        "tenantd.job.failed"
            if event.data.get("workflow").and_then(|w| w.as_str()) == Some("deprovision") =>
        {
            "deprovisionFailure".into()
        }
        other => other.to_string(),
    }
}

/// The next batch: events in id order, up to 10, stopping before a tenant's second event.
fn batch(events: &[Event]) -> &[Event] {
    let mut tenants = HashSet::new();
    let mut n = 0;
    for e in events.iter().take(MAX_ENTRIES) {
        if let Some(t) = &e.tenant_id
            && !tenants.insert(t.as_str())
        {
            break;
        }
        n += 1;
    }
    &events[..n]
}

pub struct BusSender {
    pool: PgPool,
    cloud: Cloud,
    bus: String,
    settings: WebhookSettings,
    environment: String,
}

impl BusSender {
    pub fn new(
        pool: PgPool,
        cloud: Cloud,
        bus: &str,
        settings: WebhookSettings,
        environment: &str,
    ) -> Self {
        BusSender {
            pool,
            cloud,
            bus: bus.to_string(),
            settings,
            environment: environment.to_string(),
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        info!(bus = %self.bus, "sending events to EventBridge");
        while !shutdown.is_cancelled() {
            let sent = match self.round().await {
                Ok(n) => n,
                Err(e) => {
                    warn!(error = %e, "EventBridge round failed");
                    0
                }
            };
            if sent == 0 {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(self.settings.poll) => {}
                }
            }
        }
    }

    /// Sends the next batch; returns how many events it moved the cursor past.
    pub async fn round(&self) -> Result<usize, WebhookError> {
        let mut tx = self.pool.begin().await?;
        let Some(cursor) = sinks::claim(&mut tx, SINK).await? else {
            tx.commit().await?;
            return Ok(0);
        };
        let next = events::page(
            &mut *tx,
            cursor.delivered_through,
            &EventFilter::default(),
            MAX_ENTRIES as i64,
        )
        .await?;
        let batch = batch(&next);
        if batch.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        let entries: Vec<BusEntry> = batch
            .iter()
            .map(|e| BusEntry {
                source: SOURCE.into(),
                detail_type: detail_type(e),
                detail: serde_json::to_string(&CloudEvent::new(e, &self.environment))
                    .expect("an event serializes"),
                time: e.time,
            })
            .collect();
        let (accepted, error) = match self.cloud.put_events(&self.bus, &entries).await {
            Ok(answers) => {
                let accepted = answers.iter().take_while(|a| a.is_none()).count();
                (accepted, answers.get(accepted).cloned().flatten())
            }
            Err(e) => (0, Some(e.to_string())),
        };
        if accepted > 0 {
            sinks::advance(&mut tx, SINK, batch[accepted - 1].id).await?;
        }
        let Some(error) = error else {
            tx.commit().await?;
            debug!(events = accepted, "events put on the bus");
            return Ok(accepted);
        };
        // The first refused event: retried, or given up once failing for retry_for.
        let refused = &batch[accepted];
        let attempts = if accepted > 0 { 0 } else { cursor.attempts };
        let since =
            sinks::failed(&mut tx, SINK, pause(&self.settings, attempts + 1), &error).await?;
        let failing_for = (chrono::Utc::now() - since)
            .to_std()
            .unwrap_or(Duration::ZERO);
        if failing_for >= self.settings.retry_for {
            warn!(event.id = refused.id, error = %error, "EventBridge: event given up");
            sinks::advance(&mut tx, SINK, refused.id).await?;
        } else {
            debug!(event.id = refused.id, error = %error, "EventBridge: refused; retried later");
        }
        tx.commit().await?;
        Ok(accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64, kind: &str, tenant: &str, data: serde_json::Value) -> Event {
        Event {
            id,
            kind: kind.into(),
            subject: tenant.into(),
            tenant_id: Some(tenant.into()),
            time: chrono::Utc::now(),
            data,
        }
    }

    #[test]
    fn detail_types_are_the_saas_builder_toolkits_where_it_has_one() {
        let j = serde_json::json!({});
        assert_eq!(
            detail_type(&event(1, "tenantd.tenant.ready", "a", j.clone())),
            "provisionSuccess"
        );
        assert_eq!(
            detail_type(&event(1, "tenantd.tenant.failed", "a", j.clone())),
            "provisionFailure"
        );
        assert_eq!(
            detail_type(&event(1, "tenantd.tenant.deleted", "a", j.clone())),
            "deprovisionSuccess"
        );
        let deprovision = serde_json::json!({"workflow": "deprovision"});
        assert_eq!(
            detail_type(&event(1, "tenantd.job.failed", "a", deprovision)),
            "deprovisionFailure"
        );
        assert_eq!(
            detail_type(&event(1, "tenantd.job.failed", "a", j.clone())),
            "tenantd.job.failed"
        );
        assert_eq!(
            detail_type(&event(1, "tenantd.tenant.requested", "a", j)),
            "tenantd.tenant.requested"
        );
    }

    #[test]
    fn a_batch_holds_at_most_ten_and_one_event_per_tenant() {
        let j = serde_json::json!({});
        let evs: Vec<Event> = (1..=12)
            .map(|i| event(i, "tenantd.tenant.ready", &format!("t{i}"), j.clone()))
            .collect();
        assert_eq!(batch(&evs).len(), 10);
        let evs = vec![
            event(1, "x", "a", j.clone()),
            event(2, "x", "b", j.clone()),
            event(3, "x", "a", j),
        ];
        assert_eq!(batch(&evs).len(), 2);
    }
}
