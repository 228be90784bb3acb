# baton-history: needs the lock table's stream and the history table (both
# in ../locks-table), so it is applied after it.

include "root" {
  path   = find_in_parent_folders("terragrunt.hcl")
  expose = true
}

terraform {
  source = "../../../modules//history-function"
}

dependency "table" {
  config_path = "../locks-table"

  mock_outputs_allowed_terraform_commands = ["init", "validate", "plan"]
  mock_outputs = {
    table_name         = "baton-locks"
    stream_arn         = "arn:aws:dynamodb:${include.root.locals.region}:${include.root.locals.account_id}:table/baton-locks/stream/2026-01-01T00:00:00.000"
    history_table_name = "baton-locks-history"
    history_table_arn  = "arn:aws:dynamodb:${include.root.locals.region}:${include.root.locals.account_id}:table/baton-locks-history"
  }
}

inputs = {
  function_name = "baton-history"
  package_path  = "${get_repo_root()}/target/lambda/baton-history/bootstrap.zip"
  architecture  = "arm64" # x86_64 if `make package` fell back to it

  table_name         = dependency.table.outputs.table_name
  stream_arn         = dependency.table.outputs.stream_arn
  history_table_name = dependency.table.outputs.history_table_name
  history_table_arn  = dependency.table.outputs.history_table_arn
  retention_days     = 90
}
