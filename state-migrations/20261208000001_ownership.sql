-- Ownership (additive only).
--
-- A tenant whose instance lost its ownership tags (ManagedBy, Environment, TenantId: the way
-- people detach a resource from a tool) is `detached`: shown and counted, but never repaired,
-- modified, stopped or deleted, until an operator re-attaches it.
ALTER TYPE tenant_status ADD VALUE IF NOT EXISTS 'detached';

-- Every final snapshot tenantd asks RDS for, recorded before the request: the snapshot
-- cleaner deletes only snapshots recorded here, of its own environment, once past retention
-- and after checking their tags. A snapshot nobody recorded (a person's, another deployment's,
-- one taken by an earlier release) is never touched.
--   recorded -> deleted   (the cleaner deleted it)
--   recorded -> gone      (it never came to exist, or someone deleted it)
--   recorded -> kept      (its tags no longer say it is this deployment's: left alone)
CREATE TABLE final_snapshots (
    identifier   text PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants (id),
    job_id       uuid NOT NULL,
    instance_id  text NOT NULL,
    environment  text NOT NULL CHECK (environment <> ''),
    taken_at     timestamptz NOT NULL DEFAULT now(),
    state        text NOT NULL DEFAULT 'recorded'
                 CHECK (state IN ('recorded', 'deleted', 'gone', 'kept')),
    ended_at     timestamptz,
    note         text,
    CONSTRAINT ended_when_not_recorded CHECK ((state = 'recorded') = (ended_at IS NULL))
);

-- The cleaner's look-up: the recorded snapshots of an environment, oldest first.
CREATE INDEX final_snapshots_to_expire ON final_snapshots (environment, taken_at)
    WHERE state = 'recorded';
