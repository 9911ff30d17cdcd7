//! CloudWatch: PutMetricAlarm and DeleteAlarms for the alarms every tenant instance gets.

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StandardUnit, Statistic};

use super::{Cloud, CloudError};

const CW: &str = "cloudwatch";

/// One metric alarm on an RDS instance.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSpec {
    pub name: String,
    pub description: String,
    pub instance: String,
    pub metric: &'static str,
    pub statistic: Statistic,
    pub comparison: ComparisonOperator,
    pub threshold: f64,
    pub unit: Option<StandardUnit>,
    pub period_secs: i32,
    pub evaluation_periods: i32,
    pub action: Option<String>,
}

/// The two alarms of a tenant instance: CPU above 80 % for 10 minutes, and less than
/// `low_storage_bytes` of free storage for 5 minutes.
pub fn instance_alarms(
    instance: &str,
    action: Option<&str>,
    low_storage_bytes: f64,
) -> [AlarmSpec; 2] {
    let gib = low_storage_bytes / f64::from(1u32 << 30);
    [
        AlarmSpec {
            name: format!("{instance}-high-cpu"),
            description: format!("CPU of {instance} above 80% for 10 minutes"),
            instance: instance.to_string(),
            metric: "CPUUtilization",
            statistic: Statistic::Average,
            comparison: ComparisonOperator::GreaterThanThreshold,
            threshold: 80.0,
            unit: None,
            period_secs: 300,
            evaluation_periods: 2,
            action: action.map(str::to_string),
        },
        AlarmSpec {
            name: format!("{instance}-low-storage"),
            description: format!("Less than {gib} GiB free storage on {instance}"),
            instance: instance.to_string(),
            metric: "FreeStorageSpace",
            statistic: Statistic::Average,
            comparison: ComparisonOperator::LessThanThreshold,
            threshold: low_storage_bytes,
            unit: None,
            period_secs: 300,
            evaluation_periods: 1,
            action: action.map(str::to_string),
        },
    ]
}

impl Cloud {
    /// Creates or replaces an alarm (PutMetricAlarm overwrites by name: idempotent).
    pub async fn put_metric_alarm(&self, spec: &AlarmSpec) -> Result<(), CloudError> {
        let request = self
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(&spec.name)
            .alarm_description(&spec.description)
            .namespace("AWS/RDS")
            .metric_name(spec.metric)
            .dimensions(
                Dimension::builder()
                    .name("DBInstanceIdentifier")
                    .value(&spec.instance)
                    .build(),
            )
            .statistic(spec.statistic.clone())
            .comparison_operator(spec.comparison.clone())
            .threshold(spec.threshold)
            .set_unit(spec.unit.clone())
            .period(spec.period_secs)
            .evaluation_periods(spec.evaluation_periods)
            .treat_missing_data("missing")
            .actions_enabled(spec.action.is_some())
            .set_alarm_actions(spec.action.clone().map(|a| vec![a]))
            .send();
        self.call(CW, "PutMetricAlarm", request).await?;
        Ok(())
    }

    /// Every alarm whose name starts with `prefix` (name and threshold), 100 a call; returns
    /// them with the number of calls made.
    pub async fn describe_alarms_by_prefix(
        &self,
        prefix: &str,
    ) -> Result<(Vec<(String, f64)>, u32), CloudError> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        let mut calls = 0;
        loop {
            let request = self
                .cloudwatch
                .describe_alarms()
                .alarm_name_prefix(prefix)
                .max_records(100)
                .set_next_token(token.clone())
                .send();
            let out = self.call(CW, "DescribeAlarms", request).await?;
            calls += 1;
            found.extend(out.metric_alarms().iter().filter_map(|a| {
                Some((
                    a.alarm_name()?.to_string(),
                    a.threshold().unwrap_or(f64::NAN),
                ))
            }));
            token = out
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok((found, calls));
            }
        }
    }

    /// Deletes alarms by name; names that do not exist are ignored by CloudWatch.
    pub async fn delete_alarms(&self, names: &[String]) -> Result<(), CloudError> {
        let request = self
            .cloudwatch
            .delete_alarms()
            .set_alarm_names(Some(names.to_vec()))
            .send();
        match self.call(CW, "DeleteAlarms", request).await {
            Ok(_) | Err(CloudError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
