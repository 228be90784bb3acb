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
  description = "Instruction set of the zip: arm64 (what `make package` builds when the aarch64 target is installed) or x86_64 (its fallback). Must match the zip."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

# --- runtime -------------------------------------------------------------------

variable "timeout" {
  description = "Function timeout in seconds. Slack gives up after 3 s; the rest is for GitHub webhooks and SQS retries."
  type        = number
  default     = 10

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "Lambda allows 1..900 seconds."
  }
}

variable "memory_size" {
  description = "Memory in MB (CPU scales with it)."
  type        = number
  default     = 256
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions; -1 = unreserved. On a public URL a number also caps what a request flood can cost."
  type        = number
  default     = -1
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

variable "slack_signing_secret_param" {
  description = "NAME of the SecureString SSM parameter holding the Slack signing secret (SLACK_SIGNING_SECRET_PARAM), e.g. /baton/plt/slack/signing-secret."
  type        = string

  validation {
    condition     = startswith(var.slack_signing_secret_param, "/")
    error_message = "Use the full parameter name, starting with /."
  }
}

variable "github_webhook_secret_param" {
  description = "NAME of the SecureString SSM parameter holding the GitHub webhook secret (GITHUB_WEBHOOK_SECRET_PARAM), e.g. /baton/plt/github/webhook-secret."
  type        = string

  validation {
    condition     = startswith(var.github_webhook_secret_param, "/")
    error_message = "Use the full parameter name, starting with /."
  }
}

variable "ssm_kms_key_arn" {
  description = "Key ARN (not an alias) of the customer-managed KMS key that encrypts the SecureString parameters. null = the AWS-managed alias/aws/ssm, whose key policy already allows decryption through SSM in this account."
  type        = string
  default     = null

  validation {
    condition     = var.ssm_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.ssm_kms_key_arn))
    error_message = "Give the key ARN (arn:...:kms:<region>:<account id>:key/<id>); alias ARNs do not match IAM resources."
  }
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
