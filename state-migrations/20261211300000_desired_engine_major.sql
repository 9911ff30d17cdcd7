-- The engine major a tenant should run (additive only): recorded at provisioning (the major of
-- TENANTD_ENGINE_VERSION then) and moved by a successful engine upgrade, so the reconciler
-- compares each instance with its own tenant's major, not with the setting of the day. Rows of
-- earlier releases have none and follow the setting; releases before this one ignore it.
ALTER TABLE tenants ADD COLUMN engine_major text;
