# Receipt files: versioned, encrypted with the key, never public; to Glacier after 90
# days. The product locks each file with S3 Object Lock until the end of its year plus
# RECEIPT_RETENTION_YEARS (8 by default: booking vouchers, §147 AO), so the bucket has
# Object Lock enabled (it can only be enabled when the bucket is made) and lifecycle
# expiry comes after the longest lock: 10 years. Versions that were replaced or deleted
# follow the same rule, or versioning would keep them forever.
resource "aws_s3_bucket" "receipts" {
  #checkov:skip=CKV2_AWS_62:Nothing reacts to bucket events: the product records every receipt it stores as an event of its own
  bucket              = var.receipts_bucket_name
  object_lock_enabled = true
}

resource "aws_s3_bucket_lifecycle_configuration" "receipts" {
  bucket = aws_s3_bucket.receipts.id

  rule {
    id     = "archive-then-expire"
    status = "Enabled"
    filter {}

    transition {
      days          = 90
      storage_class = "GLACIER"
    }
    expiration {
      days = 3653
    }
    noncurrent_version_transition {
      noncurrent_days = 90
      storage_class   = "GLACIER"
    }
    noncurrent_version_expiration {
      noncurrent_days = 3653
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

# The logical dumps of the event store (infra/deploy/backup): the second copy beside
# RDS's point-in-time recovery, kept logical_backup_retention_days.
resource "aws_s3_bucket" "backups" {
  #checkov:skip=CKV2_AWS_62:Nothing reacts to bucket events: the product records every receipt it stores as an event of its own
  bucket = var.backups_bucket_name
}

# The audit log's signed checkpoints (docs/audit-log.md): the notary writes each one
# locked in compliance mode for AUDIT_CHECKPOINT_RETENTION_YEARS (10), so that nobody —
# the account's administrators included — can rewrite the history's signed roots.
resource "aws_s3_bucket" "audit_checkpoints" {
  #checkov:skip=CKV2_AWS_62:Nothing reacts to bucket events: `expensewise audit verify` reads the checkpoints
  #checkov:skip=CKV_AWS_144:Checkpoints stay in the region (data residency); a copy is kept in the database as well
  bucket              = var.audit_checkpoints_bucket_name
  object_lock_enabled = true
}

# Server access logs of the buckets above.
resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV2_AWS_62:Nothing reacts to bucket events: the product records every receipt it stores as an event of its own
  #checkov:skip=CKV_AWS_144:Access logs are not worth a second region
  #checkov:skip=CKV_AWS_145:S3 server access logging delivers only to buckets encrypted with S3-managed keys (SSE-S3)
  bucket = "${var.receipts_bucket_name}-access-logs"
}

locals {
  buckets = {
    receipts          = aws_s3_bucket.receipts
    backups           = aws_s3_bucket.backups
    audit_checkpoints = aws_s3_bucket.audit_checkpoints
    access_logs       = aws_s3_bucket.access_logs
  }
  # How long the backups and the access logs keep current and replaced objects.
  retention = {
    backups     = { bucket = aws_s3_bucket.backups, days = var.logical_backup_retention_days, noncurrent_days = 7 }
    access_logs = { bucket = aws_s3_bucket.access_logs, days = 365, noncurrent_days = 30 }
    # Past the checkpoints' lock (AUDIT_CHECKPOINT_RETENTION_YEARS, 10 by default).
    audit_checkpoints = { bucket = aws_s3_bucket.audit_checkpoints, days = 3660, noncurrent_days = 3660 }
  }
}

# Every bucket: versioned, private, owned by this account, TLS only, and (but the logs)
# encrypted with the key and logged.
resource "aws_s3_bucket_versioning" "all" {
  for_each = local.buckets
  bucket   = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_public_access_block" "all" {
  for_each                = local.buckets
  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "all" {
  for_each = local.buckets
  bucket   = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "all" {
  for_each = local.buckets
  bucket   = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      # S3 server access logging delivers only to buckets encrypted with S3-managed keys.
      sse_algorithm     = each.key == "access_logs" ? "AES256" : "aws:kms"
      kms_master_key_id = each.key == "access_logs" ? null : aws_kms_key.main.arn
    }
    bucket_key_enabled = each.key != "access_logs"
  }
}

resource "aws_s3_bucket_logging" "all" {
  for_each      = { for name, bucket in local.buckets : name => bucket if name != "access_logs" }
  bucket        = each.value.id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "${each.key}/"
}

resource "aws_s3_bucket_lifecycle_configuration" "retention" {
  for_each = local.retention
  bucket   = each.value.bucket.id

  rule {
    id     = "retention"
    status = "Enabled"
    filter {}

    expiration {
      days = each.value.days
    }
    noncurrent_version_expiration {
      noncurrent_days = each.value.noncurrent_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_policy" "all" {
  for_each = local.buckets
  bucket   = each.value.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [{
        Sid       = "TLSOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [each.value.arn, "${each.value.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      }],
      # With object ownership enforced, S3 delivers access logs under this grant.
      each.key != "access_logs" ? [] : [{
        Sid       = "S3ServerAccessLogs"
        Effect    = "Allow"
        Principal = { Service = "logging.s3.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "${each.value.arn}/*"
        Condition = { StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id } }
      }]
    )
  })
}
