-- The audit log (docs/audit-log.md): the notary's record of each event's leaf in the
-- Merkle tree, the stored nodes of that tree, and the checkpoints it signed. Rows are
-- only ever added, as events are; `audit verify` recomputes all of it from the events.
CREATE TABLE audit_leaves
(
    leaf_index      bigint PRIMARY KEY CHECK (leaf_index >= 0),
    -- The event (docs/event-store.md: a UUIDv5 of aggregate type, id and sequence),
    -- named in full so that a leaf whose event was removed still says which it was.
    event_id        uuid   NOT NULL UNIQUE,
    aggregate_type  text   NOT NULL,
    aggregate_id    text   NOT NULL,
    sequence        bigint NOT NULL,
    -- Whose event it is: an organization is shown proofs of its own events only.
    organization_id text,
    leaf_hash       bytea NOT NULL
);

-- Perfect subtrees of 2^level leaves for levels 4, 8, 12, …: any perfect subtree is
-- then put together from at most 8 stored hashes (leaves for levels 1 to 3), at a
-- sixteenth of the rows of storing every node.
CREATE TABLE audit_nodes
(
    level      smallint NOT NULL CHECK (level > 0 AND level % 4 = 0),
    node_index bigint   NOT NULL CHECK (node_index >= 0),
    hash       bytea    NOT NULL,
    PRIMARY KEY (level, node_index)
);

-- Every checkpoint signed (C2SP signed-note text), and whether it was written to the
-- checkpoint bucket (AUDIT_CHECKPOINT_BUCKET) yet.
CREATE TABLE audit_checkpoints
(
    tree_size bigint PRIMARY KEY CHECK (tree_size >= 0),
    root_hash bytea       NOT NULL,
    note      text        NOT NULL,
    signed_at timestamptz NOT NULL,
    archived  boolean     NOT NULL DEFAULT false
);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;

CREATE TRIGGER audit_leaves_are_append_only
    BEFORE UPDATE OR DELETE ON audit_leaves
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_nodes_are_append_only
    BEFORE UPDATE OR DELETE ON audit_nodes
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_checkpoints_are_append_only
    BEFORE DELETE OR UPDATE OF tree_size, root_hash, note, signed_at ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
