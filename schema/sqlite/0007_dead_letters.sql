-- See the PostgreSQL migration of the same name.
CREATE TABLE dead_letters
(
    worker          text NOT NULL,
    event_id        text NOT NULL,
    global_position text NOT NULL,
    aggregate_type  text NOT NULL,
    aggregate_id    text NOT NULL,
    sequence        integer NOT NULL,
    event_type      text NOT NULL,
    error           text NOT NULL,
    failed_at       text    NOT NULL,
    PRIMARY KEY (worker, event_id)
) STRICT;
