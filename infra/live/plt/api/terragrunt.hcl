# baton-api: the HTTP lock API and dashboard. Needs the lock table (its IAM
# policy names the table and its index), so it is applied after it.

include "root" {
  path   = find_in_parent_folders("terragrunt.hcl")
  expose = true
}

terraform {
  source = "../../../modules//api-function"
}

dependency "table" {
  config_path = "../locks-table"

  mock_outputs_allowed_terraform_commands = ["init", "validate", "plan"]
  mock_outputs = {
    table_name = "baton-locks"
    table_arn  = "arn:aws:dynamodb:${include.root.locals.region}:${include.root.locals.account_id}:table/baton-locks"
    index_arns = ["arn:aws:dynamodb:${include.root.locals.region}:${include.root.locals.account_id}:table/baton-locks/index/active-locks"]
  }
}

inputs = {
  function_name = "baton-api"
  package_path  = "${get_repo_root()}/target/lambda/baton-api/bootstrap.zip"
  architecture  = "arm64" # x86_64 if `make package` fell back to it

  # An acquire may wait up to max_wait inside the request.
  timeout              = 30
  memory_size          = 256
  reserved_concurrency = 20

  table_name       = dependency.table.outputs.table_name
  table_arn        = dependency.table.outputs.table_arn
  table_index_arns = dependency.table.outputs.index_arns

  # The history table the stream consumer fills (create it first):
  # history_table_arn = "arn:aws:dynamodb:${include.root.locals.region}:${include.root.locals.account_id}:table/baton-locks-history"

  # SSM parameter NAME; the operator creates the SecureString value, a JSON
  # token document with SHA-256 hashes (infra/README.md).
  tokens_param = "/baton/${include.root.locals.env}/api/tokens"

  tracker_ttl = "12h"
  max_wait    = "25s"
  log_level   = "info"
}
