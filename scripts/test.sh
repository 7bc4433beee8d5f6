#!/usr/bin/env bash
# Runs every check and every test of Expense-Wise, as CI does.
#
#   ./scripts/test.sh           everything: what CI runs
#   ./scripts/test.sh --rust    formatting, lints and the Rust tests
#   ./scripts/test.sh --deploy  the deployment files, the DR drill and the smoke test
#
# Each test binary's results are kept in target/test-results (libtest's result logs) and
# summed up as JUnit XML in target/test-results/junit.xml.
#
# The PostgreSQL tests need a server. With TEST_DATABASE_URL set (an admin connection,
# e.g. postgres://postgres@127.0.0.1:5432/postgres) that server is used; otherwise this
# script starts a throwaway one on a free port of 127.0.0.1 and stops it at the end,
# installing Debian's postgresql package first when no server binaries are found.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

rust=false
deploy=false
[ $# -gt 0 ] || { rust=true; deploy=true; }
for argument in "$@"; do
    case $argument in
        --rust) rust=true ;;
        --deploy) deploy=true ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "unknown option $argument: use --rust, --deploy, or neither for both" >&2
            exit 2
            ;;
    esac
done

install_test_tools
if $rust; then
    install_ocr
    install_ppocr_models
    install_load_balancer
    install_oidc_provider
    install_browser
fi

if [ -z "${TEST_DATABASE_URL:-}" ]; then
    # Durability settings are off: this cluster lives for one test run, and creating a
    # fresh database per test is much faster without fsync.
    PG_OPTIONS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    start_postgres
else
    log "Using PostgreSQL at TEST_DATABASE_URL"
fi

results=target/test-results
passed=0
failed=0
if $rust; then
    log "Formatting (cargo fmt --check)"
    cargo fmt --all -- --check

    log "Building everything, with clippy's lints (warnings fail)"
    # One compilation serves the lints and the tests: clippy-driver compiles the
    # workspace's own crates, as `cargo clippy --all-targets` does, but builds instead of
    # only checking. A separate `cargo clippy` compiled every dependency a second time
    # (checked, then built), which on CI's cold cache took about as long as the build.
    rm -rf "$results"
    mkdir -p "$results"
    RUSTC_WORKSPACE_WRAPPER=clippy-driver \
        cargo build --workspace --all-targets --locked --message-format=json \
        | "$TEST_PYTHON" scripts/test_results.py build >"$results/binaries.tsv"
    # Each binary runs from its package's directory, as `cargo test` runs it. A failed
    # test does not stop the script: the other binaries, the summary and the deployment
    # checks still run, and the exit status says what failed.
    root=$PWD
    while IFS=$'\t' read -r name directory executable; do
        log "Tests: $name"
        status=0
        (cd "$directory" && "$executable" --logfile "$root/$results/$name.log") </dev/null || status=$?
        echo "$status" >"$results/$name.status"
    done <"$results/binaries.tsv"
    read -r passed failed < <("$TEST_PYTHON" scripts/test_results.py junit "$results/junit.xml" "$results")
fi

deploy_status=0
if $deploy; then
    [ -x target/debug/expensewise ] || cargo build --locked -p expensewise-api --bin expensewise
    log "Deployment files, DR drill and smoke test (scripts/validate-deploy.sh)"
    ./scripts/validate-deploy.sh || deploy_status=$?
fi

if $rust; then
    echo
    echo "tests: $passed passed, $failed failed (JUnit: $results/junit.xml)"
    [ "$failed" -eq 0 ] || exit 1
fi
exit "$deploy_status"
