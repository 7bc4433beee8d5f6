-- See the PostgreSQL migration of the same name.
CREATE TABLE idempotency_keys
(
    scope         text    NOT NULL,
    key           text    NOT NULL,
    request_hash  text    NOT NULL,
    in_flight     integer NOT NULL,
    status        integer,
    headers       text,
    body          blob,
    created_at_ms integer NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT;

CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at_ms);
