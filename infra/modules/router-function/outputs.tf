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
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "Router function ARN."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "Execution role ARN."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the router."
  value       = aws_cloudwatch_log_group.this.name
}
