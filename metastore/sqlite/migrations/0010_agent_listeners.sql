-- Agents' advertised listeners; see the postgres migration of the same
-- number. (0007 is postgres-only: topic deletions acknowledged by every
-- agent of a shared store.)
ALTER TABLE agents ADD COLUMN listeners TEXT NOT NULL DEFAULT '';
