-- GET /v1/jobs pages through jobs newest first.
CREATE INDEX jobs_newest ON jobs (created_at DESC, id DESC);
