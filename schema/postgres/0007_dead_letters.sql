-- Events a worker gave up on after its delivery limit, when it reads the event store
-- itself (with NATS they go to the dead-letter subject `expensewise.dead.<worker>`).
-- The event stays in the store; this records who failed it and why.
CREATE TABLE dead_letters
(
    worker          text NOT NULL,
    event_id        text NOT NULL,
    global_position text NOT NULL,
    aggregate_type  text NOT NULL,
    aggregate_id    text NOT NULL,
    sequence        bigint NOT NULL,
    event_type      text NOT NULL,
    error           text NOT NULL,
    failed_at       timestamptz NOT NULL,
    PRIMARY KEY (worker, event_id)
);
