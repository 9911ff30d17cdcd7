-- The audit trail: one row per request that changes something (from the API, the console and
-- the CLI), written in the same transaction as the change, and one per refused request (401,
-- 403, 409, 422, ...; failed authentications rate-limited per source address). Who asked
-- (token name and role, never the token), from where, through which channel, with the request
-- id it was answered with, the route, what it was about, and how it ended.
CREATE TABLE audit_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    token_name  text,
    role        text CHECK (role IN ('viewer', 'operator', 'admin')),
    source      text NOT NULL,
    channel     text NOT NULL CHECK (channel IN ('api', 'cli', 'console')),
    request_id  uuid NOT NULL,
    method      text NOT NULL,
    route       text NOT NULL,
    tenant_id   text,
    rollout_id  uuid,
    job_id      uuid,
    status      smallint NOT NULL CHECK (status BETWEEN 100 AND 599),
    code        text
);

CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id) WHERE tenant_id IS NOT NULL;
CREATE INDEX audit_events_token ON audit_events (token_name, id) WHERE token_name IS NOT NULL;
CREATE INDEX audit_events_job ON audit_events (job_id) WHERE job_id IS NOT NULL;

-- Append-only, like job_history: an UPDATE or a TRUNCATE is refused; a DELETE only through
-- prune_audit_events() (the transaction-local setting tenantd.pruning_audit is on) and only of
-- rows older than a day, whatever the retention. This guards against mistakes (an ad-hoc
-- DELETE), not against the database owner, who can drop triggers anyway.
CREATE FUNCTION audit_events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('tenantd.pruning_audit', true) = 'on'
       AND OLD.at < now() - interval '1 day' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only';
END $$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_are_append_only();

CREATE FUNCTION audit_events_not_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END $$;

CREATE TRIGGER audit_events_not_truncated BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_not_truncated();

-- Deletes up to `batch` of the oldest events older than now() - `retention` (never one younger
-- than a day); returns how many. The maintenance leader calls it in small batches.
CREATE FUNCTION prune_audit_events(retention interval, batch integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    pruned integer;
BEGIN
    PERFORM set_config('tenantd.pruning_audit', 'on', true);
    DELETE FROM audit_events WHERE id IN (
        SELECT id FROM audit_events
        WHERE at < now() - greatest(retention, interval '1 day')
        ORDER BY at
        LIMIT batch
        FOR UPDATE SKIP LOCKED
    );
    GET DIAGNOSTICS pruned = ROW_COUNT;
    PERFORM set_config('tenantd.pruning_audit', 'off', true);
    RETURN pruned;
END $$;
