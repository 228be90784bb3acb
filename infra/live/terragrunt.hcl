# Root terragrunt configuration, included by every unit under
# infra/live/<account-or-env>/<unit>/terragrunt.hcl.
#
# Run units from their own folder (`terragrunt plan` in plt/worker) or a whole
# environment from its folder (`terragrunt run-all plan` in plt/), never
# run-all from infra/live itself: this file is configuration, not a unit.

locals {
  # Found from the including unit's folder upwards.
  account_vars = read_terragrunt_config(find_in_parent_folders("account.hcl"))
  env_vars     = read_terragrunt_config(find_in_parent_folders("env.hcl"))

  account_id = local.account_vars.locals.account_id
  region     = local.env_vars.locals.region
  env        = local.env_vars.locals.env
  # Command config path for both functions (see env.hcl).
  config_path = local.env_vars.locals.config_path

  # Applied to every taggable resource through the provider's default_tags.
  tags = {
    project     = "baton"
    environment = local.env
    managed-by  = "terragrunt"
    unit        = path_relative_to_include()
  }
}

# One state object per unit, in a per-account bucket, locked in DynamoDB.
# Terragrunt offers to create the bucket (versioned, encrypted, public access
# blocked) and the lock table on first use.
remote_state {
  backend = "s3"

  generate = {
    path      = "backend.tf"
    if_exists = "overwrite_terragrunt"
  }

  config = {
    bucket              = "baton-tfstate-${local.account_id}-${local.region}"
    key                 = "${path_relative_to_include()}/terraform.tfstate"
    region              = local.region
    encrypt             = true
    dynamodb_table      = "baton-tfstate-locks"
    s3_bucket_tags      = local.tags
    dynamodb_table_tags = local.tags
  }
}

# allowed_account_ids makes terraform refuse to run with credentials of any
# other account: an account.hcl left at its placeholder fails loudly.
generate "provider" {
  path      = "provider.tf"
  if_exists = "overwrite_terragrunt"
  contents  = <<-EOT
    provider "aws" {
      region              = "${local.region}"
      allowed_account_ids = ["${local.account_id}"]

      default_tags {
        tags = ${jsonencode(local.tags)}
      }
    }
  EOT
}
