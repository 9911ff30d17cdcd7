-- The reconciler's findings: what differs from the tenant's desired state (`drift`, a list of
-- {field, expected, actual}) and when it last looked (`checked_at`). A tenant whose instance is
-- gone is `lost` (nothing is re-created); one whose instance is stuck in a state only people can
-- fix (storage-full, incompatible-*) is `degraded`. Additive only.
ALTER TYPE tenant_status ADD VALUE IF NOT EXISTS 'lost';
ALTER TYPE tenant_status ADD VALUE IF NOT EXISTS 'degraded';

ALTER TABLE tenants
    ADD COLUMN drift jsonb CHECK (drift IS NULL OR jsonb_typeof(drift) = 'array'),
    ADD COLUMN checked_at timestamptz;
