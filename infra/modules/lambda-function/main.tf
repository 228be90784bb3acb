# One baton Lambda function: provided.al2023 `bootstrap` from a zip (local or
# versioned S3), its log group and its execution role (iam.tf). Called by
# worker-function and router-function, which add their trigger (SQS event
# source mapping, Function URL) and their own grants.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  # `name` works on provider 5.x and 6.x (6.x adds `region` and warns that
  # `name` is deprecated); the worker still allows 5.x.
  region = data.aws_region.current.name

  use_s3_package = var.package_s3_bucket != null

  # SSM parameter names are NAMES (the code reads the values at start-up);
  # their ARNs carry this account's id, never a wildcard account.
  ssm_parameter_arns = [
    for name in var.ssm_parameter_names :
    "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${name}"
  ]

  environment = merge(
    var.environment,
    { RUST_LOG = var.log_level },
    var.extra_environment,
  )
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention is an input (var.log_retention_days, default 30 days): chat-ops logs carry Slack user ids and command text, and a year of them is a cost and privacy choice for the operator, not a default.
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:A function DLQ keeps failed async invocations. The router is invoked synchronously through its Function URL; the worker synchronously by its SQS event source mapping (failed commands go to the queue's own DLQ, redrive maxReceiveCount 5) and asynchronously only by its reconciler schedule, whose input is the constant {"action": "reconcile"} and whose next pass redoes a failed one: a DLQ would collect copies of that constant. Any other async caller of this module must add one first.
  #checkov:skip=CKV_AWS_117:No VPC: the functions talk only to public AWS endpoints (SQS, SSM, DynamoDB), Slack and GitHub; a VPC would add endpoints or a NAT gateway and nothing to protect.
  #checkov:skip=CKV_AWS_173:The environment holds no secrets, only names (table, queue URL, SSM parameter names, flags); the secrets are SecureString parameters read at start-up. Lambda encrypts the environment at rest with its service key.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile the deploy pipeline does not have; the zip's integrity is pinned by source_code_hash (local file) or the S3 object version.
  function_name = var.function_name
  description   = var.description
  role          = aws_iam_role.this.arn

  runtime       = "provided.al2023"
  architectures = [var.architecture]
  handler       = "bootstrap"

  filename          = local.use_s3_package ? null : var.package_path
  source_code_hash  = local.use_s3_package || var.package_path == null ? null : filebase64sha256(var.package_path)
  s3_bucket         = var.package_s3_bucket
  s3_key            = var.package_s3_key
  s3_object_version = var.package_s3_object_version

  timeout                        = var.timeout
  memory_size                    = var.memory_size
  reserved_concurrent_executions = var.reserved_concurrency

  environment {
    variables = local.environment
  }

  tracing_config {
    mode = var.tracing_enabled ? "Active" : "PassThrough"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = local.use_s3_package ? var.package_s3_key != null : var.package_path != null
      error_message = "Set package_path (the zip from `make package`), or package_s3_bucket with package_s3_key."
    }
  }

  # The role must hold all its grants (the caller's included: they are in the
  # same inline policy) and the log group must exist, with its retention,
  # before the first invocation. Triggers the callers attach to function_arn
  # or function_name therefore come after the policy too.
  depends_on = [aws_iam_role_policy.this, aws_cloudwatch_log_group.this]
}
