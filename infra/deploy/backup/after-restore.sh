#!/usr/bin/env bash
# After any restore of the database: the read models are rebuilt from the restored
# events (their tables were restored too, but a rebuild makes certain they match), and —
# with NATS — the stream, which still holds events the restore took away, is deleted so
# that the relay publishes again what the database holds (consumers skip what they
# already applied by event id and checkpoint). Stop relays, projectors and workers
# first; start them afterwards.
# DATABASE_URL (and NATS_URL where used) as for the product, and its master key
# (DATA_KEY_FILE or KMS_KEY_ID; outside production its DATA_DIR): the rebuild opens the
# personal fields with it. EXPENSEWISE names the binary (default: expensewise on the PATH).
set -euo pipefail
expensewise=${EXPENSEWISE:-expensewise}

"$expensewise" migrate
if [ -n "${NATS_URL:-}" ]; then
    "$expensewise" stream reset
fi
"$expensewise" projections rebuild --all
"$expensewise" projections status
