//! The delivery loop every process runs: fan the new events out to the subscriptions that want
//! them, claim due deliveries (`FOR UPDATE SKIP LOCKED`, the oldest pending one per
//! subscription and tenant), sign and send them at once, record each attempt, and commit. A
//! process killed between the send and the commit leaves its deliveries pending: another
//! process (or the restarted one) sends them again, with the same `webhook-id`. Woken by the
//! events' NOTIFY, polling every `TENANTD_WEBHOOK_POLL` as a fallback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use rand::Rng;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::WebhookError;
use super::client::Deliverer;
use super::keys::{KeySet, Keys};
use super::signing::signature_header;
use crate::config::WebhookSettings;
use crate::store::events::{CHANNEL, Event};
use crate::store::webhooks::deliveries::{self, AfterFailure, Attempt, Claimed};
use crate::wire::events::CloudEvent;

/// The pause before attempt `attempts + 1`: `base`·2ⁿ⁻¹ capped at `max`, half of it fixed and
/// half random (equal jitter), so receivers coming back are not hit by every sender at once.
pub fn pause(settings: &WebhookSettings, attempts: i32) -> Duration {
    let n = (attempts.max(1) - 1).min(30) as u32;
    let full = settings
        .retry_base
        .saturating_mul(2u32.saturating_pow(n))
        .min(settings.retry_max);
    let half = full.as_secs_f64() / 2.0;
    Duration::from_secs_f64(half + rand::rng().random_range(0.0..=half))
}

/// One process's deliverer.
pub struct Dispatcher {
    pool: PgPool,
    keys: Keys,
    client: Deliverer,
    settings: WebhookSettings,
    environment: String,
    /// Keys by subscription and key version (a rotation raises the version).
    cache: Mutex<HashMap<(Uuid, i32, bool), Arc<KeySet>>>,
}

impl Dispatcher {
    pub fn new(
        pool: PgPool,
        keys: Keys,
        settings: WebhookSettings,
        environment: &str,
    ) -> Result<Self, reqwest::Error> {
        Ok(Dispatcher {
            pool,
            keys,
            client: Deliverer::new(&settings)?,
            settings,
            environment: environment.to_string(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Delivers until `shutdown`; a round in progress finishes first (its sends are bounded by
    /// the delivery timeout).
    pub async fn run(self, shutdown: CancellationToken) {
        let wake = Arc::new(Notify::new());
        let listening = tokio::spawn(listen(self.pool.clone(), wake.clone(), shutdown.clone()));
        info!(
            concurrency = self.settings.concurrency,
            "webhook deliveries running"
        );
        while !shutdown.is_cancelled() {
            let worked = match self.round().await {
                Ok(n) => n > 0,
                Err(e) => {
                    warn!(error = %e, "webhook round failed");
                    false
                }
            };
            if !worked {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(self.settings.poll) => {}
                }
            }
        }
        listening.abort();
    }

    /// Fans out, then sends one batch; returns the deliveries attempted plus those made.
    pub async fn round(&self) -> Result<usize, WebhookError> {
        let mut tx = self.pool.begin().await?;
        let made = deliveries::fan_out(&mut tx).await?;
        tx.commit().await?;

        let mut tx = self.pool.begin().await?;
        let claimed = deliveries::claim(&mut tx, self.settings.concurrency as i64).await?;
        if claimed.is_empty() {
            tx.commit().await?;
            return Ok(made as usize);
        }
        let ids: Vec<i64> = claimed.iter().map(|c| c.event_id).collect();
        let events: HashMap<i64, Event> = deliveries::events(&mut *tx, &ids)
            .await?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        let attempts = join_all(
            claimed
                .iter()
                .map(|c| self.deliver(c, events.get(&c.event_id))),
        )
        .await;
        // Successes are recorded together; each failure on its own (its pause, its window).
        let delivered: Vec<(&Claimed, &Attempt)> = claimed
            .iter()
            .zip(&attempts)
            .filter(|(_, a)| a.succeeded())
            .collect();
        deliveries::record_delivered(&mut tx, &delivered).await?;
        for (c, attempt) in claimed
            .iter()
            .zip(&attempts)
            .filter(|(_, a)| !a.succeeded())
        {
            // An event pruned before its delivery cannot be sent: given up at once.
            let retry_for = if events.contains_key(&c.event_id) {
                self.settings.retry_for
            } else {
                Duration::ZERO
            };
            let pause = pause(&self.settings, c.attempts + 1);
            let after = deliveries::record(
                &mut tx,
                c,
                attempt,
                pause,
                retry_for,
                self.settings.disable_after,
            )
            .await?;
            match after {
                None => debug!(webhook.id = %c.subscription_id, event.id = c.event_id, "delivered"),
                Some(AfterFailure::Retry) => debug!(
                    webhook.id = %c.subscription_id, event.id = c.event_id,
                    attempt = c.attempts + 1, error = attempt.error.as_deref().unwrap_or(""),
                    "delivery failed; retried later"
                ),
                Some(AfterFailure::GaveUp) => warn!(
                    webhook.id = %c.subscription_id, event.id = c.event_id,
                    attempts = c.attempts + 1, "delivery given up: marked failed"
                ),
                Some(AfterFailure::Disabled(reason)) => warn!(
                    webhook.id = %c.subscription_id, reason = %reason,
                    "webhook subscription disabled"
                ),
            }
        }
        tx.commit().await?;
        Ok(made as usize + claimed.len())
    }

    async fn key_set(&self, c: &Claimed) -> Result<Arc<KeySet>, WebhookError> {
        let slot = (c.subscription_id, c.key_version, c.overlap);
        if let Some(found) = self.cache.lock().expect("key cache").get(&slot) {
            return Ok(found.clone());
        }
        let loaded = Arc::new(self.keys.load(&c.secret_arn, c.overlap).await?);
        let mut cache = self.cache.lock().expect("key cache");
        cache.retain(|(id, _, _), _| *id != c.subscription_id);
        cache.insert(slot, loaded.clone());
        Ok(loaded)
    }

    async fn deliver(&self, c: &Claimed, event: Option<&Event>) -> Attempt {
        let failed = |error: String| Attempt {
            status: None,
            error: Some(error),
            took: Duration::ZERO,
        };
        let Some(event) = event else {
            return failed(format!("event {} no longer exists (pruned)", c.event_id));
        };
        let keys = match self.key_set(c).await {
            Ok(keys) => keys,
            Err(e) => return failed(format!("signing key unavailable: {e}")),
        };
        let body = serde_json::to_vec(&CloudEvent::new(event, &self.environment))
            .expect("an event serializes");
        let id = event.id.to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let mut signers = vec![&keys.current];
        signers.extend(keys.previous.as_ref());
        let headers = [
            ("webhook-id", id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            (
                "webhook-signature",
                signature_header(&signers, &id, timestamp, &body),
            ),
        ];
        self.client.post(&c.url, &headers, body).await
    }
}

/// Wakes the loop on every commit of events; on a broken connection, listens again.
async fn listen(pool: PgPool, wake: Arc<Notify>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                debug!(error = %e, "cannot listen for events; polling");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        if listener.listen(CHANNEL).await.is_err() {
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        }
        while listener.recv().await.is_ok() {
            wake.notify_one();
        }
    }
}
