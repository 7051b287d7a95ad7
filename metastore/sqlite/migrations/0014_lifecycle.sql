-- The life of data in the bucket; see the postgres migration of the same
-- number and metastore.GCStore.
CREATE TABLE gc_candidates (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    segment_key TEXT NOT NULL
);

CREATE TABLE gc_objects (
    key       TEXT PRIMARY KEY,
    size      INTEGER NOT NULL,
    doomed_at INTEGER NOT NULL
);
CREATE INDEX gc_objects_by_age ON gc_objects (doomed_at);
