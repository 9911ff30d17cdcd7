-- The PostgreSQL version each tenant's instance actually got (RDS picks the minor when tenantd
-- asks for a major version only).
ALTER TABLE tenants ADD COLUMN engine_version text;
