# Variables shared with worker-function are passed straight to
# ../lambda-function, which validates them (architecture, timeout range,
# SSM parameter names, KMS key ARN).

variable "function_name" {
  description = "Lambda function name."
  type        = string
  default     = "baton-router"
}

# --- code package ------------------------------------------------------------

variable "package_path" {
  description = "Local zip built by `make package` (target/lambda/baton-router/bootstrap.zip). Ignored when package_s3_bucket is set."
  type        = string
  default     = null
}

variable "package_s3_bucket" {
  description = "Bucket of a versioned zip to deploy instead of package_path (rollback: point at the previous object version)."
  type        = string
  default     = null
}

variable "package_s3_key" {
  description = "Key of the zip in package_s3_bucket."
  type        = string
  default     = null
}

variable "package_s3_object_version" {
  description = "Object version of the zip in package_s3_bucket (pin it: a new version is then a visible diff)."
  type        = string
  default     = null
}

variable "architecture" {
  description = "Instruction set of the zip: arm64 or x86_64 (the fallback of `make package`). Must match the zip."
  type        = string
  default     = "arm64"
}

# --- runtime -------------------------------------------------------------------

variable "timeout" {
  description = "Function timeout in seconds (1..900). Slack gives up after 3 s; the rest is for GitHub webhooks and SQS retries."
  type        = number
  default     = 10
}

variable "memory_size" {
  description = "Memory in MB (CPU scales with it)."
  type        = number
  default     = 256
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions: on a public URL this caps what a request flood can cost (the Function URL's checkov skip relies on it). Signature checks take microseconds, so 10 serves a large workspace. -1 removes the cap (only for accounts whose concurrency quota cannot spare a reservation)."
  type        = number
  default     = 10

  validation {
    condition     = var.reserved_concurrency == -1 || var.reserved_concurrency >= 1
    error_message = "reserved_concurrency must be a cap of at least 1, or -1 for none (0 would refuse every request)."
  }
}

variable "tracing_enabled" {
  description = "Active X-Ray tracing (adds xray:PutTraceSegments/PutTelemetryRecords to the role)."
  type        = bool
  default     = false
}

variable "log_level" {
  description = "RUST_LOG for the function (tracing-subscriber EnvFilter syntax)."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "Retention of the function's log group, in days."
  type        = number
  default     = 30
}

variable "log_kms_key_arn" {
  description = "Customer-managed KMS key for the log group (its key policy must allow logs.<region>.amazonaws.com). null = service-managed encryption."
  type        = string
  default     = null
}

variable "permissions_boundary_arn" {
  description = "Optional permissions boundary for the execution role."
  type        = string
  default     = null
}

# --- what the code reads -------------------------------------------------------

variable "queue_url" {
  description = "URL of the FIFO command queue (BATON_QUEUE_URL)."
  type        = string
}

variable "queue_arn" {
  description = "ARN of the FIFO command queue (the only SendMessage resource)."
  type        = string
}

variable "allowed_teams" {
  description = "The Slack workspace (T…) and Enterprise Grid (E…) ids this deployment serves (BATON_ALLOWED_TEAMS); no default, so no deployment is open to every workspace by omission. Must be the same for the worker and the router."
  type        = list(string)

  validation {
    condition     = length(var.allowed_teams) > 0 && alltrue([for t in var.allowed_teams : can(regex("^[TE][A-Z0-9]{2,}$", t))])
    error_message = "allowed_teams needs at least one Slack workspace (T…) or Enterprise Grid (E…) id."
  }
}

variable "config_path" {
  description = "Path of the command config TOML inside the zip (BATON_CONFIG); null = the code's built-in default. Must be the worker's: the router accepts completions only from the pipelines it names."
  type        = string
  default     = null
}

variable "slack_signing_secret_param" {
  description = "NAME of the SecureString SSM parameter holding the Slack signing secret (SLACK_SIGNING_SECRET_PARAM), e.g. /baton/plt/slack/signing-secret."
  type        = string
}

variable "slack_signing_secret_previous_param" {
  description = "NAME of a second SecureString SSM parameter holding another Slack signing secret accepted as well (SLACK_SIGNING_SECRET_PREVIOUS_PARAM), while the signing secret is rotated, e.g. /baton/plt/slack/signing-secret-previous. null outside a rotation."
  type        = string
  default     = null
}

variable "github_webhook_secret_param" {
  description = "NAME of the SecureString SSM parameter holding the GitHub webhook secret (GITHUB_WEBHOOK_SECRET_PARAM), e.g. /baton/plt/github/webhook-secret."
  type        = string
}

variable "azure_devops_hook_secret_param" {
  description = "NAME of the SecureString SSM parameter holding the shared secret Azure DevOps service hooks send (AZURE_DEVOPS_HOOK_SECRET_PARAM), e.g. /baton/plt/azure-devops/hook-secret. null = /azure-devops/hook answers 404."
  type        = string
  default     = null
}

variable "ssm_kms_key_arn" {
  description = "Key ARN (not an alias) of the customer-managed KMS key that encrypts the SecureString parameters. null = the AWS-managed alias/aws/ssm."
  type        = string
  default     = null
}

variable "extra_environment" {
  description = "Additional environment variables. Never secrets: those go to SSM."
  type        = map(string)
  default     = {}
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
