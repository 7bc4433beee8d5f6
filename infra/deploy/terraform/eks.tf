resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.service["eks-cluster"].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

resource "aws_cloudwatch_log_group" "cluster" {
  name              = "/aws/eks/${local.name}/cluster"
  retention_in_days = 365
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_eks_cluster" "main" {
  name     = local.name
  version  = var.cluster_version
  role_arn = aws_iam_role.service["eks-cluster"].arn

  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  vpc_config {
    subnet_ids              = aws_subnet.private[*].id
    endpoint_private_access = true
    # The public endpoint only for the listed addresses (CI, operators); with none,
    # the API is reachable from inside the VPC only.
    endpoint_public_access = length(var.cluster_admin_cidrs) > 0
    public_access_cidrs    = length(var.cluster_admin_cidrs) > 0 ? var.cluster_admin_cidrs : null
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = aws_kms_key.main.arn
    }
  }

  access_config {
    authentication_mode = "API"
  }

  depends_on = [aws_iam_role_policy_attachment.cluster, aws_cloudwatch_log_group.cluster]
}

# IRSA: pods exchange their service account token for an IAM role.
resource "aws_iam_openid_connect_provider" "cluster" {
  url            = aws_eks_cluster.main.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]
}

resource "aws_iam_role_policy_attachment" "nodes" {
  for_each = toset([
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
  ])
  role       = aws_iam_role.service["eks-nodes"].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/${each.value}"
}

# The seed's two node groups: on-demand nodes for the API, relay and projector; spot
# nodes, tainted, for the background workers that tolerate the taint.
locals {
  node_groups = {
    general = {
      instance_types = var.general_instance_types
      capacity_type  = "ON_DEMAND"
      size           = { desired = 3, min = 3, max = 10 }
      label          = "general"
      taints         = []
    }
    workers = {
      instance_types = var.worker_instance_types
      capacity_type  = "SPOT"
      size           = { desired = 2, min = 2, max = 5 }
      label          = "worker"
      taints         = [{ key = "workload", value = "background", effect = "NO_SCHEDULE" }]
    }
  }
}

resource "aws_eks_node_group" "main" {
  for_each        = local.node_groups
  cluster_name    = aws_eks_cluster.main.name
  node_group_name = each.key
  node_role_arn   = aws_iam_role.service["eks-nodes"].arn
  subnet_ids      = aws_subnet.private[*].id
  instance_types  = each.value.instance_types
  capacity_type   = each.value.capacity_type

  scaling_config {
    desired_size = each.value.size.desired
    min_size     = each.value.size.min
    max_size     = each.value.size.max
  }

  update_config {
    max_unavailable = 1
  }

  labels = { role = each.value.label }

  dynamic "taint" {
    for_each = each.value.taints
    content {
      key    = taint.value.key
      value  = taint.value.value
      effect = taint.value.effect
    }
  }

  depends_on = [aws_iam_role_policy_attachment.nodes]

  # The cluster autoscaler owns the current size.
  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }
}
