-- The warm pool: standby instances, created before anyone asked, that a new tenant of their tier
-- takes over. One row per standby, keyed by its instance identifier; its state moves
--   creating -> available -> claimed            (a tenant took it over)
--   creating | available -> retiring -> gone    (failed, or past TENANTD_POOL_MAX_AGE: the row
--                                                 is deleted once its instance and secret are)
-- A standby is claimed at most once: the claim is an UPDATE of an available row in the
-- transaction that records the tenant, and a claimed row never goes back. Additive only.

CREATE TYPE standby_state AS ENUM ('creating', 'available', 'claimed', 'retiring');

CREATE TABLE pool_standbys (
    id             text PRIMARY KEY,
    tier           text NOT NULL CHECK (tier ~ '^[a-z][a-z0-9_-]*$'),
    state          standby_state NOT NULL DEFAULT 'creating',
    secret_arn     text,
    endpoint_host  text,
    endpoint_port  integer CHECK (endpoint_port BETWEEN 1 AND 65535),
    engine_version text,
    storage_gib    integer,
    schema_version bigint,
    created_at     timestamptz NOT NULL DEFAULT now(),
    available_at   timestamptz,
    claimed_by     text REFERENCES tenants (id),
    claimed_at     timestamptz,
    -- Why a standby is retiring (failed, too old), for people looking.
    note           text,
    CONSTRAINT standby_id_format CHECK (id ~ '^[a-z](-?[a-z0-9])*$' AND length(id) <= 63),
    CONSTRAINT available_is_reachable CHECK (
        state NOT IN ('available', 'claimed')
        OR (secret_arn IS NOT NULL AND endpoint_host IS NOT NULL AND endpoint_port IS NOT NULL
            AND available_at IS NOT NULL)),
    CONSTRAINT claimed_names_its_tenant CHECK ((state = 'claimed') = (claimed_by IS NOT NULL))
);

-- The claim's lookup: the oldest available standby of a tier.
CREATE INDEX pool_standbys_available ON pool_standbys (tier, available_at)
    WHERE state = 'available';

-- A tenant records whether its instance came from the pool.
ALTER TABLE tenants ADD COLUMN from_pool boolean NOT NULL DEFAULT false;
