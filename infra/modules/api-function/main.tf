# baton-api: the HTTP lock API (/v1 and Tracker's /api/v1alpha1) and the
# dashboard, for pipelines and tools that call baton over HTTPS instead of
# running the CLI. The function, its role and log group are
# ../lambda-function; this module adds the API's grants (iam.tf) and its
# Function URL.

module "function" {
  source = "../lambda-function"

  function_name = var.function_name
  description   = "baton api: lock operations over HTTP with API tokens, and the dashboard"

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
      BATON_TABLE            = var.table_name
      BATON_API_TOKENS_PARAM = var.tokens_param
      BATON_API_TRACKER_TTL  = var.tracker_ttl
      BATON_API_MAX_WAIT     = var.max_wait
    },
    var.history_table_name == null ? {} : { BATON_HISTORY_TABLE = var.history_table_name },
  )
  extra_environment = var.extra_environment

  permissions_boundary_arn = var.permissions_boundary_arn
  policy_documents         = [data.aws_iam_policy_document.this.json]
  ssm_parameter_names      = [var.tokens_param]
  ssm_kms_key_arn          = var.ssm_kms_key_arn

  tags = var.tags
}

# Public URL without AWS auth: CI systems (Jenkins, cron jobs, Tracker's
# scripts) call it with curl and an API token, not SigV4. Every route but
# the dashboard's static files (no data in them) refuses a request without
# a known token (401) or with too narrow a scope (403), tokens are compared
# as SHA-256 hashes in constant time, and reserved concurrency caps what a
# flood can cost.
resource "aws_lambda_function_url" "this" {
  #checkov:skip=CKV_AWS_258:CI systems call the lock API with curl and an API token, not SigV4; every data route checks the bearer token against the SHA-256 hashes in the SSM token document, the dashboard's static files carry no data, and reserved concurrency caps what a flood can cost.
  function_name      = module.function.function_name
  authorization_type = "NONE"
  invoke_mode        = "BUFFERED"
}
