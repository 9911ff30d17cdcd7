-- Day two: a tenant may be suspended (its instance stopped, its data kept); a tier change in
-- progress shows as `pending_tier`; `storage_gib` is what the instance has allocated (RDS storage
-- only grows, so after a downgrade it may exceed the tier's); `note` says what a change could not
-- do as asked. Additive only: earlier releases read these rows as before.
ALTER TYPE tenant_status ADD VALUE IF NOT EXISTS 'suspended';

ALTER TABLE tenants
    ADD COLUMN pending_tier text CHECK (pending_tier ~ '^[a-z][a-z0-9_-]*$'),
    ADD COLUMN storage_gib integer CHECK (storage_gib > 0),
    ADD COLUMN note text;
