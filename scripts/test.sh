#!/usr/bin/env bash
# Runs every check and every test of Expense-Wise, as CI does.
#
# The PostgreSQL tests need a server. With TEST_DATABASE_URL set (an admin connection,
# e.g. postgres://postgres@127.0.0.1:5432/postgres) that server is used; otherwise this
# script starts a throwaway one on a free port of 127.0.0.1 and stops it at the end,
# installing Debian's postgresql package first when no server binaries are found.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

install_test_tools
install_ocr
install_load_balancer

if [ -z "${TEST_DATABASE_URL:-}" ]; then
    # Durability settings are off: this cluster lives for one test run, and creating a
    # fresh database per test is much faster without fsync.
    PG_OPTIONS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    start_postgres
else
    log "Using PostgreSQL at TEST_DATABASE_URL"
fi

log "Formatting (cargo fmt --check)"
cargo fmt --all -- --check

log "Lints (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "Tests"
# The crash tests run the binary as separate processes; `cargo test` alone does not
# build it.
cargo build --locked -p expensewise-api --bin expensewise
results=$(mktemp)
# Failed tests must not stop the script here: the summary and the deployment checks
# still run, and the exit status says what failed.
set +e
cargo test --workspace --all-targets --locked 2>&1 | tee "$results"
status=${PIPESTATUS[0]}
set -e
read -r passed failed < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } } END { print p + 0, f + 0 }' "$results")
rm -f "$results"

log "Deployment files, DR drill and smoke test (scripts/validate-deploy.sh)"
deploy_status=0
./scripts/validate-deploy.sh || deploy_status=$?

echo
echo "tests: $passed passed, $failed failed"
[ "$status" -eq 0 ] || exit "$status"
exit "$deploy_status"
