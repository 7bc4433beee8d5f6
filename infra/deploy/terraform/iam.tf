locals {
  oidc_issuer = replace(aws_iam_openid_connect_provider.cluster.url, "https://", "")
  # The roles pods assume (IRSA), each bound to one service account of the namespace.
  irsa_roles = {
    # The product's pods: the receipts and audit checkpoint buckets and their key, nothing else.
    receipts = var.kubernetes_service_account
    # The nightly logical backup: add dumps to the backups bucket and read them back.
    backups = "${var.kubernetes_service_account}-backup"
  }
  # The roles AWS services assume on our behalf.
  service_roles = {
    eks-cluster    = "eks.amazonaws.com"
    eks-nodes      = "ec2.amazonaws.com"
    flow-logs      = "vpc-flow-logs.amazonaws.com"
    rds-monitoring = "monitoring.rds.amazonaws.com"
  }
}

resource "aws_iam_role" "service" {
  for_each = local.service_roles
  name     = "${local.name}-${each.key}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = each.value }
      # EKS tags its sessions.
      Action = each.key == "eks-cluster" ? ["sts:AssumeRole", "sts:TagSession"] : ["sts:AssumeRole"]
    }]
  })
}

data "aws_iam_policy_document" "irsa_assume" {
  for_each = local.irsa_roles
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.cluster.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.kubernetes_namespace}:${each.value}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "irsa" {
  for_each           = local.irsa_roles
  name               = "${local.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.irsa_assume[each.key].json
}

data "aws_iam_policy_document" "receipts" {
  statement {
    sid       = "ListTheBucket"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.receipts.arn]
  }
  statement {
    sid       = "ReadAndWriteReceipts"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.receipts.arn}/*"]
  }
  statement {
    sid       = "UseTheBucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
  # The notary adds checkpoints and `audit verify` reads them; nothing deletes one.
  statement {
    sid       = "ListTheCheckpoints"
    actions   = ["s3:ListBucket", "s3:GetBucketObjectLockConfiguration"]
    resources = [aws_s3_bucket.audit_checkpoints.arn]
  }
  statement {
    sid       = "AddAndReadCheckpoints"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:PutObjectRetention"]
    resources = ["${aws_s3_bucket.audit_checkpoints.arn}/*"]
  }
}

data "aws_iam_policy_document" "backups" {
  statement {
    sid       = "ListTheBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.backups.arn]
  }
  statement {
    sid       = "WriteAndReadDumps"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.backups.arn}/logical/*"]
  }
  statement {
    sid       = "UseTheBucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "irsa" {
  for_each = {
    receipts = data.aws_iam_policy_document.receipts.json
    backups  = data.aws_iam_policy_document.backups.json
  }
  name   = "${each.key}-bucket"
  role   = aws_iam_role.irsa[each.key].id
  policy = each.value
}
