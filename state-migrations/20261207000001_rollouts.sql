-- Fleet schema rollouts: a rollout brings a set of tenants to a target tenant-schema version,
-- canary first, then stage by stage, a few tenants at a time; each tenant's migration is a job
-- of its own. `rollout_tenants` holds every tenant's place and outcome in a rollout, so that the
-- counts are a query and a replica taking over knows where things stand. Additive only.
CREATE TYPE rollout_state AS ENUM ('running', 'paused', 'halted', 'succeeded', 'cancelled');
CREATE TYPE rollout_tenant_state AS ENUM ('pending', 'migrating', 'succeeded', 'failed', 'skipped');

CREATE TABLE rollouts (
    id uuid PRIMARY KEY,
    target_version bigint NOT NULL,
    canary integer NOT NULL CHECK (canary >= 0),
    concurrency integer NOT NULL CHECK (concurrency >= 1),
    max_failures integer NOT NULL CHECK (max_failures >= 0),
    -- The stages in order, each a list of tier names.
    stages jsonb NOT NULL CHECK (jsonb_typeof(stages) = 'array'),
    -- The tenants asked for (NULL: every tenant of the stages' tiers, also those created later).
    tenants text[],
    state rollout_state NOT NULL DEFAULT 'running',
    -- Why it halted or was cancelled.
    reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

-- One rollout runs (or is paused) at a time.
CREATE UNIQUE INDEX rollouts_one_active ON rollouts ((true)) WHERE state IN ('running', 'paused');
CREATE INDEX rollouts_newest ON rollouts (created_at DESC, id DESC);

CREATE TABLE rollout_tenants (
    rollout_id uuid NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
    tenant_id text NOT NULL,
    -- 0 for the canary, then 1, 2, ... for the stages in order.
    stage integer NOT NULL CHECK (stage >= 0),
    -- Order inside the stage; a tenant retried after a resume goes first (negative).
    seq integer NOT NULL,
    state rollout_tenant_state NOT NULL DEFAULT 'pending',
    -- The tenant's migration job, once started.
    job_id uuid,
    from_version bigint,
    to_version bigint,
    error text,
    -- The class of the failure (`migration_changed`, `migration_failed`, `lock_timeout`, ...).
    error_class text,
    -- Why a tenant was skipped, or why it waits (e.g. another job of the tenant is running).
    note text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rollout_id, tenant_id)
);
CREATE INDEX rollout_tenants_next ON rollout_tenants (rollout_id, state, stage, seq, tenant_id);

-- The tenant migrations applied to a tenant's database, as {"<version>": "<checksum hex>"},
-- recorded when tenantd migrates it, so that drift checks can compare them with the directory.
ALTER TABLE tenants
    ADD COLUMN applied_migrations jsonb
        CHECK (applied_migrations IS NULL OR jsonb_typeof(applied_migrations) = 'object');
