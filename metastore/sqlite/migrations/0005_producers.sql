-- Idempotent producers: the last few batches per producer and partition,
-- checked by CommitFlush (see metastore.ProducerState). recent is a JSON
-- array of {FirstSeq, LastSeq, BaseOffset}, oldest first.
CREATE TABLE producer_state (
    producer_id INTEGER NOT NULL,
    topic_id    BLOB NOT NULL,
    partition   INTEGER NOT NULL,
    epoch       INTEGER NOT NULL,
    recent      TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (producer_id, topic_id, partition)
);
CREATE INDEX producer_state_by_age ON producer_state (updated_at);
