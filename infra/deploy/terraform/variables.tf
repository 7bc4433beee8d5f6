variable "aws_region" {
  description = "AWS region"
  type        = string
  default     = "us-east-1"
}

variable "dr_region" {
  description = "The disaster-recovery region: receipts, dumps and database backups are replicated there"
  type        = string
  default     = "us-west-2"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.dr_region))
    error_message = "dr_region: an AWS region name, such as us-west-2."
  }
}

variable "environment" {
  description = "Environment name (production, staging)"
  type        = string
  default     = "production"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.environment))
    error_message = "environment: lower-case letters, digits and dashes, 2 to 21 characters."
  }
}

variable "vpc_cidr" {
  description = "The VPC's address range"
  type        = string
  default     = "10.0.0.0/16"
}

variable "availability_zones" {
  description = "Three availability zones of the region"
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b", "us-east-1c"]

  validation {
    condition     = length(var.availability_zones) == 3
    error_message = "availability_zones: exactly three, one subnet of each kind in each."
  }
}

variable "cluster_version" {
  description = "Kubernetes version of the EKS cluster"
  type        = string
  default     = "1.33"
}

variable "cluster_admin_cidrs" {
  description = "Addresses allowed to reach the cluster's public API endpoint (the CI runners, the operators' VPN)"
  type        = list(string)
  default     = []
}

variable "general_instance_types" {
  description = "Instance types of the general node group (API, relay, projector)"
  type        = list(string)
  default     = ["t3.medium"]
}

variable "worker_instance_types" {
  description = "Instance types of the worker node group (OCR and email workers; spot)"
  type        = list(string)
  default     = ["t3.large", "t3a.large"]
}

variable "db_instance_class" {
  description = "RDS instance class"
  type        = string
  default     = "db.t3.medium"
}

variable "db_allocated_storage" {
  description = "Initial database storage in GiB (grows automatically up to db_max_allocated_storage)"
  type        = number
  default     = 100
}

variable "db_max_allocated_storage" {
  description = "Largest the database storage may grow to, in GiB"
  type        = number
  default     = 500
}

variable "db_backup_retention_days" {
  description = "Days of automated backups and point-in-time recovery"
  type        = number
  default     = 30

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days: between 7 and 35 (RDS's limit)."
  }
}

variable "db_read_replicas" {
  description = "Streaming read replicas of the database, for the API's queries (DATABASE_READ_URL)"
  type        = number
  default     = 1

  validation {
    condition     = var.db_read_replicas >= 0 && var.db_read_replicas <= 5
    error_message = "db_read_replicas: between 0 and 5 (RDS's limit for PostgreSQL)."
  }
}

variable "audit_checkpoints_bucket_name" {
  description = "Name of the bucket of the audit log's signed checkpoints (globally unique)"
  type        = string
  default     = "expensewise-production-audit-checkpoints"
}

variable "receipts_bucket_name" {
  description = "Name of the receipts bucket (globally unique)"
  type        = string
  default     = "expensewise-production-receipts"
}

variable "backups_bucket_name" {
  description = "Name of the bucket for the logical dumps of the event store (the second copy)"
  type        = string
  default     = "expensewise-production-backups"
}

variable "logical_backup_retention_days" {
  description = "Days the logical dumps are kept"
  type        = number
  default     = 90
}

variable "kubernetes_namespace" {
  description = "Namespace of the product's pods (infra/deploy/k8s)"
  type        = string
  default     = "expensewise"
}

variable "kubernetes_service_account" {
  description = "Service account the product's pods run as"
  type        = string
  default     = "expensewise"
}
