-- Cluster membership epoch; see the postgres migration of the same number.
CREATE TABLE cluster_membership (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    epoch INTEGER NOT NULL
);
INSERT INTO cluster_membership (id, epoch) VALUES (1, 1);
