output "function_name" {
  description = "Worker function name."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "Worker function ARN."
  value       = aws_lambda_function.this.arn
}

output "timeout" {
  description = "Worker timeout in seconds."
  value       = aws_lambda_function.this.timeout
}

output "role_arn" {
  description = "Execution role ARN."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the worker."
  value       = aws_cloudwatch_log_group.this.name
}

output "event_source_mapping_uuid" {
  description = "UUID of the SQS event source mapping."
  value       = aws_lambda_event_source_mapping.commands.uuid
}
