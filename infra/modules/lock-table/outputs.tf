output "table_name" {
  description = "Lock table name (BATON_TABLE for the worker)."
  value       = aws_dynamodb_table.locks.name
}

output "table_arn" {
  description = "Lock table ARN (IAM resource for item operations)."
  value       = aws_dynamodb_table.locks.arn
}

output "index_arns" {
  description = "ARNs of the table's secondary indexes (IAM resources for Query)."
  value       = [for gsi in aws_dynamodb_table.locks.global_secondary_index : "${aws_dynamodb_table.locks.arn}/index/${gsi.name}"]
}
