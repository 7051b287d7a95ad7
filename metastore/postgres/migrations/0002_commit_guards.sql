-- Retried commits and other agents' commit notifications look index rows
-- up by segment key (commit_flush, in 0005, has the guards themselves).
CREATE INDEX index_entries_by_segment ON index_entries (segment_key);
