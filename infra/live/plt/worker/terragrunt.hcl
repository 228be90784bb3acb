# baton-worker: needs the lock table and the command queue (its IAM policy and
# its SQS event source mapping name both), so it is applied after them.

include "root" {
  path   = find_in_parent_folders("terragrunt.hcl")
  expose = true
}

terraform {
  source = "../../../modules//worker-function"
}

dependency "table" {
  config_path = "../locks-table"

  # Lets `plan` run before the table exists; apply always uses real outputs.
  mock_outputs_allowed_terraform_commands = ["init", "validate", "plan"]
  mock_outputs = {
    table_name = "baton-locks"
    table_arn  = "arn:aws:dynamodb:${include.root.locals.region}:${include.root.locals.account_id}:table/baton-locks"
    index_arns = ["arn:aws:dynamodb:${include.root.locals.region}:${include.root.locals.account_id}:table/baton-locks/index/active-locks"]
    history_table_name = "baton-locks-history"
    history_table_arn  = "arn:aws:dynamodb:${include.root.locals.region}:${include.root.locals.account_id}:table/baton-locks-history"
  }
}

dependency "queue" {
  config_path = "../command-queue"

  mock_outputs_allowed_terraform_commands = ["init", "validate", "plan"]
  mock_outputs = {
    queue_arn                  = "arn:aws:sqs:${include.root.locals.region}:${include.root.locals.account_id}:baton-commands.fifo"
    visibility_timeout_seconds = 300
    max_receive_count          = 5
  }
}

inputs = {
  function_name = "baton-worker"
  package_path  = "${get_repo_root()}/target/lambda/baton-worker/bootstrap.zip"
  architecture  = "arm64" # x86_64 if `make package` fell back to it

  timeout              = 45
  memory_size          = 256
  # The event source's 5 plus one reconciler pass.
  reserved_concurrency = 6
  maximum_concurrency  = 5
  batch_size           = 10

  table_name       = dependency.table.outputs.table_name
  table_arn        = dependency.table.outputs.table_arn
  table_index_arns = dependency.table.outputs.index_arns

  history_table_name = dependency.table.outputs.history_table_name
  history_table_arn  = dependency.table.outputs.history_table_arn

  queue_arn                        = dependency.queue.outputs.queue_arn
  queue_visibility_timeout_seconds = dependency.queue.outputs.visibility_timeout_seconds
  queue_max_receive_count          = dependency.queue.outputs.max_receive_count

  # SSM parameter NAMES; the operator creates the SecureString values
  # (infra/README.md).
  slack_bot_token_param = "/baton/${include.root.locals.env}/slack/bot-token"
  github_token_param    = "/baton/${include.root.locals.env}/github/token"
  # Only when a command's pipeline is kind = "azure-pipelines" (create the
  # parameter first: the worker refuses to start without it then).
  # azure_devops_pat_param = "/baton/${include.root.locals.env}/azure-devops/pat"

  # Lock kill switch (rollback: false, then apply this unit).
  enable_distributed_lock = true
  log_level               = "info"

  # The same command config for the worker and the router (env.hcl).
  config_path = include.root.locals.config_path
  # The Slack workspaces served, also the same for both (env.hcl).
  allowed_teams = include.root.locals.allowed_teams

  # The SNS topic notified when the worker takes over a lapsed lock (null:
  # nobody).
  alarm_topic_arn = null

  # Reconciler passes (EventBridge Scheduler); false pauses them.
  reconcile_enabled             = true
  reconcile_schedule_expression = "rate(1 minute)"
}
