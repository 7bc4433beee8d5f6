#!/usr/bin/env bash
# The second copy (seed section 8): a compressed logical dump of the database — the event
# store with everything beside it — to S3 or a folder, with retention.
#   logical-backup.sh DEST
# DEST: s3://bucket/prefix (uploaded with KMS encryption; the bucket's lifecycle deletes
# old dumps) or a folder (dumps older than RETENTION_DAYS, default 30, are deleted).
# DATABASE_URL (or DATABASE_URL_FILE) names the database. Needs pg_dump (and the aws
# CLI for S3). The primary backup is continuous WAL archiving (RDS PITR, or pgBackRest
# self-hosted); this one survives a mistake in that chain.
set -euo pipefail

dest=${1:?usage: logical-backup.sh s3://bucket/prefix | FOLDER}
if [ -z "${DATABASE_URL:-}" ] && [ -n "${DATABASE_URL_FILE:-}" ]; then
    DATABASE_URL=$(cat "$DATABASE_URL_FILE")
fi
: "${DATABASE_URL:?DATABASE_URL or DATABASE_URL_FILE is required}"
retention_days=${RETENTION_DAYS:-30}

name="expensewise-$(date -u +%Y%m%dT%H%M%SZ).dump"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

started=$(date +%s)
# Custom format: compressed, and pg_restore can restore it table by table. One
# snapshot: the dump is consistent as of its start.
pg_dump --dbname="$DATABASE_URL" --format=custom --compress=9 --no-owner --no-privileges \
    --file="$work/$name"
sha256sum "$work/$name" | awk '{print $1}' >"$work/$name.sha256"
size=$(du -h "$work/$name" | cut -f1)

case "$dest" in
    s3://*)
        aws s3 cp --only-show-errors --sse aws:kms "$work/$name" "${dest%/}/$name"
        aws s3 cp --only-show-errors --sse aws:kms "$work/$name.sha256" "${dest%/}/$name.sha256"
        ;;
    *)
        mkdir -p "$dest"
        mv "$work/$name" "$work/$name.sha256" "$dest/"
        find "$dest" -maxdepth 1 -name 'expensewise-*.dump*' -mtime +"$retention_days" -delete
        ;;
esac
echo "logical backup: ${dest%/}/$name ($size) in $(($(date +%s) - started)) s"
