# baton-router: needs the command queue (URL for the code, ARN for its
# sqs:SendMessage grant), so it is applied after it.

include "root" {
  path   = find_in_parent_folders("terragrunt.hcl")
  expose = true
}

terraform {
  source = "../../../modules//router-function"
}

dependency "queue" {
  config_path = "../command-queue"

  mock_outputs_allowed_terraform_commands = ["init", "validate", "plan"]
  mock_outputs = {
    queue_url = "https://sqs.${include.root.locals.region}.amazonaws.com/${include.root.locals.account_id}/baton-commands.fifo"
    queue_arn = "arn:aws:sqs:${include.root.locals.region}:${include.root.locals.account_id}:baton-commands.fifo"
  }
}

inputs = {
  function_name = "baton-router"
  package_path  = "${get_repo_root()}/target/lambda/baton-router/bootstrap.zip"
  architecture  = "arm64" # x86_64 if `make package` fell back to it

  timeout     = 10
  memory_size = 256
  # Caps what a flood on the public URL can cost; unsigned requests are
  # rejected in microseconds, but each still is an invocation.
  reserved_concurrency = 10

  queue_url = dependency.queue.outputs.queue_url
  queue_arn = dependency.queue.outputs.queue_arn

  slack_signing_secret_param  = "/baton/${include.root.locals.env}/slack/signing-secret"
  # Only while the signing secret is rotated (README: Rotating the signing
  # secret); create the parameter first.
  # slack_signing_secret_previous_param = "/baton/${include.root.locals.env}/slack/signing-secret-previous"
  github_webhook_secret_param = "/baton/${include.root.locals.env}/github/webhook-secret"
  # Only for Azure DevOps pipelines' service hooks (create the parameter first).
  # azure_devops_hook_secret_param = "/baton/${include.root.locals.env}/azure-devops/hook-secret"

  # The same command config for the worker and the router (env.hcl).
  config_path = include.root.locals.config_path
  # The Slack workspaces served, also the same for both (env.hcl).
  allowed_teams = include.root.locals.allowed_teams

  log_level = "info"
}
