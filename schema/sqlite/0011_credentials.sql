-- Passwords leave the event log (docs/personal-data.md); see the PostgreSQL migration of
-- the same number for what this does and why.
CREATE TABLE credentials
(
    user_id         text NOT NULL PRIMARY KEY,
    organization_id text NOT NULL,
    password_hash   text NOT NULL,
    updated_at      text NOT NULL
);

INSERT OR IGNORE INTO credentials (user_id, organization_id, password_hash, updated_at)
SELECT json_extract(payload, '$.OrganizationRegistered.admin_user_id'), aggregate_id,
       json_extract(payload, '$.OrganizationRegistered.admin_password_hash'), recorded_at
FROM events
WHERE aggregate_type = 'organization' AND event_type = 'OrganizationRegistered'
  AND json_extract(payload, '$.OrganizationRegistered.admin_password_hash') IS NOT NULL;

INSERT OR IGNORE INTO credentials (user_id, organization_id, password_hash, updated_at)
SELECT json_extract(payload, '$.UserAdded.user_id'), aggregate_id,
       json_extract(payload, '$.UserAdded.password_hash'), recorded_at
FROM events
WHERE aggregate_type = 'organization' AND event_type = 'UserAdded'
  AND json_extract(payload, '$.UserAdded.password_hash') IS NOT NULL;

DROP TRIGGER events_are_append_only_update;

UPDATE events
SET payload = json_set(json_remove(payload, '$.OrganizationRegistered.admin_password_hash'),
                       '$.OrganizationRegistered.default_currency',
                       COALESCE(json_extract(payload, '$.OrganizationRegistered.default_currency'), 'EUR')),
    event_version = '3.0'
WHERE aggregate_type = 'organization' AND event_type = 'OrganizationRegistered'
  AND event_version IN ('1.0', '2.0');

UPDATE events
SET payload = json_remove(payload, '$.UserAdded.password_hash'),
    event_version = '2.0'
WHERE aggregate_type = 'organization' AND event_type = 'UserAdded' AND event_version = '1.0';

CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

DELETE FROM snapshots WHERE aggregate_type = 'organization';
