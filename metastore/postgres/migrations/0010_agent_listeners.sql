-- Each agent records the advertised address of every Kafka listener it
-- serves (advertised.listeners), so that Metadata, FindCoordinator and
-- DescribeCluster answer a client with the addresses of the listener it
-- connected through. The value is NAME://host:port entries separated by
-- commas; empty for an agent that registered before this migration (one
-- PLAINTEXT listener at addr).
ALTER TABLE agents ADD COLUMN listeners text NOT NULL DEFAULT '';
