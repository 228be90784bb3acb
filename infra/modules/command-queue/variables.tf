variable "name" {
  description = "Queue base name; the queue is <name>.fifo and its DLQ <name>-dlq.fifo."
  type        = string
  default     = "baton-commands"
}

variable "visibility_timeout_seconds" {
  description = "Visibility timeout of the command queue. Keep it >= 6x the worker's timeout (300 s for 45 s)."
  type        = number
  default     = 300

  validation {
    condition     = var.visibility_timeout_seconds >= 0 && var.visibility_timeout_seconds <= 43200
    error_message = "SQS allows 0..43200 seconds."
  }
}

variable "message_retention_seconds" {
  description = "How long an unprocessed command stays in the queue. Chat commands go stale fast (Slack's response_url lives 30 minutes); one day is plenty."
  type        = number
  default     = 86400
}

variable "dlq_message_retention_seconds" {
  description = "Retention in the DLQ (for FIFO queues the clock restarts when a message moves to the DLQ)."
  type        = number
  default     = 1209600
}

variable "max_receive_count" {
  description = "Receives before a command moves to the DLQ."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 5
    error_message = "maxReceiveCount must be at least 5 (fewer lets throttling alone push healthy commands to the DLQ)."
  }
}

variable "alarm_topic_arn" {
  description = "ARN of the SNS topic notified when the DLQ alarm fires or clears. null = the alarm notifies nobody (it still shows in the console)."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.alarm_topic_arn))
    error_message = "alarm_topic_arn must be an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)."
  }
}

variable "alarm_actions" {
  description = "Other ARNs notified when the DLQ alarm fires or clears, besides alarm_topic_arn."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for the queues and the alarm."
  type        = map(string)
  default     = {}
}

variable "sender_role_names" {
  description = "Names of the IAM roles allowed to send to the command queue: the router's execution role (<function_name>-role), plus an operator role while it redrives the DLQ. The queue policy denies sqs:SendMessage to every other principal."
  type        = list(string)

  validation {
    condition     = length(var.sender_role_names) > 0 && alltrue([for r in var.sender_role_names : can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", r))])
    error_message = "List at least the router's role name; role names are 1-64 of A-Za-z0-9+=,.@_-."
  }
}
