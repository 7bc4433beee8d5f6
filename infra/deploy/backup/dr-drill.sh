#!/usr/bin/env bash
# The disaster-recovery drill, against PostgreSQL on this machine:
#   data in → full backup (pgBackRest, WAL archived continuously) → more data → the
#   moment to return to (T: read models' checksums and a logical dump taken) → more data
#   → the server and its data directory are lost →
#   1. restore everything archived (latest): measures the data-loss window;
#   2. restore to T, serving; then every read model verified against a rebuild from the
#      restored events, checksums identical to those at T;
#   3. the logical dump restored into a new cluster: the same.
# Prints the recovery times and the data-loss window (docs/operations.md has the
# figures). Needs PostgreSQL's server binaries and pgBackRest (installed from Debian when
# missing), curl, and the expensewise binary (EXPENSEWISE_BIN, default the debug build).
#
# DRILL_EVENTS=10000000 runs it on a production-sized store: that many events are
# written straight into it (by LOADGEN_BIN, default target/release/loadgen: cargo build
# --release -p expensewise-tests --bin loadgen) and projected before the backup. Use
# release builds for both binaries then, and mind the disk: about 1 GB per million
# events, twice over (the database and its restore), plus the repository.
# DRILL_LOGICAL=no leaves out the logical dump (taking it and restoring it are the slowest
# parts at that size).
set -euo pipefail
cd "$(dirname "$0")/../../.."
. scripts/lib.sh
backup=$PWD/infra/deploy/backup

bin=${EXPENSEWISE_BIN:-$PWD/target/debug/expensewise}
[ -x "$bin" ] || { echo "drill: $bin is missing (cargo build -p expensewise-api)" >&2; exit 1; }
drill_events=${DRILL_EVENTS:-0}
loadgen=${LOADGEN_BIN:-$PWD/target/release/loadgen}
if [ "$drill_events" -gt 0 ] && [ ! -x "$loadgen" ]; then
    echo "drill: $loadgen is missing (cargo build --release -p expensewise-tests --bin loadgen)" >&2
    exit 1
fi
if ! command -v pgbackrest >/dev/null || [ -z "$(find_initdb)" ]; then
    log "Installing postgresql and pgbackrest (Debian packages)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql pgbackrest >/dev/null
fi
pg_bin=$(dirname "$(find_initdb)")

drill=$(mktemp -d /tmp/expensewise-drill.XXXXXX)
chmod 755 "$drill"
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    as_pg=(runuser -u postgres --)
fi
mkdir -p "$drill/repo" "$drill/log" "$drill/spool" "$drill/dumps"
port=$(free_port)
conf=$drill/pgbackrest.conf
cat >"$conf" <<CONF
[global]
repo1-path=$drill/repo
repo1-retention-full=2
log-path=$drill/log
lock-path=$drill/spool
spool-path=$drill/spool
start-fast=y
compress-type=gz
log-level-console=warn

[drill]
pg1-path=$drill/data
pg1-port=$port
pg1-socket-path=$drill
CONF
[ ${#as_pg[@]} -eq 0 ] || chown -R postgres "$drill"

server_pid=
# shellcheck disable=SC2329 # run by the EXIT trap
cleanup() {
    [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
    for data in "$drill/data" "$drill/logical"; do
        [ -f "$data/postmaster.pid" ] && "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1
    done
    rm -rf "$drill"
}
trap cleanup EXIT

pg_start() { # DATA PORT [extra options]
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$1" -l "$drill/log/$(basename "$1").log" -w -t 120 \
        -o "-c listen_addresses=127.0.0.1 -p $2 -k $drill ${3:-}" start >/dev/null
}
pg_stop() { "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$1" -m "${2:-fast}" stop >/dev/null; }
sql() { "$pg_bin/psql" "$1" -XAtqc "$2"; }
pgbr() { "${as_pg[@]}" pgbackrest --config="$conf" --stanza=drill "$@"; }
now_ms() { date +%s%3N; }
seconds() { echo "$(($1 / 1000)).$(($1 % 1000 / 100)) s"; }

url="postgres://postgres@127.0.0.1:$port/expensewise"

log "A PostgreSQL with continuous WAL archiving to a pgBackRest repository"
"${as_pg[@]}" "$pg_bin/initdb" -D "$drill/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
# In the data directory's configuration, so that restores bring it back with the data.
cat >>"$drill/data/postgresql.conf" <<CONF
wal_level = replica
archive_mode = on
archive_timeout = 10
archive_command = 'pgbackrest --config=$conf --stanza=drill archive-push %p'
CONF
pg_start "$drill/data" "$port"
sql "postgres://postgres@127.0.0.1:$port/postgres" "CREATE DATABASE expensewise"
pgbr stanza-create
pgbr check

app_port=$(free_port)
base="http://127.0.0.1:$app_port"
start_app() { # DATABASE_URL
    DATABASE_URL=$1 PORT=$app_port DATA_DIR=$drill/app APP_ENV=test LOG_LEVEL=warn \
        RATE_LIMIT_MAX=100000 AUTH_RATE_LIMIT_MAX=100000 "$bin" serve >>"$drill/log/app.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 300); do
        curl -fs "$base/ready" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "drill: the application did not become ready" >&2
    exit 1
}
stop_app() { kill "$server_pid"; wait "$server_pid" || true; server_pid=; }

token=
api() { # METHOD PATH [JSON]
    curl -fsS -X "$1" "$base$2" -H 'content-type: application/json' \
        ${token:+-H "authorization: Bearer $token"} ${3:+--data "$3"}
}
expenses() { # COUNT LABEL: creates COUNT expenses, submits every other one
    local id
    for i in $(seq 1 "$1"); do
        id=$(api POST /v1/expenses "{\"amount\":\"$i.50\",\"currency\":\"EUR\",\"merchant\":\"$2 $i\",\"category\":\"travel\",\"spent_on\":\"2026-06-0$((i % 9 + 1))\"}" \
            | sed -E 's/.*"id":"([^"]+)".*/\1/')
        if [ $((i % 2)) -eq 0 ]; then api POST "/v1/expenses/$id/submit" >/dev/null; fi
    done
}
events() { sql "$1" "SELECT count(*) FROM events"; }
# A write after a restore must reach the read models: its transaction id has to sort
# after the restored events'. Exits the drill if it does not.
write_after_restore() { # DATABASE_URL LABEL
    local consistency
    start_app "$1"
    consistency=$(curl -fsS -o /dev/null -D - -X POST "$base/v1/expenses" -H 'content-type: application/json' \
        -H "authorization: Bearer $token" \
        --data "{\"amount\":\"9.99\",\"currency\":\"EUR\",\"merchant\":\"$2\",\"category\":\"travel\",\"spent_on\":\"2026-07-01\"}" \
        | tr -d '\r' | awk 'tolower($1) == "x-consistency-token:" { print $2 }')
    if ! curl -fsS "$base/v1/expenses?q=${2// /%20}" -H "authorization: Bearer $token" \
        -H "x-consistency-token: $consistency" | grep -q "\"merchant\":\"$2\""; then
        echo "drill: a write after the restore ($2) does not reach the read models" >&2
        exit 1
    fi
    stop_app
}
# "model checksum" lines of the rebuilt read models, after waiting for them to catch up.
checksums() { # DATABASE_URL
    DATABASE_URL=$1 DATA_DIR=$drill/app LOG_LEVEL=warn "$bin" projections verify --all \
        | awk '/: verified/ { sub(":", "", $1); model = $1 } /checksum/ { for (i = 1; i <= NF; i++) if ($i == "rebuilt") print model, $(i + 1) }'
}

# After a restore begun at $started: the API serving, then every read model verified
# against a rebuild, and a new write reaching them. Sets `served` to how long until it
# served (ms), the events restored, and how long the verification took (ms).
serve_and_verify() { # DATABASE_URL NAME LABEL
    local serving verified count
    start_app "$1"
    serving=$(($(now_ms) - started))
    stop_app
    count=$(events "$1")
    started=$(now_ms)
    checksums "$1" >"$drill/after-$2"
    verified=$(($(now_ms) - started))
    write_after_restore "$1" "$3"
    served="$serving $count $verified"
}

log "Data in, then a full backup"
start_app "$url"
token=$(api POST /v1/auth/register '{"organization":"Drill","name":"Ada","email":"ada@drill.test","password":"correct horse battery staple"}' \
    | sed -E 's/.*"token":"([^"]+)".*/\1/')
expenses 20 "Before backup"
seeded=
if [ "$drill_events" -gt 0 ]; then
    stop_app
    log "$drill_events more events, written straight into the store, then projected"
    started=$(now_ms)
    "$loadgen" seed --database-url "$url" --events "$drill_events" >/dev/null
    seed_ms=$(($(now_ms) - started))
    started=$(now_ms)
    DATABASE_URL=$url DATA_DIR=$drill/app LOG_LEVEL=warn "$bin" projections rebuild --all >/dev/null
    seeded="$drill_events events written in $((seed_ms / 1000)) s, projected in $((($(now_ms) - started) / 1000)) s;"
    seeded="$seeded database $(sql "$url" "SELECT pg_size_pretty(pg_database_size('expensewise'))")"
    start_app "$url"
fi
log "The full backup"
started=$(now_ms)
pgbr --type=full backup
backup_ms=$(($(now_ms) - started))
log "More data, up to the moment to return to"
expenses 20 "After backup"
stop_app
sleep 1
target=$(sql "$url" "SELECT now()")
events_at_target=$(events "$url")
checksums "$url" >"$drill/at-target"
[ -s "$drill/at-target" ] || { echo "drill: no checksums at the target" >&2; exit 1; }
logical=${DRILL_LOGICAL:-yes}
[ "$logical" = no ] || DATABASE_URL=$url "$backup/logical-backup.sh" "$drill/dumps"
# What archive_timeout does every minute: the WAL up to here reaches the repository
# (`check` switches to a new WAL file and waits until the old one is archived).
pgbr check
sleep 1

log "Writes for ${LOST_SECONDS:=25} s after it, then the disaster: the server and its data directory are lost"
# Longer than archive_timeout: what is lost is what came after the last WAL file that
# the timeout closed and archived, not everything after the moment above.
start_app "$url"
until_ms=$(($(now_ms) + LOST_SECONDS * 1000))
lost=0
while [ "$(now_ms)" -lt "$until_ms" ]; do
    lost=$((lost + 1))
    expenses 1 "Lost $lost"
done
stop_app
events_before_disaster=$(events "$url")
last_write=$(sql "$url" "SELECT extract(epoch FROM max(recorded_at)) FROM events")
pg_stop "$drill/data" immediate
rm -rf "$drill/data"

log "1. Restore of everything archived"
started=$(now_ms)
PGBACKREST_CONFIG=$conf "${as_pg[@]}" "$backup/restore-pitr.sh" drill latest >/dev/null
pg_start "$drill/data" "$port"
until [ "$(sql "$url" "SELECT pg_is_in_recovery()")" = f ]; do sleep 0.2; done
latest_ms=$(($(now_ms) - started))
events_latest=$(events "$url")
last_recovered=$(sql "$url" "SELECT extract(epoch FROM max(recorded_at)) FROM events")
lost_seconds=$(awk -v a="$last_write" -v b="$last_recovered" 'BEGIN { printf "%.1f", a - b }')
pg_stop "$drill/data" immediate
rm -rf "$drill/data"

log "2. Point-in-time restore to $target"
started=$(now_ms)
PGBACKREST_CONFIG=$conf "${as_pg[@]}" "$backup/restore-pitr.sh" drill "$target" >/dev/null
pg_start "$drill/data" "$port"
until [ "$(sql "$url" "SELECT pg_is_in_recovery()")" = f ]; do sleep 0.2; done
pitr_restored_ms=$(($(now_ms) - started))
DATABASE_URL=$url DATA_DIR=$drill/app EXPENSEWISE=$bin LOG_LEVEL=warn "$backup/after-restore.sh" >"$drill/log/after-pitr.log"
serve_and_verify "$url" pitr "Written after the PITR"
read -r pitr_ms events_pitr pitr_verified_ms <<<"$served"

if [ "$logical" != no ]; then
    log "3. The logical dump into a new cluster"
    logical_port=$(free_port)
    logical_url="postgres://postgres@127.0.0.1:$logical_port/expensewise"
    started=$(now_ms)
    "${as_pg[@]}" "$pg_bin/initdb" -D "$drill/logical" -U postgres -A trust -E UTF8 --no-sync >/dev/null
    # The new cluster's transaction ids must be ahead of the restored events' (see
    # restore-logical.sh): a new epoch puts them ahead of any id of the old one.
    source_epoch=$(sql "$url" "SELECT (pg_current_xact_id()::text::numeric / 4294967296)::bigint")
    "${as_pg[@]}" "$pg_bin/pg_resetwal" --epoch=$((source_epoch + 1)) -D "$drill/logical" >/dev/null
    pg_start "$drill/logical" "$logical_port"
    sql "postgres://postgres@127.0.0.1:$logical_port/postgres" "CREATE DATABASE expensewise"
    DATABASE_URL=$logical_url DATA_DIR=$drill/app EXPENSEWISE=$bin LOG_LEVEL=warn \
        "$backup/restore-logical.sh" "$(ls "$drill"/dumps/expensewise-*.dump)" >"$drill/log/after-logical.log"
    serve_and_verify "$logical_url" logical "Written after the dump was restored"
    read -r logical_ms events_logical logical_verified_ms <<<"$served"
    pg_stop "$drill/logical"
fi

echo
echo "DR drill results"
echo "  events: $events_at_target at the target, $events_before_disaster when the server was lost"
[ -z "$seeded" ] || echo "  $seeded"
echo "  full backup: $(seconds "$backup_ms")"
echo "  restore of everything archived: $events_latest events in $(seconds "$latest_ms");" \
    "data-loss window $lost_seconds s ($((events_before_disaster - events_latest)) events not yet archived)"
echo "  point-in-time restore to the target: $events_pitr events restored in $(seconds "$pitr_restored_ms")," \
    "serving in $(seconds "$pitr_ms"); then every read model verified against a rebuild in $(seconds "$pitr_verified_ms")"
[ "$logical" = no ] || echo "  logical dump into a new cluster: $events_logical events, serving in $(seconds "$logical_ms");" \
    "read models verified against a rebuild in $(seconds "$logical_verified_ms")"
echo "  read models at the target:"
sed 's/^/    /' "$drill/at-target"

status=0
[ "$events_pitr" = "$events_at_target" ] || { echo "drill: PITR restored $events_pitr events, not $events_at_target" >&2; status=1; }
[ "$logical" = no ] || [ "$events_logical" = "$events_at_target" ] || { echo "drill: the dump restored $events_logical events, not $events_at_target" >&2; status=1; }
cmp -s "$drill/at-target" "$drill/after-pitr" || { echo "drill: read models after PITR differ:" >&2; diff "$drill/at-target" "$drill/after-pitr" >&2; status=1; }
[ "$logical" = no ] || cmp -s "$drill/at-target" "$drill/after-logical" || { echo "drill: read models after the dump differ:" >&2; diff "$drill/at-target" "$drill/after-logical" >&2; status=1; }
[ "$events_latest" -le "$events_before_disaster" ] && [ "$events_latest" -ge "$events_at_target" ] \
    || { echo "drill: the latest restore has $events_latest events" >&2; status=1; }
[ "$status" -eq 0 ] && echo "DR drill passed" || echo "DR drill FAILED"
exit "$status"
