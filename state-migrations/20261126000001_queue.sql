-- tenantd control schema: tenants, the job queue and its append-only history.

CREATE TYPE job_state AS ENUM ('queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled');

CREATE TYPE tenant_status AS ENUM ('provisioning', 'ready', 'failed', 'deprovisioning', 'deleted');

CREATE TABLE tenants (
    id             text PRIMARY KEY,
    tier           text NOT NULL CHECK (tier ~ '^[a-z][a-z0-9_-]*$'),
    status         tenant_status NOT NULL,
    db_instance_id text,
    endpoint_host  text,
    endpoint_port  integer CHECK (endpoint_port BETWEEN 1 AND 65535),
    secret_arn     text,
    schema_version bigint,
    error          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- 3-40 characters, a letter first, lowercase letters, digits and single inner hyphens:
    -- so that `saas-<id>` is always a valid RDS instance identifier.
    CONSTRAINT tenant_id_format CHECK (length(id) BETWEEN 3 AND 40 AND id ~ '^[a-z](-?[a-z0-9])*$'),
    CONSTRAINT endpoint_complete CHECK ((endpoint_host IS NULL) = (endpoint_port IS NULL)),
    CONSTRAINT ready_is_reachable CHECK (
        status <> 'ready' OR (db_instance_id IS NOT NULL AND endpoint_host IS NOT NULL AND secret_arn IS NOT NULL)),
    CONSTRAINT failed_has_cause CHECK (status <> 'failed' OR error IS NOT NULL)
);

-- Every claim takes the next value: a fencing token that never repeats.
CREATE SEQUENCE job_lease_tokens AS bigint;

CREATE TABLE jobs (
    id               uuid PRIMARY KEY,
    kind             text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
    tenant_id        text REFERENCES tenants (id),
    state            job_state NOT NULL DEFAULT 'queued',
    step             text NOT NULL CHECK (step <> ''),
    args             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(args) = 'object'),
    data             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'),
    priority         smallint NOT NULL DEFAULT 0,
    run_at           timestamptz NOT NULL DEFAULT now(),
    attempt          integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL,
    lease_owner      text,
    lease_expires_at timestamptz,
    lease_token      bigint NOT NULL DEFAULT 0,
    cancel_requested boolean NOT NULL DEFAULT false,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    -- A lease exists exactly while the job runs, and is always whole.
    CONSTRAINT lease_iff_running CHECK (
        (state = 'running') = (lease_owner IS NOT NULL)
        AND (lease_owner IS NULL) = (lease_expires_at IS NULL)),
    CONSTRAINT running_has_token CHECK (state <> 'running' OR lease_token > 0),
    CONSTRAINT finished_iff_final CHECK (
        (state IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL)),
    CONSTRAINT failed_has_cause CHECK (state NOT IN ('failed', 'cancelled') OR error IS NOT NULL),
    CONSTRAINT succeeded_has_no_error CHECK (state <> 'succeeded' OR error IS NULL),
    CONSTRAINT attempts_in_range CHECK (max_attempts >= 1 AND attempt BETWEEN 0 AND max_attempts)
);

-- At most one active job per tenant: concurrent enqueues for one tenant yield one job.
CREATE UNIQUE INDEX jobs_one_active_per_tenant ON jobs (tenant_id)
    WHERE state IN ('queued', 'running', 'waiting');
-- The claim: highest priority first, then oldest run_at.
CREATE INDEX jobs_runnable ON jobs (priority DESC, run_at) WHERE state IN ('queued', 'waiting');
-- The rescuer: expired leases.
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_by_tenant ON jobs (tenant_id, created_at);

CREATE TABLE job_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      uuid NOT NULL REFERENCES jobs (id),
    at          timestamptz NOT NULL DEFAULT now(),
    step        text NOT NULL,
    attempt     integer NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN (
        'enqueued', 'advanced', 'waiting', 'retrying', 'failed', 'compensating',
        'succeeded', 'cancelled', 'cancel_requested', 'rescued', 'released')),
    started_at  timestamptz,
    error       text,
    lease_token bigint,
    worker      text,
    CONSTRAINT started_before_finished CHECK (started_at IS NULL OR started_at <= at)
);
CREATE INDEX job_history_by_job ON job_history (job_id, id);

CREATE FUNCTION job_history_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'job_history is append-only';
END $$;

CREATE TRIGGER job_history_append_only BEFORE UPDATE OR DELETE ON job_history
    FOR EACH STATEMENT EXECUTE FUNCTION job_history_is_append_only();

-- Idle workers LISTEN on this channel; a new job wakes them within milliseconds.
CREATE FUNCTION jobs_notify_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenantd_jobs', '');
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_notify_insert();
