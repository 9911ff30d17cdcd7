-- Sign-ins to the operator's console. Only a SHA-256 hash of the session id is kept: the id
-- itself lives in the browser's HttpOnly cookie, so a copy of this table signs nobody in. Any
-- replica accepts a session another one opened, and one survives restarts.
CREATE TABLE ui_sessions (
    id_hash    bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

CREATE INDEX ui_sessions_expiry ON ui_sessions (expires_at);
