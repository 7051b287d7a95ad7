-- Consumer groups (classic protocol), as in the postgres schema. The checks
-- that fence saves and offset commits run in Go inside one BEGIN IMMEDIATE
-- transaction, which serializes them with every other write.
CREATE TABLE consumer_groups (
    group_id      TEXT PRIMARY KEY,
    generation    INTEGER NOT NULL,
    protocol_type TEXT NOT NULL,
    protocol      TEXT NOT NULL,
    leader        TEXT NOT NULL,
    state         TEXT NOT NULL,
    members       TEXT NOT NULL -- JSON array of metastore.GroupMember
) WITHOUT ROWID;
