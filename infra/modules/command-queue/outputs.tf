output "queue_url" {
  description = "Command queue URL (BATON_QUEUE_URL for the router)."
  value       = aws_sqs_queue.commands.id
}

output "queue_arn" {
  description = "Command queue ARN (event source of the worker; SendMessage resource of the router)."
  value       = aws_sqs_queue.commands.arn
}

output "queue_name" {
  description = "Command queue name."
  value       = aws_sqs_queue.commands.name
}

output "visibility_timeout_seconds" {
  description = "Visibility timeout of the command queue (the worker module checks it against its timeout)."
  value       = aws_sqs_queue.commands.visibility_timeout_seconds
}

output "max_receive_count" {
  description = "Receives before a command moves to the DLQ (the worker gets it as BATON_MAX_RECEIVES)."
  value       = var.max_receive_count
}

output "dlq_url" {
  description = "Dead-letter queue URL."
  value       = aws_sqs_queue.dlq.id
}

output "dlq_arn" {
  description = "Dead-letter queue ARN."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_alarm_arn" {
  description = "ARN of the DLQ-not-empty alarm."
  value       = aws_cloudwatch_metric_alarm.dlq_not_empty.arn
}

output "dlq_name" {
  description = "Name of the dead-letter queue (for dashboards)."
  value       = aws_sqs_queue.dlq.name
}
