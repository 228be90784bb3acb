# baton-router: the public HTTPS endpoint for Slack slash commands
# (/slack/commands) and GitHub webhooks (/github/webhook). It verifies the
# request signature, answers within Slack's 3 s, and queues the command.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region # provider >= 6 (see versions.tf)

  use_s3_package = var.package_s3_bucket != null

  ssm_parameter_names = [var.slack_signing_secret_param, var.github_webhook_secret_param]
  ssm_parameter_arns = [
    for name in local.ssm_parameter_names :
    "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${name}"
  ]

  environment = merge(
    {
      BATON_QUEUE_URL             = var.queue_url
      SLACK_SIGNING_SECRET_PARAM  = var.slack_signing_secret_param
      GITHUB_WEBHOOK_SECRET_PARAM = var.github_webhook_secret_param
      RUST_LOG                    = var.log_level
    },
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
  #checkov:skip=CKV_AWS_116:Invoked synchronously through its function URL only; a function DLQ applies to async invocations. Commands it accepted are already in the SQS queue, which has its own DLQ.
  #checkov:skip=CKV_AWS_117:No VPC: the router talks only to SQS and SSM public endpoints; a VPC would add endpoints or a NAT gateway and nothing to protect.
  #checkov:skip=CKV_AWS_173:The environment holds no secrets, only the queue URL and SSM parameter names; the signing secrets are SecureString parameters read at start-up. Lambda encrypts the environment at rest with its service key.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile the deploy pipeline does not have; the zip's integrity is pinned by source_code_hash (local file) or the S3 object version.
  function_name = var.function_name
  description   = "baton router: verifies Slack/GitHub requests and queues commands"
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

  depends_on = [aws_iam_role_policy.this, aws_cloudwatch_log_group.this]
}

# Public URL, no AWS auth: Slack and GitHub cannot sign requests with SigV4.
# Every request is authenticated in the code instead (Slack's v0 HMAC
# signature with a 300 s timestamp window, GitHub's X-Hub-Signature-256).
# For authorization_type = "NONE" the provider (>= 6.28) adds both
# resource-policy statements a public URL needs: lambda:InvokeFunctionUrl
# (FunctionUrlAuthType NONE) and lambda:InvokeFunction (InvokedViaFunctionUrl).
resource "aws_lambda_function_url" "this" {
  #checkov:skip=CKV_AWS_258:Slack slash commands and GitHub webhooks cannot send SigV4-signed requests; the router verifies Slack's HMAC signature and GitHub's X-Hub-Signature-256 on the raw body and rejects everything else, and reserved concurrency caps what a flood can cost.
  function_name      = aws_lambda_function.this.function_name
  authorization_type = "NONE"
  invoke_mode        = "BUFFERED"
}
