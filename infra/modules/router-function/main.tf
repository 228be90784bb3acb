# baton-router: the public HTTPS endpoint for Slack slash commands
# (/slack/commands) and GitHub webhooks (/github/webhook). It verifies the
# request signature, answers within Slack's 3 s, and queues the command.
# The function, its role and log group are ../lambda-function; this module
# adds the router's grant (iam.tf) and its Function URL.

module "function" {
  source = "../lambda-function"

  function_name = var.function_name
  description   = "baton router: verifies Slack/GitHub requests and queues commands"

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

  # The router reads the command config to check a completion's repository
  # and workflow: it must be the worker's config, set the same way.
  environment = merge(
    {
      BATON_QUEUE_URL             = var.queue_url
      SLACK_SIGNING_SECRET_PARAM  = var.slack_signing_secret_param
      GITHUB_WEBHOOK_SECRET_PARAM = var.github_webhook_secret_param
    },
    var.config_path == null ? {} : { BATON_CONFIG = var.config_path },
    { BATON_ALLOWED_TEAMS = join(",", var.allowed_teams) },
    var.azure_devops_hook_secret_param == null ? {} : { AZURE_DEVOPS_HOOK_SECRET_PARAM = var.azure_devops_hook_secret_param },
    var.slack_signing_secret_previous_param == null ? {} : { SLACK_SIGNING_SECRET_PREVIOUS_PARAM = var.slack_signing_secret_previous_param },
  )
  extra_environment = var.extra_environment

  permissions_boundary_arn = var.permissions_boundary_arn
  policy_documents         = [data.aws_iam_policy_document.this.json]
  ssm_parameter_names = concat(
    [var.slack_signing_secret_param, var.github_webhook_secret_param],
    var.azure_devops_hook_secret_param == null ? [] : [var.azure_devops_hook_secret_param],
    var.slack_signing_secret_previous_param == null ? [] : [var.slack_signing_secret_previous_param],
  )
  ssm_kms_key_arn          = var.ssm_kms_key_arn

  tags = var.tags
}

# Public URL, no AWS auth: Slack and GitHub cannot sign requests with SigV4.
# Every request is authenticated in the code instead (Slack's v0 HMAC
# signature with a 300 s timestamp window, GitHub's X-Hub-Signature-256).
# For authorization_type = "NONE" the provider (>= 6.28) adds both
# resource-policy statements a public URL needs: lambda:InvokeFunctionUrl
# (FunctionUrlAuthType NONE) and lambda:InvokeFunction (InvokedViaFunctionUrl).
# The function, hence the URL, is created only after the role's policy.
resource "aws_lambda_function_url" "this" {
  #checkov:skip=CKV_AWS_258:Slack slash commands and GitHub webhooks cannot send SigV4-signed requests; the router verifies Slack's HMAC signature and GitHub's X-Hub-Signature-256 on the raw body and rejects everything else, and reserved concurrency caps what a flood can cost.
  function_name      = module.function.function_name
  authorization_type = "NONE"
  invoke_mode        = "BUFFERED"
}
