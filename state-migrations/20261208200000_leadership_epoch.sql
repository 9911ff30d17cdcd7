-- Fencing the maintenance leader. The leader is the holder of a session advisory lock; each
-- process that wins it raises `epoch` by one (a new term). A leader service writes in a
-- transaction that holds this row FOR SHARE and checks that the epoch is still its term's, so
-- a write of a process that lost the lock (partitioned, paused) either commits before the next
-- term begins or is refused. Additive only: releases without fencing ignore the table.
CREATE TABLE maintenance_leadership (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch     bigint NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    leader    text,
    since     timestamptz
);
INSERT INTO maintenance_leadership DEFAULT VALUES;

-- The term of the leader whose pool keeper started a standby (NULL: started by an earlier
-- release), for people looking and for the tests that prove a deposed leader wrote nothing.
ALTER TABLE pool_standbys ADD COLUMN leader_epoch bigint;
