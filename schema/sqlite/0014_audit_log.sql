-- The audit log: see the PostgreSQL migration of the same number.
CREATE TABLE audit_leaves
(
    leaf_index      integer PRIMARY KEY CHECK (leaf_index >= 0),
    event_id        blob    NOT NULL UNIQUE,
    aggregate_type  text    NOT NULL,
    aggregate_id    text    NOT NULL,
    sequence        integer NOT NULL,
    organization_id text,
    leaf_hash       blob NOT NULL
) STRICT;

CREATE TABLE audit_nodes
(
    level      integer NOT NULL CHECK (level > 0 AND level % 4 = 0),
    node_index integer NOT NULL CHECK (node_index >= 0),
    hash       blob    NOT NULL,
    PRIMARY KEY (level, node_index)
) STRICT;

CREATE TABLE audit_checkpoints
(
    tree_size integer PRIMARY KEY CHECK (tree_size >= 0),
    root_hash blob    NOT NULL,
    note      text    NOT NULL,
    signed_at text    NOT NULL,
    archived  integer NOT NULL DEFAULT 0
) STRICT;

CREATE TRIGGER audit_leaves_no_update BEFORE UPDATE ON audit_leaves
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_leaves_no_delete BEFORE DELETE ON audit_leaves
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_nodes_no_update BEFORE UPDATE ON audit_nodes
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_nodes_no_delete BEFORE DELETE ON audit_nodes
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OF tree_size, root_hash, note, signed_at ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
