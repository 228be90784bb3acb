# Lock table. No dependencies: apply first (with the command queue).

include "root" {
  path   = find_in_parent_folders("terragrunt.hcl")
  expose = true
}

terraform {
  source = "../../../modules//lock-table"
}

inputs = {
  name                = "baton-locks"
  deletion_protection = true
}
