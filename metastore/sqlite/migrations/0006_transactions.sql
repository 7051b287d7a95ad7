-- Transactions: the coordinator's state per transactional id (compare-and-
-- set on producer_id, epoch, state), and per partition the transactions
-- with data but no marker yet (the last stable offset) and the aborted ones
-- (Fetch's aborted-transactions list), kept by CommitFlush.
CREATE TABLE transactions (
    transactional_id TEXT PRIMARY KEY,
    producer_id      INTEGER NOT NULL,
    epoch            INTEGER NOT NULL,
    state            TEXT NOT NULL,
    timeout_ms       INTEGER NOT NULL,
    partitions       TEXT NOT NULL, -- JSON [{Topic, Partition}]
    groups           TEXT NOT NULL, -- JSON [group]
    offsets          TEXT NOT NULL, -- JSON [metastore.TxnOffset]
    started_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX transactions_by_producer ON transactions (producer_id);

CREATE TABLE ongoing_txns (
    topic_id     BLOB NOT NULL,
    partition    INTEGER NOT NULL,
    producer_id  INTEGER NOT NULL,
    first_offset INTEGER NOT NULL,
    PRIMARY KEY (topic_id, partition, producer_id)
);

CREATE TABLE aborted_txns (
    topic_id     BLOB NOT NULL,
    partition    INTEGER NOT NULL,
    producer_id  INTEGER NOT NULL,
    first_offset INTEGER NOT NULL,
    last_offset  INTEGER NOT NULL,
    PRIMARY KEY (topic_id, partition, first_offset, producer_id)
);
CREATE INDEX aborted_txns_by_last ON aborted_txns (topic_id, partition, last_offset);
