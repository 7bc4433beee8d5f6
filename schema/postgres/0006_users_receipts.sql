-- The users and receipts read models (see 0003 for how read models are kept).
CREATE TABLE rm_users
(
    id              text        PRIMARY KEY,
    organization_id text        NOT NULL,
    name            text        NOT NULL,
    email           text        NOT NULL,
    role            text        NOT NULL,
    active          boolean     NOT NULL,
    -- The organization's version when the row last changed: an event at or below it
    -- has been applied already.
    version         bigint      NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE INDEX rm_users_by_organization ON rm_users (organization_id, id);

CREATE TABLE rm_receipts
(
    id              text        PRIMARY KEY,
    organization_id text        NOT NULL,
    uploader_id     text        NOT NULL,
    sha256          text        NOT NULL,
    status          text        NOT NULL,
    expense_id      text,
    uploaded_at     timestamptz NOT NULL,
    version         bigint      NOT NULL,
    -- The receipt aggregate's state as JSON: what queries return, and what later
    -- events are folded into.
    state           text        NOT NULL
);

CREATE INDEX rm_receipts_by_digest ON rm_receipts (organization_id, sha256);
CREATE INDEX rm_receipts_by_uploader ON rm_receipts (organization_id, uploader_id, uploaded_at DESC, id DESC);
