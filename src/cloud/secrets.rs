//! Secrets Manager: CreateSecret, DescribeSecret, GetSecretValue, PutSecretValue, RestoreSecret,
//! DeleteSecret. Secret values pass through as [`SecretString`] and are never formatted.

use aws_sdk_secretsmanager::types::Tag;
use secrecy::{ExposeSecret, SecretString};

use super::{Cloud, CloudError, Failure, Tags};

const SM: &str = "secretsmanager";

/// What tenantd reads back about a secret (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub arn: String,
    pub name: String,
    pub tags: Tags,
    /// Scheduled for deletion (within its recovery window).
    pub pending_deletion: bool,
    /// When it was created.
    pub created: Option<chrono::DateTime<chrono::Utc>>,
}

fn time_of(
    t: Option<&aws_sdk_secretsmanager::primitives::DateTime>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

/// How DeleteSecret treats the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Gone at once: nothing is left to restore (rollback of a failed provisioning).
    None,
    /// Restorable for this many days (7 to 30).
    Days(i64),
}

fn tags_of(tags: &[Tag]) -> Tags {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

impl Cloud {
    /// The secret's metadata, or `None` when it does not exist.
    pub async fn describe_secret(&self, id: &str) -> Result<Option<SecretInfo>, CloudError> {
        let request = self.secrets.describe_secret().secret_id(id).send();
        match self.call(SM, "DescribeSecret", request).await {
            Ok(out) => Ok(Some(SecretInfo {
                arn: out.arn().unwrap_or_default().to_string(),
                name: out.name().unwrap_or_default().to_string(),
                tags: tags_of(out.tags()),
                pending_deletion: out.deleted_date().is_some(),
                created: time_of(out.created_date()),
            })),
            Err(CloudError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every secret whose name starts with `prefix`, also those scheduled for deletion, 100 a
    /// call; returns them with the number of calls made.
    pub async fn list_secrets_by_prefix(
        &self,
        prefix: &str,
    ) -> Result<(Vec<SecretInfo>, u32), CloudError> {
        use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        let mut calls = 0;
        loop {
            let request = self
                .secrets
                .list_secrets()
                .include_planned_deletion(true)
                .filters(
                    Filter::builder()
                        .key(FilterNameStringType::Name)
                        .values(prefix)
                        .build(),
                )
                .max_results(100)
                .set_next_token(token.clone())
                .send();
            let out = self.call(SM, "ListSecrets", request).await?;
            calls += 1;
            found.extend(
                out.secret_list()
                    .iter()
                    .filter(|s| s.name().is_some_and(|n| n.starts_with(prefix)))
                    .map(|s| SecretInfo {
                        arn: s.arn().unwrap_or_default().to_string(),
                        name: s.name().unwrap_or_default().to_string(),
                        tags: tags_of(s.tags()),
                        pending_deletion: s.deleted_date().is_some(),
                        created: time_of(s.created_date()),
                    }),
            );
            token = out
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok((found, calls));
            }
        }
    }

    /// Creates a secret with its first value; returns its ARN.
    pub async fn create_secret(
        &self,
        name: &str,
        value: &SecretString,
        tags: &Tags,
        description: &str,
    ) -> Result<String, CloudError> {
        let request = self
            .secrets
            .create_secret()
            .name(name)
            .description(description)
            .secret_string(value.expose_secret())
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send();
        let out = self.call(SM, "CreateSecret", request).await?;
        Ok(out.arn().unwrap_or_default().to_string())
    }

    /// The current value of a secret.
    pub async fn get_secret_value(&self, id: &str) -> Result<SecretString, CloudError> {
        let request = self.secrets.get_secret_value().secret_id(id).send();
        let out = self.call(SM, "GetSecretValue", request).await?;
        match out.secret_string() {
            Some(s) => Ok(SecretString::from(s)),
            None => Err(CloudError::Fatal(Failure {
                service: SM,
                operation: "GetSecretValue",
                code: None,
                message: format!("secret {id} holds binary data, not a string"),
                class: "bad_secret",
            })),
        }
    }

    /// Stores a new current value.
    pub async fn put_secret_value(&self, id: &str, value: &SecretString) -> Result<(), CloudError> {
        let request = self
            .secrets
            .put_secret_value()
            .secret_id(id)
            .secret_string(value.expose_secret())
            .send();
        self.call(SM, "PutSecretValue", request).await?;
        Ok(())
    }

    /// Cancels a scheduled deletion.
    pub async fn restore_secret(&self, id: &str) -> Result<(), CloudError> {
        let request = self.secrets.restore_secret().secret_id(id).send();
        self.call(SM, "RestoreSecret", request).await?;
        Ok(())
    }

    /// Deletes a secret; a secret that does not exist counts as deleted.
    pub async fn delete_secret(&self, id: &str, recovery: Recovery) -> Result<(), CloudError> {
        let request = self.secrets.delete_secret().secret_id(id);
        let request = match recovery {
            Recovery::None => request.force_delete_without_recovery(true),
            Recovery::Days(days) => request.recovery_window_in_days(days),
        };
        match self.call(SM, "DeleteSecret", request.send()).await {
            Ok(_) | Err(CloudError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
