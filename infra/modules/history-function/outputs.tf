output "function_name" {
  description = "Name of the history consumer function."
  value       = module.function.function_name
}

output "role_arn" {
  description = "ARN of the consumer's execution role."
  value       = module.function.role_arn
}
