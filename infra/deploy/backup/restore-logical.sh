#!/usr/bin/env bash
# Restores a dump of logical-backup.sh into an empty database, checks it, and makes it
# ready to serve (after-restore.sh).
#   restore-logical.sh DUMP
# DUMP: a file or an s3:// URL (its .sha256 beside it is checked). DATABASE_URL names
# the empty target database. Then follow docs/operations.md, "After any restore".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

dump=${1:?usage: restore-logical.sh DUMP}
: "${DATABASE_URL:?DATABASE_URL (the empty target database) is required}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

case "$dump" in
    s3://*)
        aws s3 cp --only-show-errors "$dump" "$work/restore.dump"
        aws s3 cp --only-show-errors "$dump.sha256" "$work/restore.dump.sha256"
        ;;
    *)
        cp "$dump" "$work/restore.dump"
        cp "$dump.sha256" "$work/restore.dump.sha256"
        ;;
esac
echo "$(cat "$work/restore.dump.sha256")  $work/restore.dump" | sha256sum --check --quiet \
    || { echo "restore: $dump does not match its checksum" >&2; exit 1; }

pg_restore --dbname="$DATABASE_URL" --exit-on-error --no-owner --no-privileges --single-transaction \
    "$work/restore.dump"
echo "restore: $dump restored"

# The global order of events is (writing transaction id, position). A dump restored into
# another cluster keeps the old transaction ids; if that cluster's counter is behind
# them, new events would sort before old ones and no reader would see them.
epoch=$(psql "$DATABASE_URL" -XAtc \
    "SELECT CASE WHEN max(txid)::text::numeric >= pg_current_xact_id()::text::numeric
            THEN floor(max(txid)::text::numeric / 4294967296)::bigint + 1 END FROM events")
if [ -n "$epoch" ]; then
    cat >&2 <<MSG
restore: this cluster's transaction counter is behind the restored events' ids, so new
events would be invisible to readers. Restore into a cluster whose counter is ahead: on
a new self-hosted cluster, before its first start,
  pg_resetwal --epoch=$epoch -D DATA_DIRECTORY
(docs/operations.md), or use point-in-time recovery, which keeps the counter.
MSG
    exit 1
fi
"$here/after-restore.sh"
