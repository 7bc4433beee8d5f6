-- no-transaction
-- A read by a user waits until the read model has passed that user's latest write
-- (read-your-own-writes without a token, across API replicas): this index finds that
-- write in one lookup. Built concurrently, so that appends go on while it is built on a
-- large store.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_by_actor
    ON events ((metadata ->> 'actor_id'), txid, position)
    WHERE (metadata ->> 'actor_id') IS NOT NULL;
