# Receipt files: versioned, encrypted with the key, never public; to Glacier after 90
# days and deleted after 7 years (the retention finance records need). Versions that
# were replaced or deleted follow the same rule, or versioning would keep them forever.
resource "aws_s3_bucket" "receipts" {
  #checkov:skip=CKV2_AWS_62:Nothing reacts to bucket events: the product records every receipt it stores as an event of its own
  #checkov:skip=CKV_AWS_144:Receipts stay in one region (data residency); S3 keeps them across three zones and versioning keeps every version. Add a replication rule where a second region is wanted
  bucket = var.receipts_bucket_name
}

resource "aws_s3_bucket_versioning" "receipts" {
  bucket = aws_s3_bucket.receipts.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "receipts" {
  bucket = aws_s3_bucket.receipts.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "receipts" {
  bucket                  = aws_s3_bucket.receipts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "receipts" {
  bucket = aws_s3_bucket.receipts.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
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
      days = 2555
    }
    noncurrent_version_transition {
      noncurrent_days = 90
      storage_class   = "GLACIER"
    }
    noncurrent_version_expiration {
      noncurrent_days = 2555
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_s3_bucket_logging" "receipts" {
  bucket        = aws_s3_bucket.receipts.id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "receipts/"
}

resource "aws_s3_bucket_policy" "receipts" {
  bucket = aws_s3_bucket.receipts.id
  policy = local.tls_only_policy["receipts"]
}

# The logical dumps of the event store (infra/deploy/backup): the second copy beside
# RDS's point-in-time recovery, kept logical_backup_retention_days.
resource "aws_s3_bucket" "backups" {
  #checkov:skip=CKV2_AWS_62:Nothing reacts to bucket events: the product records every receipt it stores as an event of its own
  #checkov:skip=CKV_AWS_144:The dumps are the second copy beside RDS point-in-time recovery; they stay in the region (data residency). Add a replication rule where a second region is wanted
  bucket = var.backups_bucket_name
}

resource "aws_s3_bucket_versioning" "backups" {
  bucket = aws_s3_bucket.backups.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "backups" {
  bucket = aws_s3_bucket.backups.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "backups" {
  bucket                  = aws_s3_bucket.backups.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "backups" {
  bucket = aws_s3_bucket.backups.id

  rule {
    id     = "retention"
    status = "Enabled"
    filter {}

    expiration {
      days = var.logical_backup_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_logging" "backups" {
  bucket        = aws_s3_bucket.backups.id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "backups/"
}

resource "aws_s3_bucket_policy" "backups" {
  bucket = aws_s3_bucket.backups.id
  policy = local.tls_only_policy["backups"]
}

# Server access logs of the two buckets above.
resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV2_AWS_62:Nothing reacts to bucket events: the product records every receipt it stores as an event of its own
  #checkov:skip=CKV_AWS_144:Access logs are not worth a second region
  #checkov:skip=CKV_AWS_145:S3 server access logging delivers only to buckets encrypted with S3-managed keys (SSE-S3)
  bucket = "${var.receipts_bucket_name}-access-logs"
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

# S3 server access logging delivers only to buckets encrypted with S3-managed keys.
resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    id     = "retention"
    status = "Enabled"
    filter {}

    expiration {
      days = 365
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

locals {
  # Refuse any request that does not use TLS.
  tls_only_policy = {
    for name, bucket in { receipts = aws_s3_bucket.receipts, backups = aws_s3_bucket.backups } :
    name => jsonencode({
      Version = "2012-10-17"
      Statement = [{
        Sid       = "TLSOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [bucket.arn, "${bucket.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      }]
    })
  }
}
