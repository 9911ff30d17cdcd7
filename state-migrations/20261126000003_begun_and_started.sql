-- Two facts about a job the queue did not record before.
--
-- `begun`: the job has recorded a step. Among jobs of one priority, begun ones are claimed
-- first: a tenant whose instance already exists (and is billed) is finished before new tenants
-- are started, so a burst of new jobs cannot starve the follow-up steps of older ones.
--
-- `step_started_at`: when the current holder began the job's step, as far as recorded: by the
-- claim when a slot was free at once, else by the holder's next heartbeat. NULL while the job
-- only waits, claimed, for a slot. A rescue charges an attempt only to a step recorded as
-- started: a crash must not use up the attempts of jobs that were merely claimed.
--
-- `rescues`: how often the job's lease expired. A worker records the start of a rescued job's
-- step before running it, so that a step that kills its process is charged every time after
-- the first.

ALTER TABLE jobs ADD COLUMN begun boolean NOT NULL DEFAULT false;
ALTER TABLE jobs ADD COLUMN step_started_at timestamptz;
ALTER TABLE jobs ADD COLUMN rescues integer NOT NULL DEFAULT 0 CHECK (rescues >= 0);
ALTER TABLE jobs ADD CONSTRAINT started_while_running
    CHECK (state = 'running' OR step_started_at IS NULL);

UPDATE jobs SET begun = true
WHERE EXISTS (SELECT 1 FROM job_history h
              WHERE h.job_id = jobs.id AND h.outcome NOT IN ('enqueued', 'cancel_requested'));
UPDATE jobs SET rescues = (SELECT count(*) FROM job_history h
                           WHERE h.job_id = jobs.id AND h.outcome = 'rescued');

DROP INDEX jobs_runnable;
CREATE INDEX jobs_runnable ON jobs (priority DESC, begun DESC, run_at)
    WHERE state IN ('queued', 'waiting');
