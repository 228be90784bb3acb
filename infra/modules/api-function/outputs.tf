output "function_url" {
  description = "Base URL of the API (ends with /): the dashboard is at its root, the API under v1/ and api/v1alpha1/."
  value       = aws_lambda_function_url.this.function_url
}

output "openapi_url" {
  description = "The OpenAPI document (needs a token)."
  value       = "${aws_lambda_function_url.this.function_url}v1/openapi.json"
}

output "function_name" {
  description = "API function name."
  value       = module.function.function_name
}

output "function_arn" {
  description = "API function ARN."
  value       = module.function.function_arn
}

output "role_arn" {
  description = "Execution role ARN."
  value       = module.function.role_arn
}

output "log_group_name" {
  description = "CloudWatch log group of the API (one JSON line per request, with the token's name, never the token)."
  value       = module.function.log_group_name
}
