-- Coordinator epochs of transactional ids, as group_coordinators are for
-- groups: an agent that takes a transactional id over bumps its epoch, and
-- transaction saves carry the epoch of the claim they come from and are
-- refused once another agent has claimed the id since, so a coordinator
-- paused with a request in hand (an EndTxn of the previous transaction)
-- cannot end the transaction its successor runs.
CREATE TABLE txn_coordinators (
    transactional_id TEXT PRIMARY KEY,
    epoch            BIGINT NOT NULL
);
