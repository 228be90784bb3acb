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

output "stream_arn" {
  description = "ARN of the lock table's change stream (the history consumer's event source)."
  value       = aws_dynamodb_table.locks.stream_arn
}

output "history_table_name" {
  description = "History table name (BATON_HISTORY_TABLE)."
  value       = aws_dynamodb_table.history.name
}

output "history_table_arn" {
  description = "History table ARN (IAM resource for its writer and readers)."
  value       = aws_dynamodb_table.history.arn
}

output "history_index_arns" {
  description = "ARNs of the history table's indexes (IAM resources for reads across keys)."
  value       = [for gsi in aws_dynamodb_table.history.global_secondary_index : "${aws_dynamodb_table.history.arn}/index/${gsi.name}"]
}
