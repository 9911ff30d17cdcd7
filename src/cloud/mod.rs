//! Thin wrappers around the AWS calls tenantd makes (RDS, Secrets Manager, CloudWatch), with one
//! classification of their failures and one place that counts every call.

pub mod alarms;
pub mod bluegreen;
pub mod maintenance;
pub mod ownership;
pub mod rds;
pub mod secrets;
pub mod upgrades;

use std::collections::BTreeMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_rds::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use backon::{ExponentialBuilder, Retryable as _};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tracing::debug;

use crate::config::AwsTimeouts;

/// Attempts of one RDS call inside one step visit (tenantd's own retries, the SDK's are off for
/// RDS so that every attempt passes the rate limiter and the layers do not multiply).
pub const RDS_ATTEMPTS: usize = 3;

/// The AWS clients tenantd uses, sharing one call counter. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Cloud {
    rds: aws_sdk_rds::Client,
    secrets: aws_sdk_secretsmanager::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    calls: Arc<CallCounter>,
    /// Every RDS attempt of this process takes a token first; `None`: unlimited.
    rds_limiter: Option<Arc<DefaultDirectRateLimiter>>,
}

/// First pause of the in-process RDS retry (doubling, with jitter, up to 8 times this).
const RDS_RETRY_BASE: Duration = Duration::from_millis(250);

impl Cloud {
    /// Clients from the standard AWS configuration chain (environment, profile, instance role;
    /// `AWS_ENDPOINT_URL` for the local stack).
    pub async fn from_env(timeouts: AwsTimeouts) -> Result<Self, CloudError> {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(timeouts.connect)
            .operation_attempt_timeout(timeouts.attempt)
            .build();
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .timeout_config(timeouts)
            .load()
            .await;
        if config.region().is_none() {
            return Err(CloudError::Fatal(Failure {
                service: "aws",
                operation: "configure",
                code: None,
                message: "no AWS region is configured: set AWS_REGION".into(),
                class: "config",
            }));
        }
        Ok(Self::from_sdk_config(&config))
    }

    /// Clients from `config`. RDS gets no SDK retries: [`Cloud::call_rds`] retries it, through
    /// the rate limiter; Secrets Manager and CloudWatch keep the SDK's standard retries.
    pub fn from_sdk_config(config: &SdkConfig) -> Self {
        let rds = aws_sdk_rds::config::Builder::from(config)
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .build();
        Cloud {
            rds: aws_sdk_rds::Client::from_conf(rds),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            calls: Arc::default(),
            rds_limiter: None,
        }
    }

    /// Limits this process to `per_second` RDS requests (a fraction is fine: 2.5 is one every
    /// 400 ms), with bursts of up to one second's worth.
    pub fn with_rds_rate(mut self, per_second: f64) -> Self {
        assert!(per_second > 0.0, "an RDS rate must be positive");
        let burst = NonZeroU32::new(per_second.ceil().max(1.0) as u32).expect("at least 1");
        let quota = Quota::with_period(Duration::from_secs_f64(1.0 / per_second))
            .expect("a positive period")
            .allow_burst(burst);
        self.rds_limiter = Some(Arc::new(RateLimiter::direct(quota)));
        self
    }

    /// One RDS operation: every attempt waits for the rate limiter, is counted, and a
    /// retryable failure (throttling, 5xx, timeout, connection) is tried again after a
    /// jittered, doubling pause, up to [`RDS_ATTEMPTS`] attempts in all.
    async fn call_rds<T, E, F, Fut>(
        &self,
        operation: &'static str,
        send: F,
    ) -> Result<T, CloudError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E>>>,
    {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(RDS_RETRY_BASE)
            .with_max_delay(RDS_RETRY_BASE * 8)
            .with_max_times(RDS_ATTEMPTS - 1)
            .with_jitter();
        let attempt = || async {
            if let Some(limiter) = &self.rds_limiter {
                limiter.until_ready().await;
            }
            self.call(RDS, operation, send()).await
        };
        attempt
            .retry(backoff)
            .when(|e: &CloudError| matches!(e, CloudError::Retryable(_)))
            .await
    }

    /// How many calls were made so far, by service, operation and result.
    pub fn calls(&self) -> BTreeMap<(&'static str, &'static str, &'static str), u64> {
        self.calls.0.lock().unwrap().clone()
    }

    /// The total number of calls made so far.
    pub fn total_calls(&self) -> u64 {
        self.calls.0.lock().unwrap().values().sum()
    }

    /// Runs one SDK call: times it, classifies its failure, counts it.
    async fn call<T, E>(
        &self,
        service: &'static str,
        operation: &'static str,
        request: impl Future<Output = Result<T, SdkError<E>>>,
    ) -> Result<T, CloudError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let started = Instant::now();
        let result = request.await.map_err(|e| classify(service, operation, &e));
        let label = match &result {
            Ok(_) => "ok",
            Err(e) => e.label(),
        };
        self.calls.count(service, operation, label);
        crate::metrics::record_aws_call(service, operation, label);
        debug!(
            aws.service = service,
            aws.operation = operation,
            result = label,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "aws call"
        );
        result
    }
}

const RDS: &str = "rds";

/// The HTTPS client of the AWS clients: hyper with rustls on ring (the crate's one crypto
/// backend; the SDK's default client would bring aws-lc-rs). Give it to every SDK config
/// tenantd builds: `aws_config::defaults(..).http_client(http_client())`.
pub fn http_client() -> aws_sdk_rds::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Calls by (service, operation, result) of one [`Cloud`] and its clones (the process-wide
/// counts are in [`crate::metrics`]).
#[derive(Debug, Default)]
pub struct CallCounter(Mutex<BTreeMap<(&'static str, &'static str, &'static str), u64>>);

impl CallCounter {
    fn count(&self, service: &'static str, operation: &'static str, result: &'static str) {
        *self
            .0
            .lock()
            .unwrap()
            .entry((service, operation, result))
            .or_default() += 1;
    }
}

/// What went wrong in one AWS call. Never holds request parameters, so never a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub service: &'static str,
    pub operation: &'static str,
    /// The AWS error code, when the service answered with one.
    pub code: Option<String>,
    pub message: String,
    /// What kind of failure it is, in a word (see [`CloudError::class`]).
    pub class: &'static str,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.service, self.operation)?;
        match &self.code {
            Some(code) => write!(f, ": {code}: {}", self.message),
            None => write!(f, ": {}", self.message),
        }
    }
}

/// AWS failures, by what the caller should do about them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// Throttling, 5xx, timeouts, connection failures: the same call may succeed later.
    #[error("{0}")]
    Retryable(Failure),
    /// The resource does not exist.
    #[error("{0}")]
    NotFound(Failure),
    /// A create found the name taken.
    #[error("{0}")]
    AlreadyExists(Failure),
    /// The resource exists but its state forbids the call now (e.g. an instance still creating,
    /// a secret name whose deletion is still in progress).
    #[error("{0}")]
    Busy(Failure),
    /// An account quota is used up (DB instances, storage): it passes when capacity frees up.
    #[error("{0}")]
    Quota(Failure),
    /// Anything else: retrying will not help.
    #[error("{0}")]
    Fatal(Failure),
}

impl CloudError {
    pub fn label(&self) -> &'static str {
        match self {
            CloudError::Retryable(_) => "retryable",
            CloudError::NotFound(_) => "not_found",
            CloudError::AlreadyExists(_) => "already_exists",
            CloudError::Busy(_) => "busy",
            CloudError::Quota(_) => "quota",
            CloudError::Fatal(_) => "fatal",
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CloudError::Retryable(_) | CloudError::Busy(_) | CloudError::Quota(_)
        )
    }

    /// The short, stable class of the failure (`throttled`, `aws_timeout`, `access_denied`,
    /// `not_found`, ...), for the job history and the step metrics.
    pub fn class(&self) -> &'static str {
        match self {
            CloudError::Retryable(f)
            | CloudError::NotFound(f)
            | CloudError::AlreadyExists(f)
            | CloudError::Busy(f)
            | CloudError::Quota(f)
            | CloudError::Fatal(f) => f.class,
        }
    }
}

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "PriorRequestNotComplete",
];
const TIMEOUTS: &[&str] = &["RequestTimeout", "RequestTimeoutException"];
const UNAVAILABLE: &[&str] = &[
    "InternalFailure",
    "InternalError",
    "InternalServiceError",
    "InternalServiceErrorException",
    "ServiceUnavailable",
];
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
];
const INVALID_REQUEST: &[&str] = &[
    "InvalidParameterValue",
    "InvalidParameterCombination",
    "InvalidParameterException",
    "InvalidRequestException",
    "MissingParameter",
    "ValidationError",
    "ValidationException",
    "MalformedPolicyDocumentException",
];
const QUOTA: &[&str] = &[
    "InstanceQuotaExceeded",
    "InstanceQuotaExceededFault",
    "StorageQuotaExceeded",
    "StorageQuotaExceededFault",
    "SnapshotQuotaExceeded",
    "SnapshotQuotaExceededFault",
];
const NOT_FOUND: &[&str] = &[
    "DBInstanceNotFound",
    "DBInstanceNotFoundFault",
    "DBSnapshotNotFound",
    "DBSnapshotNotFoundFault",
    "ResourceNotFoundException",
    "ResourceNotFound",
    "BlueGreenDeploymentNotFoundFault",
    "DBParameterGroupNotFound",
    "DBParameterGroupNotFoundFault",
];
const ALREADY_EXISTS: &[&str] = &[
    "DBInstanceAlreadyExists",
    "DBInstanceAlreadyExistsFault",
    "DBSnapshotAlreadyExists",
    "DBSnapshotAlreadyExistsFault",
    "ResourceExistsException",
    "BlueGreenDeploymentAlreadyExistsFault",
    "DBParameterGroupAlreadyExists",
    "DBParameterGroupAlreadyExistsFault",
];
const BUSY: &[&str] = &[
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBSnapshotState",
    "InvalidBlueGreenDeploymentStateFault",
];

/// The one place that decides what an AWS failure means.
pub fn classify<E>(service: &'static str, operation: &'static str, err: &SdkError<E>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let failure = |code: Option<&str>, message: String, class: &'static str| Failure {
        service,
        operation,
        code: code.map(str::to_string),
        message,
        class,
    };
    match err {
        SdkError::ServiceError(inner) => {
            let e = inner.err();
            let code = e.code();
            let message = e
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| DisplayErrorContext(err).to_string());
            let status = inner.raw().status().as_u16();
            let is = |list: &[&str]| code.is_some_and(|c| list.contains(&c));
            let f = |class| failure(code, message.clone(), class);
            if is(NOT_FOUND) {
                CloudError::NotFound(f("not_found"))
            } else if is(ALREADY_EXISTS) {
                CloudError::AlreadyExists(f("already_exists"))
            } else if is(BUSY) {
                CloudError::Busy(f("busy"))
            } else if is(QUOTA) {
                CloudError::Quota(f("quota_exceeded"))
            } else if code == Some("InvalidRequestException")
                && message.contains("scheduled for deletion")
            {
                // A secret name whose (forced) deletion is still in progress: it frees up.
                CloudError::Busy(f("pending_deletion"))
            } else if is(THROTTLING) || status == 429 {
                CloudError::Retryable(f("throttled"))
            } else if is(TIMEOUTS) {
                CloudError::Retryable(f("aws_timeout"))
            } else if is(UNAVAILABLE) || status >= 500 {
                CloudError::Retryable(f("aws_unavailable"))
            } else if is(ACCESS_DENIED) || status == 403 {
                CloudError::Fatal(f("access_denied"))
            } else if is(INVALID_REQUEST) {
                CloudError::Fatal(f("invalid_request"))
            } else {
                CloudError::Fatal(f("aws_error"))
            }
        }
        SdkError::TimeoutError(_) => {
            CloudError::Retryable(failure(None, "timed out".into(), "aws_timeout"))
        }
        SdkError::DispatchFailure(d) if d.is_timeout() => CloudError::Retryable(failure(
            None,
            DisplayErrorContext(err).to_string(),
            "aws_timeout",
        )),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            CloudError::Retryable(failure(
                None,
                DisplayErrorContext(err).to_string(),
                "aws_unreachable",
            ))
        }
        _ => CloudError::Fatal(failure(
            None,
            DisplayErrorContext(err).to_string(),
            "aws_error",
        )),
    }
}

/// `Key=Value` tags as RDS and Secrets Manager both spell them.
pub type Tags = Vec<(String, String)>;

pub const TAG_TENANT: &str = "TenantId";
/// Marks a warm-pool standby (its value: the standby's id); a claim replaces it by TenantId.
pub const TAG_STANDBY: &str = "PoolStandby";
pub const TAG_TIER: &str = "Tier";
pub const TAG_ENVIRONMENT: &str = "Environment";
pub const TAG_MANAGED_BY: &str = "ManagedBy";
/// The provisioning job that created an instance: tells a retry of our own create apart from
/// an instance someone made earlier.
pub const TAG_JOB: &str = "ProvisioningJob";
pub const MANAGER: &str = "tenantd";
