#!/usr/bin/env bash
# After any restore of the database, before the product serves from it: migrations, and
# — with NATS — the stream, which still holds events the restore took away, is deleted so
# that the relay publishes again what the database holds (consumers skip what they
# already applied by event id and checkpoint). Stop relays, projectors and workers
# first; start them afterwards.
#
# The read models need no rebuild to serve: each was restored with the events, its
# checkpoint moving in the same transactions as its rows, whether by point-in-time
# recovery or from a dump (one snapshot). Serve at once, then check them while serving:
#   expensewise projections verify --all
# rebuilds each beside the live one and compares checksums; rebuild (without downtime,
# `expensewise projections rebuild NAME`) any that differs.
#
# DATABASE_URL (and NATS_URL where used) as for the product. EXPENSEWISE names the binary
# (default: expensewise on the PATH).
set -euo pipefail
expensewise=${EXPENSEWISE:-expensewise}

"$expensewise" migrate
if [ -n "${NATS_URL:-}" ]; then
    "$expensewise" stream reset
fi
"$expensewise" projections status
