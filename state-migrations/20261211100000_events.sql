-- Lifecycle events (a transactional outbox): one row per change a caller may want to hear about
-- (a tenant requested, ready, failed, ..., a job failed, a rollout started, a standby claimed),
-- written in the same transaction as the change itself. Read in id order by the event stream,
-- the webhook deliverer and the EventBridge sender; pruned after TENANTD_EVENT_RETENTION.
--
-- Ids increase in commit order: the writer takes pg_advisory_xact_lock(store::events::LOCK_KEY) and
-- only then draws the ids from events_id_seq, in the last statement before its commit, so a
-- reader paging `id > last` never sees a smaller id appear after a larger one. A plain identity
-- column would not do: ids would be handed out at insert, and commits may come in another order.
CREATE SEQUENCE events_id_seq AS bigint;

CREATE TABLE events (
    id          bigint PRIMARY KEY,
    type        text NOT NULL,
    subject     text NOT NULL,
    tenant_id   text,
    time        timestamptz NOT NULL DEFAULT now(),
    data        jsonb NOT NULL
);

ALTER SEQUENCE events_id_seq OWNED BY events.id;

CREATE INDEX events_tenant ON events (tenant_id, id);
CREATE INDEX events_type ON events (type, id);
CREATE INDEX events_time ON events (time);
