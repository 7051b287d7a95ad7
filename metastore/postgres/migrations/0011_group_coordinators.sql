-- Coordinator epochs of consumer groups: an agent that takes a group over
-- (loads it) bumps its epoch; saves and offset commits carry the epoch of
-- the load they come from and are refused once another agent has claimed
-- the group since, so a coordinator paused with a request in hand cannot
-- write over its successor.
CREATE TABLE group_coordinators (
    group_id TEXT PRIMARY KEY,
    epoch    BIGINT NOT NULL
);
