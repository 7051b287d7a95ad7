-- Kafka client quotas (AlterClientQuotas/DescribeClientQuotas): one row per
-- (entity, quota key). An entity is a user, a client id, both, or an IP;
-- each *_kind is 0 when the entity lacks that type, 1 for the default
-- entity (Kafka's null name), 2 for the name in *_name ('' otherwise).
-- Every agent keeps all of them in memory: a change NOTIFYs silt_quotas
-- (in the changing transaction) so every agent reloads.
CREATE TABLE client_quotas (
    user_kind   smallint NOT NULL,
    user_name   text     NOT NULL,
    client_kind smallint NOT NULL,
    client_name text     NOT NULL,
    ip_kind     smallint NOT NULL,
    ip_name     text     NOT NULL,
    quota_key   text     NOT NULL,
    value       double precision NOT NULL,
    PRIMARY KEY (user_kind, user_name, client_kind, client_name, ip_kind, ip_name, quota_key)
);
