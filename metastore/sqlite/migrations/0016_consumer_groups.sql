-- Consumer groups of KIP-848's protocol; see the postgres migration of the
-- same number.
ALTER TABLE consumer_groups ADD COLUMN group_type TEXT NOT NULL DEFAULT 'classic';
ALTER TABLE consumer_groups ADD COLUMN consumer_state TEXT NOT NULL DEFAULT '';
