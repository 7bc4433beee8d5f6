-- Operators and admins settle what workers gave up on: a dead letter is open until it is
-- retried (the worker tries it once more: `retrying`, then `retried` or open again) or
-- discarded. Both modes keep their dead letters here (with NATS they are also on the
-- dead-letter stream, as they came). The organization is the event's: an admin sees
-- their own organization's only.
ALTER TABLE dead_letters ADD COLUMN organization_id text;
ALTER TABLE dead_letters ADD COLUMN status text NOT NULL DEFAULT 'open';
ALTER TABLE dead_letters ADD COLUMN attempts bigint NOT NULL DEFAULT 1;
ALTER TABLE dead_letters ADD COLUMN settled_at timestamptz;
ALTER TABLE dead_letters ADD COLUMN discard_reason text;
-- The request that settled it: a request run again (see the API's optimistic commands)
-- finds its own decision taken, not someone else's.
ALTER TABLE dead_letters ADD COLUMN settled_by_request text;
UPDATE dead_letters d SET organization_id = e.metadata ->> 'organization_id'
FROM events e
WHERE e.aggregate_type = d.aggregate_type AND e.aggregate_id = d.aggregate_id
  AND e.sequence = d.sequence;
CREATE INDEX dead_letters_by_status ON dead_letters (status, worker);
