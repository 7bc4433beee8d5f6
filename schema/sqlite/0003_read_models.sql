-- See the PostgreSQL migration of the same name.
CREATE TABLE projection_checkpoints
(
    name       text    PRIMARY KEY,
    txid       integer NOT NULL,
    position   integer NOT NULL,
    updated_at text    NOT NULL
) STRICT;

CREATE TABLE rm_expenses
(
    id              text    PRIMARY KEY,
    organization_id text    NOT NULL,
    owner_id        text    NOT NULL,
    amount          text    NOT NULL,
    amount_minor    integer NOT NULL,
    currency        text    NOT NULL,
    merchant        text    NOT NULL,
    category        text    NOT NULL,
    spent_on        text    NOT NULL,
    description     text,
    status          text    NOT NULL,
    receipt_ids     text    NOT NULL,
    version         integer NOT NULL,
    created_at      text    NOT NULL,
    updated_at      text    NOT NULL,
    submitted_at    text,
    decided_at      text,
    decided_by      text,
    decision_reason text,
    search          text    NOT NULL
) STRICT;

CREATE INDEX rm_expenses_by_date ON rm_expenses (organization_id, spent_on DESC, id DESC);
CREATE INDEX rm_expenses_by_owner ON rm_expenses (organization_id, owner_id, spent_on DESC, id DESC);
CREATE INDEX rm_expenses_by_status ON rm_expenses (organization_id, status, spent_on DESC, id DESC);
CREATE INDEX rm_expenses_by_category ON rm_expenses (organization_id, category, spent_on DESC, id DESC);
CREATE INDEX rm_expenses_approvals ON rm_expenses (organization_id, submitted_at, id) WHERE status = 'submitted';
