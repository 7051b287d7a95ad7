-- The life of data in the bucket (retention, DeleteRecords, garbage
-- collection; see metastore.RetentionStore and metastore.GCStore).
--
-- gc_candidates: segments that lost index rows (retention, DeleteRecords,
-- a deleted topic). Duplicates are fine: a collector considers the ids it
-- listed and deletes exactly those, so a candidate added while it works
-- is kept for the next pass.
CREATE TABLE gc_candidates (
    id          bigserial PRIMARY KEY,
    segment_key text NOT NULL
);

-- gc_objects: the garbage queue. An object enters it in the transaction
-- that removes its segment record (so its upload can never commit again)
-- after verifying nothing references it, and leaves it once deleted from
-- the bucket, at least gc.grace later.
CREATE TABLE gc_objects (
    key       text PRIMARY KEY,
    size      bigint NOT NULL,
    doomed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gc_objects_by_age ON gc_objects (doomed_at);
