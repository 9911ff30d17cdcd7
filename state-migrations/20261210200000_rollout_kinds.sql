-- Rollouts by kind (additive only). A rollout moves the fleet to the target of its kind:
-- `schema` (a tenant-schema version: `target_version`, as before), `engine_major` ("17"),
-- `engine_minor` ("16.9"), `ca_certificate` ("rds-ca-rsa4096-g1") or `maintenance` (a pending
-- maintenance action such as "system-update", or "all"): those targets are text, in `target`.
-- Rows written before this migration are schema rollouts (the default).
ALTER TABLE rollouts ADD COLUMN kind text NOT NULL DEFAULT 'schema';
ALTER TABLE rollouts ADD COLUMN target text;
-- When the change is applied: `immediately` / `maintenance_window` (engine and CA kinds),
-- `immediate` / `next-maintenance` (maintenance); NULL for schema rollouts.
ALTER TABLE rollouts ADD COLUMN apply text;
-- A rollout of another kind has no schema version. Loosened, not dropped: a release before
-- this one reading such a row fails its round loudly instead of taking a made-up version
-- for the target (with 0, every tenant would have counted as already there).
ALTER TABLE rollouts ALTER COLUMN target_version DROP NOT NULL;
ALTER TABLE rollouts ADD CONSTRAINT rollouts_target_of_kind
    CHECK ((kind = 'schema') = (target_version IS NOT NULL) AND (kind = 'schema') = (target IS NULL));

-- A tenant's place in a rollout of another kind: what it ran before and after, as text
-- (engine version, CA identifier, the maintenance actions applied).
ALTER TABLE rollout_tenants ADD COLUMN from_target text;
ALTER TABLE rollout_tenants ADD COLUMN to_target text;

-- The CA the tenant's instance presents (CACertificateIdentifier), as the reconciler last
-- described it or a CA rotation recorded it; NULL until known.
ALTER TABLE tenants ADD COLUMN ca_certificate text;
