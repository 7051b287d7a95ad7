-- Kafka client quotas; see the postgres migration of the same number.
CREATE TABLE client_quotas (
    user_kind   INTEGER NOT NULL,
    user_name   TEXT    NOT NULL,
    client_kind INTEGER NOT NULL,
    client_name TEXT    NOT NULL,
    ip_kind     INTEGER NOT NULL,
    ip_name     TEXT    NOT NULL,
    quota_key   TEXT    NOT NULL,
    value       REAL    NOT NULL,
    PRIMARY KEY (user_kind, user_name, client_kind, client_name, ip_kind, ip_name, quota_key)
);
