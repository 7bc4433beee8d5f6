-- Operators and admins settle what workers gave up on: a dead letter is open until it is
-- retried (the worker tries it once more: `retrying`, then `retried` or open again) or
-- discarded. The organization is the event's: an admin sees their own organization's only.
ALTER TABLE dead_letters ADD COLUMN organization_id text;
ALTER TABLE dead_letters ADD COLUMN status text NOT NULL DEFAULT 'open';
ALTER TABLE dead_letters ADD COLUMN attempts integer NOT NULL DEFAULT 1;
ALTER TABLE dead_letters ADD COLUMN settled_at text;
ALTER TABLE dead_letters ADD COLUMN discard_reason text;
-- The request that settled it: a request run again (see the API's optimistic commands)
-- finds its own decision taken, not someone else's.
ALTER TABLE dead_letters ADD COLUMN settled_by_request text;
UPDATE dead_letters SET organization_id = (
    SELECT json_extract(e.metadata, '$.organization_id') FROM events e
    WHERE e.aggregate_type = dead_letters.aggregate_type
      AND e.aggregate_id = dead_letters.aggregate_id AND e.sequence = dead_letters.sequence);
CREATE INDEX dead_letters_by_status ON dead_letters (status, worker);
