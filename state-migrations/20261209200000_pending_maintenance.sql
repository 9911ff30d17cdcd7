-- RDS's pending maintenance actions for each tenant's instance, as the reconciler last read
-- them (DescribePendingMaintenanceActions): NULL until it has looked, [] when there are none.
ALTER TABLE tenants ADD COLUMN pending_maintenance jsonb;
