-- A read by a user waits until the read model has passed that user's latest write
-- (read-your-own-writes without a token): this index finds that write in one lookup.
CREATE INDEX events_by_actor ON events (json_extract(metadata, '$.actor_id'));
