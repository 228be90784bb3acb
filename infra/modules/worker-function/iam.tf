# The worker's own grants, least privilege. ../lambda-function puts them first
# in the role's single inline policy and adds the SSM parameters, logs and
# X-Ray.
#
# DynamoDB and SSM actions are exactly the SDK calls the deployed code makes
# (crates/worker and the workspace crates it links, crates/lock among them;
# without crates/lock/src/table.rs, the `table create` admin helper that no
# Lambda runs). The three SQS actions are what the Lambda event source
# mapping itself needs to poll the queue; the code makes no SQS call.
# tests/infra/test_contract.py compares the actions in these statements (and
# the shared ones) with the calls in the code, role by role.

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "LockTableItems"
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [var.table_arn]
  }

  # A run's acquire checks its environment's freeze (an item of the same
  # table) in the same TransactWriteItems as the grant's UpdateItem; IAM
  # has no action for the transaction, only one per item in it.
  statement {
    sid       = "LockTableFreezeCheck"
    actions   = ["dynamodb:ConditionCheckItem"]
    resources = [var.table_arn]
  }

  # The list operation queries the sparse active-locks index; `history`
  # queries the history table by key.
  statement {
    sid       = "LockTableQuery"
    actions   = ["dynamodb:Query"]
    resources = concat(var.table_index_arns, var.history_table_arn == null ? [] : [var.history_table_arn])
  }

  # Needed by the event source mapping (Lambda polls with the function's role).
  statement {
    sid       = "CommandQueueEventSource"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [var.queue_arn]
  }
}
