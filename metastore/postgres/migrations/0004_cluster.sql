-- Cluster membership has an epoch that moves forward whenever the set of
-- live agents changes (an agent joins, leaves, or its lease lapses). It is
-- the leader epoch of every partition: leadership is derived from
-- membership, so a change of membership is what can move a leader.
CREATE TABLE cluster_membership (
    id    integer PRIMARY KEY CHECK (id = 1),
    epoch bigint NOT NULL
);
INSERT INTO cluster_membership (id, epoch) VALUES (1, 1);
