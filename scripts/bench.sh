#!/usr/bin/env bash
# The benchmarks of docs/benchmarks.md: release build, PostgreSQL with its default
# (durable) settings, nats-server with JetStream (sync_interval: always), everything on
# 127.0.0.1, bounded in time. Prints the figures; nothing is written to the repository.
#
#   ./scripts/bench.sh            # all benchmarks (about 5 minutes)
#   SECONDS_PER_RUN=10 EVENTS=200000 ./scripts/bench.sh
#   BENCHMARKS=rebuild ./scripts/bench.sh      # a subset: commands, visibility, rebuild, ocr
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
EVENTS=${EVENTS:-1000000}
BENCHMARKS=${BENCHMARKS:-commands visibility rebuild ocr}
RECEIPTS=${RECEIPTS:-60}
wanted() { [[ " $BENCHMARKS " == *" $1 "* ]]; }

install_test_tools
install_ocr
start_postgres
BENCH_DIR=$(mktemp -d /tmp/expensewise-bench.XXXXXX)
NATS_PORT=$(free_port)
APP_PORT=$(free_port)
printf 'listen: 127.0.0.1:%s\njetstream { store_dir: "%s/nats", sync_interval: always }\n' \
    "$NATS_PORT" "$BENCH_DIR" >"$BENCH_DIR/nats.conf"

cleanup() {
    [ -n "${APP_PID:-}" ] && kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null
    [ -n "${NATS_PID:-}" ] && kill "$NATS_PID" 2>/dev/null && wait "$NATS_PID" 2>/dev/null
    stop_postgres
    rm -rf "$BENCH_DIR"
}
trap cleanup EXIT

log "Building (release)"
cargo build --release --locked -p expensewise-api -p expensewise-tests --bin expensewise --bin loadgen --bin ocrbench
BIN=target/release

PG_PORT=${TEST_DATABASE_URL##*:}
PG_PORT=${PG_PORT%%/*}
"$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres bench
"$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres rebuild

"$NATS_SERVER_BIN" -c "$BENCH_DIR/nats.conf" >"$BENCH_DIR/nats.log" 2>&1 &
NATS_PID=$!

log "Machine"
echo "$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') (default settings), nats-server $("$NATS_SERVER_BIN" --version | awk '{print $2}')"

# The load generator is a handful of users sending far more than a person would: the
# rate limits are raised out of its way (they are measured by tests, not here).
APP_ENV=production JWT_SECRET=bench-secret-bench-secret-bench-secret HOST=127.0.0.1 PORT=$APP_PORT \
    RATE_LIMIT_MAX=1000000000 AUTH_RATE_LIMIT_MAX=1000000000 \
    DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/bench" DATABASE_MAX_CONNECTIONS=32 \
    NATS_URL="nats://127.0.0.1:$NATS_PORT" LOG_LEVEL=warn DATA_DIR="$BENCH_DIR/data" \
    "$BIN/expensewise" serve >"$BENCH_DIR/app.log" 2>&1 &
APP_PID=$!
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$APP_PORT") 2>/dev/null && break
    sleep 0.1
done
BASE="http://127.0.0.1:$APP_PORT"

if wanted commands; then
    log "Commands through HTTP on PostgreSQL"
    for c in 16 64; do
        "$BIN/loadgen" create --base "$BASE" --connections "$c" --seconds "$SECONDS_PER_RUN"
    done
    for c in 16 64; do
        "$BIN/loadgen" long-lived --base "$BASE" --connections "$c" --seconds "$SECONDS_PER_RUN" --events 1000
    done
fi

if wanted visibility; then
    log "Command → visible in the read model, through NATS JetStream"
    "$BIN/loadgen" visibility --base "$BASE" --samples 1000
fi

if wanted rebuild; then
    log "Rebuild of $EVENTS events"
    "$BIN/loadgen" seed --database-url "postgres://postgres@127.0.0.1:$PG_PORT/rebuild" --events "$EVENTS"
    DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/rebuild" LOG_LEVEL=warn DATA_DIR="$BENCH_DIR/data" \
        "$BIN/expensewise" projections rebuild expenses
fi

if wanted ocr; then
    log "OCR of $RECEIPTS clean and $RECEIPTS photo-like receipts, one core (Tesseract $(tesseract --version 2>&1 | head -1 | awk '{print $2}'))"
    OMP_THREAD_LIMIT=1 taskset -c 0 "$BIN/ocrbench" --receipts "$RECEIPTS"
fi
