-- See the PostgreSQL migration of the same name.
CREATE TABLE rm_users
(
    id              text    PRIMARY KEY,
    organization_id text    NOT NULL,
    name            text    NOT NULL,
    email           text    NOT NULL,
    role            text    NOT NULL,
    active          integer NOT NULL,
    version         integer NOT NULL,
    created_at      text    NOT NULL,
    updated_at      text    NOT NULL
) STRICT;

CREATE INDEX rm_users_by_organization ON rm_users (organization_id, id);

CREATE TABLE rm_receipts
(
    id              text    PRIMARY KEY,
    organization_id text    NOT NULL,
    uploader_id     text    NOT NULL,
    sha256          text    NOT NULL,
    status          text    NOT NULL,
    expense_id      text,
    uploaded_at     text    NOT NULL,
    version         integer NOT NULL,
    state           text    NOT NULL
) STRICT;

CREATE INDEX rm_receipts_by_digest ON rm_receipts (organization_id, sha256);
CREATE INDEX rm_receipts_by_uploader ON rm_receipts (organization_id, uploader_id, uploaded_at DESC, id DESC);
