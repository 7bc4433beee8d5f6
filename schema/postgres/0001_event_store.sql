-- The event store. Its first seven columns are the ones postgres-es reads and writes
-- (its INSERT names them); the rest are filled by defaults and give the store a global
-- order that tailers can follow without skipping events (see docs/event-store.md).
CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    -- Assigned at insert, so positions are not in commit order on their own.
    position       bigint GENERATED ALWAYS AS IDENTITY,
    -- The writing transaction: everything below pg_snapshot_xmin(pg_current_snapshot())
    -- has finished, which is what makes (txid, position) safe to tail.
    txid           xid8                         NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at    timestamptz                  NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX events_position ON events (position);
CREATE UNIQUE INDEX events_global_order ON events (txid, position);
CREATE INDEX events_type_order ON events (event_type, position);

-- Aggregate snapshots, in postgres-es's layout.
CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- Events are the record: refuse to change or remove them.
CREATE FUNCTION events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END;
$$;

CREATE TRIGGER events_are_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();
