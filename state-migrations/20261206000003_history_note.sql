-- What a step did that people should know about, beside its outcome (e.g. "the secret was gone
-- for good: wrote a new one and reset the master password"). Rows written before have none.
ALTER TABLE job_history ADD COLUMN note text;
