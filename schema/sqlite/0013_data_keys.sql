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
