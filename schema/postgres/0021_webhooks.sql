-- Issue 20, webhooks (docs/webhooks.md). Endpoints are events of the `webhooks`
-- aggregate; what is kept here is what must not be in an event, and the sender's work.

-- Signing secrets by id, written before the event that names them (a secret no event
-- names is never used).
CREATE TABLE webhook_secrets
(
    secret_id       text   NOT NULL PRIMARY KEY,
    organization_id text   NOT NULL,
    secret          text   NOT NULL,
    created_ms      bigint NOT NULL
);

-- One message per endpoint and event: pending until the receiver answered 2xx
-- (delivered) or the retries ran out (failed). Times are milliseconds since 1970.
CREATE TABLE webhook_deliveries
(
    id               text    NOT NULL PRIMARY KEY,
    organization_id  text    NOT NULL,
    endpoint_id      text    NOT NULL,
    event_id         text    NOT NULL,
    event_type       text    NOT NULL,
    aggregate_type   text    NOT NULL,
    aggregate_id     text    NOT NULL,
    sequence         bigint  NOT NULL,
    txid             bigint  NOT NULL,
    position         bigint  NOT NULL,
    state            text    NOT NULL,
    attempts         integer NOT NULL,
    created_ms       bigint  NOT NULL,
    first_attempt_ms bigint,
    next_attempt_ms  bigint  NOT NULL,
    lease_until_ms   bigint  NOT NULL,
    finished_ms      bigint,
    last_status      integer,
    last_latency_ms  integer,
    last_error       text,
    UNIQUE (endpoint_id, event_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_ms) WHERE state = 'pending';

CREATE INDEX webhook_deliveries_in_order ON webhook_deliveries (endpoint_id, aggregate_id, aggregate_type, txid, position) WHERE state = 'pending';

CREATE INDEX webhook_deliveries_of_endpoint ON webhook_deliveries (endpoint_id, id);

-- Every attempt of a delivery: what the receiver answered, and how fast.
CREATE TABLE webhook_attempts
(
    delivery_id text    NOT NULL,
    attempt     integer NOT NULL,
    sent_ms     bigint  NOT NULL,
    status      integer,
    latency_ms  integer NOT NULL,
    error       text,
    PRIMARY KEY (delivery_id, attempt)
);
