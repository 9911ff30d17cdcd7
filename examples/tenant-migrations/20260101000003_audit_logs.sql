-- Who did what: the tenant's answer to "who changed this?". Rows outlive their actors.
CREATE TABLE audit_logs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    bigint REFERENCES users (id) ON DELETE SET NULL,
    project_id  bigint REFERENCES projects (id) ON DELETE SET NULL,
    action      text NOT NULL CHECK (action <> ''),
    target_type text NOT NULL,
    target_id   text,
    details     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object')
);
CREATE INDEX audit_logs_at ON audit_logs (at);
CREATE INDEX audit_logs_actor ON audit_logs (actor_id, at);
CREATE INDEX audit_logs_project ON audit_logs (project_id, at);

