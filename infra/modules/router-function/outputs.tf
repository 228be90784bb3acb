output "function_url" {
  description = "Base URL of the router (ends with /)."
  value       = aws_lambda_function_url.this.function_url
}

output "slack_commands_url" {
  description = "Request URL for the Slack slash commands /build and /deploy."
  value       = "${aws_lambda_function_url.this.function_url}slack/commands"
}

output "github_webhook_url" {
  description = "Payload URL for the GitHub webhook (workflow_run events)."
  value       = "${aws_lambda_function_url.this.function_url}github/webhook"
}

output "function_name" {
  description = "Router function name."
  value       = module.function.function_name
}

output "function_arn" {
  description = "Router function ARN."
  value       = module.function.function_arn
}

output "role_arn" {
  description = "Execution role ARN."
  value       = module.function.role_arn
}

output "log_group_name" {
  description = "CloudWatch log group of the router."
  value       = module.function.log_group_name
}
