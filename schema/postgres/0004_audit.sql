-- Audit queries read one organization's events in global order.
CREATE INDEX events_by_organization ON events ((metadata ->> 'organization_id'), txid, position);
