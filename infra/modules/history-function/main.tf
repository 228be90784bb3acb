# baton-history: reads the lock table's change stream and writes one history
# entry per ended grant (crates/history). The function, its role and log
# group are ../lambda-function; this module adds the consumer's grants and
# the stream's event source mapping.

module "function" {
  source = "../lambda-function"

  function_name = var.function_name
  description   = "baton history: records every ended lock grant from the lock table's stream"

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

  environment = {
    BATON_TABLE             = var.table_name
    BATON_HISTORY_TABLE     = var.history_table_name
    BATON_HISTORY_RETENTION = "${var.retention_days}d"
  }

  permissions_boundary_arn = var.permissions_boundary_arn
  policy_documents         = [data.aws_iam_policy_document.this.json]

  tags = var.tags
}

resource "aws_lambda_event_source_mapping" "stream" {
  event_source_arn  = var.stream_arn
  function_name     = module.function.function_arn
  starting_position = "TRIM_HORIZON"

  # The handler names the first change it could not record and every later
  # one; the stream delivers them again, in order. Changes of one key are in
  # one shard, so a key's entries are never recorded out of order.
  batch_size                     = 100
  function_response_types        = ["ReportBatchItemFailures"]
  maximum_retry_attempts         = var.maximum_retry_attempts
  bisect_batch_on_function_error = true

  # A change that still fails after the retries is named here rather than
  # dropped in silence (the stream keeps records for 24 hours).
  dynamic "destination_config" {
    for_each = var.failure_topic_arn == null ? [] : [var.failure_topic_arn]
    content {
      on_failure {
        destination_arn = destination_config.value
      }
    }
  }
}
