//! The requests about subscriptions: make one (its key in Secrets Manager, then its row),
//! list, enable, disable, rotate its key, replay its events, delete it (row, then key).

use secrecy::SecretString;
use sqlx::PgPool;
use tracing::{info, warn};
use uuid::Uuid;

use super::{Keys, WebhookError, urls};
use crate::config::WebhookSettings;
use crate::store::events::EventType;
use crate::store::webhooks::deliveries::{self, Since};
use crate::store::webhooks::subscriptions::{self, NewSubscription, Subscription};

/// Longest description kept.
const DESCRIPTION_MAX: usize = 500;

/// What a subscription is asked for with.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub url: &'a str,
    pub types: &'a [String],
    pub description: &'a str,
    pub by: Option<&'a str>,
}

/// Checks the types: each a known one, none twice. Empty means every type.
fn check_types(types: &[String]) -> Result<Vec<String>, WebhookError> {
    let mut out: Vec<String> = Vec::new();
    for t in types {
        let known: EventType = t
            .parse()
            .map_err(|_| WebhookError::UnknownEventType(t.clone()))?;
        let name = known.as_str().to_string();
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// Makes a subscription that receives the events committed from now on; returns it with its
/// signing key, shown this once.
pub async fn create(
    db: &PgPool,
    keys: &Keys,
    settings: &WebhookSettings,
    request: &Request<'_>,
) -> Result<(Subscription, SecretString), WebhookError> {
    if request.description.chars().count() > DESCRIPTION_MAX {
        return Err(WebhookError::Invalid(format!(
            "description: at most {DESCRIPTION_MAX} characters"
        )));
    }
    let types = check_types(request.types)?;
    let url = urls::check(request.url, settings.allow_private).await?;
    let id = Uuid::new_v4();
    let (arn, key) = keys.create(id).await?;
    let new = NewSubscription {
        id,
        url: url.as_str(),
        types: &types,
        description: request.description,
        secret_arn: &arn,
        created_by: request.by,
    };
    match subscriptions::insert(db, &new).await {
        Ok(sub) => {
            info!(webhook.id = %id, "webhook subscription created");
            Ok((sub, key))
        }
        Err(e) => {
            // The row did not go in: the key it would have had goes too.
            if let Err(undo) = keys.delete(&arn, id).await {
                warn!(webhook.id = %id, error = %undo, "could not delete the key of a subscription not made");
            }
            Err(e.into())
        }
    }
}

pub async fn get(db: &PgPool, id: Uuid) -> Result<Subscription, WebhookError> {
    subscriptions::get(db, id)
        .await?
        .ok_or(WebhookError::NotFound(id))
}

/// Enables (`reason` none) or disables it; a disabled subscription gets nothing until enabled
/// again, and then the events committed since.
pub async fn set_enabled(
    db: &PgPool,
    id: Uuid,
    reason: Option<&str>,
) -> Result<Subscription, WebhookError> {
    subscriptions::set_enabled(db, id, reason)
        .await?
        .ok_or(WebhookError::NotFound(id))
}

/// A new signing key; the old one signs too for `TENANTD_WEBHOOK_ROTATION_OVERLAP`. Returns
/// the subscription and the new key, shown this once.
pub async fn rotate(
    db: &PgPool,
    keys: &Keys,
    settings: &WebhookSettings,
    id: Uuid,
) -> Result<(Subscription, SecretString), WebhookError> {
    let sub = get(db, id).await?;
    // The version goes up in the transaction that ends after the new key is stored: processes
    // that see the new version read the new key.
    let mut tx = db.begin().await?;
    let rotated = subscriptions::rotated(&mut *tx, id, settings.rotation_overlap)
        .await?
        .ok_or(WebhookError::NotFound(id))?;
    let key = keys.rotate(&sub.secret_arn).await?;
    tx.commit().await?;
    info!(webhook.id = %id, key_version = rotated.key_version, "webhook signing key rotated");
    Ok((rotated, key))
}

/// Delivers again the events from `since`; returns how many.
pub async fn replay(db: &PgPool, id: Uuid, since: Since) -> Result<u64, WebhookError> {
    get(db, id).await?;
    Ok(deliveries::replay(db, id, since).await?)
}

/// Deletes the subscription, then its key (when its tags say it is this subscription's);
/// returns a note when the key was left.
pub async fn delete(db: &PgPool, keys: &Keys, id: Uuid) -> Result<Option<String>, WebhookError> {
    let sub = get(db, id).await?;
    if !subscriptions::delete(db, id).await? {
        return Err(WebhookError::NotFound(id));
    }
    let note = keys.delete(&sub.secret_arn, id).await?;
    if let Some(note) = &note {
        warn!(webhook.id = %id, note = %note, "signing key left in Secrets Manager");
    }
    info!(webhook.id = %id, "webhook subscription deleted");
    Ok(note)
}
