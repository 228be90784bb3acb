# Variables shared with router-function are passed straight to
# ../lambda-function, which validates them (architecture, timeout range,
# SSM parameter names, KMS key ARN).

variable "function_name" {
  description = "Lambda function name."
  type        = string
  default     = "baton-worker"
}

# --- code package ------------------------------------------------------------

variable "package_path" {
  description = "Local zip built by `make package` (target/lambda/baton-worker/bootstrap.zip). Ignored when package_s3_bucket is set."
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
  description = "Function timeout in seconds (1..900). The command queue's visibility timeout must be >= 6x this."
  type        = number
  default     = 45
}

variable "memory_size" {
  description = "Memory in MB (CPU scales with it)."
  type        = number
  default     = 256
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions; -1 = unreserved. When set it must be >= maximum_concurrency."
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

variable "table_name" {
  description = "Lock table name (BATON_TABLE)."
  type        = string
}

variable "table_arn" {
  description = "Lock table ARN."
  type        = string
}

variable "table_index_arns" {
  description = "ARNs of the lock table's indexes the code queries (the active-locks GSI)."
  type        = list(string)
}

variable "history_table_name" {
  description = "History table `history` reads (lock-table output history_table_name); null: the lock table's name + -history."
  type        = string
  default     = null
}

variable "history_table_arn" {
  description = "History table ARN (lock-table output history_table_arn): `history` queries it. null: no history grant."
  type        = string
  default     = null
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
  description = "Path of the command config TOML inside the zip (BATON_CONFIG); null = the code's built-in default. Must be the router's: the router accepts completions only from the pipelines it names."
  type        = string
  default     = null
}

variable "slack_bot_token_param" {
  description = "NAME of the SecureString SSM parameter holding the Slack bot token (SLACK_BOT_TOKEN_PARAM), e.g. /baton/plt/slack/bot-token."
  type        = string
}

variable "github_token_param" {
  description = "NAME of the SecureString SSM parameter holding the GitHub token (GITHUB_TOKEN_PARAM), e.g. /baton/plt/github/token."
  type        = string
}

variable "azure_devops_pat_param" {
  description = "NAME of the SecureString SSM parameter holding the Azure DevOps personal access token (AZURE_DEVOPS_PAT_PARAM), e.g. /baton/plt/azure-devops/pat. Required when a command's pipeline is azure-pipelines (the worker then refuses to start without it); null = no Azure DevOps pipelines."
  type        = string
  default     = null
}

variable "ssm_kms_key_arn" {
  description = "Key ARN (not an alias) of the customer-managed KMS key that encrypts the SecureString parameters. null = the AWS-managed alias/aws/ssm."
  type        = string
  default     = null
}

variable "enable_distributed_lock" {
  description = "ENABLE_DISTRIBUTED_LOCK: the lock kill switch. false = run commands without taking locks (rollback)."
  type        = bool
  default     = true
}

variable "extra_environment" {
  description = "Additional environment variables (e.g. GITHUB_API_URL for GitHub Enterprise). Never secrets: those go to SSM."
  type        = map(string)
  default     = {}
}

# --- event source ----------------------------------------------------------------

variable "queue_arn" {
  description = "ARN of the FIFO command queue."
  type        = string
}

variable "queue_visibility_timeout_seconds" {
  description = "The command queue's visibility timeout (its module's output); checked against 6x timeout."
  type        = number
}

variable "queue_max_receive_count" {
  description = "The command queue's redrive maxReceiveCount (its module's output), passed to the code as BATON_MAX_RECEIVES."
  type        = number
  default     = 5
}

variable "batch_size" {
  description = "Records per invocation (FIFO: at most 10)."
  type        = number
  default     = 10

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10
    error_message = "FIFO event sources take 1..10 records per batch."
  }
}

variable "maximum_concurrency" {
  description = "Most concurrent invocations the event source starts (scaling_config)."
  type        = number
  default     = 2

  validation {
    condition     = var.maximum_concurrency >= 2 && var.maximum_concurrency <= 1000
    error_message = "Lambda allows a maximum_concurrency of 2..1000."
  }
}

variable "event_source_enabled" {
  description = "Poll the queue. false pauses command processing (messages wait in the queue)."
  type        = bool
  default     = true
}

# --- reconciler schedule ---------------------------------------------------------

variable "reconcile_enabled" {
  description = "Run the reconciler on its schedule. false pauses it (the schedule and its role stay); leases of running pipelines are then renewed by nobody."
  type        = bool
  default     = true
}

variable "reconcile_schedule_expression" {
  description = "EventBridge Scheduler expression of the reconciler passes, e.g. rate(1 minute) or rate(5 minutes). Keep it well below the shortest lock TTL: a pass renews the leases of live runs."
  type        = string
  default     = "rate(1 minute)"

  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.reconcile_schedule_expression))
    error_message = "Use a recurring EventBridge Scheduler expression: rate(...) or cron(...)."
  }
}

variable "alarm_topic_arn" {
  description = "ARN of the SNS topic notified when the lost-lock alarm fires or clears. null = the alarm notifies nobody (it still shows in the console)."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.alarm_topic_arn))
    error_message = "alarm_topic_arn must be an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
