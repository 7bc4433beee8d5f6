-- Crypto-shredding: see the PostgreSQL migration of the same number.
CREATE TABLE data_keys
(
    subject_id  text NOT NULL PRIMARY KEY,
    wrapped     blob,
    wrapped_by  text,
    created_at  text NOT NULL,
    shredded_at text
);

CREATE TABLE vault_secrets
(
    name       text NOT NULL PRIMARY KEY,
    wrapped    blob NOT NULL,
    wrapped_by text NOT NULL,
    created_at text NOT NULL
);

CREATE TABLE retained_keys
(
    subject_id      text NOT NULL,
    scope           text NOT NULL,
    organization_id text NOT NULL,
    wrapped         blob,
    wrapped_by      text,
    retain_until    text NOT NULL,
    created_at      text NOT NULL,
    shredded_at     text,
    PRIMARY KEY (subject_id, scope)
);

CREATE INDEX retained_keys_due ON retained_keys (retain_until) WHERE shredded_at IS NULL;
