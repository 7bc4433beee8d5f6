terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # State in S3, locked with S3's own lock file (no DynamoDB table needed). The bucket,
  # key and region come from `terraform init -backend-config=backend.hcl`, per
  # environment (see backend.hcl.example).
  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = local.tags
  }
}
