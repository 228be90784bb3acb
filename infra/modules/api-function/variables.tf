# Variables shared with the other function modules are passed straight to
# ../lambda-function, which validates them (architecture, timeout range,
# SSM parameter names, KMS key ARN).

variable "function_name" {
  description = "Lambda function name."
  type        = string
  default     = "baton-api"
}

# --- code package ------------------------------------------------------------

variable "package_path" {
  description = "Local zip built by `make package` (target/lambda/baton-api/bootstrap.zip). Ignored when package_s3_bucket is set."
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
  description = "Function timeout in seconds (1..900). Must exceed max_wait: an acquire with a wait holds its request that long."
  type        = number
  default     = 30
}

variable "memory_size" {
  description = "Memory in MB (CPU scales with it)."
  type        = number
  default     = 256
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions: on a public URL this caps what a request flood can cost (the Function URL's checkov skip relies on it). An acquire that waits holds one execution for its wait, so allow for the pipelines that wait at once. -1 removes the cap (only for accounts whose concurrency quota cannot spare a reservation)."
  type        = number
  default     = 20

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

variable "table_name" {
  description = "Name of the lock table (BATON_TABLE)."
  type        = string
}

variable "table_arn" {
  description = "ARN of the lock table (GetItem/UpdateItem resource)."
  type        = string
}

variable "table_index_arns" {
  description = "ARNs of the lock table's indexes (Query resources: the active-locks index)."
  type        = list(string)
}

variable "history_table_name" {
  description = "Name of the history table GET /v1/history reads (BATON_HISTORY_TABLE). null = the lock table's name + -history."
  type        = string
  default     = null
}

variable "history_table_arn" {
  description = "ARN of the history table (Query on it and its indexes). null = no history grant: GET /v1/history then answers 500 table_not_found or AccessDenied."
  type        = string
  default     = null
}

variable "tokens_param" {
  description = "NAME of the SecureString SSM parameter holding the API token document (BATON_API_TOKENS_PARAM), e.g. /baton/plt/api/tokens: JSON {\"tokens\": [{\"name\", \"sha256\", \"scopes\"}]} with SHA-256 hashes of the tokens, never the tokens."
  type        = string
}

variable "tracker_ttl" {
  description = "Lease of locks taken through the Tracker paths, which have no TTL field (BATON_API_TRACKER_TTL)."
  type        = string
  default     = "12h"
}

variable "max_wait" {
  description = "The longest wait an acquire may ask for (BATON_API_MAX_WAIT); keep it under timeout."
  type        = string
  default     = "25s"
}

variable "ssm_kms_key_arn" {
  description = "Key ARN (not an alias) of the customer-managed KMS key that encrypts the SecureString parameter. null = the AWS-managed alias/aws/ssm."
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
