#!/usr/bin/env bash
# Self-hosted point-in-time recovery with pgBackRest (on RDS: "Restore to point in
# time" in the console or `aws rds restore-db-instance-to-point-in-time`, then
# after-restore.sh against the new instance).
#   restore-pitr.sh STANZA TARGET
# TARGET: a timestamp ('2026-11-26 14:03:00+00') or `latest` (everything archived).
# The PostgreSQL server of the stanza must be stopped and its data directory empty;
# PGBACKREST_CONFIG names pgBackRest's configuration if it is not the default. Start the
# server afterwards (it recovers, then promotes), then run after-restore.sh.
set -euo pipefail

stanza=${1:?usage: restore-pitr.sh STANZA TARGET}
target=${2:?usage: restore-pitr.sh STANZA TARGET}
config=()
[ -n "${PGBACKREST_CONFIG:-}" ] && config=("--config=$PGBACKREST_CONFIG")

if [ "$target" = latest ]; then
    pgbackrest "${config[@]}" --stanza="$stanza" --type=default restore
else
    pgbackrest "${config[@]}" --stanza="$stanza" --type=time --target="$target" \
        --target-action=promote restore
fi
echo "restore: stanza $stanza restored to $target; start PostgreSQL, then after-restore.sh"
