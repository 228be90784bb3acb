# Variables shared with the other functions are passed straight to
# ../lambda-function, which validates them.

variable "function_name" {
  description = "Lambda function name."
  type        = string
  default     = "baton-history"
}

variable "package_path" {
  description = "Local zip built by `make package` (target/lambda/baton-history/bootstrap.zip). Ignored when package_s3_bucket is set."
  type        = string
  default     = null
}

variable "package_s3_bucket" {
  description = "Bucket of a versioned zip to deploy instead of package_path."
  type        = string
  default     = null
}

variable "package_s3_key" {
  description = "Key of the zip in package_s3_bucket."
  type        = string
  default     = null
}

variable "package_s3_object_version" {
  description = "Object version of the zip in package_s3_bucket."
  type        = string
  default     = null
}

variable "architecture" {
  description = "Instruction set of the zip: arm64 or x86_64."
  type        = string
  default     = "arm64"
}

variable "timeout" {
  description = "Function timeout in seconds."
  type        = number
  default     = 30
}

variable "memory_size" {
  description = "Memory in MB."
  type        = number
  default     = 128
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions; -1 = unreserved. One shard is read by one invocation at a time."
  type        = number
  default     = 2
}

variable "tracing_enabled" {
  description = "Active X-Ray tracing."
  type        = bool
  default     = false
}

variable "log_level" {
  description = "RUST_LOG filter."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "Retention of the function's log group, in days."
  type        = number
  default     = 30
}

variable "log_kms_key_arn" {
  description = "KMS key for the log group (null: CloudWatch's own encryption)."
  type        = string
  default     = null
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary for the role (null: none)."
  type        = string
  default     = null
}

variable "table_name" {
  description = "Lock table name (BATON_TABLE)."
  type        = string
}

variable "stream_arn" {
  description = "The lock table's stream ARN (lock-table output stream_arn)."
  type        = string
}

variable "history_table_name" {
  description = "History table name (lock-table output history_table_name)."
  type        = string
}

variable "history_table_arn" {
  description = "History table ARN (lock-table output history_table_arn)."
  type        = string
}

variable "retention_days" {
  description = "Days an entry is kept after its grant ended (DynamoDB TTL)."
  type        = number
  default     = 90

  validation {
    condition     = var.retention_days >= 1 && floor(var.retention_days) == var.retention_days
    error_message = "retention_days must be a whole number of days, at least 1."
  }
}

variable "maximum_retry_attempts" {
  description = "Retries of a failing batch before its records go to failure_topic_arn."
  type        = number
  default     = 100
}

variable "failure_topic_arn" {
  description = "SNS topic told of stream records that could not be recorded after the retries (null: none)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
