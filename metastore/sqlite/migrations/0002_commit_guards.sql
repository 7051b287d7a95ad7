-- Retried commits look their offsets up by segment key (see CommitFlush).
CREATE INDEX index_entries_by_segment ON index_entries (segment_key);
