-- SCRAM credentials (RFC 5802) per user and mechanism: what a server needs
-- to verify a password, never the password. Agents read them at every
-- authentication.
CREATE TABLE scram_credentials (
    username   TEXT NOT NULL,
    mechanism  TEXT NOT NULL,
    salt       BLOB NOT NULL,
    iterations INTEGER NOT NULL,
    stored_key BLOB NOT NULL,
    server_key BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (username, mechanism)
);
