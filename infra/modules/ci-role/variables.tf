variable "role_name" {
  description = "Name of the CI role."
  type        = string
  default     = "baton-ci"
}

variable "repositories" {
  description = "GitHub repositories (OWNER/NAME) whose workflows may assume the role."
  type        = list(string)

  validation {
    condition     = length(var.repositories) > 0 && alltrue([for r in var.repositories : can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", r))])
    error_message = "repositories must be non-empty OWNER/NAME values, without wildcards."
  }
}

variable "branches" {
  description = "Branches whose workflow runs may assume the role (e.g. [\"main\"])."
  type        = list(string)
  default     = ["main"]

  validation {
    condition     = length(var.branches) > 0 && alltrue([for b in var.branches : !strcontains(b, "*")])
    error_message = "branches must be non-empty and without wildcards."
  }
}

variable "lock_key_prefixes" {
  description = "Lock keys the role may read and write start with one of these literal prefixes (e.g. [\"deploy-api-\", \"build-api-\"]); the policy appends the wildcard."
  type        = list(string)

  validation {
    condition     = length(var.lock_key_prefixes) > 0 && alltrue([for p in var.lock_key_prefixes : p != "" && !strcontains(p, "*") && !strcontains(p, "?")])
    error_message = "lock_key_prefixes must be non-empty literal prefixes: no empty string and no * or ? (an empty prefix or a bare * would be every key)."
  }
}

variable "admin" {
  description = "Let the role force-unlock (end someone else's grant). false = the role may take, renew and release locks under its prefixes but never force one."
  type        = bool
  default     = false
}

variable "table_arn" {
  description = "ARN of the lock table (the lock-table module's table_arn)."
  type        = string
}

variable "table_index_arns" {
  description = "ARNs of the table's indexes (the lock-table module's index_arns)."
  type        = list(string)
}

variable "create_oidc_provider" {
  description = "Create the account's GitHub OIDC provider (false when it already exists: one per account)."
  type        = bool
  default     = true
}

variable "oidc_thumbprints" {
  description = "Certificate thumbprints for the GitHub OIDC provider."
  type        = list(string)
  default     = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]
}

variable "tags" {
  description = "Tags for the role and provider."
  type        = map(string)
  default     = {}
}
