-- SCRAM credentials (RFC 5802) per user and mechanism: what a server needs
-- to verify a password, never the password. Agents read them at every
-- authentication.
CREATE TABLE scram_credentials (
    username   text NOT NULL,
    mechanism  text NOT NULL,
    salt       bytea NOT NULL,
    iterations integer NOT NULL,
    stored_key bytea NOT NULL,
    server_key bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (username, mechanism)
);
