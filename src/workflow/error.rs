//! Why a step did not succeed: a [`StepError`] knows whether the step is worth running again
//! (retry, with backoff, using up an attempt) or not (fail: the workflow's compensation takes
//! over), and carries a short, stable class label that goes into the job's history and the
//! step metrics. Errors of the layers below convert with `?`; [`Context`] adds what the step
//! was doing.

use crate::cloud::CloudError;
use crate::queue::QueueError;
use crate::tenant_db::TenantDbError;

/// A step's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    /// Short, stable, snake_case: `throttled`, `aws_timeout`, `access_denied`, `not_found`,
    /// `tenant_db_auth`, `tls`, `lease_lost`, ...
    pub class: &'static str,
    /// Run the step again after a backoff (`true`), or fail it for good.
    pub retry: bool,
    pub message: String,
}

impl StepError {
    /// A failure that will not pass by itself.
    pub fn fail(class: &'static str, message: impl Into<String>) -> Self {
        StepError {
            class,
            retry: false,
            message: message.into(),
        }
    }

    /// A failure that may pass: the step runs again after a backoff.
    pub fn retry(class: &'static str, message: impl Into<String>) -> Self {
        StepError {
            class,
            retry: true,
            message: message.into(),
        }
    }

    /// Prefixes the message with what the step was doing.
    pub fn during(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl From<CloudError> for StepError {
    fn from(e: CloudError) -> Self {
        StepError {
            class: e.class(),
            retry: e.is_retryable(),
            message: e.to_string(),
        }
    }
}

impl From<TenantDbError> for StepError {
    fn from(e: TenantDbError) -> Self {
        StepError {
            class: e.class(),
            retry: e.is_retryable(),
            message: e.to_string(),
        }
    }
}

impl From<QueueError> for StepError {
    fn from(e: QueueError) -> Self {
        match e {
            // Another worker owns the job: whatever this one returns is not recorded.
            QueueError::LeaseLost(_) => StepError::retry("lease_lost", e.to_string()),
            e => StepError::retry("control_db", e.to_string()),
        }
    }
}

/// Adds what a step was doing to an error of a lower layer.
pub trait Context<T> {
    /// `Err(e)` becomes the step error of `e`, its message prefixed with `what`.
    fn during(self, what: &str) -> Result<T, StepError>;
}

impl<T, E: Into<StepError>> Context<T> for Result<T, E> {
    fn during(self, what: &str) -> Result<T, StepError> {
        self.map_err(|e| e.into().during(what))
    }
}

/// For the steps that take a tenant's resources away: there, any AWS answer but a fatal one is
/// worth another try (a rollback must not give up on a busy instance and leave it billed).
pub trait Undoing<T> {
    fn undoing(self, what: &str) -> Result<T, StepError>;
}

impl<T> Undoing<T> for Result<T, CloudError> {
    fn undoing(self, what: &str) -> Result<T, StepError> {
        self.map_err(|e| {
            let fatal = matches!(e, CloudError::Fatal(_));
            let mut e = StepError::from(e).during(what);
            e.retry = !fatal;
            e
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Failure;

    fn cloud(kind: fn(Failure) -> CloudError, code: &str, class: &'static str) -> CloudError {
        kind(Failure {
            service: "rds",
            operation: "CreateDBInstance",
            code: Some(code.into()),
            message: "m".into(),
            class,
        })
    }

    #[test]
    fn aws_failures_keep_their_class_and_disposition_through_question_marks() {
        let step = || -> Result<(), StepError> {
            Err(cloud(CloudError::Retryable, "Throttling", "throttled"))
                .during("creating the instance")?;
            Ok(())
        };
        let e = step().unwrap_err();
        assert_eq!((e.class, e.retry), ("throttled", true));
        assert_eq!(
            e.message,
            "creating the instance: rds CreateDBInstance: Throttling: m"
        );
        let denied: Result<(), _> = Err(cloud(CloudError::Fatal, "AccessDenied", "access_denied"));
        let e = denied.during("x").unwrap_err();
        assert_eq!((e.class, e.retry), ("access_denied", false));
    }

    #[test]
    fn undoing_retries_all_but_fatal_answers() {
        let busy: Result<(), _> = Err(cloud(
            CloudError::NotFound,
            "DBSnapshotNotFound",
            "not_found",
        ));
        assert!(busy.undoing("deleting").unwrap_err().retry);
        let denied: Result<(), _> = Err(cloud(CloudError::Fatal, "AccessDenied", "access_denied"));
        assert!(!denied.undoing("deleting").unwrap_err().retry);
    }

    #[test]
    fn a_lost_lease_is_its_own_class() {
        let e: StepError = QueueError::LeaseLost(uuid::Uuid::nil()).into();
        assert_eq!((e.class, e.retry), ("lease_lost", true));
    }
}
