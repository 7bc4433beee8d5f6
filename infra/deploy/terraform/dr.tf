# The disaster-recovery region (seed: primary us-east-1, DR us-west-2). What a region
# failover needs is kept there continuously: the receipts and the logical dumps, by S3
# replication, and RDS's automated backups with their WAL, by backup replication. The
# cluster and the database are made there only when a failover happens (the runbook,
# docs/operations.md "Region failover"). JetStream is not mirrored: the event store is
# the source of truth, and the relay publishes it all again into a new stream.

provider "aws" {
  alias  = "dr"
  region = var.dr_region

  default_tags {
    tags = local.tags
  }
}

# The DR region's own key. The main key is single-Region and cannot become a multi-Region
# key in place (it would have to be replaced, and everything it encrypts re-encrypted), so
# the replicas are encrypted under a key of their region: S3 and RDS re-encrypt as they
# copy, and a failover does not depend on the primary region's KMS.
resource "aws_kms_key" "dr" {
  provider                = aws.dr
  description             = "${local.name}: replicated receipts, dumps and database backups (DR region)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

resource "aws_kms_alias" "dr" {
  provider      = aws.dr
  name          = "alias/${local.name}-dr"
  target_key_id = aws_kms_key.dr.key_id
}

# The replicas of the receipts and of the dumps. Receipts keep their Object Lock: a
# replica carries the source's retention date, which needs a locked bucket to land in.
resource "aws_s3_bucket" "dr" {
  #checkov:skip=CKV2_AWS_62:Nothing reacts to bucket events: these are copies, read only after a failover
  #checkov:skip=CKV_AWS_144:These are the cross-region replicas themselves
  #checkov:skip=CKV_AWS_18:Replication writes these; nobody else has access to log until a failover, when the DR stack turns logging on
  for_each            = local.replicated
  provider            = aws.dr
  bucket              = "${each.value.source.bucket}-${var.dr_region}"
  object_lock_enabled = each.value.locked
}

locals {
  replicated = {
    receipts = { source = aws_s3_bucket.receipts, locked = true }
    backups  = { source = aws_s3_bucket.backups, locked = false }
  }
}

resource "aws_s3_bucket_versioning" "dr" {
  for_each = local.replicated
  provider = aws.dr
  bucket   = aws_s3_bucket.dr[each.key].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_public_access_block" "dr" {
  for_each                = local.replicated
  provider                = aws.dr
  bucket                  = aws_s3_bucket.dr[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "dr" {
  for_each = local.replicated
  provider = aws.dr
  bucket   = aws_s3_bucket.dr[each.key].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "dr" {
  for_each = local.replicated
  provider = aws.dr
  bucket   = aws_s3_bucket.dr[each.key].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.dr.arn
    }
    bucket_key_enabled = true
  }
}

# The same lifetimes as the sources': replicas do not outlive what they copy by much, and
# replaced versions do not pile up.
resource "aws_s3_bucket_lifecycle_configuration" "dr" {
  for_each = local.replicated
  provider = aws.dr
  bucket   = aws_s3_bucket.dr[each.key].id

  rule {
    id     = "retention"
    status = "Enabled"
    filter {}

    expiration {
      days = each.key == "receipts" ? 3653 : var.logical_backup_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = each.key == "receipts" ? 3653 : 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_policy" "dr" {
  for_each = local.replicated
  provider = aws.dr
  bucket   = aws_s3_bucket.dr[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TLSOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.dr[each.key].arn, "${aws_s3_bucket.dr[each.key].arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

# What S3 replicates as: read the sources' versions (and their locks), decrypt them with
# the main key, write them into the replicas under the DR key.
resource "aws_iam_role" "replication" {
  name = "${local.name}-replication"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "s3.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

data "aws_iam_policy_document" "replication" {
  statement {
    sid       = "ReadTheSources"
    actions   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
    resources = [for r in local.replicated : r.source.arn]
  }
  statement {
    sid       = "ReadTheSourceVersions"
    actions   = ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging", "s3:GetObjectRetention", "s3:GetObjectLegalHold"]
    resources = [for r in local.replicated : "${r.source.arn}/*"]
  }
  statement {
    sid       = "WriteTheReplicas"
    actions   = ["s3:ReplicateObject", "s3:ReplicateTags", "s3:ObjectOwnerOverrideToBucketOwner"]
    resources = [for bucket in aws_s3_bucket.dr : "${bucket.arn}/*"]
  }
  statement {
    sid       = "DecryptTheSources"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
  }
  statement {
    sid       = "EncryptTheReplicas"
    actions   = ["kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.dr.arn]
  }
}

resource "aws_iam_role_policy" "replication" {
  name   = "replicate-to-${var.dr_region}"
  role   = aws_iam_role.replication.id
  policy = data.aws_iam_policy_document.replication.json
}

# Every new version is copied; a delete is not: its delete marker stays in the source, so
# a deletion in the primary region (by mistake, or by an intruder) leaves the replica
# whole.
resource "aws_s3_bucket_replication_configuration" "dr" {
  for_each = local.replicated
  role     = aws_iam_role.replication.arn
  bucket   = each.value.source.id

  rule {
    id     = "to-${var.dr_region}"
    status = "Enabled"
    filter {}

    delete_marker_replication {
      status = "Disabled"
    }
    source_selection_criteria {
      sse_kms_encrypted_objects {
        status = "Enabled"
      }
    }
    destination {
      bucket        = aws_s3_bucket.dr[each.key].arn
      storage_class = "STANDARD"
      encryption_configuration {
        replica_kms_key_id = aws_kms_key.dr.arn
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.all, aws_s3_bucket_versioning.dr]
}

# RDS copies the database's automated backups and its WAL into the DR region as they are
# made: a point-in-time restore there can go to within minutes of the primary's loss.
resource "aws_db_instance_automated_backups_replication" "dr" {
  provider               = aws.dr
  source_db_instance_arn = aws_db_instance.main.arn
  kms_key_id             = aws_kms_key.dr.arn
  retention_period       = var.db_backup_retention_days
}

# The product's secrets (infra/deploy/k8s/base/external-secret.yaml: the database URLs,
# the JWT secret, the master data key, the audit signing key, the SMTP password), kept in
# Secrets Manager with a replica in the DR region. Without the master data key there,
# every name and description in the replicated backups would be unreadable after a
# failover. Terraform makes the secret, operators put its value (`aws secretsmanager
# put-secret-value`), so that no secret ends up in the state. One made by hand before:
# `terraform import aws_secretsmanager_secret.product expensewise/production`.
resource "aws_secretsmanager_secret" "product" {
  #checkov:skip=CKV2_AWS_57:Its values rotate by their own procedures (JWT_PREVIOUS_SECRET, expensewise keys rotate, audit new-key), which a rotation Lambda cannot run
  name                    = "expensewise/${var.environment}"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 30

  replica {
    region     = var.dr_region
    kms_key_id = aws_kms_key.dr.arn
  }
}
