-- Transactions: the coordinator's state per transactional id (compare-and-
-- set on producer_id, epoch, state), and per partition the transactions
-- with data but no marker yet (the last stable offset) and the aborted ones
-- (Fetch's aborted-transactions list), kept by CommitFlush.
CREATE TABLE transactions (
    transactional_id text PRIMARY KEY,
    producer_id      bigint NOT NULL,
    epoch            smallint NOT NULL,
    state            text NOT NULL,
    timeout_ms       integer NOT NULL,
    partitions       text NOT NULL, -- JSON [{Topic, Partition}]
    groups           text NOT NULL, -- JSON [group]
    offsets          text NOT NULL, -- JSON [metastore.TxnOffset]
    started_at       bigint NOT NULL, -- unix ms, 0: no transaction
    updated_at       bigint NOT NULL  -- unix ms
);
CREATE INDEX transactions_by_producer ON transactions (producer_id);

CREATE TABLE ongoing_txns (
    topic_id     uuid NOT NULL,
    partition    integer NOT NULL,
    producer_id  bigint NOT NULL,
    first_offset bigint NOT NULL,
    PRIMARY KEY (topic_id, partition, producer_id)
);

CREATE TABLE aborted_txns (
    topic_id     uuid NOT NULL,
    partition    integer NOT NULL,
    producer_id  bigint NOT NULL,
    first_offset bigint NOT NULL,
    last_offset  bigint NOT NULL,
    PRIMARY KEY (topic_id, partition, first_offset, producer_id)
);
CREATE INDEX aborted_txns_by_last ON aborted_txns (topic_id, partition, last_offset);
