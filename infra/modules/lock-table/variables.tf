variable "name" {
  description = "Name of the lock table (the worker gets it as BATON_TABLE)."
  type        = string
  default     = "baton-locks"
}

variable "kms_key_arn" {
  description = "ARN of a customer-managed KMS key for server-side encryption. null = the AWS-managed key aws/dynamodb."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Refuse DeleteTable (the table holds the fencing counters; losing it can hand out a fence twice)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for the table."
  type        = map(string)
  default     = {}
}
