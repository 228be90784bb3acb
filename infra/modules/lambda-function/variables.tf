# Inputs of the shared Lambda module. It is called by worker-function and
# router-function, which pass their own variables (same names) straight
# through; the validations live here, once.

variable "function_name" {
  description = "Lambda function name; also names the role (<name>-role), its policy and the log group (/aws/lambda/<name>)."
  type        = string
}

variable "description" {
  description = "Description of the function."
  type        = string
}

# --- code package ------------------------------------------------------------

variable "package_path" {
  description = "Local zip built by `make package`. Ignored when package_s3_bucket is set."
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

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

# --- runtime -------------------------------------------------------------------

variable "timeout" {
  description = "Function timeout in seconds."
  type        = number

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "Lambda allows 1..900 seconds."
  }
}

variable "memory_size" {
  description = "Memory in MB (CPU scales with it)."
  type        = number
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions; -1 = unreserved."
  type        = number
}

variable "tracing_enabled" {
  description = "Active X-Ray tracing (adds xray:PutTraceSegments/PutTelemetryRecords to the role)."
  type        = bool
}

variable "environment" {
  description = "The function's own environment variables. Never secrets: those go to SSM (ssm_parameter_names)."
  type        = map(string)
}

variable "log_level" {
  description = "RUST_LOG for the function (tracing-subscriber EnvFilter syntax)."
  type        = string
}

variable "extra_environment" {
  description = "Additional environment variables, merged last. Never secrets."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Retention of the function's log group, in days."
  type        = number
}

variable "log_kms_key_arn" {
  description = "Customer-managed KMS key for the log group (its key policy must allow logs.<region>.amazonaws.com). null = service-managed encryption."
  type        = string
  default     = null
}

# --- permissions ---------------------------------------------------------------

variable "permissions_boundary_arn" {
  description = "Optional permissions boundary for the execution role."
  type        = string
  default     = null
}

variable "policy_documents" {
  description = "JSON of aws_iam_policy_document data sources with the caller's own grants (its queue, table, ...). They come first in the role's single inline policy; this module adds the SSM, KMS, log and X-Ray statements. Unique sids."
  type        = list(string)
  default     = []
}

variable "ssm_parameter_names" {
  description = "NAMES of the SecureString SSM parameters the code reads (the role gets ssm:GetParameter on exactly these)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for name in var.ssm_parameter_names : startswith(name, "/")])
    error_message = "Use full parameter names, starting with /."
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

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
