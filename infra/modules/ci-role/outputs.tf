output "role_arn" {
  description = "ARN of the CI role (BATON_ROLE_ARN for aws-actions/configure-aws-credentials)."
  value       = aws_iam_role.ci.arn
}
