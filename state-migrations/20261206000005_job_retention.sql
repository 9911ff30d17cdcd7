-- Retention: finished jobs older than TENANTD_JOB_RETENTION go, with their history, through one
-- path: prune_jobs(), which the maintenance leader calls in small batches. A tenant's latest job
-- always stays. The history stays append-only for everything else:
--   * an UPDATE of job_history is refused, as before;
--   * a DELETE of job_history is refused unless it is the cascade of a job's deletion made by
--     prune_jobs() (the transaction-local setting tenantd.pruning is on, and the delete comes
--     from the foreign key's cascade, a trigger level below);
--   * a DELETE of jobs is refused outside prune_jobs(), and of an unfinished job always.
-- This guards against mistakes (an ad-hoc DELETE), not against the database owner, who can drop
-- triggers anyway.

ALTER TABLE job_history DROP CONSTRAINT job_history_job_id_fkey,
    ADD CONSTRAINT job_history_job_id_fkey FOREIGN KEY (job_id) REFERENCES jobs (id)
        ON DELETE CASCADE;

CREATE OR REPLACE FUNCTION job_history_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('tenantd.pruning', true) = 'on'
       AND pg_trigger_depth() > 1 THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'job_history is append-only';
END $$;

CREATE FUNCTION jobs_deleted_only_by_pruning() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('tenantd.pruning', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION 'jobs are deleted only by prune_jobs()';
    END IF;
    IF OLD.state NOT IN ('succeeded', 'failed', 'cancelled') THEN
        RAISE EXCEPTION 'job % has not finished', OLD.id;
    END IF;
    RETURN OLD;
END $$;

CREATE TRIGGER jobs_deleted_only_by_pruning BEFORE DELETE ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_deleted_only_by_pruning();

CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('succeeded', 'failed', 'cancelled');

-- Deletes up to `batch` finished jobs that ended before now() - `retention` (never a tenant's
-- latest job, never a row another transaction holds), with their history; returns how many.
CREATE FUNCTION prune_jobs(retention interval, batch integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    pruned integer;
BEGIN
    PERFORM set_config('tenantd.pruning', 'on', true);
    WITH doomed AS (
        SELECT j.id FROM jobs j
        WHERE j.state IN ('succeeded', 'failed', 'cancelled')
          AND j.finished_at < now() - retention
          AND (j.tenant_id IS NULL OR j.id <> (
              SELECT l.id FROM jobs l WHERE l.tenant_id = j.tenant_id
              ORDER BY l.created_at DESC, l.id DESC LIMIT 1))
        ORDER BY j.finished_at
        LIMIT batch
        FOR UPDATE SKIP LOCKED
    )
    DELETE FROM jobs WHERE id IN (SELECT id FROM doomed);
    GET DIAGNOSTICS pruned = ROW_COUNT;
    PERFORM set_config('tenantd.pruning', 'off', true);
    RETURN pruned;
END $$;
