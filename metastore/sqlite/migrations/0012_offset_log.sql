-- The log of __consumer_offsets (metastore.OffsetLogStore): every write of
-- a committed offset takes the next sequence number of its group's
-- partition of __consumer_offsets (part, Kafka's hash of the group id,
-- computed by the store in Go) in the same transaction; the sequence is the
-- record's offset. Writers are serialized, so sequences are visible in
-- order.
CREATE TABLE consumer_offsets_log (
    part     INTEGER PRIMARY KEY,
    next_seq INTEGER NOT NULL
);
WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < 49)
INSERT INTO consumer_offsets_log (part, next_seq) SELECT n, 0 FROM g;

-- part -1: a row written before this migration, numbered by the Go step
-- that follows this file (numberOffsetLog).
ALTER TABLE consumer_offsets ADD COLUMN part INTEGER NOT NULL DEFAULT -1;
ALTER TABLE consumer_offsets ADD COLUMN seq INTEGER NOT NULL DEFAULT -1;
ALTER TABLE consumer_offsets ADD COLUMN commit_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX consumer_offsets_by_seq ON consumer_offsets (part, seq);

-- Groups take a sequence number at every save too: their metadata is a
-- record of the same partition (SaveGroup numbers the row it stored).
ALTER TABLE consumer_groups ADD COLUMN part INTEGER NOT NULL DEFAULT -1;
ALTER TABLE consumer_groups ADD COLUMN seq INTEGER NOT NULL DEFAULT -1;
ALTER TABLE consumer_groups ADD COLUMN commit_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX consumer_groups_by_seq ON consumer_groups (part, seq);
