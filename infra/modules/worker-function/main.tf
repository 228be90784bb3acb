# baton-worker: consumes the FIFO command queue, takes/releases locks in
# DynamoDB, starts GitHub workflows and Azure DevOps pipelines and answers
# in Slack. The function,
# its role and log group are ../lambda-function; this module adds the
# worker's grants (iam.tf), its SQS event source mapping, and the schedule
# that invokes it for reconciler passes (reconcile.tf).

module "function" {
  source = "../lambda-function"

  function_name = var.function_name
  description   = "baton worker: runs /build and /deploy commands under a DynamoDB lock"

  package_path              = var.package_path
  package_s3_bucket         = var.package_s3_bucket
  package_s3_key            = var.package_s3_key
  package_s3_object_version = var.package_s3_object_version
  architecture              = var.architecture

  timeout              = var.timeout
  memory_size          = var.memory_size
  reserved_concurrency = var.reserved_concurrency
  tracing_enabled      = var.tracing_enabled
  log_level            = var.log_level
  log_retention_days   = var.log_retention_days
  log_kms_key_arn      = var.log_kms_key_arn

  environment = merge(
    {
      BATON_TABLE             = var.table_name
      SLACK_BOT_TOKEN_PARAM   = var.slack_bot_token_param
      GITHUB_TOKEN_PARAM      = var.github_token_param
      ENABLE_DISTRIBUTED_LOCK = var.enable_distributed_lock ? "true" : "false"
      # The queue's redrive maxReceiveCount: the worker knows a receive is
      # the last one before the DLQ.
      BATON_MAX_RECEIVES = tostring(var.queue_max_receive_count)
    },
    var.config_path == null ? {} : { BATON_CONFIG = var.config_path },
    { BATON_ALLOWED_TEAMS = join(",", var.allowed_teams) },
    var.history_table_name == null ? {} : { BATON_HISTORY_TABLE = var.history_table_name },
    var.azure_devops_pat_param == null ? {} : { AZURE_DEVOPS_PAT_PARAM = var.azure_devops_pat_param },
  )
  extra_environment = var.extra_environment

  permissions_boundary_arn = var.permissions_boundary_arn
  policy_documents         = [data.aws_iam_policy_document.this.json]
  ssm_parameter_names = concat(
    [var.slack_bot_token_param, var.github_token_param],
    var.azure_devops_pat_param == null ? [] : [var.azure_devops_pat_param],
  )
  ssm_kms_key_arn          = var.ssm_kms_key_arn

  tags = var.tags
}

resource "aws_lambda_event_source_mapping" "commands" {
  event_source_arn = var.queue_arn
  # Creating the mapping checks that the role can receive from the queue: the
  # function (hence this mapping) is created only after the role's policy.
  function_name = module.function.function_arn
  enabled       = var.event_source_enabled

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
    # A reconciler pass takes one more execution from the same reservation.
    precondition {
      condition     = var.reserved_concurrency < 0 || var.reserved_concurrency >= var.maximum_concurrency + (var.reconcile_enabled ? 1 : 0)
      error_message = "reserved_concurrency (${var.reserved_concurrency}) is below the event source's maximum_concurrency (${var.maximum_concurrency})${var.reconcile_enabled ? " plus one reconciler pass" : ""}: the poller would be throttled and messages would bounce towards the DLQ."
    }
  }
}
