-- What kind of failure a history row's error is: a short, stable label (throttled, aws_timeout,
-- access_denied, not_found, tenant_db_auth, tls, lease_lost, ...), so operators and metrics can
-- group failures without parsing messages. Rows written before have none.
ALTER TABLE job_history ADD COLUMN error_class text
    CHECK (error_class ~ '^[a-z][a-z0-9_]*$');
