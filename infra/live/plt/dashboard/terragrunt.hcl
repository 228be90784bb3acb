# The CloudWatch dashboard: charts what the worker emits and the DLQ depth,
# so it is applied after them.

include "root" {
  path   = find_in_parent_folders("terragrunt.hcl")
  expose = true
}

terraform {
  source = "../../../modules//dashboard"
}

dependency "queue" {
  config_path = "../command-queue"

  mock_outputs_allowed_terraform_commands = ["init", "validate", "plan"]
  mock_outputs = {
    dlq_name = "baton-commands-dlq.fifo"
  }
}

inputs = {
  dashboard_name       = "baton-${include.root.locals.env}"
  worker_function_name = "baton-worker"
  dlq_name             = dependency.queue.outputs.dlq_name
  commands             = ["/build", "/deploy"]
}
