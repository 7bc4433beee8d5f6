-- Responses to POSTs sent with an Idempotency-Key, replayed when the same request is
-- retried. Rows expire after 24 hours; an in-flight row older than a minute belonged to
-- a request that died and may be taken over.
CREATE TABLE idempotency_keys
(
    scope         text     NOT NULL,
    key           text     NOT NULL,
    request_hash  text     NOT NULL,
    in_flight     boolean  NOT NULL,
    status        smallint,
    headers       text,
    body          bytea,
    created_at_ms bigint   NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at_ms);
