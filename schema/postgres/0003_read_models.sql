-- Read models: disposable tables rebuilt from the events at any time. Each projection
-- records how far it has read in `projection_checkpoints`, in the same transaction as
-- its rows, so a crash can neither lose nor repeat an event's effect.
CREATE TABLE projection_checkpoints
(
    name       text        PRIMARY KEY,
    txid       bigint      NOT NULL,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE rm_expenses
(
    id              text        PRIMARY KEY,
    organization_id text        NOT NULL,
    owner_id        text        NOT NULL,
    amount          text        NOT NULL,
    -- The amount in the currency's minor units, for exact sums.
    amount_minor    bigint      NOT NULL,
    currency        text        NOT NULL,
    merchant        text        NOT NULL,
    category        text        NOT NULL,
    spent_on        date        NOT NULL,
    description     text,
    status          text        NOT NULL,
    receipt_ids     text        NOT NULL,
    version         bigint      NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    submitted_at    timestamptz,
    decided_at      timestamptz,
    decided_by      text,
    decision_reason text,
    -- Lower-cased merchant and description, for `q`.
    search          text        NOT NULL
);

CREATE INDEX rm_expenses_by_date ON rm_expenses (organization_id, spent_on DESC, id DESC);
CREATE INDEX rm_expenses_by_owner ON rm_expenses (organization_id, owner_id, spent_on DESC, id DESC);
CREATE INDEX rm_expenses_by_status ON rm_expenses (organization_id, status, spent_on DESC, id DESC);
CREATE INDEX rm_expenses_by_category ON rm_expenses (organization_id, category, spent_on DESC, id DESC);
CREATE INDEX rm_expenses_approvals ON rm_expenses (organization_id, submitted_at, id) WHERE status = 'submitted';
CREATE INDEX rm_expenses_search ON rm_expenses USING gin (search gin_trgm_ops);
