# `terraform test`, offline: the AWS provider is mocked, so nothing is created; the
# assertions hold the properties the runbook and the issue promise.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_resource "aws_eks_cluster" {
    defaults = {
      identity = [{ oidc = [{ issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF" }] }]
    }
  }
  mock_resource "aws_iam_openid_connect_provider" {
    defaults = {
      arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF"
      url = "https://oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF"
    }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mocked" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:us-east-1:123456789012:log-group:mocked" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000" }
  }
  mock_resource "aws_db_instance" {
    defaults = {
      arn                = "arn:aws:rds:us-east-1:123456789012:db:expensewise-production"
      master_user_secret = [{ secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds" }]
    }
  }
}

# The DR region's provider (dr.tf), mocked the same way.
mock_provider "aws" {
  alias = "dr"
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:us-west-2:123456789012:key/11111111-1111-1111-1111-111111111111" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::replica" }
  }
}

# Distinct bucket names, so that a role reaching into another bucket is caught.
override_resource {
  target = aws_s3_bucket.receipts
  values = { arn = "arn:aws:s3:::receipts" }
}
override_resource {
  target = aws_s3_bucket.backups
  values = { arn = "arn:aws:s3:::backups" }
}
override_resource {
  target = aws_s3_bucket.audit_checkpoints
  values = { arn = "arn:aws:s3:::audit-checkpoints" }
}
override_resource {
  target = aws_s3_bucket.access_logs
  values = { arn = "arn:aws:s3:::access-logs" }
}

run "production" {
  command = apply

  assert {
    condition     = aws_db_instance.main.multi_az && aws_db_instance.main.deletion_protection
    error_message = "The database must be multi-AZ and protected from deletion."
  }
  assert {
    condition     = aws_db_instance.main.backup_retention_period >= 7 && aws_db_instance.main.storage_encrypted
    error_message = "The database needs automated backups (point-in-time recovery) and encryption."
  }
  assert {
    condition     = !aws_db_instance.main.publicly_accessible
    error_message = "The database must not be reachable from the internet."
  }
  assert {
    condition = length(aws_db_instance.replica) == 1 && alltrue([
      for replica in aws_db_instance.replica :
      replica.replicate_source_db == aws_db_instance.main.identifier && replica.storage_encrypted && !replica.publicly_accessible
    ])
    error_message = "One encrypted, private streaming replica of the database by default, for the API's queries."
  }
  assert {
    condition = alltrue([
      aws_s3_bucket_public_access_block.all["receipts"].block_public_acls,
      aws_s3_bucket_public_access_block.all["receipts"].block_public_policy,
      aws_s3_bucket_public_access_block.all["receipts"].ignore_public_acls,
      aws_s3_bucket_public_access_block.all["receipts"].restrict_public_buckets,
    ])
    error_message = "Receipts must never be public."
  }
  assert {
    condition     = aws_s3_bucket_versioning.all["receipts"].versioning_configuration[0].status == "Enabled"
    error_message = "The receipts bucket must be versioned."
  }
  assert {
    condition = length(aws_s3_bucket_replication_configuration.dr) == 2 && alltrue([
      for name, replication in aws_s3_bucket_replication_configuration.dr :
      replication.rule[0].status == "Enabled" && replication.rule[0].destination[0].bucket == aws_s3_bucket.dr[name].arn && replication.rule[0].destination[0].encryption_configuration[0].replica_kms_key_id == aws_kms_key.dr.arn
    ])
    error_message = "Receipts and dumps are replicated to the DR region, encrypted under its own key."
  }
  assert {
    condition = alltrue([
      for replication in aws_s3_bucket_replication_configuration.dr :
      replication.rule[0].delete_marker_replication[0].status == "Disabled"
    ])
    error_message = "Deletes are not replicated: a deletion in the primary region leaves the replica whole."
  }
  assert {
    condition     = aws_s3_bucket.dr["receipts"].object_lock_enabled && aws_s3_bucket_versioning.dr["receipts"].versioning_configuration[0].status == "Enabled"
    error_message = "The receipts' replica is versioned and locked, so that replicated retention dates hold there too."
  }
  assert {
    condition     = aws_db_instance_automated_backups_replication.dr.source_db_instance_arn == aws_db_instance.main.arn && aws_db_instance_automated_backups_replication.dr.kms_key_id == aws_kms_key.dr.arn
    error_message = "The database's automated backups are replicated to the DR region."
  }
  assert {
    condition     = one(aws_secretsmanager_secret.product.replica).region == var.dr_region
    error_message = "The product's secrets, the master data key among them, have a replica in the DR region."
  }
  assert {
    condition     = aws_db_instance_automated_backups_replication.dr.retention_period == var.db_backup_retention_days
    error_message = "The DR region keeps the backups as long as the primary does."
  }
  assert {
    condition     = aws_s3_bucket.audit_checkpoints.object_lock_enabled
    error_message = "The audit checkpoints bucket must lock its objects, so that no signed root can be rewritten."
  }
  assert {
    condition     = one(aws_s3_bucket_lifecycle_configuration.receipts.rule[0].transition).days == 90 && one(aws_s3_bucket_lifecycle_configuration.receipts.rule[0].transition).storage_class == "GLACIER"
    error_message = "Receipts go to Glacier after 90 days."
  }
  assert {
    condition     = aws_s3_bucket.receipts.object_lock_enabled == true
    error_message = "The receipts bucket has Object Lock: the product locks each receipt for its retention and refuses a bucket without it."
  }
  assert {
    condition     = one(aws_s3_bucket_lifecycle_configuration.receipts.rule[0].expiration).days == 3653
    error_message = "Receipts expire after 10 years, past the longest lock (the end of the year plus 8 years)."
  }
  assert {
    condition     = one(aws_s3_bucket_lifecycle_configuration.receipts.rule[0].noncurrent_version_expiration).noncurrent_days == 3653 && one(aws_s3_bucket_lifecycle_configuration.receipts.rule[0].noncurrent_version_transition).noncurrent_days == 90
    error_message = "Replaced and deleted versions follow the same lifecycle, or versioning keeps them forever."
  }
  assert {
    condition     = one(aws_s3_bucket_server_side_encryption_configuration.all["receipts"].rule).apply_server_side_encryption_by_default[0].sse_algorithm == "aws:kms"
    error_message = "Receipts are encrypted with the KMS key."
  }
  assert {
    condition     = aws_eks_node_group.main["general"].capacity_type == "ON_DEMAND" && aws_eks_node_group.main["workers"].capacity_type == "SPOT"
    error_message = "Two node groups: on-demand general, spot workers."
  }
  assert {
    condition     = one(aws_eks_node_group.main["workers"].taint).key == "workload"
    error_message = "The worker nodes are tainted for background work."
  }
  assert {
    condition     = !aws_eks_cluster.main.vpc_config[0].endpoint_public_access
    error_message = "Without admin addresses the cluster API is private."
  }
}

run "the_pods_role_touches_only_the_receipts_and_checkpoints_buckets" {
  command = apply

  assert {
    condition = alltrue(flatten([
      for statement in data.aws_iam_policy_document.receipts.statement : [
        for resource in statement.resources :
        startswith(resource, aws_s3_bucket.receipts.arn) || startswith(resource, aws_s3_bucket.audit_checkpoints.arn) || resource == aws_kms_key.main.arn
      ]
    ]))
    error_message = "The pods' role may use the receipts and audit checkpoints buckets and their key only."
  }
  assert {
    condition = alltrue(flatten([
      for statement in data.aws_iam_policy_document.receipts.statement : [
        for action in statement.actions : !(strcontains(action, "Delete") && anytrue([for resource in statement.resources : startswith(resource, aws_s3_bucket.audit_checkpoints.arn)]))
      ]
    ]))
    error_message = "Nothing of the product may delete a signed checkpoint."
  }
  assert {
    condition     = one([for c in data.aws_iam_policy_document.irsa_assume["receipts"].statement[0].condition : c.values[0] if endswith(c.variable, ":sub")]) == "system:serviceaccount:expensewise:expensewise"
    error_message = "Only the expensewise service account may assume the role."
  }
  assert {
    condition = alltrue(flatten([
      for statement in data.aws_iam_policy_document.backups.statement : [
        for resource in statement.resources :
        startswith(resource, aws_s3_bucket.backups.arn) || resource == aws_kms_key.main.arn
      ]
    ]))
    error_message = "The backup's role may use the backups bucket and its key only."
  }
}

run "admin_addresses_open_the_public_endpoint_to_them_only" {
  command = plan

  variables {
    cluster_admin_cidrs = ["203.0.113.0/24"]
  }

  assert {
    condition     = aws_eks_cluster.main.vpc_config[0].endpoint_public_access && contains(aws_eks_cluster.main.vpc_config[0].public_access_cidrs, "203.0.113.0/24") && length(aws_eks_cluster.main.vpc_config[0].public_access_cidrs) == 1
    error_message = "The public endpoint opens to the listed addresses only."
  }
}

run "a_retention_rds_cannot_keep_is_refused" {
  command = plan

  variables {
    db_backup_retention_days = 1
  }

  expect_failures = [var.db_backup_retention_days]
}
