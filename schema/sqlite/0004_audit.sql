-- Audit queries read one organization's events in global order.
CREATE INDEX events_by_organization ON events (json_extract(metadata, '$.organization_id'));
