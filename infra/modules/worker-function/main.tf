# baton-worker: consumes the FIFO command queue, takes/releases locks in
# DynamoDB, dispatches GitHub workflows and answers in Slack.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  # `name` works on provider 5.x and 6.x (6.x adds `region` and deprecates `name`).
  region = data.aws_region.current.name

  use_s3_package = var.package_s3_bucket != null

  # SSM parameter names are NAMES (the code reads the values at start-up);
  # their ARNs carry this account's id, never a wildcard account.
  ssm_parameter_names = [var.slack_bot_token_param, var.github_token_param]
  ssm_parameter_arns = [
    for name in local.ssm_parameter_names :
    "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${name}"
  ]

  environment = merge(
    {
      BATON_TABLE             = var.table_name
      SLACK_BOT_TOKEN_PARAM   = var.slack_bot_token_param
      GITHUB_TOKEN_PARAM      = var.github_token_param
      ENABLE_DISTRIBUTED_LOCK = var.enable_distributed_lock ? "true" : "false"
      # The queue's redrive maxReceiveCount: the worker knows a receive is
      # the last one before the DLQ.
      BATON_MAX_RECEIVES = tostring(var.queue_max_receive_count)
      RUST_LOG           = var.log_level
    },
    var.config_path == null ? {} : { BATON_CONFIG = var.config_path },
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
  #checkov:skip=CKV_AWS_116:Only invoked synchronously by the SQS event source mapping; failed commands go to the queue's own DLQ (redrive maxReceiveCount 5), a function DLQ applies to async invocations only.
  #checkov:skip=CKV_AWS_117:No VPC: the worker talks only to public AWS endpoints, Slack and GitHub; a VPC would add a NAT gateway and nothing to protect.
  #checkov:skip=CKV_AWS_173:The environment holds no secrets, only names (table, SSM parameter names, flags); the secrets are SecureString parameters read at start-up. Lambda encrypts the environment at rest with its service key.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile the deploy pipeline does not have; the zip's integrity is pinned by source_code_hash (local file) or the S3 object version.
  function_name = var.function_name
  description   = "baton worker: runs /build and /deploy commands under a DynamoDB lock"
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

  # The role must be able to write logs (and the log group must exist, with
  # its retention) before the first invocation.
  depends_on = [aws_iam_role_policy.this, aws_cloudwatch_log_group.this]
}

resource "aws_lambda_event_source_mapping" "commands" {
  event_source_arn = var.queue_arn
  function_name    = aws_lambda_function.this.arn
  enabled          = var.event_source_enabled

  # FIFO queues allow at most 10 per batch. The handler reports failed records
  # by messageId (and, to keep per-group order, every later record of the
  # batch); an error from the handler would retry the whole batch.
  batch_size              = var.batch_size
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.maximum_concurrency
  }

  lifecycle {
    precondition {
      condition     = var.queue_visibility_timeout_seconds >= 6 * var.timeout
      error_message = "The command queue's visibility timeout (${var.queue_visibility_timeout_seconds} s) must be at least 6x the worker timeout (${var.timeout} s => ${6 * var.timeout} s). Raise it in the command-queue unit and apply that first."
    }
    precondition {
      condition     = var.reserved_concurrency < 0 || var.reserved_concurrency >= var.maximum_concurrency
      error_message = "reserved_concurrency (${var.reserved_concurrency}) is below the event source's maximum_concurrency (${var.maximum_concurrency}): the poller would be throttled and messages would bounce towards the DLQ."
    }
  }

  # Creating the mapping checks that the role can receive from the queue.
  depends_on = [aws_iam_role_policy.this]
}
