-- Passwords leave the event log (docs/personal-data.md). A user's password hash lives
-- here, keyed by user id, written in the same statement as the event that creates the
-- user or records that their password changed; events only say that it was set.
CREATE TABLE credentials
(
    user_id         text        PRIMARY KEY,
    organization_id text        NOT NULL,
    password_hash   text        NOT NULL,
    updated_at      timestamptz NOT NULL
);

-- The one-time move of the hashes that events written before this version carry
-- (OrganizationRegistered up to 2.0, UserAdded 1.0): each hash is copied here, and the
-- event is stored as the upcasters would read it — the next version, without the hash.
-- This is the one place where stored events are rewritten; nothing but the secret and
-- the version label changes (a 1.0 registration also gets the EUR default currency its
-- version implied).
INSERT INTO credentials (user_id, organization_id, password_hash, updated_at)
SELECT payload -> 'OrganizationRegistered' ->> 'admin_user_id', aggregate_id,
       payload -> 'OrganizationRegistered' ->> 'admin_password_hash', recorded_at
FROM events
WHERE aggregate_type = 'organization' AND event_type = 'OrganizationRegistered'
  AND payload -> 'OrganizationRegistered' ->> 'admin_password_hash' IS NOT NULL
UNION ALL
SELECT payload -> 'UserAdded' ->> 'user_id', aggregate_id,
       payload -> 'UserAdded' ->> 'password_hash', recorded_at
FROM events
WHERE aggregate_type = 'organization' AND event_type = 'UserAdded'
  AND payload -> 'UserAdded' ->> 'password_hash' IS NOT NULL
ON CONFLICT (user_id) DO NOTHING;

ALTER TABLE events DISABLE TRIGGER events_are_append_only;

UPDATE events
SET payload = jsonb_set(payload::jsonb #- '{OrganizationRegistered,admin_password_hash}',
                        '{OrganizationRegistered,default_currency}',
                        COALESCE(payload::jsonb -> 'OrganizationRegistered' -> 'default_currency',
                                 '"EUR"'::jsonb))::json,
    event_version = '3.0'
WHERE aggregate_type = 'organization' AND event_type = 'OrganizationRegistered'
  AND event_version IN ('1.0', '2.0');

UPDATE events
SET payload = (payload::jsonb #- '{UserAdded,password_hash}')::json,
    event_version = '2.0'
WHERE aggregate_type = 'organization' AND event_type = 'UserAdded' AND event_version = '1.0';

ALTER TABLE events ENABLE TRIGGER events_are_append_only;

-- Snapshots of organizations held every member's hash: they are made again from the
-- events when next due.
DELETE FROM snapshots WHERE aggregate_type = 'organization';
