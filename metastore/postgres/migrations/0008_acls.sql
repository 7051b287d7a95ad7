-- Kafka ACL bindings (CreateAcls/DescribeAcls/DeleteAcls). The enums hold
-- Kafka's wire values. Every agent keeps all of them in memory: a change
-- NOTIFYs silt_acls (in the changing transaction) so every agent reloads.
CREATE TABLE acls (
    resource_type smallint NOT NULL,
    resource_name text     NOT NULL,
    pattern_type  smallint NOT NULL,
    principal     text     NOT NULL,
    host          text     NOT NULL,
    operation     smallint NOT NULL,
    permission    smallint NOT NULL,
    PRIMARY KEY (resource_type, resource_name, pattern_type, principal, host, operation, permission)
);
