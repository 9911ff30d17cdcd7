//! Signing keys in Secrets Manager: one secret per subscription, named
//! `<TENANTD_WEBHOOK_SECRET_PREFIX><subscription id>`, tagged as this deployment's
//! (`ManagedBy`, `Environment`, `WebhookSubscription`), holding `{"current": "whsec_...",
//! "previous": "whsec_..." | null}`. The control database keeps only the ARN; the key leaves
//! Secrets Manager only to sign, and reaches the API once, in the answer that made it.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::WebhookError;
use super::signing::Key;
use crate::cloud::ownership::{self, Holder};
use crate::cloud::secrets::Recovery;
use crate::cloud::{Cloud, MANAGER, TAG_ENVIRONMENT, TAG_MANAGED_BY, TAG_WEBHOOK, Tags};

/// The keys that sign a subscription's deliveries.
#[derive(Debug)]
pub struct KeySet {
    pub current: Key,
    pub previous: Option<Key>,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    current: String,
    previous: Option<String>,
}

/// Where the signing keys live, and whose they are.
#[derive(Clone)]
pub struct Keys {
    cloud: Cloud,
    prefix: String,
    environment: String,
}

impl Keys {
    pub fn new(cloud: Cloud, prefix: &str, environment: &str) -> Self {
        Keys {
            cloud,
            prefix: prefix.to_string(),
            environment: environment.to_string(),
        }
    }

    fn stored(current: &SecretString, previous: Option<&SecretString>) -> SecretString {
        let json = serde_json::to_string(&Stored {
            current: current.expose_secret().to_string(),
            previous: previous.map(|p| p.expose_secret().to_string()),
        })
        .expect("two strings serialize");
        SecretString::from(json)
    }

    fn read(value: &SecretString) -> Result<Stored, WebhookError> {
        serde_json::from_str(value.expose_secret())
            .map_err(|_| WebhookError::Keys("a signing key secret is not tenantd's JSON".into()))
    }

    /// Makes the subscription's key; returns the secret's ARN and the key as shown once.
    pub async fn create(&self, id: Uuid) -> Result<(String, SecretString), WebhookError> {
        let key = Key::generate();
        let tags: Tags = vec![
            (TAG_MANAGED_BY.into(), MANAGER.into()),
            (TAG_ENVIRONMENT.into(), self.environment.clone()),
            (TAG_WEBHOOK.into(), id.to_string()),
        ];
        let arn = self
            .cloud
            .create_secret(
                &format!("{}{id}", self.prefix),
                &Self::stored(&key, None),
                &tags,
                &format!("tenantd webhook signing key of subscription {id}"),
            )
            .await
            .map_err(|e| WebhookError::Keys(e.to_string()))?;
        Ok((arn, key))
    }

    /// A new current key; the one it replaces becomes the previous one. Returns the new key.
    pub async fn rotate(&self, arn: &str) -> Result<SecretString, WebhookError> {
        let value = self
            .cloud
            .get_secret_value(arn)
            .await
            .map_err(|e| WebhookError::Keys(e.to_string()))?;
        let old = SecretString::from(Self::read(&value)?.current);
        let key = Key::generate();
        self.cloud
            .put_secret_value(arn, &Self::stored(&key, Some(&old)))
            .await
            .map_err(|e| WebhookError::Keys(e.to_string()))?;
        Ok(key)
    }

    /// The keys that sign now: the current one, and the previous one while `overlap`.
    pub async fn load(&self, arn: &str, overlap: bool) -> Result<KeySet, WebhookError> {
        let value = self
            .cloud
            .get_secret_value(arn)
            .await
            .map_err(|e| WebhookError::Keys(e.to_string()))?;
        let stored = Self::read(&value)?;
        let parse = |s: String| {
            Key::parse(&SecretString::from(s)).map_err(|e| WebhookError::Keys(e.to_string()))
        };
        let previous = match stored.previous {
            Some(p) if overlap => Some(parse(p)?),
            _ => None,
        };
        Ok(KeySet {
            current: parse(stored.current)?,
            previous,
        })
    }

    /// Deletes the subscription's key when its tags say it is this deployment's key of that
    /// subscription; otherwise leaves it and says why.
    pub async fn delete(&self, arn: &str, id: Uuid) -> Result<Option<String>, WebhookError> {
        let Some(info) = self
            .cloud
            .describe_secret(arn)
            .await
            .map_err(|e| WebhookError::Keys(e.to_string()))?
        else {
            return Ok(None);
        };
        let id = id.to_string();
        if let Err(mismatch) = ownership::check(&info.tags, &self.environment, Holder::Webhook(&id))
        {
            return Ok(Some(format!(
                "secret {} is not tagged as this subscription's ({mismatch}); left untouched",
                info.name
            )));
        }
        self.cloud
            .delete_secret(arn, Recovery::None)
            .await
            .map_err(|e| WebhookError::Keys(e.to_string()))?;
        Ok(None)
    }
}
