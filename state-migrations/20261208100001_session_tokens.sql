-- A console session remembers which token opened it (a fingerprint, never the token or its
-- digest), that token's name and role, and when it was last used. A session whose token is no
-- longer configured, or whose role changed, ends at its next request; one idle for longer than
-- TENANTD_UI_IDLE_TIMEOUT ends too. Sessions opened by an earlier release have none of these
-- and end at their next request.
ALTER TABLE ui_sessions
    ADD COLUMN token_fingerprint text,
    ADD COLUMN token_name text,
    ADD COLUMN role text,
    ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now();
