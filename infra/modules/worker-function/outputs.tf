output "function_name" {
  description = "Worker function name."
  value       = module.function.function_name
}

output "function_arn" {
  description = "Worker function ARN."
  value       = module.function.function_arn
}

output "timeout" {
  description = "Worker timeout in seconds."
  value       = module.function.timeout
}

output "role_arn" {
  description = "Execution role ARN."
  value       = module.function.role_arn
}

output "log_group_name" {
  description = "CloudWatch log group of the worker."
  value       = module.function.log_group_name
}

output "event_source_mapping_uuid" {
  description = "UUID of the SQS event source mapping."
  value       = aws_lambda_event_source_mapping.commands.uuid
}

output "reconcile_schedule_arn" {
  description = "ARN of the EventBridge Scheduler schedule that invokes the reconciler."
  value       = aws_scheduler_schedule.reconcile.arn
}

output "reconcile_schedule_role_arn" {
  description = "Role the reconciler schedule invokes the worker with (lambda:InvokeFunction on it only)."
  value       = aws_iam_role.reconcile_schedule.arn
}

output "lost_lock_alarm_arn" {
  description = "ARN of the alarm that fires when the worker takes over a lock whose lease had lapsed."
  value       = aws_cloudwatch_metric_alarm.lost_lock.arn
}
