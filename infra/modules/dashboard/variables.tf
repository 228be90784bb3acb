variable "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  type        = string
  default     = "baton"
}

variable "worker_function_name" {
  description = "The worker's function name: its lost-lock metric is in namespace Baton/<name>."
  type        = string
}

variable "dlq_name" {
  description = "Name of the command queue's dead-letter queue (command-queue output dlq_name)."
  type        = string
}

variable "commands" {
  description = "Slash commands to chart (the EMF Command dimension), e.g. [\"/build\", \"/deploy\"]."
  type        = list(string)
  default     = ["/build", "/deploy"]
}
