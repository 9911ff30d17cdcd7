-- One process polls the instances for all processes sharing this database: the one holding the
-- poller's advisory lock. It records each successful round here, so the others know a poller
-- is at work and leave their waiting jobs to its wake-ups instead of describing on their own.
CREATE TABLE instance_poller (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    leader    text NOT NULL,
    round_at  timestamptz NOT NULL
);
