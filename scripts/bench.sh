#!/usr/bin/env bash
# The benchmarks of docs/benchmarks.md: release build, PostgreSQL with its default
# (durable) settings, nats-server with JetStream (sync_interval: always), everything on
# 127.0.0.1, bounded in time. Prints the figures; nothing is written to the repository.
#
#   ./scripts/bench.sh            # all benchmarks (about 20 minutes)
#   SECONDS_PER_RUN=10 EVENTS=200000 ./scripts/bench.sh
#   BENCHMARKS=rebuild ./scripts/bench.sh      # a subset: baseline, commands, embedded, visibility, reads, console, audit, policy, rebuild, ocr, strangers
#   OCR_ENGINE=tesseract BENCHMARKS="ocr strangers" ./scripts/bench.sh   # OCR with Tesseract instead of PP-OCR
#   SERVER_BIN=/path/to/older/expensewise ./scripts/bench.sh   # measure another build of the server
#   PROFILE=docs/flamegraphs/after BENCHMARKS="commands embedded" ./scripts/bench.sh
#       # then the server's CPU profile during one more run of creates: flame graphs (SVG)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
EVENTS=${EVENTS:-1000000}
BENCHMARKS=${BENCHMARKS:-baseline commands embedded visibility reads console audit policy rebuild ocr strangers}
AUDIT_EVENTS=${AUDIT_EVENTS:-1000000}
RECEIPTS=${RECEIPTS:-600}
STRANGER_RECEIPTS=${STRANGER_RECEIPTS:-600}
wanted() { [[ " $BENCHMARKS " == *" $1 "* ]]; }

install_test_tools
install_ocr
install_ppocr_models
install_corpus_fonts
if wanted strangers; then install_stranger_fonts; fi
start_postgres
BENCH_DIR=$(mktemp -d /tmp/expensewise-bench.XXXXXX)
NATS_PORT=$(free_port)
APP_PORT=$(free_port)
# Production wants a master key for personal data (docs/personal-data.md).
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$BENCH_DIR/data-key"
printf 'listen: 127.0.0.1:%s\njetstream { store_dir: "%s/nats", sync_interval: always }\n' \
    "$NATS_PORT" "$BENCH_DIR" >"$BENCH_DIR/nats.conf"

cleanup() {
    stop_app
    [ -n "${NATS_PID:-}" ] && kill "$NATS_PID" 2>/dev/null && wait "$NATS_PID" 2>/dev/null
    stop_postgres
    rm -rf "$BENCH_DIR"
}
trap cleanup EXIT

if [ -n "${PROFILE:-}" ]; then
    # perf (Debian's linux-perf) samples the server with DWARF unwinding (the release
    # build keeps its symbols and unwind tables, not its debug info: functions, not
    # lines); inferno folds and draws the stacks.
    if ! command -v perf >/dev/null; then
        log "Installing perf (Debian package linux-perf)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
    fi
    if [ ! -x target/bench-tools/bin/inferno-flamegraph ]; then
        log "Installing inferno (crates.io) into target/bench-tools"
        cargo install --quiet --locked --root target/bench-tools inferno
    fi
    mkdir -p "$PROFILE"
fi
# profile NAME TITLE COMMAND…: with PROFILE set, runs the load COMMAND once more while
# perf samples the server, and draws what it saw. The figures come from the run before,
# without perf: its unwinding takes a share of the same two cores.
profile() {
    [ -n "${PROFILE:-}" ] || return 0
    local name=$1 title=$2 perf_pid
    shift 2
    perf record -F 199 --call-graph dwarf,32768 -p "$APP_PID" -o "$BENCH_DIR/$name.perf" >/dev/null 2>&1 &
    perf_pid=$!
    "$@" >/dev/null
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    perf script -i "$BENCH_DIR/$name.perf" 2>/dev/null | target/bench-tools/bin/inferno-collapse-perf \
        | target/bench-tools/bin/inferno-flamegraph --title "$title" --width 1600 --minwidth 0.1 >"$PROFILE/$name.svg"
    rm -f "$BENCH_DIR/$name.perf"
    echo "flame graph: $PROFILE/$name.svg"
}

log "Building (release)"
cargo build --release --locked -p expensewise-api -p expensewise-tests --bin expensewise --bin loadgen --bin ocrbench --bin baseline
BIN=target/release
SERVER_BIN=${SERVER_BIN:-$BIN/expensewise}
# Production wants the audit log's signing key too (docs/audit-log.md).
"$BIN/expensewise" audit new-key --origin bench.expensewise.test/audit-log >"$BENCH_DIR/audit-signing-key" 2>/dev/null

PG_PORT=${TEST_DATABASE_URL##*:}
PG_PORT=${PG_PORT%%/*}
"$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres bench
"$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres bench_serve
"$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres rebuild
"$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres baseline

"$NATS_SERVER_BIN" -c "$BENCH_DIR/nats.conf" >"$BENCH_DIR/nats.log" 2>&1 &
NATS_PID=$!

log "Machine"
echo "$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') (default settings), nats-server $("$NATS_SERVER_BIN" --version | awk '{print $2}')"

# The load generator is a handful of users sending far more than a person would: the
# rate limits are raised out of its way (they are measured by tests, not here).
# EMBEDDED=1: the README's run command as it is, SQLite in the data directory and no NATS.
app_variables() {
    APP_VARIABLES=(APP_ENV=production JWT_SECRET=bench-secret-bench-secret-bench-secret
        DATA_KEY_FILE="$BENCH_DIR/data-key" AUDIT_SIGNING_KEY_FILE="$BENCH_DIR/audit-signing-key" HOST=127.0.0.1 PORT="$APP_PORT" RATE_LIMIT_MAX=1000000000 AUTH_RATE_LIMIT_MAX=1000000000
        LOG_LEVEL=warn DATA_DIR="$BENCH_DIR/data")
    if [ -z "${EMBEDDED:-}" ]; then
        APP_VARIABLES+=(DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/${DATABASE:-bench}"
            DATABASE_MAX_CONNECTIONS=32 NATS_URL="nats://127.0.0.1:$NATS_PORT")
    fi
}
run_app() {
    app_variables
    env "${APP_VARIABLES[@]}" "$SERVER_BIN" "$@"
}
# `env` execs the server, so APP_PID is the server's own process id.
start_app() {
    app_variables
    env "${APP_VARIABLES[@]}" "$SERVER_BIN" "$@" >>"$BENCH_DIR/app.log" 2>&1 &
    APP_PID=$!
    wait_for_app "expensewise $*"
}
wait_for_app() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$APP_PORT") 2>/dev/null && return 0
        kill -0 "$APP_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "$1 did not start; its log:" >&2
    tail -n 20 "$BENCH_DIR/app.log" >&2
    exit 1
}
stop_app() {
    if [ -n "${APP_PID:-}" ]; then
        kill "$APP_PID" 2>/dev/null || true
        wait "$APP_PID" 2>/dev/null || true
        APP_PID=
    fi
}
BASE="http://127.0.0.1:$APP_PORT"
run_app migrate >>"$BENCH_DIR/app.log" 2>&1
# The runs with `serve` have a database of their own, so that their relay does not first
# publish what the API-only runs wrote.
DATABASE=bench_serve run_app migrate >>"$BENCH_DIR/app.log" 2>&1

if wanted baseline; then
    # What the product's figures are compared with, measured in the same run: the plain
    # framework as documented (tests/src/bin/baseline.rs), and PostgreSQL itself reading
    # an aggregate's (empty) stream and inserting its first event, one statement each.
    log "Baseline: cqrs-es + postgres-es as documented, one GenericQuery view"
    DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/baseline" PORT="$APP_PORT" \
        "$BIN/baseline" >>"$BENCH_DIR/app.log" 2>&1 &
    APP_PID=$!
    wait_for_app baseline
    "$BIN/loadgen" create --base "$BASE" --connections 16 --seconds "$SECONDS_PER_RUN"
    stop_app
    log "Baseline: pgbench, read a stream and insert an event, 16 clients"
    cat >"$BENCH_DIR/append.sql" <<'SQL'
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT 'pgbench', s.id, 1, 'Created', '1.0', '{"Created": {}}', '{}'
FROM (SELECT gen_random_uuid()::text AS id) s
WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.aggregate_type = 'pgbench' AND e.aggregate_id = s.id);
SQL
    "$PG_BIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -n -c 16 -j 2 -T "$SECONDS_PER_RUN" \
        -f "$BENCH_DIR/append.sql" baseline | grep -E "^(tps|latency)"
fi

if wanted commands; then
    # The command side as it scales out: the API process alone with PostgreSQL (relay,
    # projectors and NATS run elsewhere), sharing the machine with the load generator.
    log "Commands through HTTP on PostgreSQL (expensewise api)"
    start_app api
    for c in 16 64; do
        "$BIN/loadgen" create --base "$BASE" --connections "$c" --seconds "$SECONDS_PER_RUN"
    done
    # How many commands' appends shared a commit (group commit), over both runs.
    "$TEST_PYTHON" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
        "$BASE/metrics" | grep -E '^expensewise_group_commit_appends(_sum|_count| )' || true
    profile api "expensewise api on PostgreSQL, creates at 16 connections" \
        "$BIN/loadgen" create --base "$BASE" --connections 16 --seconds "$SECONDS_PER_RUN"
    for c in 16 64; do
        "$BIN/loadgen" long-lived --base "$BASE" --connections "$c" --seconds "$SECONDS_PER_RUN" --events 1000
    done
    stop_app
fi

if wanted visibility; then
    log "Command → visible in the read model, through NATS JetStream (expensewise serve)"
    DATABASE=bench_serve start_app serve
    "$BIN/loadgen" visibility --base "$BASE" --samples 1000
    stop_app
fi

if wanted reads; then
    # Queries of a user who writes nothing meanwhile, with projector and relay running
    # beside the API (expensewise serve), as a reader meets the product.
    log "Queries through HTTP on PostgreSQL (expensewise serve)"
    DATABASE=bench_serve start_app serve
    for c in 16 64; do
        "$BIN/loadgen" reads --base "$BASE" --connections "$c" --seconds "$SECONDS_PER_RUN"
    done
    stop_app
fi

if wanted console; then
    # The web console's pages with 10,000 expenses in the organization (docs/benchmarks.md
    # asks under 100 ms each), on PostgreSQL and on the embedded default.
    log "Console pages with 10,000 expenses, PostgreSQL (expensewise serve)"
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres console
    DATABASE=console start_app serve
    "$BIN/loadgen" console --base "$BASE" --events 10000 --samples 50
    stop_app
    log "Console pages with 10,000 expenses, the embedded default (expensewise serve)"
    rm -rf "$BENCH_DIR/data"
    EMBEDDED=1 start_app serve
    "$BIN/loadgen" console --base "$BASE" --events 10000 --samples 50
    stop_app
    rm -rf "$BENCH_DIR/data"
fi

if wanted commands; then
    # Also measured: each created expense's event arriving at a JetStream subscriber of
    # its own while the load runs, and how long after the load every reader (projections,
    # relay, the workers' JetStream consumers) takes to reach the newest event.
    log "Commands with relay, projector and NATS on the same cores (expensewise serve)"
    DATABASE=bench_serve start_app serve
    "$BIN/loadgen" create --base "$BASE" --connections 16 --seconds "$SECONDS_PER_RUN" \
        --nats-url "nats://127.0.0.1:$NATS_PORT" \
        --database-url "postgres://postgres@127.0.0.1:$PG_PORT/bench_serve"
    profile serve "expensewise serve on PostgreSQL + NATS, creates at 16 connections" \
        "$BIN/loadgen" create --base "$BASE" --connections 16 --seconds "$SECONDS_PER_RUN"
    stop_app
fi

if wanted embedded; then
    log "Commands on the embedded default (expensewise serve: SQLite, every role in one process, no NATS)"
    rm -rf "$BENCH_DIR/data"
    EMBEDDED=1 start_app serve
    "$BIN/loadgen" create --base "$BASE" --connections 16 --seconds "$SECONDS_PER_RUN" \
        --database-url "sqlite://$BENCH_DIR/data/expensewise.db"
    "$BIN/loadgen" long-lived --base "$BASE" --connections 16 --seconds "$SECONDS_PER_RUN" --events 1000
    profile embedded "expensewise serve on the embedded default (SQLite), creates at 16 connections" \
        "$BIN/loadgen" create --base "$BASE" --connections 16 --seconds "$SECONDS_PER_RUN"
    profile embedded-edits "expensewise serve on the embedded default (SQLite), edits of 1,000-event expenses at 16 connections" \
        "$BIN/loadgen" long-lived --base "$BASE" --connections 16 --seconds "$SECONDS_PER_RUN" --events 1000
    stop_app
fi

if wanted policy; then
    # What a spend policy costs on the command path (docs/policies.md): creates in an
    # organization without one, then with rules that read the read models (a daily limit,
    # duplicates), twice, interleaved; projections run beside the API (expensewise serve)
    # as the evaluation waits for them. By one person (the worst case: every create waits
    # for the one before), then by 200 people in turn (each creates about every half
    # second: still far more often than people do).
    log "Creates without and with a spend policy (expensewise serve)"
    DATABASE=bench_serve start_app serve
    for _ in 1 2; do
        for people in 0 200; do
            "$BIN/loadgen" create --base "$BASE" --connections 16 --seconds "$SECONDS_PER_RUN" --people "$people"
            "$BIN/loadgen" create --base "$BASE" --connections 16 --seconds "$SECONDS_PER_RUN" --people "$people" --policy limits
        done
    done
    stop_app
fi

if wanted audit; then
    # The audit log (docs/audit-log.md): creates through the API alone, then with the
    # notary beside it on the same cores, twice, interleaved (the machine's speed drifts
    # between runs); how long each event waits to be in a signed checkpoint; then a log of
    # AUDIT_EVENTS events: the notary's catch-up, `audit verify`, and proofs.
    NOTARY_PORT=$(free_port)
    leaves_behind() {
        "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -XAtc \
            "SELECT (SELECT count(*) FROM events) - (SELECT count(*) FROM audit_leaves)" "$1"
    }
    notary_caught_up() {
        for _ in $(seq 1 3600); do
            [ "$(leaves_behind "$1")" = 0 ] && sleep 0.5 && return 0
            sleep 0.2
        done
        echo "the notary did not catch up" >&2
        return 1
    }
    start_notary() {
        app_variables
        env "${APP_VARIABLES[@]}" PORT="$NOTARY_PORT" "$SERVER_BIN" notary >>"$BENCH_DIR/app.log" 2>&1 &
        NOTARY_PID=$!
    }
    stop_notary() {
        kill "$NOTARY_PID" 2>/dev/null || true
        wait "$NOTARY_PID" 2>/dev/null || true
    }
    log "Creates through HTTP on PostgreSQL without and with the notary (expensewise api [+ notary])"
    start_app api
    for round in 1 2; do
        echo "round $round, without the notary:"
        "$BIN/loadgen" create --base "$BASE" --connections 16 --seconds "$SECONDS_PER_RUN"
        start_notary
        notary_caught_up bench
        since=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
        echo "round $round, with the notary:"
        "$BIN/loadgen" create --base "$BASE" --connections 16 --seconds "$SECONDS_PER_RUN"
        notary_caught_up bench
        "$BIN/loadgen" provable --database-url "postgres://postgres@127.0.0.1:$PG_PORT/bench" --since "$since"
        stop_notary
    done
    stop_app
    log "A log of $AUDIT_EVENTS events"
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres auditlog
    "$BIN/loadgen" seed --database-url "postgres://postgres@127.0.0.1:$PG_PORT/auditlog" --events "$AUDIT_EVENTS"
    started=$(date +%s.%N)
    DATABASE=auditlog start_notary
    DATABASE=auditlog notary_caught_up auditlog
    stop_notary
    awk -v s="$started" -v e="$(date +%s.%N)" -v n="$AUDIT_EVENTS" \
        'BEGIN { printf "the notary took in %d events in %.1f s: %.0f events/s\n", n, e - s, n / (e - s) }'
    started=$(date +%s.%N)
    DATABASE=auditlog run_app audit verify
    awk -v s="$started" -v e="$(date +%s.%N)" -v n="$AUDIT_EVENTS" \
        'BEGIN { printf "audit verify: %d events in %.1f s: %.0f events/s\n", n, e - s, n / (e - s) }' 
    "$BIN/loadgen" proofs --database-url "postgres://postgres@127.0.0.1:$PG_PORT/auditlog" --samples 1000
fi

if wanted rebuild; then
    log "Rebuild of $EVENTS events"
    "$BIN/loadgen" seed --database-url "postgres://postgres@127.0.0.1:$PG_PORT/rebuild" --events "$EVENTS"
    DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/rebuild" LOG_LEVEL=warn DATA_DIR="$BENCH_DIR/data" \
        "$SERVER_BIN" projections rebuild expenses
fi

# The OCR benchmarks read with PP-OCR (its models as the product is given them in
# PPOCR_MODELS); OCR_ENGINE=tesseract measures Tesseract instead.
ocr_engine() {
    if [ "${OCR_ENGINE:-ppocr}" = tesseract ]; then
        env -u PPOCR_MODELS "$@"
    else
        PPOCR_MODELS=$PPOCR_TEST_MODELS "$@"
    fi
}

if wanted ocr; then
    log "OCR of the held-out corpus: $RECEIPTS clean, photo-like and PDF receipts each, one core (${OCR_ENGINE:-ppocr})"
    ocr_engine env OMP_THREAD_LIMIT=1 taskset -c 0 "$BIN/ocrbench" --part heldout --receipts "$RECEIPTS"
fi

if wanted strangers; then
    log "OCR of the second corpus's held-out part (tests/support/receipt_strangers.py): $STRANGER_RECEIPTS clean and photographed receipts each, one core"
    ocr_engine env OMP_THREAD_LIMIT=1 taskset -c 0 "$BIN/ocrbench" --corpus strangers --part heldout \
        --receipts "$STRANGER_RECEIPTS" --variants clean,photo
fi
