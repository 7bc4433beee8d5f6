output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name ...)"
  value       = aws_eks_cluster.main.name
}

output "cluster_endpoint" {
  description = "EKS API endpoint"
  value       = aws_eks_cluster.main.endpoint
}

output "database_endpoint" {
  description = "PostgreSQL host:port, for DATABASE_URL"
  value       = aws_db_instance.main.endpoint
}

output "database_replica_endpoints" {
  description = "PostgreSQL host:port of each read replica, for DATABASE_READ_URL"
  value       = aws_db_instance.replica[*].endpoint
}

output "database_master_secret_arn" {
  description = "Secrets Manager secret holding the database master password"
  value       = aws_db_instance.main.master_user_secret[0].secret_arn
}

output "receipts_bucket" {
  description = "AWS_S3_BUCKET"
  value       = aws_s3_bucket.receipts.id
}

output "backups_bucket" {
  description = "Where infra/deploy/backup/logical-backup.sh writes the event store's dumps"
  value       = aws_s3_bucket.backups.id
}

output "receipts_role_arn" {
  description = "Annotate the expensewise service account with this (eks.amazonaws.com/role-arn)"
  value       = aws_iam_role.irsa["receipts"].arn
}

output "kms_key_arn" {
  description = "The key that encrypts the cluster's secrets, the database, the buckets and the logs"
  value       = aws_kms_key.main.arn
}

output "backups_role_arn" {
  description = "Annotate the expensewise-backup service account with this (eks.amazonaws.com/role-arn)"
  value       = aws_iam_role.irsa["backups"].arn
}

output "dr_buckets" {
  description = "The DR region's replicas of the receipts and of the dumps (AWS_S3_BUCKET after a failover)"
  value       = { for name, bucket in aws_s3_bucket.dr : name => bucket.id }
}

output "dr_kms_key_arn" {
  description = "The DR region's key: the replicas, the replicated database backups, and KMS_KEY_ID's home after a failover"
  value       = aws_kms_key.dr.arn
}

output "dr_database_backups_arn" {
  description = "The replicated automated backups, for restore-db-instance-to-point-in-time in the DR region"
  value       = aws_db_instance_automated_backups_replication.dr.id
}
