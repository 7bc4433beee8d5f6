-- Crypto-shredding (docs/personal-data.md): one AES-256-GCM key per data subject,
-- wrapped by the master key (`wrapped_by` names which). Erasing a person empties their
-- row (`shredded_at` says when) and keeps it, so no new key is ever made for them.
CREATE TABLE data_keys
(
    subject_id  text        PRIMARY KEY,
    wrapped     bytea,
    wrapped_by  text,
    created_at  timestamptz NOT NULL,
    shredded_at timestamptz
);

-- Keys of the vault itself, wrapped the same way: `email-claim` derives e-mail claims'
-- stream ids from addresses (a keyed hash, so the ids do not tell which addresses exist).
CREATE TABLE vault_secrets
(
    name       text        PRIMARY KEY,
    wrapped    bytea       NOT NULL,
    wrapped_by text        NOT NULL,
    created_at timestamptz NOT NULL
);

-- What the law requires keeping outlives its person's key: before that key is shredded,
-- the derived key of each such expense or receipt (`scope`: `<type>/<id>`) is kept here
-- until `retain_until`, when the sweeper shreds it.
CREATE TABLE retained_keys
(
    subject_id      text        NOT NULL,
    scope           text        NOT NULL,
    organization_id text        NOT NULL,
    wrapped         bytea,
    wrapped_by      text,
    retain_until    timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    shredded_at     timestamptz,
    PRIMARY KEY (subject_id, scope)
);

CREATE INDEX retained_keys_due ON retained_keys (retain_until) WHERE shredded_at IS NULL;
