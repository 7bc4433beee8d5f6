#!/usr/bin/env bash
# Checks before a deployment (seed section 4.2, for this stack). Usage:
#   pre-deploy-check.sh OVERLAY
# OVERLAY: a kustomize overlay with its image already set (kustomize edit set image).
# Needs kubectl with a context for the target cluster. Fails on the first problem.
set -euo pipefail

overlay=${1:?usage: pre-deploy-check.sh OVERLAY}
namespace=${NAMESPACE:-expensewise}
fail() { echo "pre-deploy: $*" >&2; exit 1; }

echo "pre-deploy: rendering $overlay"
rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
kubectl kustomize "$overlay" >"$rendered" || fail "the overlay does not render"

# 1. The image is a release: a fixed tag or digest, the same for every role.
images=$(grep -E '^\s+image: ' "$rendered" | awk '{print $2}' | sort -u)
[ "$(echo "$images" | wc -l)" -eq 1 ] || fail "roles would run different images: $images"
case "$images" in
    *:latest | *:dev | "") fail "the image '$images' is not a release tag" ;;
esac
echo "pre-deploy: image $images"

# 2. The cluster is reachable and we may change what the deployment changes.
kubectl version >/dev/null || fail "the cluster does not answer"
for verb_resource in "create deployments" "patch deployments" "create jobs" "delete jobs"; do
    # shellcheck disable=SC2086
    kubectl auth can-i $verb_resource -n "$namespace" >/dev/null \
        || fail "not allowed to $verb_resource in $namespace"
done

# 3. The cluster accepts every object (schemas, admission, Pod Security "restricted").
kubectl apply --server-side --dry-run=server -f "$rendered" >/dev/null \
    || fail "the cluster refuses the rendered objects"

# 4. The secrets the pods mount exist (from the secret store) with every key.
for key in DATABASE_URL JWT_SECRET DATA_KEY SMTP_PASSWORD; do
    kubectl -n "$namespace" get secret expensewise-secrets -o "jsonpath={.data.$key}" | grep -q . \
        || fail "secret expensewise-secrets has no $key"
done

# 5. NATS, which every role needs, is up.
kubectl -n nats rollout status statefulset/nats --timeout=60s >/dev/null \
    || fail "NATS is not ready"

echo "pre-deploy: all checks passed"
